// test/cluster/support/node-user.ts — a node that joins the test's Redis as an ACL user of its
// own, so that the test can refuse some of its writes for real (keys, or commands) while the
// rest of its traffic (heartbeats, jobs) goes on: the way Redis refuses a node that is out of
// memory or held by an ACL. For a node in this process, startRedisAsNode() gives the test's
// Redis, an admin connection and one as the node; for an agentd child, addNodeUser() gives the
// URL its config joins with.

import { Redis } from "ioredis";
import { type RedisServer, startRedis } from "../fixture.js";

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
  /** Close both connections (the server goes with fixture.ts stopAll()). */
  disconnect(): void;
}

/** The test's own redis-server, with node `id`'s user and a connection as it. */
export async function startRedisAsNode(id: string): Promise<RedisAsNode> {
  const server = await startRedis();
  const raw = new Redis(server.url);
  const user = await addNodeUser(raw, server.url, id);
  const owner = new Redis(user.url, { maxRetriesPerRequest: 1 });
  return {
    ...user,
    server,
    raw,
    owner,
    disconnect() {
      owner.disconnect();
      raw.disconnect();
    },
  };
}
