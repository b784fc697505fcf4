// agent.status and agent.list over the socket about agents whose records left the daemon's
// memory with their goal (kernel/registry.ts): the same answers as while they were held,
// and -32003 as before for what the daemon does not know.

import { describe, expect, it } from "vitest";
import { turn } from "../support/provider-server.js";
import { manifest, rpcError, useDaemonPerTest } from "./fixture.js";

const suite = useDaemonPerTest();

describe("agents of a goal that ended", () => {
  it("are answered over the socket as they were before their records left memory", async () => {
    suite.server.script('manifest "lead"', [
      turn.toolUse("spawn_agents", {
        children: [
          { manifest: { name: "researcher", capabilities: ["tool: skill_read"] }, message: "a" },
          { manifest: { name: "writer", capabilities: ["tool: skill_read"] }, message: "b" },
        ],
      }),
      turn.hang(),
    ]);
    suite.server.script('manifest "researcher"', [
      turn.text("researcher done", { usage: { input_tokens: 9, output_tokens: 3 } }),
    ]);
    suite.server.script('manifest "writer"', [
      turn.text("writer done", { usage: { input_tokens: 8, output_tokens: 2 } }),
    ]);
    const fx = await suite.start();
    const c = await fx.client();
    const lead = manifest("lead", {
      capabilities: ["tool: spawn_agents", "tool: skill_read", "spawn_child: [researcher, writer]"],
    });
    const { goal_id } = await c.call("goal.submit", { goal: "fan out", manifest: lead });
    // The lead waits on its second call once both children stopped: they are still held.
    let before = (await c.call("agent.list", { goal_id, include_stopped: true })).agents;
    for (let i = 0; i < 200 && before.filter((a) => a.state === "stopped").length < 2; i++) {
      await new Promise((ok) => setTimeout(ok, 25));
      before = (await c.call("agent.list", { goal_id, include_stopped: true })).agents;
    }
    const kids = before.filter((a) => a.depth === 1);
    expect(kids.map((a) => [a.manifest, a.state])).toEqual([
      ["researcher", "stopped"],
      ["writer", "stopped"],
    ]);
    const kidStatus = await Promise.all(kids.map((k) => c.call("agent.status", { agent_id: k.agent_id })));
    expect(kidStatus).toEqual(kids);
    await c.call("goal.cancel", { goal_id });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 10_000 })).state).toBe("cancelled");

    const after = (await c.call("agent.list", { goal_id, include_stopped: true })).agents;
    expect(after.map((a) => a.agent_id)).toEqual(before.map((a) => a.agent_id));
    expect(after.filter((a) => a.depth === 1)).toEqual(kids);
    for (const k of kids) expect(await c.call("agent.status", { agent_id: k.agent_id })).toEqual(k);
    const root = after[0]!;
    expect(root).toMatchObject({ manifest: "lead", state: "stopped", stop_reason: "goal cancelled" });
    expect(root.children).toEqual(kids.map((k) => k.agent_id));
    expect(await c.call("agent.status", { agent_id: root.agent_id })).toEqual(root);
    expect((await c.call("agent.list", { include_stopped: true })).agents).toEqual(after);
    expect((await c.call("agent.list", {})).agents).toEqual([]);
    // A second stop answers the summary; a run or a tool call is refused as for any stopped agent.
    expect(await c.call("agent.stop", { agent_id: kids[0]!.agent_id })).toEqual(kids[0]);
    for (const [m, p] of [
      ["agent.run", { agent_id: kids[0]!.agent_id, message: "again" }],
      ["tool.invoke", { agent_id: kids[0]!.agent_id, tool: "skill_read", input: { name: "write-report" } }],
      ["agent.status", { agent_id: "a_none" }],
      ["agent.stop", { agent_id: "a_none" }],
    ] as const) {
      expect((await rpcError(c.call(m, p))).rpcCode, m).toBe(-32003);
    }
  });
});
