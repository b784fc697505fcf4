// `aido mcp serve`'s approvals bridge routes a request to the call whose request id it names
// and to no other. A request that names none (an agent's own turn, a process a call left
// running) is no call's of the session: left to `aido approvals`. Before, a "daemon that names
// no id" fallback gave it to a call of the same tool that had not yet learned its id, picked
// by the request's stored input, which is blanked since requests hide secrets: a call carrying
// one matched nothing and a call beside it got the question, whose cancel then denied it.
// Against a real daemon: the session's agent runs a turn of its own (agent.run, which names
// no request id) while a call of the bridge waits, its id not yet known.

import { describe, expect, it } from "vitest";
import { type ApprovalAsk, ApprovalsBridge } from "../../src/mcp/approvals-bridge.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";

const suite = useDaemonPerTest();

describe("the MCP approvals bridge", () => {
  it("routes no request that names no request id to a call of the session (an agent's own turn asks)", async () => {
    const fx = await suite.start();
    const apiKey = fx.home.config.providers.anthropic.apiKey as string;
    suite.server.script('manifest "own-turn"', [
      turn.toolUse("memory_store", { content: `key ${apiKey}`, category: "fact" }),
      turn.text("stored"),
    ]);
    const c = await fx.client();
    const a = await c.call("agent.spawn", {
      manifest: manifest("own-turn", {
        lifecycle: "persistent",
        capabilities: ["tool: memory_store"],
        approval_required: ["memory_store"],
      }),
    });
    const agentId = a.agent_id as string;
    const logs: string[] = [];
    const bridge = await ApprovalsBridge.start(
      fx.home.config.socketPath,
      agentId,
      (m) => logs.push(m),
      async (id) => ({
        input: (await c.call("approval.list", {})).approvals.find((r) => r.id === id)?.input,
        code: [],
      }),
    );
    const asked: ApprovalAsk[] = [];
    try {
      // A call of the session that has not learned its id yet (its daemon call just sent).
      const pendingId = await bridge.during(
        (ask) => asked.push(ask),
        async () => {
          const run = c.call("agent.run", { agent_id: agentId, message: "store it" });
          run.catch(() => {});
          for (let i = 0; i < 300; i++) {
            const [p] = (await c.call("approval.list", {})).approvals;
            if (p) {
              // The request names no id, and is the agent's own: it carries the key blanked.
              expect(p.request_id).toBeNull();
              expect(p.carries_secrets).toEqual(["the API key of provider anthropic"]);
              // The event has reached the bridge's stream by the time a second list answers.
              await c.call("approval.list", {});
              await new Promise((r) => setTimeout(r, 200));
              return p.id;
            }
            await new Promise((r) => setTimeout(r, 50));
          }
          throw new Error("no approval request appeared");
        },
      );
      expect(asked).toEqual([]);
      // Left to `aido approvals`: answered there, the turn goes on.
      await c.call("approval.respond", { id: pendingId, decision: "deny" });
    } finally {
      bridge.close();
      await c.call("agent.stop", { agent_id: agentId }).catch(() => {});
    }
    expect(logs).toEqual([]);
  });
});
