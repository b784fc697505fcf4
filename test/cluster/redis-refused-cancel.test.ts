// A cancel past the node's lease while Redis refuses the node (its password no longer taken
// when it reconnects), with a real agentd node alone on a real redis-server: the refusal says
// what Redis said — refused, WRONGPASS — and details.redis says refused; it said "cannot be
// reached" (the client's "Stream isn't writeable") and dropped details.redis.

import { expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { failureOf } from "../llm/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, LEASE_MS, manifest, type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redisServer: RedisServer;
let raw: import("ioredis").Redis;
withCluster((c) => {
  server = c.server;
  redisServer = c.redis;
  raw = c.raw;
});

it("a cancel past the lease says Redis refused this node's password, not that it cannot be reached", async () => {
  const user = "aido-lease";
  await raw.call("ACL", "SETUSER", user, "on", ">lease-pw", "~*", "&*", "+@all");
  const url = new URL(redisServer.url);
  url.username = user;
  url.password = "lease-pw";
  const n = await startNode(server, url.toString(), "refused-lease", { onRedisLoss: "finish" });
  const marker = "refused-lease-goal";
  server.script(forGoal(marker), [
    turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
    turn.text(`finished ${marker}`),
  ]);
  const c = await n.client();
  const { goal_id } = await c.call("goal.submit", {
    goal: `write ${marker}`,
    manifest: manifest({ approve: true }),
  });
  await until(async () => (await c.call("approval.list", {})).approvals.find((p) => p.goal_id === goal_id));
  // Its connection dropped, its password changed: no heartbeat is taken, the lease runs out.
  await raw.call("ACL", "SETUSER", user, "resetpass", ">another-lease-pw");
  await raw.call("CLIENT", "KILL", "USER", user);
  await new Promise((r) => setTimeout(r, LEASE_MS + 1_000));
  const e = await failureOf((await n.client()).call("goal.cancel", { goal_id }));
  expect(e.code).toBe("cluster_unavailable");
  expect(e.message).toMatch(/the cluster's Redis refused this node and this node's lease ran out/);
  expect(e.message).toMatch(/it refused this node's connection: WRONGPASS/);
  expect(e.message).not.toMatch(/cannot be reached/);
  expect(e.message).not.toContain("lease-pw");
  expect(e.details).toMatchObject({ redis: "refused" });
}, 60_000);
