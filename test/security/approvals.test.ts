// The approval queue as the gate (authorize), a human (respond from any connection), a
// restarted daemon and an attacker with write access to the database see it. The gate's
// use of it through the agent loop and the socket is in test/agent/approvals-loop.test.ts
// and test/daemon/approvals.test.ts.

import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/db/database.js";
import { goalOnlyProject } from "../../src/security/approval-project.js";
import { approvalScopeOf } from "../../src/security/approval-scope.js";
import { type ApprovalOutcome, ApprovalQueue, type ApprovalRequest } from "../../src/security/approvals.js";
import { AuditLog } from "../../src/security/audit.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { makeSigner } from "./signer-fixture.js";

let home: TempHome;
let key: ReturnType<typeof makeSigner>;
let clock: number;
const opened: Array<{ db: Db; queue: ApprovalQueue }> = [];

function open(now?: () => number): { db: Db; audit: AuditLog; queue: ApprovalQueue } {
  const db = openDatabase(home.config.dbPath);
  const audit = new AuditLog({ db, signer: key });
  const queue = new ApprovalQueue({
    db,
    audit,
    signer: key,
    timeoutMs: 60_000,
    allowAlwaysTtlSeconds: 3600,
    pollMs: 20,
    ...(now ? { now } : {}),
  });
  opened.push({ db, queue });
  return { db, audit, queue };
}

const projectA = goalOnlyProject("g1");
const projectB = goalOnlyProject("g2");
const writeScope = approvalScopeOf("file_write", {}, [{ kind: "file_write", path: "/output/r.md" }]);
const write: ApprovalRequest = {
  goalId: "g1",
  agentId: "a1",
  identity: "writer",
  project: projectA,
  tool: "file_write",
  input: { path: "/output/r.md", content: "x" },
  summary: "write r.md",
  scope: writeScope,
  askedBy: { source: "approval_required", text: "file_write" },
};

/** Start a call's approval stage and return it with the request it is waiting on. */
async function ask(queue: ApprovalQueue, req: ApprovalRequest = write) {
  const before = new Set(queue.list({ status: "pending" }).map((r) => r.id));
  const outcome = queue.authorize(req);
  const rec = queue.list({ status: "pending" }).find((r) => !before.has(r.id));
  if (!rec) throw new Error(`no request was queued: ${JSON.stringify(await outcome)}`);
  return { outcome, rec };
}

/** authorize() for a call a standing decision must cover: it must not queue a request. */
async function covered(queue: ApprovalQueue, req: ApprovalRequest): Promise<ApprovalOutcome> {
  const before = queue.list({ status: "pending" }).length;
  const o = queue.authorize(req);
  expect(queue.list({ status: "pending" })).toHaveLength(before);
  return o;
}

beforeEach(() => {
  home = makeTempHome();
  key = makeSigner();
  clock = Date.UTC(2025, 5, 1);
});

afterEach(() => {
  for (const o of opened.splice(0)) {
    o.queue.close();
    if (o.db.open) o.db.close();
  }
  home.cleanup();
});

