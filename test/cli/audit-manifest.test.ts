// `aido manifest validate` and `aido audit verify|tail|query`, run in-process through
// runCli against a real AIDO_HOME.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { openDatabase } from "../../src/db/database.js";
import { AuditLog } from "../../src/security/audit.js";
import { headSignedWith } from "../../src/security/audit-head.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { openHarness } from "../agent/harness.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), interactive: false },
    out,
    err,
  };
}

describe("aido manifest validate", () => {
  let home: TempHome;
  beforeEach(() => {
    home = makeTempHome();
  });
  afterEach(() => home.cleanup());

  it("exits 0 for the bundled-style manifest and 1 naming the bad key of another", async () => {
    const good = join(home.dir, "good.yaml");
    const bad = join(home.dir, "bad.yaml");
    writeFileSync(good, 'name: good\ncapabilities: ["tool: file_read", "file_read: /workspace/**"]\n');
    writeFileSync(bad, "name: bad\nbudget:\n  max_tokens: 10\n  refill: 5\n");
    const c = capture();
    expect(await runCli(["manifest", "validate", good], c.io, home.env)).toBe(0);
    const d = capture();
    expect(await runCli(["manifest", "validate", good, bad], d.io, home.env)).toBe(1);
    expect(d.err.join("\n")).toContain(`${bad}:4: budget.refill: unknown key "refill"`);
  });

  it("exits 2 on usage errors", async () => {
    const c = capture();
    expect(await runCli(["manifest", "validate"], c.io, home.env)).toBe(2);
    expect(await runCli(["manifest", "validate", "--frobnicate", "x"], c.io, home.env)).toBe(2);
  });
});

describe("aido audit", () => {
  let home: TempHome;
  beforeEach(() => {
    home = makeTempHome();
    const db = openDatabase(home.config.dbPath);
    const audit = new AuditLog({ db, signer: RuntimeKey.load(home.config.keysDir), checkpointEvery: 5 });
    for (let i = 0; i < 12; i++) {
      audit.append({
        kind: "tool.invoked",
        goalId: "g1",
        agentId: "a1",
        payload: { tool: "exec", input: { i } },
      });
    }
    audit.close();
    db.close();
  });
  afterEach(() => home.cleanup());

  it("verifies an intact log and shows its tail as JSON", async () => {
    const c = capture();
    expect(await runCli(["audit", "verify"], c.io, home.env)).toBe(0);
    expect(c.out.join("")).toMatch(/^ok: \d+ entries/);
    const t = capture();
    expect(await runCli(["audit", "tail", "-n", "3", "--json"], t.io, home.env)).toBe(0);
    expect(JSON.parse(t.out.join("\n"))).toHaveLength(3);
  });

  it("exits 1 and names the first bad seq after a row is edited in SQLite", async () => {
    const db = openDatabase(home.config.dbPath);
    db.prepare("UPDATE audit SET payload = ? WHERE seq = 4").run(
      JSON.stringify({ tool: "exec", input: { i: 99 } }),
    );
    db.close();
    const c = capture();
    expect(await runCli(["audit", "verify"], c.io, home.env)).toBe(1);
    expect(c.err.join("")).toContain("seq 4");
  });

  it("filters by kind and refuses an unknown kind as a usage error", async () => {
    const c = capture();
    expect(
      await runCli(["audit", "query", "--kind", "tool.invoked", "--limit", "2", "--json"], c.io, home.env),
    ).toBe(0);
    expect(JSON.parse(c.out.join("\n"))).toHaveLength(2);
    const d = capture();
    expect(await runCli(["audit", "query", "--kind", "tool.teleported"], d.io, home.env)).toBe(2);
    // Kinds other modules add (the dashboard, MCP servers, cluster mode) are kinds too.
    for (const kind of ["ui.denied", "mcp.approved", "cluster.goal_taken_over"]) {
      const e = capture();
      expect(await runCli(["audit", "query", "--kind", kind, "--json"], e.io, home.env), kind).toBe(0);
    }
  });
});

