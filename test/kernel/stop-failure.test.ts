// An agent's stop that cannot be recorded (the audit refuses one of its entries, as a full
// disk would), attacked the way it fails: through a child's stop, with a call waiting for a
// human, and retried. Real tokens, real gate, real SQLite; no container is needed.

import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { principalOf } from "../../src/agent/tool-calls.js";
import { GateDenied } from "../../src/gate/invoke.js";
import type { AgentRecord } from "../../src/kernel/registry.js";
import { Runtime } from "../../src/kernel/runtime.js";
import { parseManifestValue } from "../../src/manifest/load.js";
import { goalOnlyProject } from "../../src/security/approval-project.js";
import { approvalScopeOf } from "../../src/security/approval-scope.js";
import { type Harness, noContainers, openHarness } from "../agent/harness.js";
import type { ProviderServer } from "../support/provider-server.js";
import { useProviderServer } from "../support/provider-suite.js";

let server: ProviderServer;
let h: Harness;

useProviderServer({
  started: (s) => {
    server = s;
  },
  afterEach: () => {
    // The audit writes again: the runtime's close records the stops that failed.
    h?.rt.db.exec("DROP TRIGGER IF EXISTS refuse_stop");
    return h?.close();
  },
});

const lead = {
  name: "lead",
  system_prompt: "You lead.",
  capabilities: ["tool: skill_read", "spawn_child: [helper]"],
};

/** The audit refuses agent.stopped, for `agentId` only when given. */
function refuseStopped(agentId?: string): void {
  const only = agentId === undefined ? "" : ` AND NEW.agent_id = '${agentId}'`;
  h.rt.db.exec(
    `CREATE TRIGGER refuse_stop BEFORE INSERT ON audit WHEN NEW.kind = 'agent.stopped'${only}
     BEGIN SELECT RAISE(ABORT, 'disk full'); END`,
  );
}

async function skillRead(agent: AgentRecord): Promise<unknown> {
  return h.rt.gate
    .invoke(principalOf(h.rt.env, agent), { name: "skill_read", input: { name: "write-report" } })
    .catch((e) => e);
}

function spawnHelper(parent: AgentRecord): AgentRecord {
  const manifest = parseManifestValue(
    { name: "helper", system_prompt: "You help.", capabilities: ["tool: skill_read"] },
    "test",
  );
  return h.rt.spawner.spawn({ goalId: parent.goalId, manifest, parent, defaultShare: 1000 });
}