describe("asking a human", () => {
  it("holds a call until a human allows it once, audits both sides, and asks again next time", async () => {
    const { queue, audit } = open();
    const seen: string[] = [];
    queue.on("requested", (r) => seen.push(`requested ${r.tool}`));
    queue.on("decided", (r) => seen.push(`decided ${r.decision}`));
    const { outcome, rec } = await ask(queue);
    expect(rec).toMatchObject({
      tool: "file_write",
      scope_key: "path:/output/r.md",
      target: "file_write on /output/r.md",
      identity: "writer",
      covers: {
        allow_once: "this call only: file_write on /output/r.md",
        allow_session: "file_write on /output/r.md by agent a1 until it stops",
        allow_always:
          "file_write on /output/r.md by agents of identity `writer` in goal g1 only (it has no project folder) for 1 h",
      },
    });
    queue.respond(rec.id, "allow_once", "alice");
    await expect(outcome).resolves.toMatchObject({ via: "answer", decision: "allow_once", allowed: true });
    expect(seen).toEqual(["requested file_write", "decided allow_once"]);
    expect(audit.tail(2).map((e) => [e.kind, e.payload])).toEqual([
      ["approval.requested", expect.objectContaining({ approval_id: rec.id, tool: "file_write" })],
      [
        "approval.decided",
        expect.objectContaining({ approval_id: rec.id, decision: "allow_once", by: "alice" }),
      ],
    ]);
    const again = await ask(queue);
    queue.respond(again.rec.id, "deny");
    await expect(again.outcome).resolves.toMatchObject({ decision: "deny", allowed: false });
  });

  it("denies and audits a request nobody answers before its timeout", async () => {
    const { queue, audit } = open();
    const { outcome, rec } = await ask(queue, { ...write, timeoutMs: 40 });
    await expect(outcome).resolves.toMatchObject({ decision: "timed_out", allowed: false });
    expect(queue.get(rec.id).status).toBe("timed_out");
    expect(audit.tail(1)[0]).toMatchObject({ kind: "approval.timed_out", payload: { approval_id: rec.id } });
    expect(() => queue.respond(rec.id, "allow_once")).toThrow(/already timed_out/);
  });

  it("refuses an unknown decision and an unknown id, naming them", async () => {
    const { queue } = open();
    const { rec } = await ask(queue);
    expect(() => queue.respond(rec.id, "allow_forever" as never)).toThrow(
      /decision must be one of .*"allow_forever"/,
    );
    expect(() => queue.respond("apr_nope", "deny")).toThrow(/no approval request with id apr_nope/);
  });

  it("refuses Allow Always for a request recorded before requests named their project, and says why", async () => {
    const { db, queue } = open();
    const { outcome, rec } = await ask(queue);
    db.prepare("UPDATE approvals SET project = NULL WHERE id = ?").run(rec.id);
    expect(queue.get(rec.id).covers.allow_always).toContain("(not available: no project recorded)");
    expect(() => queue.respond(rec.id, "allow_always")).toThrow(
      /asked before requests recorded their project/,
    );
    expect(queue.grants(true)).toEqual([]);
    queue.respond(rec.id, "allow_once");
    await expect(outcome).resolves.toMatchObject({ allowed: true, decision: "allow_once" });
  });

  it("wakes the waiter when the answer comes through another connection", async () => {
    const { queue } = open();
    const { outcome, rec } = await ask(queue);
    open().queue.respond(rec.id, "allow_once", "bob");
    await expect(outcome).resolves.toMatchObject({ decision: "allow_once", allowed: true, by: "bob" });
  });

  it("refuses an answer that arrives after the deadline and audits the timeout instead", async () => {
    const { queue, audit } = open(() => clock);
    const { outcome, rec } = await ask(queue, { ...write, timeoutMs: 1000 });
    clock += 1001;
    expect(() => queue.respond(rec.id, "allow_once")).toThrow(/passed its deadline/);
    await expect(outcome).resolves.toMatchObject({ decision: "timed_out" });
    expect(audit.tail(1)[0]?.kind).toBe("approval.timed_out");
  });
});

describe("what asked", () => {
  it("is kept on the request, and a database from before it was kept migrates with its rows intact", async () => {
    const first = open();
    const ask = first.queue.authorize({
      ...write,
      askedBy: { source: "policy.confirm", rule: "policy.confirm[0]", text: "file_write: /output/**" },
    });
    const [rec] = first.queue.list();
    expect(rec?.asked_by).toEqual({
      source: "policy.confirm",
      rule: "policy.confirm[0]",
      text: "file_write: /output/**",
    });
    first.queue.respond(rec?.id as string, "deny", "test");
    await ask;
    first.queue.close();
    first.db.close();
    // The schema as Aido had it before: no asked_by column, migration 3 not applied.
    const old = new Database(home.config.dbPath);
    old.exec(`DROP INDEX approvals_created;
      ALTER TABLE approvals DROP COLUMN asked_by;
      DELETE FROM schema_migrations WHERE module = 'approvals' AND version = 3;`);
    old.close();
    const again = open();
    const [kept] = again.queue.list({ status: "all" });
    expect(kept).toMatchObject({ id: rec?.id, status: "decided", decision: "deny", asked_by: null });
  });
});

