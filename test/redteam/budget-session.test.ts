// Red team: the budget of an MCP session against the goals it submits (kernel/session-budget.ts).
// - Submits fired at once race for the last of the session's budget: each goal's share is
//   carved in the ledger's transaction that reads what is left, so no two take the same
//   tokens; the ones the session cannot cover are refused (-32002 budget_exceeded), audited.
// - A daemon killed with a session's goal still queued: the session's agent does not come
//   back (on-demand), so its account closes at recovery and the goal's share with it. The
//   goal must not start on a share of a session that is gone (nor on a root account of its
//   own, which would spend limits.goal_max_tokens beside what the session was charged): it
//   fails, naming the session. The message named no session before.
// agentd as a real process, kill -9; the ledger read from its database afterwards.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AidoClient, type AidoRpcError } from "../../src/client/client.js";
import { manifest } from "../daemon/fixture.js";
import { type DaemonChild, killChildren, startDaemonChild, until } from "../daemon/process.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let home: TempHome | undefined;
const clients: AidoClient[] = [];

beforeAll(async () => {
  server = await startProviderServer();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  killChildren();
  home?.cleanup();
  home = undefined;
  server.reset();
});
afterAll(async () => {
  await server.close();
});

/** A daemon that runs one goal at a time, and a client of it. */
async function daemon(): Promise<{ h: TempHome; c: AidoClient; d: DaemonChild }> {
  home = makeTempHome();
  writeFileSync(join(home.dir, "config.yaml"), "limits:\n  max_concurrent_goals: 1\n");
  const d = await startDaemonChild(home, server);
  return { h: home, c: await connect(home), d };
}

async function connect(h: TempHome): Promise<AidoClient> {
  const c = await AidoClient.connect(h.config.socketPath);
  clients.push(c);
  return c;
}

/** A session allowed 100000 tokens in all. */
async function openSession(c: AidoClient): Promise<string> {
  const { session_id } = await c.call("session.open", {
    client: "budget red team",
    manifest: { name: "small-session", system_prompt: "An MCP session.", budget: { max_tokens: 100_000 } },
  });
  return session_id;
}

const asking = (name: string, tokens: number) => manifest(name, { budget: { max_tokens: tokens } });

