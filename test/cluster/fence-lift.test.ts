// The fence's lift (cluster/fence.ts) when the node is cut off again while the lift waits for
// the freeze its fence began (an engine slow to pause: the wait is up to 10 s, longer than a
// lease). Before, the lift went on once that wait ended: it audited cluster.unfenced and
// unfroze the goals' containers while the node was fenced again, its lease maybe lapsed and its
// goals taken, and nothing froze them again until a heartbeat found the new fence. Now a lift
// that finds the node fenced again leaves the fence in place, containers frozen, for a later
// heartbeat to lift. And a node cut off again while the lift unfreezes its goals one by one
// (a partition that flaps, a loop that stalls as it lifts) leaves the goals it has not unfrozen
// yet frozen under the new fence: the lift unfroze them all the same, under a fence that had
// just frozen them again, their goals maybe taken.
// A real Runtime (scripted provider) and a real redis-server (stopped to cut the node off), the
// node in this process; the sandbox backend is the harness's no-container one, its pause held
// until the test lets it go (a slow engine) and its pause and unpause calls recorded.

import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { ClusterNode } from "../../src/cluster/node.js";
import type { SandboxBackend } from "../../src/sandbox/backend.js";
import { type Harness, noContainers } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import { type Latch, latch, type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { openNodeHarness } from "./support/node-harness.js";

const NODE = "n-fence-lift";
let server: ProviderServer;
withProvider((p) => ({ server } = p));

/**
 * One case's node on a redis-server of its own (cut() stops it, heal() starts it again), its
 * engine's pause and unpause calls recorded (fenced or not) and held until `held`'s latch opens.
 * close() starts Redis again only if it is down (a second start's server lost the port, and the
 * first one was then left running after the file), waits for the lift, and stops it all.
 */
async function liftCase(nodeId: string, held: { pause?: Latch; unpause?: Latch } = {}) {
  const redis = await startRedis();
  const raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  raw.on("error", () => {});
  let node: ClusterNode | undefined;
  const calls: { op: "pause" | "unpause"; goalId: string; fenced: boolean }[] = [];
  const fenced = () => node?.fenceStatus().fenced === true;
  const backend: SandboxBackend = {
    ...noContainers,
    pause: async (goalId) => {
      calls.push({ op: "pause", goalId, fenced: fenced() });
      if (held.pause) await held.pause.promise;
      return "paused";
    },
    unpause: async (goalId) => {
      calls.push({ op: "unpause", goalId, fenced: fenced() });
      if (held.unpause) await held.unpause.promise;
    },
  };
  const h: Harness = await openNodeHarness(server, {
    backend,
    redisUrl: redis.url,
    nodeId,
    node: () => node,
  });
  // The goals' answers, held until the case is done.
  const answer = latch();
  let down = false;
  return {
    raw,
    h,
    calls,
    fenced,
    answer,
    async start(): Promise<ClusterNode> {
      node = await ClusterNode.start(h.home.config, h.rt, () => {});
      return node;
    },
    async cut() {
      await redis.stop();
      down = true;
    },
    async heal() {
      await redis.start();
      down = false;
    },
    async close() {
      held.pause?.open();
      held.unpause?.open();
      answer.open();
      if (down) await redis.start().catch(() => {});
      await until(() => (node?.fenceStatus().fenced === false ? true : undefined), 20_000).catch(() => {});
      await node?.stop();
      await h.close();
      raw.disconnect();
    },
  };
}

describe("cluster mode: the fence's lift when the node is cut off again meanwhile", () => {
  it("leaves the fence and the frozen containers in place until a lift finds the node not fenced", async () => {
    const freezeAnswered = latch();
    const fx = await liftCase(NODE, { pause: freezeAnswered });
    const { calls, h } = fx;
    try {
      const node = await fx.start();
      server.script(forGoal("lift-goal"), [turn.text("done lift-goal", { until: fx.answer.promise })]);
      const { goal_id } = await node.goals.submit({ goal: "run lift-goal", manifest: manifest() });
      await until(
        () => (server.requestsMatching(forGoal("lift-goal")).length > 0 ? true : undefined),
        20_000,
      );

      // Cut off: the fence falls, and its freeze of the goal's container hangs in the engine.
      await fx.cut();
      await until(() => (calls.length > 0 ? true : undefined), 10_000);
      expect(calls).toEqual([{ op: "pause", goalId: goal_id, fenced: true }]);
      // Back: a heartbeat renews the lease and looks; its lift waits for the freeze.
      await fx.heal();
      await until(
        async () =>
          (await fx.raw.exists(`aido:node:${NODE}:alive`).catch(() => 0)) === 1 ? true : undefined,
        10_000,
      );
      await new Promise((r) => setTimeout(r, 500));
      // Cut off again while the lift waits.
      await fx.cut();
      await until(() => (node.fenceStatus().fenced && calls.length === 1 ? true : undefined), 5_000);
      // The lift's wait for the freeze (10 s) ends: nothing is unfrozen, the fence stays.
      await new Promise((r) => setTimeout(r, 11_000));
      expect(calls.filter((c) => c.op === "unpause")).toEqual([]);
      expect(node.fenceStatus().fenced).toBe(true);
      expect(h.rt.audit.query({ kind: "cluster.unfenced" })).toEqual([]);

      // Back for good, the engine answering: the fence is lifted and the goal's container
      // unfrozen once, while the node is not fenced.
      freezeAnswered.open();
      await fx.heal();
      await until(
        () => (h.rt.audit.query({ kind: "cluster.unfenced" }).length > 0 ? true : undefined),
        20_000,
      );
      expect(calls.filter((c) => c.op === "unpause")).toEqual([
        { op: "unpause", goalId: goal_id, fenced: false },
      ]);
    } finally {
      await fx.close();
    }
  }, 90_000);

  it("stops unfreezing the goals once the node is fenced again during the lift", async () => {
    // The engine slow to unfreeze the first goal: the node is cut off again meanwhile.
    const unpauseAnswered = latch();
    const fx = await liftCase(`${NODE}-again`, { unpause: unpauseAnswered });
    const { calls, fenced } = fx;
    try {
      const node = await fx.start();
      const goals: string[] = [];
      for (const name of ["relift-a", "relift-b"]) {
        server.script(forGoal(name), [turn.text(`done ${name}`, { until: fx.answer.promise })]);
        goals.push((await node.goals.submit({ goal: `run ${name}`, manifest: manifest() })).goal_id);
      }
      await until(
        () =>
          server.requestsMatching(forGoal("relift-a")).length > 0 &&
          server.requestsMatching(forGoal("relift-b")).length > 0
            ? true
            : undefined,
        20_000,
      );
      const pauses = () => calls.filter((c) => c.op === "pause").length;
      await fx.cut();
      await until(() => (pauses() === 2 ? true : undefined), 10_000);
      // Back: the lift unfreezes the first goal, and the engine holds that unpause.
      await fx.heal();
      await until(() => (calls.some((c) => c.op === "unpause") ? true : undefined), 10_000);
      // Cut off again while it does: the new fence freezes both goals again.
      await fx.cut();
      await until(() => (pauses() === 4 ? true : undefined), 10_000);
      unpauseAnswered.open();
      await new Promise((r) => setTimeout(r, 500));
      // The other goal is left frozen under the new fence, not unfrozen by the lift before it.
      expect(calls.filter((c) => c.op === "unpause")).toEqual([
        { op: "unpause", goalId: expect.any(String), fenced: false },
      ]);
      expect(node.fenceStatus().fenced).toBe(true);

      // Back for good: both are unfrozen by the next lift, while the node is not fenced.
      await fx.heal();
      await until(
        () => (calls.filter((c) => c.op === "unpause").length >= 3 && !fenced() ? true : undefined),
        20_000,
      );
      const later = calls.filter((c) => c.op === "unpause").slice(1);
      expect(later.every((c) => !c.fenced)).toBe(true);
      expect(new Set(later.map((c) => c.goalId))).toEqual(new Set(goals));
    } finally {
      await fx.close();
    }
  }, 90_000);
});
