// The audit log's behaviour for its callers: a chain of typed entries, durable before
// append returns, failing closed, checkpointed on close, shared safely by two connections.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/db/database.js";
import { AidoError } from "../../src/errors.js";
import { AuditLog } from "../../src/security/audit.js";
import { GENESIS_HASH } from "../../src/security/audit-format.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { makeSigner } from "./signer-fixture.js";

let home: TempHome;
let db: Db;
let key: ReturnType<typeof makeSigner>;

beforeEach(() => {
  home = makeTempHome();
  db = openDatabase(home.config.dbPath);
  key = makeSigner();
});

afterEach(() => {
  if (db.open) db.close();
  home.cleanup();
});

/** The last signed checkpoint, as the log stored it. */
function latestCheckpoint(): { seq: number; key_id: string } | undefined {
  return db.prepare("SELECT seq, key_id FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").get() as
    | { seq: number; key_id: string }
    | undefined;
}

describe("AuditLog.append", () => {
  it("chains typed entries: seq from 1, each carrying the previous entry's hash", () => {
    let t = Date.UTC(2025, 0, 1);
    const log = new AuditLog({ db, signer: key, now: () => t++ });
    const a = log.record("goal.submitted", { goal: "write a poem" }, { goalId: "g1" });
    const b = log.append({
      kind: "agent.spawned",
      goalId: "g1",
      agentId: "a1",
      payload: { manifest: "writer", grants: [] },
    });
    expect(a).toMatchObject({
      seq: 1,
      prev_hash: GENESIS_HASH,
      goal_id: "g1",
      agent_id: null,
      time: "2025-01-01T00:00:00.000Z",
    });
    expect(b).toMatchObject({ seq: 2, prev_hash: a.hash, kind: "agent.spawned", agent_id: "a1" });
    expect(b.payload).toEqual({ manifest: "writer", grants: [] });
    expect(log.verify()).toEqual({ ok: true, entries: 2 });
  });

  it("stores payloads as canonical JSON whatever the key order", () => {
    const log = new AuditLog({ db, signer: key });
    log.record("tool.invoked", { tool: "file_read", input: { path: "/w", offset: 1 } } as never);
    const text = db.prepare("SELECT payload FROM audit WHERE seq = 1").pluck().get();
    expect(text).toBe('{"input":{"offset":1,"path":"/w"},"tool":"file_read"}');
  });

  it("fails closed: a write that cannot be made throws audit_failed and the action never runs", () => {
    const log = new AuditLog({ db, signer: key });
    db.close();
    let ran = false;
    const act = () => {
      log.record("tool.invoked", { tool: "file_write", input: { path: "/output/x" } });
      ran = true;
    };
    expect(act).toThrow(AidoError);
    expect(act).toThrow(/audit write for tool.invoked failed/);
    try {
      act();
    } catch (e) {
      expect((e as AidoError).code).toBe("audit_failed");
    }
    expect(ran).toBe(false);
  });

  it("refuses a payload JSON cannot carry instead of logging something else", () => {
    const log = new AuditLog({ db, signer: key });
    expect(() =>
      log.record("budget.reserved", { account: "a", reservation_id: 1, amount: Number.NaN }),
    ).toThrow(/audit_failed|cannot encode value at \$\.amount/);
    expect(log.tail(5)).toEqual([]);
  });

  it("refuses a payload nested past 1,000 levels with a reason, not a stack overflow", () => {
    const log = new AuditLog({ db, signer: key });
    let deep: unknown = "x";
    for (let i = 0; i < 5000; i++) deep = { a: deep };
    const err = (() => {
      try {
        log.record("tool.invoked", { tool: "t", input: deep as Record<string, string> });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(AidoError);
    expect((err as AidoError).code).toBe("audit_failed");
    expect((err as AidoError).message).toContain("nests deeper than 1000 levels");
    expect(log.tail(5)).toEqual([]);
  });

  it("refuses appends after close, which signs a checkpoint over the head", () => {
    const log = new AuditLog({ db, signer: key });
    log.record("goal.started", {}, { goalId: "g1" });
    log.record("goal.finished", { state: "succeeded" }, { goalId: "g1" });
    log.close();
    expect(latestCheckpoint()).toMatchObject({ seq: 2, key_id: key.keyId });
    expect(() => log.record("goal.started", {})).toThrow(/closed/);
    const reopened = new AuditLog({ db, signer: key });
    expect(reopened.tail(1)[0]).toMatchObject({ seq: 3, kind: "audit.checkpoint", payload: { seq: 2 } });
    reopened.close(); // nothing new since the checkpoint: no second one
    expect(latestCheckpoint()?.seq).toBe(2);
    expect(reopened.verify()).toEqual({ ok: true, entries: 3 });
  });

  it("checkpoints every N entries inside the append's own transaction", () => {
    const log = new AuditLog({ db, signer: key, checkpointEvery: 3 });
    for (let i = 0; i < 7; i++) log.record("goal.started", {});
    const cps = db.prepare("SELECT seq FROM audit_checkpoints ORDER BY seq").pluck().all();
    expect(cps).toEqual([3, 6, 9]);
    expect(log.verify().ok).toBe(true);
  });

  it("appends the entries of one action in one commit, chained and checkpointed as single appends", () => {
    const log = new AuditLog({ db, signer: key, checkpointEvery: 3 });
    log.record("goal.started", {}, { goalId: "g1" });
    const [issued, spawned] = log.appendAll([
      {
        kind: "token.issued",
        goalId: "g1",
        agentId: "a1",
        payload: { token_id: "t1", grants: [], expires_at: "x" },
      },
      {
        kind: "agent.spawned",
        goalId: "g1",
        agentId: "a1",
        payload: { manifest: "m", grants: [], token_id: "t1" },
      },
    ]);
    expect(issued).toMatchObject({ seq: 2, kind: "token.issued" });
    expect(spawned).toMatchObject({ seq: 3, kind: "agent.spawned", prev_hash: issued?.hash });
    // seq 3 was due a checkpoint: signed and chained in the same commit, as with append.
    expect(log.tail(5).map((e) => e.kind)).toEqual([
      "goal.started",
      "token.issued",
      "agent.spawned",
      "audit.checkpoint",
    ]);
    expect(latestCheckpoint()?.seq).toBe(3);
    expect(log.verify()).toEqual({ ok: true, entries: 4 });
  });

  it("writes none of an action's entries when one of them cannot be written", () => {
    const log = new AuditLog({ db, signer: key });
    expect(() =>
      log.appendAll([
        { kind: "goal.started", payload: {} },
        { kind: "budget.reserved", payload: { account: "a", reservation_id: 1, amount: Number.NaN } },
      ]),
    ).toThrow(/audit_failed|cannot encode value at \$\.amount/);
    expect(log.tail(5)).toEqual([]);
  });

  it("keeps one chain when two connections append in turn", () => {
    const one = new AuditLog({ db, signer: key, checkpointEvery: 5 });
    const db2 = openDatabase(home.config.dbPath);
    const two = new AuditLog({ db: db2, signer: key, checkpointEvery: 5 });
    for (let i = 0; i < 20; i++) (i % 3 === 0 ? two : one).record("goal.started", { agent_id: `x${i}` });
    expect(one.verify()).toEqual({ ok: true, entries: two.verify().entries });
    db2.close();
  });

  it("rolls the entry back with the caller's transaction, leaving the chain whole", () => {
    const log = new AuditLog({ db, signer: key });
    log.record("goal.started", {});
    expect(() =>
      db.transaction(() => {
        log.record("goal.finished", { state: "failed" });
        throw new Error("caller failed after auditing");
      })(),
    ).toThrow(/caller failed/);
    log.record("goal.finished", { state: "succeeded" });
    expect(log.tail(5).map((e) => e.kind)).toEqual(["goal.started", "goal.finished"]);
    expect(log.verify().ok).toBe(true);
  });

  it("keeps every entry whose append returned when its process is killed with SIGKILL, and a head that still holds", async () => {
    const writer = fileURLToPath(new URL("./fixtures/audit-writer.ts", import.meta.url));
    const headFile = home.config.auditHeadPath;
    const args = ["--import", "tsx", writer, home.config.dbPath, key.privatePem, headFile];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let reported = 0;
    await new Promise<void>((resolve, reject) => {
      let buf = "";
      child.on("error", reject);
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split("\n");
        buf = lines.pop() ?? "";
        for (const l of lines) reported = Math.max(reported, Number(l));
        if (reported >= 300 && !child.killed) {
          child.kill("SIGKILL");
          resolve();
        }
      });
    });
    await new Promise((r) => child.once("exit", r));
    const raw = new Database(home.config.dbPath);
    const max = raw.prepare("SELECT max(seq) FROM audit").pluck().get() as number;
    raw.close();
    expect(max).toBeGreaterThanOrEqual(reported);
    const log = new AuditLog({ db, signer: key, checkpointEvery: 50, headFile });
    const r = log.verify();
    expect(r).toMatchObject({ ok: true, entries: max });
    // The head is written after each commit: it may lag a kill by an entry, never lead.
    expect(r.head_seq).toBeGreaterThanOrEqual(reported);
    expect(r.head_seq).toBeLessThanOrEqual(max);
    // A runtime opening the log again finds nothing broken.
    const again = new AuditLog({ db, signer: key, checkpointEvery: 50, headFile, writeHead: true });
    again.record("goal.started", {});
    const after = again.verify();
    expect(after.ok).toBe(true);
    expect(after.head_seq).toBe(after.entries);
    expect(after.entries).toBeGreaterThan(max);
    again.close();
  });
});

describe("AuditLog.settle", () => {
  it("records tool.completed before handing back the result", async () => {
    const log = new AuditLog({ db, signer: key });
    const invoked = log.record(
      "tool.invoked",
      { tool: "exec", input: { command: "ls" } },
      { goalId: "g", agentId: "a" },
    );
    const out = await log.settle(
      invoked,
      async () => "listing",
      (r) => ({ output_bytes: r.length }),
    );
    expect(out).toBe("listing");
    expect(log.tail(1)[0]).toMatchObject({
      kind: "tool.completed",
      goal_id: "g",
      agent_id: "a",
      payload: { tool: "exec", invoked_seq: invoked.seq, output_bytes: 7 },
    });
  });

  it("records tool.failed and rethrows the action's error", async () => {
    const log = new AuditLog({ db, signer: key });
    const invoked = log.record("tool.invoked", { tool: "exec", input: { command: "false" } });
    await expect(
      log.settle(invoked, async () => {
        throw new AidoError("tool_failed", "exit 1");
      }),
    ).rejects.toThrow("exit 1");
    expect(log.tail(1)[0]).toMatchObject({
      kind: "tool.failed",
      payload: { error: "exit 1", code: "tool_failed" },
    });
  });

  it("withholds the result when the completion cannot be audited", async () => {
    const log = new AuditLog({ db, signer: key });
    const invoked = log.record("tool.invoked", { tool: "exec", input: { command: "ls" } });
    const p = log.settle(invoked, async () => {
      db.close();
      return "secret result";
    });
    await expect(p).rejects.toMatchObject({ code: "audit_failed" });
  });
});

describe("AuditLog.query and tail", () => {
  it("filters by goal, agent and kind, newest first, and tails oldest first", () => {
    const log = new AuditLog({ db, signer: key });
    log.record("goal.started", {}, { goalId: "g1" });
    log.record("tool.invoked", { tool: "exec", input: {} }, { goalId: "g1", agentId: "a1" });
    log.record("tool.invoked", { tool: "exec", input: {} }, { goalId: "g2", agentId: "a2" });
    log.record(
      "tool.denied",
      { tool: "exec", stage: "policy", reason: "rm -rf" },
      { goalId: "g1", agentId: "a1" },
    );
    expect(log.query({ goal_id: "g1" }).map((e) => e.seq)).toEqual([4, 2, 1]);
    expect(log.query({ agent_id: "a1", kind: "tool.invoked" }).map((e) => e.seq)).toEqual([2]);
    expect(log.query({ limit: 2 }).map((e) => e.seq)).toEqual([4, 3]);
    expect(log.tail(2).map((e) => e.seq)).toEqual([3, 4]);
    expect(() => log.query({ limit: 0 })).toThrow(/limit must be a positive integer/);
  });
});
