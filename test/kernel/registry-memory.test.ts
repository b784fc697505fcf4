// The agent registry holds records only while something needs them: a goal's records
// leave memory once none of its agents is live any more (the goal's end, a standalone
// agent's stop), and every answer about them (agent.status, agent.list with stopped
// agents, a late usage report) comes from their rows, the same as before they left.

import { describe, expect, it } from "vitest";
import type { AgentSummary } from "../../src/kernel/registry.js";
import { type Harness, openHarness, useHarnessSuite } from "../agent/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

const lead = {
  name: "lead",
  system_prompt: "You lead the goal.",
  capabilities: ["tool: spawn_agents", "tool: skill_read", "spawn_child: [alpha, beta, gamma]"],
};
const kids = ["alpha", "beta", "gamma"];

/** Script `goals` goals of a lead that fans out to three children. */
function scriptFanOut(goals: number): void {
  const leadTurns = [];
  for (let i = 0; i < goals; i++) {
    leadTurns.push(
      turn.toolUse("spawn_agents", {
        children: kids.map((n) => ({
          manifest: { name: n, capabilities: ["tool: skill_read"] },
          message: n,
        })),
      }),
      turn.text(`goal ${i} done`, { usage: { input_tokens: 11, output_tokens: 4 } }),
    );
  }
  server.script('manifest "lead"', leadTurns);
  for (const n of kids)
    server.script(
      `manifest "${n}"`,
      Array.from({ length: goals }, () =>
        turn.text(`${n} done`, { usage: { input_tokens: 7, output_tokens: 2 } }),
      ),
    );
}

/** Every agent's answer at the moment it stopped (still held then), by agent id. */
function answersAtStop(): Map<string, AgentSummary> {
  const seen = new Map<string, AgentSummary>();
  h.rt.events.subscribe({ types: ["agent.stopped"] }, (e) => {
    if (e.type === "agent.stopped") seen.set(e.agentId, h.rt.agentStatus(e.agentId));
  });
  return seen;
}