describe("an MCP session's budget", () => {
  it("covers only what it has when six submits race for it", async () => {
    const { h, c } = await daemon();
    server.script('manifest "racer', [turn.hang()]);
    const sessionId = await openSession(c);
    // Six goals of 40000 at once, each on its own connection: 100000 covers two.
    const conns = await Promise.all([0, 1, 2, 3, 4, 5].map(() => connect(h)));
    const outcomes = await Promise.all(
      conns.map((conn, i) =>
        conn
          .call("goal.submit", {
            goal: `race ${i}`,
            manifest: asking(`racer${i}`, 40_000),
            session_id: sessionId,
          })
          .then(
            (r) => ({ goal_id: r.goal_id }),
            (e: AidoRpcError) => ({ code: e.rpcCode, message: e.message }),
          ),
      ),
    );
    const accepted = outcomes.filter((o) => "goal_id" in o);
    const refused = outcomes.filter((o) => "code" in o);
    expect(accepted, JSON.stringify(outcomes)).toHaveLength(2);
    expect(refused.map((o) => o.code)).toEqual([-32002, -32002, -32002, -32002]);
    for (const r of refused) expect(r.message).toContain(`MCP session ${sessionId} cannot cover this goal`);
    const submitted = (await c.call("audit.query", { kind: "goal.submitted", limit: 100 })).entries;
    const shares = submitted.map((e) => (e.payload as { session_share?: number }).session_share);
    expect(shares).toEqual([40_000, 40_000]);
    const audited = (await c.call("audit.query", { kind: "goal.refused", limit: 100 })).entries;
    expect(audited.map((e) => (e.payload as { session_id?: string }).session_id)).toEqual(
      Array(4).fill(sessionId),
    );
  }, 120_000);

  it("keeps a goal's children inside the goal's share: a child asking more is refused", async () => {
    const { h, c } = await daemon();
    const spawner = server.script('manifest "spawner"', [
      turn.toolUse("spawn_agent", {
        manifest: { name: "researcher", system_prompt: "kid here", budget: { max_tokens: 60_000 } },
        message: "spend it",
      }),
      turn.text("refused, as it should be"),
    ]);
    server.script("kid here", [turn.text("spent")]);
    const sessionId = await openSession(c);
    const { goal_id } = await c.call("goal.submit", {
      goal: "spawn a big child",
      manifest: manifest("spawner", {
        capabilities: ["tool: spawn_agent", "spawn_child: [researcher]"],
      }),
      session_id: sessionId,
    });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 60_000 });
    expect(end.state, end.error).toBe("succeeded");
    // It asked no budget: its share is half of what the session had (50000), and the child of
    // 60000 does not fit in it (before, the goal had limits.goal_max_tokens of its own).
    expect(spawner.requests).toHaveLength(2);
    expect(JSON.stringify(spawner.requests[1])).toContain("budget_exceeded");
    expect(server.requestsMatching("kid here")).toHaveLength(0);
    // What the goal spent is the session's: charged through the share to the session's account.
    const db = new Database(h.config.dbPath, { readonly: true });
    try {
      const hold = db
        .prepare("SELECT parent_id, total_spent, closed FROM budget_accounts WHERE id = ?")
        .get(`hold:${goal_id}`) as { parent_id: string; total_spent: number; closed: number };
      const used = end.usage.input_tokens + end.usage.output_tokens;
      expect(used).toBeGreaterThan(0);
      expect(hold).toMatchObject({ total_spent: used, closed: 1 });
      const session = db
        .prepare("SELECT total_spent FROM budget_accounts WHERE id = ?")
        .get(hold.parent_id) as { total_spent: number };
      expect(session.total_spent).toBe(used);
    } finally {
      db.close();
    }
  }, 180_000);

  it("ends the goal it left waiting for an approval, the question closed and the share back", async () => {
    const { h, c } = await daemon();
    const writer = server.script('manifest "writer"', [
      turn.toolUse("file_write", { path: "/workspace/out.md", content: "x" }),
      turn.text("wrote"),
    ]);
    const sessionId = await openSession(c);
    const { goal_id } = await c.call("goal.submit", {
      goal: "write a file",
      manifest: manifest("writer", {
        capabilities: ["tool: file_write", "file_write: /workspace/**"],
        approval_required: ["file_write"],
        budget: { max_tokens: 40_000 },
      }),
      session_id: sessionId,
    });
    const pending = await until(async () => {
      const { approvals } = await c.call("approval.list", {});
      return approvals.find((a) => a.goal_id === goal_id && a.status === "pending");
    }, 60_000);
    await c.call("session.close", { session_id: sessionId });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    expect(end.state, end.error).toBe("failed");
    expect(end.error).toContain(`the MCP session ${sessionId} that submitted it ended`);
    // The question is closed: a late "allow" writes nothing and the goal asks no more.
    const { approvals } = await c.call("approval.list", { status: "all" });
    expect(approvals.find((a) => a.id === pending.id)?.status).not.toBe("pending");
    expect(writer.requests).toHaveLength(1);
    const db = new Database(h.config.dbPath, { readonly: true });
    try {
      const open = db
        .prepare("SELECT id FROM budget_accounts WHERE id IN (?, ?) AND closed = 0")
        .all(`hold:${goal_id}`, `goal:${goal_id}`);
      expect(open).toEqual([]);
    } finally {
      db.close();
    }
  }, 180_000);

  it("gives a goal naming no budget a share of limits.goal_max_tokens when that is below 4096", async () => {
    home = makeTempHome();
    writeFileSync(join(home.dir, "config.yaml"), "limits:\n  goal_max_tokens: 2000\n");
    await startDaemonChild(home, server);
    const c = await connect(home);
    server.script('manifest "small-goal"', [turn.text("small done")]);
    const sessionId = await openSession(c);
    // Every such goal was refused: its share (at most 2000) never reached the 4096 floor.
    const submitted = await c
      .call("goal.submit", { goal: "a small goal", manifest: manifest("small-goal"), session_id: sessionId })
      .then(
        (r) => r.goal_id,
        (e: AidoRpcError) => e.message,
      );
    expect(submitted, "a session goal naming no budget was refused").toMatch(/^g_/);
    const entry = (await c.call("audit.query", { goal_id: submitted, kind: "goal.submitted" })).entries[0];
    expect((entry?.payload as { session_share?: number } | undefined)?.session_share).toBe(2000);
  }, 120_000);

  it("refuses, audited, a goal submitted under its id after it ended", async () => {
    const { c } = await daemon();
    const sessionId = await openSession(c);
    await c.call("session.close", { session_id: sessionId });
    // A client that kept the ended session's id submits under it: refused, not found, and audited.
    const err = (await c.call("goal.submit", { goal: "spend a gone session", session_id: sessionId }).then(
      () => undefined,
      (e: AidoRpcError) => e,
    )) as AidoRpcError | undefined;
    expect(err?.rpcCode, "a submit under an ended session's id was accepted").toBe(-32003);
    expect(err?.message).toContain(`session_id: no open session ${sessionId}`);
    const refused = (await c.call("audit.query", { kind: "goal.refused", limit: 10 })).entries;
    expect(refused.map((e) => e.payload)).toEqual([
      expect.objectContaining({ field: "session_id", session_id: sessionId, reason: err?.message }),
    ]);
    expect(server.requestsMatching("spend a gone session")).toHaveLength(0);
  }, 120_000);

  it("does not let a goal it left queued start after the daemon was killed", async () => {
    const { h, c, d: daemonOne } = await daemon();
    const blocker = server.script('manifest "blocker"', [turn.hang()]);
    server.script('manifest "queued"', [turn.text("queued done")]);
    const sessionId = await openSession(c);
    // The user's goal takes the only slot; the session's waits behind it.
    const first = await c.call("goal.submit", { goal: "hold the slot", manifest: manifest("blocker") });
    await until(() => blocker.requests.length === 1 || undefined, 30_000);
    const { goal_id } = await c.call("goal.submit", {
      goal: "wait in the queue",
      manifest: asking("queued", 40_000),
      session_id: sessionId,
    });
    expect((await c.call("goal.status", { goal_id })).state).toBe("queued");
    daemonOne.child.kill("SIGKILL");
    await daemonOne.exited;

    await startDaemonChild(h, server);
    const c2 = await connect(h);
    expect((await c2.call("goal.wait", { goal_id: first.goal_id, timeout_ms: 30_000 })).state).toBe("failed");
    const end = await c2.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    expect(end.state, end.error).toBe("failed");
    expect(end.error).toContain(`the MCP session ${sessionId} that submitted it ended before it started`);
    expect(server.requestsMatching('manifest "queued"')).toHaveLength(0);
    // The ledger: the share went back with the session's account, and the goal never had
    // an account of its own (no second budget beside its share).
    const db = new Database(h.config.dbPath, { readonly: true });
    try {
      const accounts = db
        .prepare("SELECT id, closed FROM budget_accounts WHERE id IN (?, ?)")
        .all(`hold:${goal_id}`, `goal:${goal_id}`);
      expect(accounts).toEqual([{ id: `hold:${goal_id}`, closed: 1 }]);
    } finally {
      db.close();
    }
  }, 180_000);
});