describe("the call that asked", () => {
  it("is kept on the request (request_id), and a database from before it was kept migrates with its rows intact", async () => {
    const first = open();
    const named = first.queue.authorize({ ...write, requestId: "req_000000000000000000000001" });
    const unnamed = first.queue.authorize({ ...write, input: { path: "/output/r.md", content: "y" } });
    const [a, b] = first.queue.list();
    expect([a?.request_id, b?.request_id]).toEqual(["req_000000000000000000000001", null]);
    for (const r of [a, b]) first.queue.respond(String(r?.id), "deny", "test");
    await Promise.all([named, unnamed]);
    first.queue.close();
    first.db.close();
    // The schema as Aido had it before: no request_id column, migration 5 not applied.
    const old = new Database(home.config.dbPath);
    old.exec(`ALTER TABLE approvals DROP COLUMN request_id;
      DELETE FROM schema_migrations WHERE module = 'approvals' AND version = 5;`);
    old.close();
    const again = open();
    const kept = again.queue.list({ status: "all" });
    expect(kept.map((r) => [r.id, r.decision, r.request_id]).sort()).toEqual(
      [
        [a?.id, "deny", null],
        [b?.id, "deny", null],
      ].sort(),
    );
    const later = again.queue.authorize({ ...write, requestId: "req_000000000000000000000002" });
    const [pending] = again.queue.list();
    expect(pending?.request_id).toBe("req_000000000000000000000002");
    again.queue.respond(String(pending?.id), "deny", "test");
    await later;
  });
});

describe("requests whose call ended", () => {
  it("expire at once when the call's signal aborts, audited with the reason", async () => {
    const { queue, audit } = open();
    const ac = new AbortController();
    const { outcome, rec } = await ask(queue, { ...write, signal: ac.signal });
    ac.abort(new Error("the client that made the call disconnected"));
    await expect(outcome).resolves.toMatchObject({ decision: "expired", allowed: false });
    const closed = queue.get(rec.id);
    expect(closed.status).toBe("expired");
    expect(closed.close_reason).toContain("the client that made the call disconnected");
    expect(audit.tail(1)[0]).toMatchObject({ kind: "approval.expired", payload: { approval_id: rec.id } });
    expect(() => queue.respond(rec.id, "allow_once")).toThrow(
      /already expired \(the client that made the call disconnected\)/,
    );
  });

  it("are never left pending when the call had already ended", async () => {
    const { queue } = open();
    const ac = new AbortController();
    ac.abort(new Error("agent a1 stopped"));
    const o = await queue.authorize({ ...write, signal: ac.signal });
    expect(o).toMatchObject({ decision: "expired", reason: expect.stringContaining("agent a1 stopped") });
    expect(queue.list({ status: "pending" })).toEqual([]);
  });

  it("expire when their agent stops, and only that agent's", async () => {
    const { queue } = open();
    const mine = await ask(queue);
    const other = await ask(queue, { ...write, agentId: "a2" });
    queue.closeAgent("a1", "goal cancelled");
    await expect(mine.outcome).resolves.toMatchObject({
      decision: "expired",
      reason: "agent a1 stopped: goal cancelled",
    });
    expect(queue.get(other.rec.id).status).toBe("pending");
    queue.respond(other.rec.id, "deny");
    await other.outcome;
  });

  it("closed inside a caller's transaction, wake their waiters only once it commits", async () => {
    const { db, queue } = open();
    const decided: string[] = [];
    queue.on("decided", (r) => decided.push(`${r.id} ${r.status}`));
    const rolledBack = await ask(queue);
    let woken: ApprovalOutcome | undefined;
    void rolledBack.outcome.then((o) => {
      woken = o;
    });
    // An agent's stop that fails after closing its requests (registry.ts stopAgent).
    expect(() =>
      db.transaction(() => {
        queue.closeAgent("a1", "goal cancelled");
        throw new Error("disk full");
      })(),
    ).toThrow(/disk full/);
    await new Promise((ok) => setImmediate(ok));
    // Nothing was closed: the call still waits, and its request is still pending.
    expect(woken).toBeUndefined();
    expect(decided).toEqual([]);
    expect(queue.get(rolledBack.rec.id).status).toBe("pending");
    // Committed, the waiter is woken with what the database holds, once.
    db.transaction(() => queue.closeAgent("a1", "goal cancelled"))();
    await expect(rolledBack.outcome).resolves.toMatchObject({ decision: "expired" });
    expect(decided).toEqual([`${rolledBack.rec.id} expired`]);
  });

  it("expire, audited, when a new process starts: the waiting call died with the old one", () => {
    const first = open();
    const waiting = first.queue.authorize(write);
    void waiting;
    const [rec] = first.queue.list({ status: "pending" });
    first.queue.close();
    first.db.close(); // the process is gone (no answer, no timeout)
    const { queue, audit } = open();
    expect(queue.closeOrphans("the daemon restarted")).toEqual([rec!.id]);
    expect(queue.get(rec!.id)).toMatchObject({ status: "expired", close_reason: "the daemon restarted" });
    expect(audit.query({ kind: "approval.expired" })).toHaveLength(1);
    expect(queue.list({ status: "pending" })).toEqual([]);
  });
});

