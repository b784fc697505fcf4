// approval.list with a limit in a cluster reads that many records from Redis, not every one
// (cluster/approval-view.ts): it read the whole pending hash (and every settled record)
// whatever the limit, so a dashboard asking for the 10 next approvals read thousands. Pending
// approvals are indexed by creation time; a node indexes what the hash already holds (a node
// from before the index wrote it) when it connects. Real redis-server, a real agentd node.

import { describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import type { ProviderServer } from "../support/provider-server.js";
import { type RedisServer, startNode } from "./fixture.js";
import { type FileCluster, withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redis: RedisServer;
let cluster: FileCluster;
withCluster((c) => {
  ({ server, redis } = c);
  cluster = c;
});

/** What Redis has sent to its clients so far (bytes). */
async function sent(): Promise<number> {
  return Number(/total_net_output_bytes:(\d+)/.exec(await cluster.raw.info("stats"))?.[1]);
}

describe("approval.list with a limit in a cluster", () => {
  it("reads the records it answers with, not every pending one", async () => {
    const raw = cluster.raw;
    const base = Date.now() - 3_600_000;
    const pipe = raw.pipeline();
    for (let i = 0; i < 3_000; i++) {
      const id = `apr_limit-${String(i).padStart(5, "0")}`;
      pipe.hset(
        "aido:approvals",
        id,
        JSON.stringify({
          id,
          node: "limit-other",
          status: "pending",
          created_at: base + i,
          goal_id: null,
          agent_id: "agt_x",
          tool: "exec",
          summary: "x".repeat(1_000),
        }),
      );
    }
    await pipe.exec();
    const node = await startNode(server, redis.url, "limit-node");
    const c = await node.client();
    // The node indexes what the hash held when it connects.
    const page = [2, 3, 4, 5, 6].map((i) => `apr_limit-0000${i}`);
    await until(async () => {
      const { approvals } = await c.call("approval.list", { status: "pending", limit: 5, offset: 2 });
      return JSON.stringify(approvals.map((a) => a.id)) === JSON.stringify(page) ? true : undefined;
    });
    const before = await sent();
    for (let i = 0; i < 5; i++) await c.call("approval.list", { status: "pending", limit: 10 });
    // Five lists of 10: each read one page of the index (100 records, ~110 KB), not all 3,000 (3 MB).
    expect((await sent()) - before).toBeLessThan(1_500_000);
    // Unlimited, every one is still there.
    expect((await c.call("approval.list", { status: "pending" })).approvals).toHaveLength(3_000);

    // A node from before the index, still running beside this one, asks an approval: it
    // writes the hash only. A limited list (the watch's, the dashboard's pages) lists it too,
    // as an unlimited one does, not only once some node connects again.
    const old = "apr_limit-fromoldnode";
    await raw.hset(
      "aido:approvals",
      old,
      JSON.stringify({
        id: old,
        node: "limit-old",
        status: "pending",
        created_at: base - 1,
        goal_id: null,
        agent_id: "agt_old",
        tool: "exec",
        summary: "asked on a node from before the index",
      }),
    );
    const first = (await c.call("approval.list", { status: "pending", limit: 3 })).approvals.map((a) => a.id);
    expect(first).toEqual([old, "apr_limit-00000", "apr_limit-00001"]);
    const all = (await c.call("approval.list", { status: "all", limit: 5, offset: 2_998 })).approvals.map(
      (a) => a.id,
    );
    // Newest first: the oldest is the last of the 3,001.
    expect(all).toEqual(["apr_limit-00001", "apr_limit-00000", old]);
  }, 90_000);
});
