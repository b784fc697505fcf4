// A failed job's reason is whatever was written to Redis (BullMQ keeps the message a worker's
// processor threw: a Redis refusal naming the node's ACL user, or any text a writer put
// there); the node that puts the orphaned job back quoted it in its cluster.goal_requeued
// entry, and through audit.query the dashboard, as given. It blanks its Redis URL's secret
// and its providers' API keys there now (config-secrets.ts withoutConfigSecrets). One node
// only: it holds the sweep every period, so the entry is its own.

import { expect, it } from "vitest";
import { providerEnv } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import type { ProviderServer } from "../support/provider-server.js";
import { type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";
import { addNodeUser } from "./support/node-user.js";
import { backInQueue, failJob, makeOrphan, withPausedQueue } from "./support/orphans.js";

let server: ProviderServer;
let redis: RedisServer;
let raw: import("ioredis").Redis;
withCluster((c) => ({ server, redis, raw } = c));

it("the node that puts an orphaned job back audits its failed reason without the node's secrets", async () => {
  const id = "sweep-secret";
  const user = await addNodeUser(raw, redis.url, id);
  const node = await startNode(server, user.url, id);
  const providerKey = providerEnv(server).ANTHROPIC_API_KEY as string;
  await withPausedQueue(redis.url, async (queue) => {
    const goalId = await makeOrphan(server, node, "sweep-secret", raw);
    await failJob(raw, goalId, `Redis said redis://${id}:owner-pass@host; key ${providerKey}`);
    await queue.resume();
    await until(backInQueue(raw, goalId), 10_000);
  });
  const client = await node.client();
  const requeued = JSON.stringify(
    (await client.call("audit.query", { kind: "cluster.goal_requeued" })).entries.map((e) => e.payload),
  );
  expect(requeued).toContain(`Redis said redis://${id}:***@host; key ***`);
  for (const secret of ["owner-pass", providerKey]) expect(requeued).not.toContain(secret);
}, 60_000);
