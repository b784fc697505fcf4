// A tool call held by the fence (cluster/fence.ts: allowed, held in the gate before
// tool.invoked) whose goal is then stopped here (as the look stops a goal another node took):
// the call does not run, and the audit log says so as it says of every call that does not run
// (tool.denied, stage hold). Before, the hold's rejection went past the gate unaudited: the log
// held the call's approval or nothing, never that it was refused.
// A real Runtime (scripted provider) and a real redis-server, the node in this process; the
// fence falls because that Redis stops.

import { describe, expect, it } from "vitest";
import { ClusterNode } from "../../src/cluster/node.js";
import type { Harness } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import { latch, type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { openNodeHarness } from "./support/node-harness.js";

const NODE = "n-held-call";
let server: ProviderServer;
withProvider((p) => ({ server } = p));

describe("cluster mode: a tool call held by the fence whose goal is stopped", () => {
  it("does not run, and is audited as refused at the hold", async () => {
    const redis = await startRedis();
    let node: ClusterNode | undefined;
    const h: Harness = await openNodeHarness(server, { redisUrl: redis.url, nodeId: NODE, node: () => node });
    let down = false;
    try {
      node = await ClusterNode.start(h.home.config, h.rt, () => {});
      const answer = latch();
      server.script(forGoal("held-call"), [
        turn.toolUse("snapshot_list", {}, { until: answer.promise }),
        turn.text("not asked: the goal was stopped"),
      ]);
      const { goal_id } = await node.goals.submit({
        goal: "run held-call",
        manifest: `${manifest()}capabilities:\n  - "tool: snapshot_list"\n`,
      });
      await until(
        () => (server.requestsMatching(forGoal("held-call")).length > 0 ? true : undefined),
        20_000,
      );
      // The node is cut off from Redis; its fence falls while the model call is under way.
      await redis.stop();
      down = true;
      await until(() => (node?.fenceStatus().fenced ? true : undefined), 10_000);
      // The answer asks for a tool call: allowed, it waits in the gate.
      answer.open();
      const held = () => h.rt.audit.query({ goal_id }).filter((e) => e.kind.startsWith("tool."));
      await new Promise((r) => setTimeout(r, 1_000));
      expect(held()).toEqual([]);
      // The goal is stopped here (as a look stops a goal another node took).
      h.rt.goals.fail(goal_id, "another node took the goal");
      const entries = await until(() => (held().length > 0 ? held() : undefined), 10_000);
      expect(entries.map((e) => [e.kind, e.payload])).toEqual([
        ["tool.denied", expect.objectContaining({ tool: "snapshot_list", stage: "hold", code: "cancelled" })],
      ]);
      expect(server.requestsMatching(forGoal("held-call"))).toHaveLength(1);
    } finally {
      // Redis back: the node looks, keeps the goal (no other node took it) and writes its end.
      if (down) await redis.start(); // only when stopped: a second start orphans the first
      await until(() => (node?.fenceStatus().fenced === false ? true : undefined), 20_000).catch(() => {});
      await node?.stop();
      await h.close();
    }
  }, 60_000);
});
