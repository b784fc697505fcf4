// test/cluster/support/node-user.ts — a node that joins the test's Redis as an ACL user of its
// own, so that the test can refuse some of its writes for real (keys, or commands) while the
// rest of its traffic (heartbeats, jobs) goes on: the way Redis refuses a node that is out of
// memory or held by an ACL. startRedisAsNode() gives a redis-server of the test's own with
// such a user: its URL for an agentd child's config, and a connection as it for a node in the
// test's process. addNodeUser() adds one to a Redis the test already has.

import type { Redis } from "ioredis";
import { connectRedis, type RedisServer, startRedis } from "../fixture.js";

export interface NodeUser {
  /** The Redis URL that logs in as the node's user. */
  url: string;
  /** The node may write only keys matching these (reads stay): `[]` gives all back. */
  writable(patterns: string[]): Promise<void>;
}

/** Give node `id` a user of its own on `admin`'s Redis (at `redisUrl`), allowed everything for now. */
export async function addNodeUser(admin: Redis, redisUrl: string, id: string): Promise<NodeUser> {
  await admin.call("ACL", "SETUSER", id, "on", ">owner-pass", "~*", "&*", "+@all");
  return {
    url: redisUrl.replace("redis://", `redis://${id}:owner-pass@`),
    async writable(patterns) {
      const keys = patterns.length === 0 ? ["~*"] : ["%R~*", ...patterns.map((p) => `~${p}`)];
      await admin.call("ACL", "SETUSER", id, "resetkeys", ...keys);
    },
  };
}

export interface RedisAsNode extends NodeUser {
  server: RedisServer;
  /** The default user: the test's view of Redis, and the one that changes the node's rights. */
  raw: Redis;
  /** Connected as the node's user, one try a command: a refusal fails the command at once. */
  owner: Redis;
}

/**
 * A redis-server of the test's own, with node `id`'s user; it and both connections are
 * stopped by fixture.ts stopAll().
 */
export async function startRedisAsNode(id: string): Promise<RedisAsNode> {
  const server = await startRedis();
  const raw = connectRedis(server.url);
  const user = await addNodeUser(raw, server.url, id);
  return { ...user, server, raw, owner: connectRedis(user.url, { maxRetriesPerRequest: 1 }) };
}