describe("Allow Session", () => {
  it("covers later calls of the same agent, tool and scope only, until the agent stops", async () => {
    const { queue, audit } = open();
    const first = await ask(queue);
    queue.respond(first.rec.id, "allow_session", "carol");
    await first.outcome;
    const again = await covered(queue, { ...write, input: { path: "/output/r.md", content: "other" } });
    expect(again).toMatchObject({ allowed: true, via: "allow_session", approvalId: first.rec.id });
    expect(audit.tail(1)[0]).toMatchObject({
      kind: "approval.reused",
      agent_id: "a1",
      payload: { via: "allow_session", approval_id: first.rec.id, scope_key: "path:/output/r.md" },
    });
    const otherPath = approvalScopeOf("file_write", {}, [{ kind: "file_write", path: "/output/s.md" }]);
    for (const req of [
      { ...write, agentId: "a2" }, // another agent, even of the same identity
      { ...write, scope: otherPath },
      { ...write, tool: "file_edit" },
    ]) {
      const x = await ask(queue, req);
      queue.respond(x.rec.id, "deny");
      await x.outcome;
    }
    queue.closeAgent("a1", "finished");
    const after = await ask(queue);
    queue.respond(after.rec.id, "deny");
    await expect(after.outcome).resolves.toMatchObject({ allowed: false });
  });
});

