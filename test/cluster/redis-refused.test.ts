// A node whose Redis refuses it, with a real agentd node on a real redis-server: an ACL user
// lacking a permission, or a password no longer taken when the node reconnects. cluster.status
// and `aido cluster status` say Redis refuses this node — not that it cannot be reached, which
// sent a person fixing an ACL looking for a network fault — and goal.status of its own goal,
// answered from its own record, is marked so. The password in the node's Redis URL is in no
// answer or line.

import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { until } from "../daemon/process.js";
import { failureOf } from "../llm/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, type Node, type RedisServer, startNode, startRedisProxy } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

const USER = "aido-node";
const PASSWORD = "pw-3f9c-never-shown";

let server: ProviderServer;
let redisServer: RedisServer;
let raw: import("ioredis").Redis;
let node: Node;
withCluster((c) => {
  server = c.server;
  redisServer = c.redis;
  raw = c.raw;
});

beforeAll(async () => {
  await raw.call("ACL", "SETUSER", USER, "on", `>${PASSWORD}`, "~*", "&*", "+@all");
  const url = new URL(redisServer.url);
  url.username = USER;
  url.password = PASSWORD;
  node = await startNode(server, url.toString(), "refused-node", { onRedisLoss: "finish" });
}, 60_000);

/** Run `f` while the node's ACL user may not run `command`. */
async function withoutPermission<T>(command: string, f: () => Promise<T>): Promise<T> {
  await raw.call("ACL", "SETUSER", USER, `-${command}`);
  try {
    return await f();
  } finally {
    await raw.call("ACL", "SETUSER", USER, `+${command}`);
  }
}

