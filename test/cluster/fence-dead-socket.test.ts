// A node whose connection to Redis goes silent (a partition that drops packets rather than
// closing the connection: a firewall that forgot it, a peer gone without a reset) fences itself,
// and lifts the fence once Redis can be reached again on a new connection. Before, nothing ever
// closed the silent connection: the renewal sent on it was never answered, no other was sent
// (one never answered is not sent again), and the node stayed fenced, its goals frozen, until
// TCP gave the connection up (minutes: the socket held unacknowledged data). Now the node's
// own connection is dropped and made again once a command on it has had no answer for as long
// as the fence point (lease less the margin), so a renewal is sent on a live one.
// A real Runtime (scripted provider) and a real redis-server, the node in this process, behind
// a TCP proxy that goes silent on the connections open through it (it drops what they send and
// answers nothing) while new connections go through.

import { describe, expect, it } from "vitest";
import { ClusterNode } from "../../src/cluster/node.js";
import type { Harness } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import { latch, type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { openNodeHarness } from "./support/node-harness.js";
import { silencingProxy } from "./support/silencing-proxy.js";

const NODE = "n-dead-socket";
let server: ProviderServer;
withProvider((p) => ({ server } = p));

describe("cluster mode: a node whose connection to Redis goes silent", () => {
  it("fences itself, then lifts the fence on a new connection", async () => {
    const redis = await startRedis();
    const proxy = await silencingProxy(redis.url);
    let node: ClusterNode | undefined;
    const logs: string[] = [];
    const h: Harness = await openNodeHarness(server, { redisUrl: proxy.url, nodeId: NODE, node: () => node });
    const answer = latch();
    try {
      node = await ClusterNode.start(h.home.config, h.rt, (m) => logs.push(m));
      server.script(forGoal("silent-goal"), [turn.text("done silent-goal", { until: answer.promise })]);
      await node.goals.submit({ goal: "run silent-goal", manifest: manifest() });
      await until(
        () => (server.requestsMatching(forGoal("silent-goal")).length > 0 ? true : undefined),
        20_000,
      );

      proxy.silence();
      await until(() => (node?.fenceStatus().fenced ? true : undefined), 5_000);
      // Redis can be reached again on a new connection: the fence is lifted within a few leases.
      await until(
        () => (h.rt.audit.query({ kind: "cluster.unfenced" }).length > 0 ? true : undefined),
        8_000,
      );
      expect(node.fenceStatus().fenced).toBe(false);
    } finally {
      answer.open();
      proxy.reset();
      await node?.stop();
      await h.close();
      await proxy.close();
      await redis.stop();
    }
  }, 60_000);
});
