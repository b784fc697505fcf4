// A node whose Redis is at its maxclients, with a real agentd node on a real redis-server:
// Redis answers each new connection "-ERR max number of clients reached" and closes it, and
// the client's first write fails (EPIPE) before the line is read, so cluster.status said only
// "Stream isn't writeable". It now says Redis refused the node's connection, with that line,
// and no ACL user is blamed for it.

import { expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: import("../support/provider-server.js").ProviderServer;
let redisServer: RedisServer;
let raw: import("ioredis").Redis;
withCluster((c) => {
  server = c.server;
  redisServer = c.redis;
  raw = c.raw;
});

it("cluster.status says Redis refused the node's connection (max clients), not only that the stream is not writeable", async () => {
  const node = await startNode(server, redisServer.url, "maxclients-node", { onRedisLoss: "finish" });
  await until(async () => {
    const s = await (await node.client()).call("cluster.status", {});
    return s.enabled && s.redis.unreachable === undefined && s.redis.refused === undefined ? true : undefined;
  });
  await raw.call("CONFIG", "SET", "maxclients", "1");
  try {
    // Every connection but the test's dropped: each the node makes again is refused.
    await raw.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
    await raw.call("CLIENT", "KILL", "TYPE", "pubsub");
    const status = await until(async () => {
      const s = await (await node.client()).call("cluster.status", {});
      return s.enabled && s.redis.refused !== undefined ? s : undefined;
    }, 20_000);
    if (!status.enabled) throw new Error("not a cluster");
    expect(status.redis.refused).toMatch(
      /it refused this node's connection: ERR max number of clients reached/,
    );
    expect(status.redis.unreachable).toBeUndefined();
  } finally {
    await raw.call("CONFIG", "SET", "maxclients", "10000");
  }
  // Room again: the node reads Redis.
  await until(async () => {
    const s = await (await node.client()).call("cluster.status", {});
    return s.enabled && s.redis.unreachable === undefined && s.redis.refused === undefined ? true : undefined;
  }, 30_000);
}, 60_000);
