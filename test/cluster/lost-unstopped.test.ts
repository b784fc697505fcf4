// A goal a normal heartbeat (the node was not paused) finds another node ended, and whose stop
// here throws, makes no model call until a stop goes through: the node holds its calls as it
// does after a pause. Before, only a look after a pause held them; a heartbeat that found the
// goal lost and could not stop it left the node sure, and the goal asked the model again.
// A real Runtime (scripted provider) and a real redis-server, the node in this process; the
// one part stood in for is the Runtime's stop of that goal, made to throw as a stop whose
// agent-stopped entry the audit log refuses does.

import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import { ClusterNode } from "../../src/cluster/node.js";
import type { Harness } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import { latch, type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { openNodeHarness } from "./support/node-harness.js";

const NODE = "n-unstopped";
let server: ProviderServer;
withProvider((p) => ({ server } = p));

describe("cluster mode: a lost goal whose stop throws on a normal heartbeat", () => {
  it("makes no model call until a later heartbeat stops it", async () => {
    const redis = await startRedis();
    const raw = new Redis(redis.url);
    let node: ClusterNode | undefined;
    const logs: string[] = [];
    const h: Harness = await openNodeHarness(server, { redisUrl: redis.url, nodeId: NODE, node: () => node });
    try {
      node = await ClusterNode.start(h.home.config, h.rt, (m) => logs.push(m));
      const answer = latch();
      server.script(forGoal("unstopped-goal"), [
        turn.toolUse("file_read", { path: "/input/x" }, { until: answer.promise }),
        turn.text("asked again after the goal was lost"),
      ]);
      const { goal_id } = await node.goals.submit({ goal: "run unstopped-goal", manifest: manifest() });
      await until(
        () => (server.requestsMatching(forGoal("unstopped-goal")).length > 0 ? true : undefined),
        20_000,
      );
      // Its stop here throws until `stopThrows` is cleared.
      let stopThrows = true;
      const fail = h.rt.goals.fail.bind(h.rt.goals);
      h.rt.goals.fail = (id: string, reason: string) => {
        if (id === goal_id && stopThrows) throw new Error(`stopping the agents of ${id} failed`);
        return fail(id, reason);
      };
      // Another node ended it (a survivor judged this one dead while its key was gone). The
      // survivor's script refuses while the key is there: it is taken away, as a lapsed lease
      // leaves it, and again should this node's next heartbeat put it back first.
      const mirror = new GoalMirror(raw);
      await until(async () => {
        await raw.del(`aido:node:${NODE}:alive`);
        const r = await mirror.failDead(goal_id, NODE, "n-survivor", `node ${NODE} stopped heartbeating`);
        return r === "alive" ? undefined : r;
      }, 5_000).then((r) => expect(r).toBe("taken"));
      await until(
        () => (logs.some((l) => l.includes(`could not stop goal ${goal_id}`)) ? true : undefined),
        10_000,
      );
      // The model answers now: the goal's agent would ask it again.
      answer.open();
      await new Promise((r) => setTimeout(r, 2_000));
      expect(server.requestsMatching(forGoal("unstopped-goal"))).toHaveLength(1);
      expect(h.rt.goals.status(goal_id).state).toBe("running");
      // The stop goes through with a later heartbeat: the goal ends here, never having asked again.
      stopThrows = false;
      expect((await h.rt.goals.wait(goal_id, 10_000)).state).toBe("failed");
      expect(server.requestsMatching(forGoal("unstopped-goal"))).toHaveLength(1);
      expect(await raw.hget(`aido:goal:${goal_id}`, "ended_by")).toBe("n-survivor");
      // Stopped, the node is sure of its goals again: model calls go on.
      const release = await node.inferenceSlot("p", AbortSignal.timeout(5_000));
      release();
    } finally {
      await node?.stop();
      await h.close();
      raw.disconnect();
    }
  }, 60_000);
});