describe("aido audit verify and anchor against the runtime's signed head", () => {
  let server: ProviderServer;
  beforeAll(async () => {
    server = await startProviderServer();
  });
  afterAll(async () => {
    await server.close();
  });

  /**
   * A home whose log a running runtime writes (a spawn, a tool call through the gate). It
   * stays open, as a daemon would: its last entries are after the last checkpoint.
   */
  async function runtimeHome() {
    const h = await openHarness(server);
    const a = h.rt.spawnAgent({
      name: "auditee",
      system_prompt: "x",
      capabilities: ["tool: memory_query"],
      budget: { max_tokens: 1000 },
    });
    await h.rt.invokeTool(a.agent_id, "memory_query", { query: "anything" });
    const home = h.home;
    const sql = <T>(fn: (d: Database.Database) => T): T => {
      const d = new Database(home.config.dbPath);
      try {
        return fn(d);
      } finally {
        d.close();
      }
    };
    return {
      home,
      sql,
      lastSeq: () => sql((d) => d.prepare("SELECT max(seq) FROM audit").pluck().get() as number),
      close: () => h.close(),
    };
  }

  it("prints an anchor that verifies, exits 1 naming the seq once the tail is cut, and 2 for a bad anchor", async () => {
    const { home, sql, lastSeq, close } = await runtimeHome();
    try {
      const last = lastSeq();
      const v = capture();
      expect(await runCli(["audit", "verify"], v.io, home.env)).toBe(0);
      expect(v.out.join("")).toContain(
        `${last} entries, chain and checkpoints intact, signed head at seq ${last}`,
      );
      const a = capture();
      expect(await runCli(["audit", "anchor"], a.io, home.env)).toBe(0);
      const anchor = a.out.join("").trim();
      const hash = sql((d) => d.prepare("SELECT hash FROM audit WHERE seq = ?").pluck().get(last));
      expect(anchor).toBe(`${last}:${hash}`);
      const j = capture();
      expect(await runCli(["audit", "anchor", "--json"], j.io, home.env)).toBe(0);
      const shown = JSON.parse(j.out.join("\n"));
      expect(shown).toMatchObject({ seq: last, hash, sig: expect.any(String) });
      // Signed, not MACed like the file: checkable with the public key alone.
      const pem = RuntimeKey.load(home.config.keysDir).publicKey.export({ type: "spki", format: "pem" });
      expect(headSignedWith(shown, String(pem))).toBe(true);
      expect(headSignedWith({ ...shown, seq: last - 1 }, String(pem))).toBe(false);
      const ok = capture();
      expect(await runCli(["audit", "verify", "--anchor", anchor], ok.io, home.env)).toBe(0);
      expect(ok.out.join("")).toContain(`anchor at seq ${last}`);

      // The attacker removes the last two entries, below no checkpoint.
      sql((d) => d.prepare("DELETE FROM audit WHERE seq > ?").run(last - 2));
      const bad = capture();
      expect(await runCli(["audit", "verify"], bad.io, home.env)).toBe(1);
      expect(bad.err.join("")).toContain(
        `FAILED at seq ${last - 1}: the log ends at seq ${last - 2} but the signed head`,
      );
      const badJson = capture();
      expect(await runCli(["audit", "verify", "--json"], badJson.io, home.env)).toBe(1);
      expect(JSON.parse(badJson.out.join("\n"))).toMatchObject({ ok: false, first_bad_seq: last - 1 });
      const noAnchor = capture();
      expect(await runCli(["audit", "anchor"], noAnchor.io, home.env)).toBe(1);
      const usage = capture();
      expect(await runCli(["audit", "verify", "--anchor", "12:zz"], usage.io, home.env)).toBe(2);
      expect(usage.err.join("")).toMatch(/--anchor: .*SEQ:HASH/);
    } finally {
      await close();
    }
  });

  it("exits 1 against an anchor kept elsewhere when the log differs at its seq or ends before it", async () => {
    const { home, sql, lastSeq, close } = await runtimeHome();
    try {
      const a = capture();
      expect(await runCli(["audit", "anchor"], a.io, home.env)).toBe(0);
      const anchor = a.out.join("").trim();
      // An anchor from another log (or a forged one): another hash at its seq.
      const last = lastSeq();
      const wrong = `${last}:${"0".repeat(64)}`;
      const w = capture();
      expect(await runCli(["audit", "verify", "--anchor", wrong], w.io, home.env)).toBe(1);
      expect(w.err.join("")).toContain(
        `FAILED at seq ${last}: entry ${last} is not the one the anchor names`,
      );
      // The last entry removed: the log ends before the anchor.
      sql((d) => d.prepare("DELETE FROM audit WHERE seq > ?").run(last - 1));
      const cut = capture();
      expect(await runCli(["audit", "verify", "--anchor", anchor], cut.io, home.env)).toBe(1);
      expect(cut.err.join("")).toContain(`FAILED at seq ${last}`);
    } finally {
      await close();
    }
  });
});
