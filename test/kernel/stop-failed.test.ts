// A stop that cannot be put on record (the audit refuses it, as a full disk would): the
// agents above and beside the one whose stop failed are stopped all the same (their calls
// aborted, their tokens revoked), and the failed one is stopped by the next stop that
// reaches it, which then lets its goal's records leave memory.

import { describe, expect, it } from "vitest";
import { principalOf } from "../../src/agent/tool-calls.js";
import { GateDenied } from "../../src/gate/invoke.js";
import type { AgentRecord } from "../../src/kernel/registry.js";
import { parseManifestValue } from "../../src/manifest/load.js";
import { type Harness, openHarness, useHarnessSuite } from "../agent/harness.js";
import type { ProviderServer } from "../support/provider-server.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

const lead = {
  name: "lead",
  system_prompt: "You lead.",
  capabilities: ["tool: spawn_agent", "tool: skill_read", "spawn_child: [helper, helper2]"],
};
const child = (name: string) =>
  parseManifestValue(
    { name, system_prompt: `You are ${name}.`, capabilities: ["tool: skill_read"] },
    `${name} manifest`,
  );

/** The gate's answer to a call as `agent` (its token is what is judged). */
async function gateCode(agent: AgentRecord): Promise<string> {
  const r = await h.rt.gate
    .invoke(principalOf(h.rt.env, agent), { name: "skill_read", input: { name: "write-report" } })
    .catch((e) => e);
  return r instanceof GateDenied ? r.code : "allowed";
}

/** A lead with two children; the first child's agent.stopped entry cannot be written. */
async function leadWithFailingChild() {
  h = await openHarness(server);
  const s = h.rt.spawnAgent(lead);
  const leadRec = h.rt.registry.require(s.agent_id);
  const failing = h.rt.spawner.spawn({ goalId: s.goal_id, manifest: child("helper"), parent: leadRec });
  const sibling = h.rt.spawner.spawn({ goalId: s.goal_id, manifest: child("helper2"), parent: leadRec });
  h.rt.db.exec(
    `CREATE TRIGGER refuse_stop BEFORE INSERT ON audit
       WHEN NEW.kind = 'agent.stopped' AND NEW.agent_id = '${failing.id}'
     BEGIN SELECT RAISE(ABORT, 'disk full'); END`,
  );
  return { goalId: s.goal_id, leadRec, failing, sibling };
}

