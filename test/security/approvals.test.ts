// The approval queue as a human, a restarted daemon and an attacker with the database see it.

import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/db/database.js";
import { approvalScopeKey } from "../../src/security/approval-scope.js";
import {
  ApprovalQueue,
  type ApprovalRecord,
  type ApprovalQueue as Queue,
} from "../../src/security/approvals.js";
import { AuditLog } from "../../src/security/audit.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { makeSigner } from "./signer-fixture.js";

let home: TempHome;
let key: ReturnType<typeof makeSigner>;
let clock: number;
const opened: Array<{ db: Db; queue: Queue }> = [];

function open(now?: () => number): { db: Db; audit: AuditLog; queue: Queue } {
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

const write = {
  goalId: "g1",
  agentId: "a1",
  tool: "file_write",
  input: { path: "/output/r.md", content: "x" },
  summary: "write r.md",
};

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

describe("ApprovalQueue requests", () => {
  it("holds a request until a human allows it once, auditing both sides", async () => {
    const { queue, audit } = open();
    const seen: string[] = [];
    queue.on("requested", (r) => seen.push(`requested ${r.tool}`));
    queue.on("decided", (r) => seen.push(`decided ${r.decision}`));
    const pending = queue.request(write);
    const [rec] = queue.list({ status: "pending" });
    expect(rec).toMatchObject({ tool: "file_write", scope_key: "path:/output/r.md", summary: "write r.md" });
    queue.respond(rec!.id, "allow_once", "alice");
    await expect(pending).resolves.toMatchObject({ decision: "allow_once", allowed: true, by: "alice" });
    expect(seen).toEqual(["requested file_write", "decided allow_once"]);
    expect(audit.tail(2).map((e) => [e.kind, e.payload])).toEqual([
      ["approval.requested", expect.objectContaining({ approval_id: rec!.id, tool: "file_write" })],
      [
        "approval.decided",
        expect.objectContaining({ approval_id: rec!.id, decision: "allow_once", by: "alice" }),
      ],
    ]);
    // Allow Once covers nothing later.
    expect(queue.check("a1", "file_write", "path:/output/r.md")).toEqual({ allowed: false });
  });

  it("reports a denial as not allowed", async () => {
    const { queue } = open();
    const pending = queue.request(write);
    queue.respond(queue.list()[0]!.id, "deny");
    await expect(pending).resolves.toMatchObject({ decision: "deny", allowed: false });
  });

  it("denies and audits a request nobody answers before its timeout", async () => {
    const { queue, audit } = open();
    const outcome = await queue.request({ ...write, timeoutMs: 40 });
    expect(outcome).toMatchObject({ decision: "timed_out", allowed: false });
    expect(queue.get(outcome.id).status).toBe("timed_out");
    expect(audit.tail(1)[0]).toMatchObject({
      kind: "approval.timed_out",
      payload: { approval_id: outcome.id },
    });
    expect(() => queue.respond(outcome.id, "allow_once")).toThrow(/already timed_out/);
  });

  it("refuses an unknown decision and an unknown id, naming them", () => {
    const { queue } = open();
    const rec = queue.enqueue(write);
    expect(() => queue.respond(rec.id, "allow_forever" as never)).toThrow(
      /decision must be one of .*"allow_forever"/,
    );
    expect(() => queue.respond("apr_nope", "deny")).toThrow(/no approval request with id apr_nope/);
  });

  it("wakes the waiter when the answer comes through another connection", async () => {
    const { queue } = open();
    const pending = queue.request(write);
    const other = open();
    const id = other.queue.list({ status: "pending" })[0]!.id;
    other.queue.respond(id, "allow_session", "bob");
    await expect(pending).resolves.toMatchObject({ decision: "allow_session", allowed: true });
    expect(queue.check("a1", "file_write", "path:/output/r.md")).toEqual({
      allowed: true,
      via: "allow_session",
    });
  });
});

describe("ApprovalQueue across a restart", () => {
  it("lists pending requests after the database is closed and reopened, and takes an answer", async () => {
    const first = open();
    const rec = first.queue.enqueue(write);
    first.queue.close();
    first.db.close();
    const { queue, audit } = open();
    expect(queue.list({ status: "pending" }).map((r) => r.id)).toEqual([rec.id]);
    expect(queue.resumePending().map((r) => r.id)).toEqual([rec.id]);
    const decided = queue.respond(rec.id, "allow_once", "carol");
    expect(decided).toMatchObject({ status: "decided", decision: "allow_once", decided_by: "carol" });
    await expect(queue.wait(rec.id)).resolves.toMatchObject({ allowed: true });
    expect(audit.verify().ok).toBe(true);
  });

  it("times out, with an audit entry, what passed its deadline while the process was gone", () => {
    const first = open(() => clock);
    const late = first.queue.enqueue({ ...write, timeoutMs: 1000 });
    const onTime = first.queue.enqueue({ ...write, timeoutMs: 60_000 });
    first.db.close();
    clock += 5000;
    const { queue, audit } = open(() => clock);
    const pending = queue.resumePending();
    expect(pending.map((r) => r.id)).toEqual([onTime.id]);
    expect(queue.get(late.id).status).toBe("timed_out");
    expect(
      audit
        .query({ kind: "approval.timed_out" })
        .map((e) => (e.payload as { approval_id: string }).approval_id),
    ).toEqual([late.id]);
    expect(() => queue.respond(late.id, "allow_always")).toThrow(/already timed_out/);
  });

  it("refuses an answer that arrives after the deadline and audits the timeout instead", () => {
    const { queue, audit } = open(() => clock);
    const rec = queue.enqueue({ ...write, timeoutMs: 1000 });
    clock += 1001;
    expect(() => queue.respond(rec.id, "allow_once")).toThrow(/passed its deadline/);
    expect(queue.get(rec.id).status).toBe("timed_out");
    expect(audit.tail(1)[0]?.kind).toBe("approval.timed_out");
  });
});

describe("Allow Session", () => {
  it("covers later calls of the same agent, tool and scope only, until the session ends", () => {
    const { queue } = open();
    queue.respond(queue.enqueue(write).id, "allow_session");
    const scope = approvalScopeKey("file_write", { path: "/output/r.md", content: "other content" });
    expect(queue.check("a1", "file_write", scope)).toEqual({ allowed: true, via: "allow_session" });
    expect(queue.check("a2", "file_write", scope)).toEqual({ allowed: false });
    expect(queue.check("a1", "file_write", "path:/output/other.md")).toEqual({ allowed: false });
    expect(queue.check("a1", "file_edit", scope)).toEqual({ allowed: false });
    queue.endSession("a1");
    expect(queue.check("a1", "file_write", scope)).toEqual({ allowed: false });
  });
});

describe("Allow Always", () => {
  let queue: Queue;
  let rec: ApprovalRecord;
  let attacker: Database.Database;
  const scope = "path:/output/r.md";

  beforeEach(() => {
    ({ queue } = open(() => clock));
    rec = queue.respond(queue.enqueue(write).id, "allow_always", "dana");
    attacker = new Database(home.config.dbPath);
  });
  afterEach(() => attacker.close());

  it("mints a signed grant tied to the approving audit entry and honours it for any agent", () => {
    const grant = attacker.prepare("SELECT * FROM approval_grants").get() as Record<string, unknown>;
    expect(grant).toMatchObject({
      id: rec.grant_id,
      tool: "file_write",
      scope_key: scope,
      key_id: key.keyId,
    });
    const decided = attacker
      .prepare("SELECT kind, payload FROM audit WHERE seq = ?")
      .get(grant.audit_seq) as {
      kind: string;
      payload: string;
    };
    expect(decided.kind).toBe("approval.decided");
    expect(JSON.parse(decided.payload)).toMatchObject({ grant_id: rec.grant_id, decision: "allow_always" });
    expect(queue.check("a7", "file_write", scope)).toEqual({
      allowed: true,
      via: "allow_always",
      grantId: rec.grant_id,
    });
    expect(queue.check("a7", "file_write", "path:/output/s.md")).toEqual({ allowed: false });
  });

  it("stops honouring the grant once it expires (1 h here)", () => {
    clock += 3600 * 1000 - 1;
    expect(queue.check("a1", "file_write", scope).allowed).toBe(true);
    clock += 1;
    expect(queue.check("a1", "file_write", scope).allowed).toBe(false);
  });

  it("does not honour a grant whose expiry was pushed out in SQLite", () => {
    attacker.prepare("UPDATE approval_grants SET expires_at = expires_at + 86400000").run();
    expect(queue.check("a1", "file_write", scope)).toEqual({ allowed: false });
  });

  it("does not honour a grant widened to another scope or tool in SQLite", () => {
    attacker.prepare("UPDATE approval_grants SET scope_key = 'path:/etc/passwd'").run();
    expect(queue.check("a1", "file_write", "path:/etc/passwd")).toEqual({ allowed: false });
    attacker.prepare("UPDATE approval_grants SET scope_key = ?, tool = 'exec'").run(scope);
    expect(queue.check("a1", "exec", scope)).toEqual({ allowed: false });
  });

  it("does not honour a grant copied under a new id, or signed by another key", () => {
    attacker
      .prepare(
        "INSERT INTO approval_grants SELECT 'grt_copy', tool, 'path:/output/x.md', expires_at, audit_seq, key_id, sig, created_at FROM approval_grants",
      )
      .run();
    expect(queue.check("a1", "file_write", "path:/output/x.md")).toEqual({ allowed: false });
    const other = makeSigner();
    const g = attacker.prepare("SELECT * FROM approval_grants WHERE id = ?").get(rec.grant_id) as Record<
      string,
      never
    >;
    const msg = Buffer.from(
      JSON.stringify([
        "aido.approval.grant.v1",
        "grt_forged",
        "exec",
        "command:rm -rf /",
        g.expires_at,
        g.audit_seq,
        key.keyId,
      ]),
    );
    attacker
      .prepare("INSERT INTO approval_grants VALUES ('grt_forged', 'exec', 'command:rm -rf /', ?, ?, ?, ?, ?)")
      .run(g.expires_at, g.audit_seq, key.keyId, other.sign(msg).toString("base64"), g.created_at);
    expect(queue.check("a1", "exec", "command:rm -rf /")).toEqual({ allowed: false });
  });

  it("does not honour a grant once the audit entry that approved it is gone", () => {
    attacker.prepare("UPDATE audit SET kind = 'approval.requested' WHERE kind = 'approval.decided'").run();
    expect(queue.check("a1", "file_write", scope)).toEqual({ allowed: false });
  });
});
