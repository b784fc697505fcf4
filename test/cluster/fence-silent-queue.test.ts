// A node whose connections to Redis all go silent at once (a partition that drops packets
// rather than closing connections: a firewall that forgot them) drops and makes again every
// one of them within a bound, not only its own (renewals, fence-dead-socket.test.ts). Before,
// the queue's connection (goal submissions), the worker's (its job locks and its blocking
// fetch of the next job) and the blocking readers (routed commands, event streams) waited on
// the silent socket until TCP gave it up, minutes later: a goal submitted on the node after the
// partition healed never reached the queue, and the worker's commands (its job locks, the
// stalled check) hung as long (its blocking fetch alone was reset, by BullMQ's own watchdog).
// Now each has a socket timeout: the fence point, plus for one that blocks the longest it blocks
// (the worker's: BullMQ's fetch, 10 s at most; the readers': 1 s).
// A real Runtime (scripted provider) and a real redis-server, the node in this process,
// behind a TCP proxy that goes silent on the connections open through it (it reads and drops
// what they send, answers nothing, resets nothing) while new connections go through.

import { describe, expect, it } from "vitest";
import { ClusterNode } from "../../src/cluster/node.js";
import type { Harness } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import type { ProviderServer } from "../support/provider-server.js";
import { turn } from "../support/provider-server.js";
import { forGoal, manifest, startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { NODE_LEASE_MS, openNodeHarness } from "./support/node-harness.js";
import { silencingProxy } from "./support/silencing-proxy.js";

const NODE = "n-silent-queue";
/** The longest socket timeout a node's connection has: the fence point and BullMQ's longest fetch. */
const BOUND_MS = NODE_LEASE_MS - NODE_LEASE_MS / 4 + 10_000;
let server: ProviderServer;
withProvider((p) => ({ server } = p));

describe("cluster mode: a node whose every connection to Redis goes silent", () => {
  it("drops each of them within the bound, and takes and runs a goal submitted on it after", async () => {
    const redis = await startRedis();
    const proxy = await silencingProxy(redis.url);
    let node: ClusterNode | undefined;
    const h: Harness = await openNodeHarness(server, { redisUrl: proxy.url, nodeId: NODE, node: () => node });
    try {
      node = await ClusterNode.start(h.home.config, h.rt, () => {});
      // A goal run first: the queue's and the worker's connections are up.
      server.script(forGoal("before-silence"), [turn.text("done before-silence")]);
      const first = await node.goals.submit({ goal: "run before-silence", manifest: manifest() });
      const succeeded = (id: string) => {
        try {
          return h.rt.goals.status(id).state === "succeeded" ? true : undefined;
        } catch {
          return undefined; // not taken by this node's worker yet
        }
      };
      await until(() => succeeded(first.goal_id), 20_000);
      await node.connectedForALease();

      proxy.silence();
      const silenced = proxy.silentOpen();
      expect(silenced).toBeGreaterThanOrEqual(4);
      await until(() => (proxy.silentOpen() === 0 ? true : undefined), BOUND_MS + 3_000);
      // Healed (new connections go through): a goal submitted on the node runs.
      await until(() => (node?.fenceStatus().fenced === false ? true : undefined), 10_000);
      server.script(forGoal("after-silence"), [turn.text("done after-silence")]);
      const n = node;
      const after = await n.goals.submit({ goal: "run after-silence", manifest: manifest() });
      await until(() => succeeded(after.goal_id), 20_000);
    } finally {
      proxy.reset();
      await node?.stop();
      await h.close();
      await proxy.close();
      await redis.stop();
    }
  }, 90_000);
});