describe("agent registry memory", () => {
  it("holds no record of a goal that ended: 5 goals of 4 agents leave nothing behind", async () => {
    h = await openHarness(server);
    scriptFanOut(5);
    for (let i = 0; i < 5; i++) {
      const { goal_id } = h.rt.goals.submit({ goal: `fan out ${i}`, manifest: lead });
      expect((await h.rt.goals.wait(goal_id, 15_000)).state).toBe("succeeded");
      expect(h.rt.listAgents({ goalId: goal_id, includeStopped: true })).toHaveLength(4);
    }
    // On main every record stayed: 20 stopped records, scanned by every admit().
    expect(h.rt.registry.list({ includeStopped: true })).toHaveLength(0);
    expect(h.rt.listAgents({ includeStopped: true })).toHaveLength(20);
  });

  it("answers agent.status and agent.list of a finished goal from its rows, as it did before the drop", async () => {
    h = await openHarness(server);
    scriptFanOut(1);
    const atStop = answersAtStop();
    const { goal_id } = h.rt.goals.submit({ goal: "fan out", manifest: lead });
    expect((await h.rt.goals.wait(goal_id, 15_000)).state).toBe("succeeded");
    expect(atStop.size).toBe(4);
    expect(h.rt.registry.list({ goalId: goal_id, includeStopped: true })).toEqual([]); // dropped
    for (const [id, before] of atStop) expect(h.rt.agentStatus(id)).toEqual(before);
    const listed = h.rt.listAgents({ goalId: goal_id, includeStopped: true });
    // Registration order, as the held records were listed: the lead, then its children.
    expect(listed.map((a) => a.manifest)).toEqual(["lead", ...kids]);
    for (const a of listed) expect(a).toEqual(atStop.get(a.agent_id));
    const root = listed[0]!;
    expect(root.children).toEqual(listed.slice(1).map((a) => a.agent_id));
    expect(root.usage.output_tokens).toBeGreaterThan(4); // its two calls
    expect(listed[1]!.usage).toEqual({ input_tokens: 7, output_tokens: 2 });
    expect(listed[1]!.queue).toMatchObject({ waiting: false, calls: 1 });
    expect(h.rt.listAgents({ goalId: goal_id })).toEqual([]); // none live
    expect(h.rt.listAgents({ includeStopped: true })).toEqual(listed);
  });

  it("counts a usage report that arrives after the drop, as it counted one before", async () => {
    h = await openHarness(server);
    scriptFanOut(1);
    const { goal_id } = h.rt.goals.submit({ goal: "fan out", manifest: lead });
    await h.rt.goals.wait(goal_id, 15_000);
    const alpha = h.rt
      .listAgents({ goalId: goal_id, includeStopped: true })
      .find((a) => a.manifest === "alpha")!;
    // A model call in flight when its agent stopped reports its usage afterwards.
    h.rt.events.emit("usage", goal_id, { agentId: alpha.agent_id, input_tokens: 100, output_tokens: 50 });
    h.rt.events.emit("inference.started", goal_id, { agentId: alpha.agent_id, waitMs: 9 } as never);
    const after = h.rt.agentStatus(alpha.agent_id);
    expect(after.usage).toEqual({ input_tokens: 107, output_tokens: 52 });
    expect(after.queue).toMatchObject({ calls: 2, wait_ms_last: 9 });
  });

  it("answers a dropped standalone agent as a stopped one, and an unknown id as not_found", async () => {
    h = await openHarness(server);
    server.script('manifest "solo"', [turn.text("did it", { usage: { input_tokens: 3, output_tokens: 1 } })]);
    const solo = { name: "solo", system_prompt: "You work alone.", capabilities: ["tool: skill_read"] };
    const spawned = h.rt.spawnAgent(solo);
    const run = await h.rt.spawnAndRun(solo, "do it");
    expect(run.stop_reason).toBe("complete");
    // The spawn_and_run agent is stopped and gone from memory; the other still waits.
    expect(h.rt.registry.get(run.agent_id)).toBeUndefined();
    expect(h.rt.registry.list().map((a) => a.id)).toEqual([spawned.agent_id]);
    const status = h.rt.agentStatus(run.agent_id);
    expect(status).toMatchObject({
      agent_id: run.agent_id,
      manifest: "solo",
      state: "stopped",
      parent_id: null,
      children: [],
      stop_reason: "finished: complete",
      usage: { input_tokens: 3, output_tokens: 1 },
    });
    // Stopping it again answers its summary; running it or calling a tool as it is refused as
    // for any stopped agent.
    expect(h.rt.stopAgent(run.agent_id)).toEqual(status);
    await expect(h.rt.runAgent(run.agent_id, "again")).rejects.toMatchObject({
      code: "not_found",
      message: `agent ${run.agent_id} is stopped`,
    });
    expect(() => h.rt.invokeTool(run.agent_id, "skill_read", { name: "x" })).toThrow(
      `agent ${run.agent_id} is stopped`,
    );
    const stopped = h.rt.stopAgent(spawned.agent_id);
    expect(stopped.state).toBe("stopped");
    expect(h.rt.registry.list({ includeStopped: true })).toEqual([]);
    expect(h.rt.agentStatus(spawned.agent_id)).toEqual(stopped);
    expect(h.rt.listAgents({ includeStopped: true }).map((a) => a.agent_id)).toEqual([
      spawned.agent_id,
      run.agent_id,
    ]);
    for (const call of [() => h.rt.agentStatus("a_none"), () => h.rt.stopAgent("a_none")])
      expect(call).toThrow(/no agent a_none/);
    await expect(h.rt.runAgent("a_none", "hi")).rejects.toMatchObject({ code: "not_found" });
  });

  it("keeps a live goal's stopped children, and after a restart answers only what this process knew", async () => {
    h = await openHarness(server);
    server.script('manifest "lead"', [
      turn.toolUse("spawn_agents", {
        children: [{ manifest: { name: "alpha", capabilities: ["tool: skill_read"] }, message: "a" }],
      }),
      turn.hang(),
    ]);
    server.script('manifest "alpha"', [turn.text("alpha done")]);
    const { goal_id } = h.rt.goals.submit({ goal: "hold", manifest: lead });
    await new Promise<void>((ok) => {
      let calls = 0;
      const off = h.rt.events.subscribe({ goalId: goal_id, types: ["inference.started"] }, () => {
        if (++calls === 3) {
          off();
          ok();
        }
      });
    });
    // The lead waits on its second call: its stopped child is still held, in its children.
    const held = h.rt.registry.list({ goalId: goal_id, includeStopped: true });
    expect(held.map((a) => [a.manifest.name, a.state])).toEqual([
      ["lead", "running"],
      ["alpha", "stopped"],
    ]);
    expect([...held[0]!.children]).toEqual([held[1]!.id]);
    h.rt.goals.cancel(goal_id);
    expect((await h.rt.goals.wait(goal_id, 10_000)).state).toBe("cancelled");
    expect(h.rt.registry.list({ includeStopped: true })).toEqual([]);
    const rt = await h.reopen();
    // As before: a restarted daemon does not answer for agents an earlier process stopped.
    expect(rt.listAgents({ includeStopped: true })).toEqual([]);
    expect(() => rt.agentStatus(held[1]!.id)).toThrow(/no agent/);
  });
});