describe("a node whose Redis ACL user lacks a permission", () => {
  it("cluster.status and aido cluster status say Redis refuses it, not that it cannot be reached", async () => {
    await withoutPermission("smembers", async () => {
      const status = await (await node.client()).call("cluster.status", {});
      if (!status.enabled) throw new Error("not a cluster");
      expect(status.redis.refused).toMatch(/NOPERM/);
      expect(status.redis.unreachable).toBeUndefined();
      expect(status.nodes.map((n) => n.node_id)).toEqual([node.id]);
      expect(JSON.stringify(status)).not.toContain(PASSWORD);

      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(
        ["cluster", "status"],
        { out: (l: string) => out.push(l), err: (l: string) => err.push(l), interactive: false },
        { ...node.home.env, AIDO_HOME: node.home.dir },
      );
      expect(code).toBe(1);
      const said = err.join("\n");
      expect(said).toMatch(/Redis refuses this node's reads: .*NOPERM.*check the ACL user/);
      expect(said).not.toMatch(/cannot be reached/);
      expect([...out, ...err].join("\n")).not.toContain(PASSWORD);
    });
    // The permission back: the cluster's view again.
    const back = await (await node.client()).call("cluster.status", {});
    if (!back.enabled) throw new Error("not a cluster");
    expect(back.redis.refused).toBeUndefined();
  }, 60_000);

  it("cluster.status says Redis refuses the node's connection when its password is no longer taken (WRONGPASS)", async () => {
    // The node's connection dropped and its password changed: its commands then fail only as
    // "Stream isn't writeable", which read as a network fault.
    await raw.call("ACL", "SETUSER", USER, "resetpass", ">another-password");
    try {
      await raw.call("CLIENT", "KILL", "USER", USER);
      const status = await until(async () => {
        const s = await (await node.client()).call("cluster.status", {});
        return s.enabled && s.redis.refused !== undefined ? s : undefined;
      });
      if (!status.enabled) throw new Error("not a cluster");
      expect(status.redis.refused).toMatch(/it refused this node's connection: WRONGPASS/);
      expect(status.redis.unreachable).toBeUndefined();
      expect(JSON.stringify(status)).not.toContain(PASSWORD);
      // A goal submitted meanwhile is refused saying so.
      const e = await failureOf(
        (await node.client()).call("goal.submit", { goal: "not queued", manifest: manifest() }),
      );
      expect(e.code).toBe("cluster_unavailable");
      expect(e.message).toMatch(
        /the cluster's Redis refused this node \(it refused this node's connection: WRONGPASS.*check the ACL user/,
      );
      expect(e.message).not.toContain(PASSWORD);
    } finally {
      await raw.call("ACL", "SETUSER", USER, "resetpass", `>${PASSWORD}`);
    }
    // The password taken again: the node reconnects and reads Redis.
    await until(async () => {
      const s = await (await node.client()).call("cluster.status", {});
      return s.enabled && s.redis.refused === undefined && s.redis.unreachable === undefined
        ? true
        : undefined;
    }, 30_000);
  }, 60_000);

  it("goal.status of its own goal is its own record, marked refused, while Redis refuses the read", async () => {
    const marker = "refused-own-goal";
    server.script(forGoal(marker), [
      turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
      turn.text(`finished ${marker}`),
    ]);
    const c = await node.client();
    const { goal_id } = await c.call("goal.submit", {
      goal: `write ${marker}`,
      manifest: manifest({ approve: true }),
    });
    const pending = await until(async () =>
      (await c.call("approval.list", {})).approvals.find((p) => p.goal_id === goal_id),
    );
    await withoutPermission("hgetall", async () => {
      const s = await (await node.client()).call("goal.status", { goal_id });
      expect(s).toMatchObject({ goal_id, state: "running", node: node.id });
      expect(s.cluster).toMatchObject({ redis: "refused", reason: expect.stringMatching(/NOPERM/) });
      expect(s.cluster?.reason).not.toMatch(/cannot be reached/);
      expect(JSON.stringify(s)).not.toContain(PASSWORD);
      // Another goal's status cannot be read: refused, saying so and naming the goal.
      const e = await failureOf((await node.client()).call("goal.status", { goal_id: "g_not_here" }));
      expect(e.code).toBe("cluster_unavailable");
      expect(e.message).toMatch(/goal g_not_here: the cluster's Redis refused this node's read: NOPERM/);
    });
    // Readable again: the cluster's status, unmarked.
    expect((await (await node.client()).call("goal.status", { goal_id })).cluster).toBeUndefined();
    await c.call("approval.respond", { id: pending.id, decision: "allow_once" });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");
  }, 90_000);
});

describe("a Redis that answers an error no ACL explains", () => {
  it("a submission whose transaction an ACL refused says the NOPERM, and the ACL user", async () => {
    // The mirror's MULTI: Redis says only EXECABORT "because of previous errors".
    await withoutPermission("zadd", async () => {
      const e = await failureOf(
        (await node.client()).call("goal.submit", { goal: "no zadd", manifest: manifest() }),
      );
      expect(e.code).toBe("cluster_unavailable");
      expect(e.message).toMatch(/refused this node \(EXECABORT.*: NOPERM.*check the ACL user/);
    });
  }, 60_000);

  it("a Redis busy running a script (BUSY) is said not to answer now, not to refuse the node", async () => {
    // BUSY passes when the script ends: nobody is to go fixing an ACL for it.
    await raw.call("CONFIG", "SET", "busy-reply-threshold", "100");
    const { Redis } = await import("ioredis");
    const busy = new Redis(redisServer.url, { maxRetriesPerRequest: 0 });
    busy.on("error", () => {});
    const script = busy.eval("while true do end", 0).catch(() => undefined);
    try {
      const status = await until(async () => {
        const s = await (await node.client()).call("cluster.status", {});
        return s.enabled && (s.redis.refused ?? s.redis.unreachable ?? "").includes("BUSY") ? s : undefined;
      });
      if (!status.enabled) throw new Error("not a cluster");
      expect(status.redis.unreachable).toMatch(/BUSY/);
      expect(status.redis.refused).toBeUndefined();
    } finally {
      await raw.call("SCRIPT", "KILL").catch(() => undefined);
      await script;
      busy.disconnect();
      await raw.call("CONFIG", "SET", "busy-reply-threshold", "5000");
    }
  }, 60_000);

  it("a submission Redis refuses for want of memory (OOM) does not send one to the ACL user", async () => {
    const [, policy] = (await raw.call("CONFIG", "GET", "maxmemory-policy")) as string[];
    await raw.call("CONFIG", "SET", "maxmemory-policy", "noeviction");
    await raw.call("CONFIG", "SET", "maxmemory", "1");
    try {
      const e = await failureOf(
        (await node.client()).call("goal.submit", { goal: "no memory", manifest: manifest() }),
      );
      expect(e.code).toBe("cluster_unavailable");
      expect(e.message).toMatch(/the cluster's Redis refused this node \(.*OOM/);
      expect(e.message).not.toMatch(/ACL/);
      expect(e.message).toMatch(/EXECABORT.*: OOM/);
      expect(e.message).toMatch(/the Redis server's own state/);
    } finally {
      await raw.call("CONFIG", "SET", "maxmemory", "0");
      await raw.call("CONFIG", "SET", "maxmemory-policy", policy ?? "noeviction");
    }
  }, 60_000);

  it("a password that is part of Redis's text is kept out of the reason, not out of the advice", async () => {
    // Password "O", shorter than a secret blanked inside words (security/blank-secrets.ts):
    // the reason keeps NOPERM whole (N***PERM garbled it and showed the password by its
    // gap); the refusal is still an ACL's.
    const user = "aido-short";
    await raw.call("ACL", "SETUSER", user, "on", ">O", "~*", "&*", "+@all", "-zadd");
    const url = new URL(redisServer.url);
    url.username = user;
    url.password = "O";
    const short = await startNode(server, url.toString(), "refused-short", { onRedisLoss: "finish" });
    const e = await failureOf(
      (await short.client()).call("goal.submit", { goal: "no zadd", manifest: manifest() }),
    );
    expect(e.message).toMatch(/NOPERM/);
    expect(e.message).not.toMatch(/N\*\*\*PERM/);
    expect(e.message).toMatch(/check the ACL user/);
  }, 60_000);

  it("a refusal of the node's password is no longer said once Redis stops answering at all", async () => {
    // WRONGPASS, then the node cut off from Redis: it is unreachable now, not still refused.
    const user = "aido-proxied";
    await raw.call("ACL", "SETUSER", user, "on", ">proxied-pw", "~*", "&*", "+@all");
    const proxy = await startRedisProxy(redisServer.url);
    const url = new URL(proxy.url);
    url.username = user;
    url.password = "proxied-pw";
    const cut = await startNode(server, url.toString(), "refused-cut", { onRedisLoss: "finish" });
    const redisOf = async () => {
      const s = await (await cut.client()).call("cluster.status", {});
      return s.enabled ? s.redis : undefined;
    };
    await raw.call("ACL", "SETUSER", user, "resetpass", ">another");
    await raw.call("CLIENT", "KILL", "USER", user);
    await until(async () => ((await redisOf())?.refused?.includes("WRONGPASS") ? true : undefined));
    proxy.cut();
    const after = await until(async () => {
      const r = await redisOf();
      return r?.unreachable !== undefined ? r : undefined;
    }, 15_000);
    expect(after.refused).toBeUndefined();
  }, 60_000);

  it("a junk key where the set of nodes is kept is named, and no ACL user is blamed for it (WRONGTYPE)", async () => {
    const nodes = await raw.smembers("aido:nodes");
    await raw.del("aido:nodes");
    await raw.set("aido:nodes", "junk");
    try {
      const status = await until(async () => {
        const s = await (await node.client()).call("cluster.status", {});
        return s.enabled && s.redis.refused !== undefined ? s : undefined;
      });
      if (!status.enabled) throw new Error("not a cluster");
      expect(status.redis.refused).toMatch(/WRONGTYPE.*the key aido:nodes holds another type/);
      const err: string[] = [];
      await runCli(
        ["cluster", "status"],
        { out: () => {}, err: (l: string) => err.push(l), interactive: false },
        { ...node.home.env, AIDO_HOME: node.home.dir },
      );
      const said = err.join("\n");
      expect(said).toMatch(
        /Redis refuses this node's reads: .*aido:nodes.*; a key in Redis holds another type/,
      );
      expect(said).not.toMatch(/ACL user/);
    } finally {
      await raw.del("aido:nodes");
      if (nodes.length > 0) await raw.sadd("aido:nodes", ...nodes);
    }
  }, 60_000);

  it("node records Redis refuses to read (NOPERM on HGETALL) are a refusal, not records said malformed", async () => {
    await withoutPermission("hgetall", async () => {
      const status = await (await node.client()).call("cluster.status", {});
      if (!status.enabled) throw new Error("not a cluster");
      expect(status.redis.refused).toMatch(/NOPERM/);
      expect(status.nodes.some((n) => typeof n.malformed === "string")).toBe(false);
    });
  }, 60_000);
});