describe("a stop that cannot be recorded", () => {
  it("does not leave the parent or a sibling running with a valid token when one child's stop fails", async () => {
    const { leadRec, failing, sibling } = await leadWithFailingChild();
    expect(await gateCode(leadRec)).toBe("allowed");
    expect(() => h.rt.stopAgent(leadRec.id, "operator said stop")).toThrow(/disk full/);
    // The lead's stop is not on record either (its children's are part of it): it stays
    // "stopping", yet its calls are aborted and its token refused.
    expect(leadRec.abort.signal.aborted).toBe(true);
    expect(await gateCode(leadRec)).toBe("token_invalid");
    expect(leadRec.state).toBe("stopping");
    expect(sibling.state).toBe("stopped");
    expect(await gateCode(sibling)).toBe("token_invalid");
    // The child whose stop failed: not on record, yet it can act no more.
    expect(failing.state).toBe("stopping");
    expect(failing.abort.signal.aborted).toBe(true);
    expect(await gateCode(failing)).toBe("token_invalid");
    const stopped = h.rt.audit.query({ kind: "agent.stopped" }).map((e) => e.agent_id);
    expect(stopped).toEqual([sibling.id]);
    expect(h.rt.audit.verify().ok).toBe(true);
    h.rt.db.exec("DROP TRIGGER refuse_stop");
  });

  it("stops the failed child at the next stop and lets the goal's records go", async () => {
    const { goalId, leadRec, failing } = await leadWithFailingChild();
    expect(() => h.rt.stopAgent(leadRec.id, "operator said stop")).toThrow(/disk full/);
    // Still failing: a second stop reaches it again and reports it again.
    expect(() => h.rt.stopAgent(leadRec.id, "again")).toThrow(/disk full/);
    expect(h.rt.registry.list({ goalId, includeStopped: true })).toHaveLength(3);
    h.rt.db.exec("DROP TRIGGER refuse_stop");
    // The disk has room again: agent.stop of the lead (stopped already) finishes the job.
    expect(h.rt.stopAgent(leadRec.id, "again").state).toBe("stopped");
    expect(h.rt.agentStatus(failing.id).state).toBe("stopped");
    expect(h.rt.audit.query({ kind: "agent.stopped" }).map((e) => e.agent_id)).toContain(failing.id);
    // On main the child stayed "stopping" for the life of the process: the goal's records with it.
    expect(h.rt.registry.list({ goalId, includeStopped: true })).toHaveLength(0);
    expect(h.rt.listAgents({ goalId, includeStopped: true }).map((a) => a.state)).toEqual([
      "stopped",
      "stopped",
      "stopped",
    ]);
  });

  it("stops an agent whose own stop failed when it is stopped again", async () => {
    h = await openHarness(server);
    const s = h.rt.spawnAgent(lead);
    h.rt.db.exec(
      `CREATE TRIGGER refuse_stop BEFORE INSERT ON audit WHEN NEW.kind = 'agent.stopped'
       BEGIN SELECT RAISE(ABORT, 'disk full'); END`,
    );
    expect(() => h.rt.stopAgent(s.agent_id, "operator said stop")).toThrow(/disk full/);
    expect(h.rt.agentStatus(s.agent_id).state).toBe("stopping");
    h.rt.db.exec("DROP TRIGGER refuse_stop");
    // On main a second stop returned at once ("stopping"): never on record, never released.
    expect(h.rt.stopAgent(s.agent_id, "again").state).toBe("stopped");
    expect(h.rt.registry.get(s.agent_id)).toBeUndefined();
    expect(h.rt.audit.query({ kind: "agent.stopped" }).map((e) => e.agent_id)).toEqual([s.agent_id]);
  });

  it("records the reason the agent was first stopped for when a later stop records it", async () => {
    const { leadRec, failing } = await leadWithFailingChild();
    const announced = new Map<string, string>();
    h.rt.events.subscribe({ types: ["agent.stopped"] }, (e) => {
      if (e.type === "agent.stopped") announced.set(e.agentId, e.reason);
    });
    expect(() => h.rt.stopAgent(leadRec.id, "operator said stop")).toThrow(/disk full/);
    h.rt.db.exec("DROP TRIGGER refuse_stop");
    // The goal's end records the stop: the agents were stopped by the operator, and their
    // runs were aborted saying so; the retry is noted beside the reason.
    h.rt.registry.stopGoal(leadRec.goalId, "goal finished");
    const first = {
      [leadRec.id]: "operator said stop",
      [failing.id]: `parent ${leadRec.id} stopped: operator said stop`,
    };
    for (const [id, reason] of Object.entries(first)) {
      // On main the row, the audit entry and the event said "goal finished" (the retry's reason).
      expect(h.rt.agentStatus(id).stop_reason).toBe(reason);
      expect(announced.get(id)).toBe(reason);
      const [entry, ...more] = h.rt.audit.query({ kind: "agent.stopped", agent_id: id });
      expect(more).toEqual([]);
      expect(entry?.payload).toEqual({ reason, recorded_by: expect.stringContaining("goal finished") });
    }
    expect(String(leadRec.abort.signal.reason)).toMatch(/operator said stop/);
    expect(String(failing.abort.signal.reason)).toMatch(/operator said stop/);
  });

  it("still closes the runtime when a stop at close cannot be recorded, and reports it", async () => {
    h = await openHarness(server);
    const s = h.rt.spawnAgent(lead);
    const rec = h.rt.registry.require(s.agent_id);
    h.rt.db.exec(
      `CREATE TRIGGER refuse_stop BEFORE INSERT ON audit WHEN NEW.kind = 'agent.stopped'
       BEGIN SELECT RAISE(ABORT, 'disk full'); END`,
    );
    const { rt, home } = h;
    h = undefined as unknown as Harness; // closed here, not by afterEach
    await expect(rt.close()).rejects.toThrow(/disk full/);
    home.cleanup();
    // On main the close ended at the failed stop: the database (and the rest) left open.
    expect(rt.db.open).toBe(false);
    expect(rec.abort.signal.aborted).toBe(true);
  });
});
