// Cluster mode, fencing (cluster/fence.ts) after a stall of the node's own event loop: a
// long sync call right after a lease renewal was sent keeps the node from reading the answer
// until past the fence point, so the fence falls as the loop runs again, though Redis answered
// at once and the node is healthy. Before, the beat under way (begun before the fence) could
// not lift it, and the node stayed fenced, its goals held, until the next heartbeat's look. Now
// the fence's fall renews and looks at once: the node is lifted within a few round trips of
// the stall's end, well within a heartbeat interval.
// A real Runtime and redis-server, the node in this process (its event loop is the one stalled).

import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { ClusterNode } from "../../src/cluster/node.js";
import { RedisKeys } from "../../src/cluster/redis-keys.js";
import type { Harness } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import type { ProviderServer } from "../support/provider-server.js";
import { startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { openNodeHarness } from "./support/node-harness.js";

const NODE = "n-fence-stall";
const LEASE_MS = 2_000;
const HEARTBEAT_MS = 1_000;
/** Past the fence point (lease less a quarter lease: 1.5 s after the renewal's send). */
const STALL_MS = 1_700;

let server: ProviderServer;
withProvider((p) => ({ server } = p));

describe("cluster mode: a node whose event loop stalled past the fence point", () => {
  it("is fenced as it runs again and lifted within a few round trips, not at the next heartbeat", async () => {
    const redis = await startRedis();
    let node: ClusterNode | undefined;
    const h: Harness = await openNodeHarness(server, {
      redisUrl: redis.url,
      nodeId: NODE,
      node: () => node,
      leaseMs: LEASE_MS,
      heartbeatMs: HEARTBEAT_MS,
    });
    try {
      node = await ClusterNode.start(h.home.config, h.rt, () => {});
      await node.connectedForALease();
      // Stall the loop right after the next renewal's EXEC is written to the socket.
      const r = node.redis;
      const send = r.sendCommand.bind(r);
      let renewal = false;
      let stallEnd: number | undefined;
      r.sendCommand = ((command, ...rest) => {
        const out = send(command, ...rest);
        const c = command as { name: string; args: unknown[] };
        if (stallEnd === undefined && c.name === "set" && String(c.args[0]) === RedisKeys.alive(NODE))
          renewal = true;
        else if (renewal && stallEnd === undefined && c.name === "exec") {
          const end = performance.now() + STALL_MS;
          while (performance.now() < end) {
            // a long sync call
          }
          stallEnd = Date.now();
        }
        return out;
      }) as typeof r.sendCommand;
      const unfenced = await until(() => h.rt.audit.query({ kind: "cluster.unfenced" })[0], 10_000);
      r.sendCommand = send;
      expect(h.rt.audit.query({ kind: "cluster.fenced" })).toHaveLength(1);
      expect(stallEnd).toBeDefined();
      // Only the lift is timed, from the stall's end to the entry's own time (not the test's
      // polling of the audit log): a few round trips, 11-18 ms measured here; the next
      // heartbeat's look, which is the bug, takes up to a heartbeat interval (1 s).
      expect(Date.parse(unfenced.time) - (stallEnd ?? 0)).toBeLessThan(400);
      expect(node.fenceStatus().fenced).toBe(false);
    } finally {
      await node?.stop();
      await h.close();
      await redis.stop();
    }
  }, 60_000);
});