describe("Allow Always", () => {
  let queue: ApprovalQueue;
  let audit: AuditLog;
  let grantId: string;
  let attacker: Database.Database;

  beforeEach(async () => {
    ({ queue, audit } = open(() => clock));
    const { outcome, rec } = await ask(queue);
    grantId = queue.respond(rec.id, "allow_always", "dana").grant_id!;
    await outcome;
    attacker = new Database(home.config.dbPath);
  });
  afterEach(() => attacker.close());

  const reusedFor = async (req: ApprovalRequest) => {
    const o = await covered(queue, req);
    expect(o).toMatchObject({ allowed: true, via: "allow_always", grantId });
  };
  const asksFor = async (req: ApprovalRequest) => {
    const x = await ask(queue, req);
    queue.respond(x.rec.id, "deny");
    await x.outcome;
  };

  it("is a signed grant for the identity, tool and scope, reused by any agent of that identity", async () => {
    expect(queue.grants()).toEqual([
      expect.objectContaining({
        id: grantId,
        identity: "writer",
        tool: "file_write",
        scope_key: "path:/output/r.md",
        target: "file_write on /output/r.md",
        decided_by: "dana",
        status: "active",
        expires_at: clock + 3600 * 1000,
      }),
    ]);
    await reusedFor({ ...write, agentId: "a7" });
    expect(audit.tail(1)[0]).toMatchObject({
      kind: "approval.reused",
      agent_id: "a7",
      payload: { via: "allow_always", grant_id: grantId },
    });
    await asksFor({ ...write, identity: "bootstrap/writer" });
    await asksFor({
      ...write,
      scope: approvalScopeOf("file_write", {}, [{ kind: "file_write", path: "/output/s.md" }]),
    });
    await asksFor({ ...write, tool: "file_edit" });
    // The same identity, tool and container path in another project: another file.
    await asksFor({ ...write, project: projectB, goalId: "g2" });
  });

  it("stops being honoured when it expires (1 h here)", async () => {
    clock += 3600 * 1000 - 1;
    await reusedFor(write);
    clock += 1;
    await asksFor(write);
    expect(queue.grants()).toEqual([]);
    expect(queue.grants(true)[0]?.status).toBe("expired");
  });

  it("is not honoured after its row is edited: expiry, scope, tool, identity or project", async () => {
    const edits = [
      "UPDATE approval_grants SET expires_at = expires_at + 86400000",
      "UPDATE approval_grants SET scope_key = 'path:/output/s.md'",
      "UPDATE approval_grants SET tool = 'exec'",
      "UPDATE approval_grants SET identity = 'bootstrap'",
      `UPDATE approval_grants SET project = '${projectB.key}', project_shown = 'project B'`,
    ];
    for (const sql of edits) {
      const saved = attacker.prepare("SELECT * FROM approval_grants").get() as Record<string, unknown>;
      attacker.prepare(sql).run();
      const g = attacker.prepare("SELECT * FROM approval_grants").get() as {
        tool: string;
        scope_key: string;
        identity: string;
        project: string;
      };
      const scope = { key: g.scope_key, target: "x" };
      const project = { key: g.project, shown: "x" };
      await asksFor({ ...write, tool: g.tool, scope, identity: g.identity, project });
      expect(queue.grants(true)[0]?.status).toBe("invalid");
      attacker
        .prepare(
          "UPDATE approval_grants SET expires_at = ?, scope_key = ?, tool = ?, identity = ?, project = ?, project_shown = ?",
        )
        .run(
          saved.expires_at,
          saved.scope_key,
          saved.tool,
          saved.identity,
          saved.project,
          saved.project_shown,
        );
      await reusedFor(write);
    }
  });

  it("is not honoured when copied under a new id, or signed by another key", async () => {
    attacker
      .prepare(
        `INSERT INTO approval_grants (id, tool, scope_key, expires_at, audit_seq, key_id, sig, created_at, identity, target,
           approval_id, decided_by, project, project_shown) SELECT 'grt_copy', tool, 'path:/output/x.md', expires_at,
           audit_seq, key_id, sig, created_at, identity, target, approval_id, decided_by, project, project_shown
           FROM approval_grants`,
      )
      .run();
    await asksFor({ ...write, scope: { key: "path:/output/x.md", target: "x" } });
    const g = attacker.prepare("SELECT * FROM approval_grants WHERE id = ?").get(grantId) as Record<
      string,
      never
    >;
    const other = makeSigner();
    const forged = Buffer.from(
      JSON.stringify([
        "aido.approval.grant.v3",
        "grt_forged",
        "writer",
        projectA.key,
        "exec",
        "command:rm",
        g.expires_at,
        g.audit_seq,
        key.keyId,
      ]),
    );
    attacker
      .prepare(
        "INSERT INTO approval_grants (id, identity, project, tool, scope_key, expires_at, audit_seq, key_id, sig, created_at) VALUES ('grt_forged', 'writer', ?, 'exec', 'command:rm', ?, ?, ?, ?, ?)",
      )
      .run(
        projectA.key,
        g.expires_at,
        g.audit_seq,
        key.keyId,
        other.sign(forged).toString("base64"),
        g.created_at,
      );
    await asksFor({ ...write, tool: "exec", scope: { key: "command:rm", target: "x" } });
  });

  it("is not honoured once the audit entry that approved it says otherwise", async () => {
    attacker.prepare("UPDATE audit SET kind = 'approval.requested' WHERE kind = 'approval.decided'").run();
    await asksFor(write);
  });

  it("is not honoured in its v2 form, which bound no project, and says so", async () => {
    attacker.prepare("UPDATE approval_grants SET project = NULL, project_shown = NULL").run();
    await asksFor(write);
    expect(queue.grants()).toEqual([]);
    expect(queue.grants(true)[0]).toMatchObject({ status: "no_project", project: null, project_key: null });
  });

  it("is not honoured in its old (v1) form, which bound no identity", async () => {
    attacker.prepare("UPDATE approval_grants SET identity = NULL").run();
    await asksFor({ ...write, identity: "" });
  });

  it("is revoked for good: audited, and un-revoking the row in SQLite does not bring it back", async () => {
    const revoked = queue.revoke(grantId, "erin");
    expect(revoked).toMatchObject({ id: grantId, status: "revoked", revoked_by: "erin" });
    expect(audit.tail(1)[0]).toMatchObject({
      kind: "approval.grant_revoked",
      payload: { grant_id: grantId, identity: "writer", by: "erin" },
    });
    await asksFor(write);
    expect(() => queue.revoke(grantId)).toThrow(/already revoked/);
    expect(() => queue.revoke("grt_nope")).toThrow(/no approval grant with id grt_nope/);
    attacker.prepare("UPDATE approval_grants SET revoked_at = NULL, revoked_by = NULL").run();
    await asksFor(write);
    expect(queue.grants(true)[0]?.status).toBe("invalid");
  });
});