describe("a stop that cannot be recorded", () => {
  it("still revokes the parent's token and aborts it when a child's stop fails", async () => {
    h = await openHarness(server);
    const parent = h.rt.registry.require(h.rt.spawnAgent(lead).agent_id);
    const child = spawnHelper(parent);
    expect(await skillRead(parent)).not.toBeInstanceOf(Error);
    refuseStopped(child.id);
    expect(() => h.rt.stopAgent(parent.id, "operator said stop")).toThrow(/disk full/);
    // The operator asked the parent to stop: it may not keep acting, in this process or
    // through another connection reading the database.
    expect(parent.abort.signal.aborted).toBe(true);
    const denied = await skillRead(parent);
    expect(denied).toBeInstanceOf(GateDenied);
    expect((denied as GateDenied).code).toBe("token_invalid");
    const revoked = h.rt.db.prepare("SELECT token_id FROM capability_revocations").pluck().all();
    expect(revoked).toEqual(expect.arrayContaining([parent.token.id, child.token.id]));
    expect(h.rt.audit.verify().ok).toBe(true);
  });

  it("still refuses the agent's token in this process when the database cannot record its revocation", async () => {
    h = await openHarness(server);
    const agent = h.rt.registry.require(h.rt.spawnAgent(lead).agent_id);
    h.rt.db.exec(`CREATE TRIGGER refuse_revocation BEFORE INSERT ON capability_revocations
                  BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    expect(() => h.rt.stopAgent(agent.id, "operator said stop")).toThrow(/disk full/);
    const denied = await skillRead(agent);
    expect(denied).toBeInstanceOf(GateDenied);
    expect((denied as GateDenied).code).toBe("token_invalid");
    h.rt.db.exec("DROP TRIGGER refuse_revocation");
  });

  it("stops a parent's other children when one child's stop fails", async () => {
    h = await openHarness(server);
    const parent = h.rt.registry.require(h.rt.spawnAgent(lead).agent_id);
    const first = spawnHelper(parent);
    const second = spawnHelper(parent);
    refuseStopped(first.id);
    expect(() => h.rt.stopAgent(parent.id, "operator said stop")).toThrow(/disk full/);
    expect(second.abort.signal.aborted).toBe(true);
    expect(second.state).toBe("stopped");
    expect(h.rt.audit.query({ kind: "agent.stopped" }).map((e) => e.agent_id)).toEqual([second.id]);
  });

  it("stops a goal's other agents when one agent's stop fails", async () => {
    h = await openHarness(server);
    const a = h.rt.registry.require(h.rt.spawnAgent(lead).agent_id);
    // A second root agent of the same goal, spending from the first one's account.
    const b = h.rt.spawner.spawn({
      goalId: a.goalId,
      manifest: parseManifestValue({ ...lead, name: "second" }, "test"),
      parent: null,
      account: a.budgetAccount,
    });
    refuseStopped(a.id);
    expect(() => h.rt.registry.stopGoal(a.goalId, "goal cancelled")).toThrow(/disk full/);
    expect(b.abort.signal.aborted).toBe(true);
    expect(b.state).toBe("stopped");
    const denied = await skillRead(b);
    expect(denied).toBeInstanceOf(GateDenied);
    expect((denied as GateDenied).code).toBe("token_invalid");
  });

  it("can be retried: a second stop once the audit writes again is recorded whole", async () => {
    h = await openHarness(server);
    const parent = h.rt.registry.require(h.rt.spawnAgent(lead).agent_id);
    const child = spawnHelper(parent);
    refuseStopped();
    expect(() => h.rt.stopAgent(parent.id, "operator said stop")).toThrow(/disk full/);
    h.rt.db.exec("DROP TRIGGER refuse_stop");
    h.rt.stopAgent(parent.id, "operator said stop again");
    for (const a of [child, parent]) {
      expect(a.state).toBe("stopped");
      const row = h.rt.db.prepare("SELECT state FROM agents WHERE id = ?").pluck().get(a.id);
      expect(row).toBe("stopped");
      expect(h.rt.budget.get(a.budgetAccount).closed).toBe(1);
    }
    expect(
      h.rt.audit
        .query({ kind: "agent.stopped" })
        .map((e) => e.agent_id)
        .sort(),
    ).toEqual([child.id, parent.id].sort());
    expect(h.rt.audit.verify().ok).toBe(true);
  });

  it("does not keep the runtime from closing, and is recorded at the next start", async () => {
    h = await openHarness(server);
    const agent = h.rt.registry.require(h.rt.spawnAgent(lead).agent_id);
    refuseStopped();
    expect(() => h.rt.stopAgent(agent.id, "operator said stop")).toThrow(/disk full/);
    // Closing stops it again, which fails again: the rest closes all the same, then it says so.
    await expect(h.rt.close()).rejects.toThrow(/disk full/);
    expect(h.rt.db.open).toBe(false);
    const other = new Database(h.home.config.dbPath);
    other.exec("DROP TRIGGER refuse_stop");
    other.close();
    const closed = h;
    const rt = await Runtime.open(closed.home.config, { backend: noContainers });
    h = { ...closed, rt, close: () => rt.close().finally(() => closed.home.cleanup()) } as Harness;
    expect(rt.db.prepare("SELECT state FROM agents WHERE id = ?").pluck().get(agent.id)).toBe("stopped");
    expect(rt.audit.query({ kind: "agent.stopped" }).map((e) => e.agent_id)).toEqual([agent.id]);
    expect(rt.audit.verify().ok).toBe(true);
  });

  it("wakes no waiter with an outcome that was rolled back: a request is pending only while its call waits", async () => {
    h = await openHarness(server);
    const agent = h.rt.registry.require(h.rt.spawnAgent(lead).agent_id);
    // A call waiting for a human whose request is tied to no signal of the agent's.
    const scope = approvalScopeOf("file_write", {}, [{ kind: "file_write", path: "/output/r.md" }]);
    const decided: string[] = [];
    h.rt.events.subscribe({}, (e) => {
      if (e.type === "approval.decided") decided.push(e.approvalId);
    });
    const outcome = h.rt.approvals.authorize({
      goalId: agent.goalId,
      agentId: agent.id,
      identity: agent.identity,
      project: goalOnlyProject(agent.goalId),
      tool: "file_write",
      input: { path: "/output/r.md", content: "x" },
      summary: "write r.md",
      scope,
      askedBy: { source: "tool_default", text: "file_write asks by default" },
    });
    const [request] = h.rt.approvals.list({ status: "pending" });
    refuseStopped();
    expect(() => h.rt.stopAgent(agent.id, "operator said stop")).toThrow(/disk full/);
    const o = await outcome;
    await new Promise((ok) => setImmediate(ok));
    // What the waiter was told is what the database holds, and was announced once.
    expect(o.decision).toBe("expired");
    expect(h.rt.approvals.get(request!.id).status).toBe("expired");
    expect(h.rt.audit.query({ kind: "approval.expired" })).toHaveLength(1);
    expect(decided).toEqual([request!.id]);
    expect(h.rt.audit.verify().ok).toBe(true);
  });
});
