// cluster/node-status.ts — what cluster.status says of the cluster: every node that ever
// joined, as its heartbeats left it in Redis, and how that Redis keeps its data. And the
// one write: a node's heartbeat record, its lease key with it (node.ts says when). And
// whether another node is alive, as its lease key says (job-intake.ts asks, through node.ts).

import { type Redis, ReplyError } from "ioredis";
import { type NodeContext, REDIS_ANSWER_MS, readMirror, withTimeout } from "./context.js";
import { RedisKeys } from "./redis-keys.js";
import type { RedisPersistence } from "./redis-url.js";

/**
 * One heartbeat of this node: its lease key (TTL lease_ms: gone, the node is taken for dead),
 * its place in the node list, and the record cluster.status reads (`running`: its goals now).
 */
export async function writeHeartbeat(
  ctx: Pick<NodeContext, "redis" | "identity" | "config">,
  startedAt: number,
  running: string[],
): Promise<number> {
  const { nodeId, keyId, publicKeyPem, host } = ctx.identity;
  const now = Date.now();
  await ctx.redis
    .multi()
    .set(RedisKeys.alive(nodeId), String(now), "PX", ctx.config.cluster.leaseMs)
    .sadd(RedisKeys.nodes, nodeId)
    .hset(RedisKeys.node(nodeId), {
      node_id: nodeId,
      key_id: keyId,
      public_key: publicKeyPem,
      host,
      pid: String(process.pid),
      started_at: String(startedAt),
      last_heartbeat: String(now),
      running: String(running.length),
      capacity: String(ctx.config.limits.maxConcurrentGoals),
      goals: JSON.stringify(running),
    })
    .exec();
  return now;
}

/** Whether `node`'s lease key is there (it heartbeated within its lease). */
export async function isAlive(ctx: Pick<NodeContext, "redis">, node: string): Promise<boolean> {
  return (await ctx.redis.exists(RedisKeys.alive(node))) === 1;
}

/**
 * Whether `node` is dead: its heartbeat key is gone now or within one lease (a job's lock
 * can lapse up to half a lease before the last heartbeat's key does). A node still
 * heartbeating after a whole lease is alive.
 */
export async function diedWithin(ctx: Pick<NodeContext, "redis" | "config">, node: string): Promise<boolean> {
  const { leaseMs, heartbeatMs } = ctx.config.cluster;
  const deadline = Date.now() + leaseMs + heartbeatMs;
  while (Date.now() < deadline) {
    if (!(await isAlive(ctx, node))) return true;
    await new Promise((r) => setTimeout(r, heartbeatMs));
  }
  return false;
}

/** One node as `cluster.status` lists it. */
export interface NodeStatus {
  node_id: string;
  alive: boolean;
  last_heartbeat: string | null;
  key_id: string;
  host: string;
  pid: number;
  /** Goals running there, and how many it takes at once. */
  running: number;
  capacity: number;
  goals: string[];
  /**
   * What is wrong with its record in Redis, when something is (a field that is not what a
   * node writes: a Redis writer's, or one cut short): the fields that could be read are
   * shown, the others as none, and the other nodes are listed all the same.
   */
  malformed?: string;
}

/**
 * This node as cluster.status lists it when Redis cannot be read: from its memory, as its
 * heartbeat would write it (`lastBeat`: the last heartbeat Redis took, if any). `alive` is
 * what the others read of it: its lease key, set by that heartbeat, lives lease_ms; once that
 * has run out they take it for dead (and may take its goals over), though it still answers.
 */
export function ownStatus(
  ctx: Pick<NodeContext, "identity" | "config">,
  running: string[],
  lastBeat: number | undefined,
  now = Date.now(),
): NodeStatus {
  return {
    node_id: ctx.identity.nodeId,
    alive: lastBeat !== undefined && now - lastBeat < ctx.config.cluster.leaseMs,
    last_heartbeat: lastBeat === undefined ? null : new Date(lastBeat).toISOString(),
    key_id: ctx.identity.keyId,
    host: ctx.identity.host,
    pid: process.pid,
    running: running.length,
    capacity: ctx.config.limits.maxConcurrentGoals,
    goals: running,
  };
}

/** Every node that ever joined, whether it heartbeats, its load and goals. */
export async function listNodes(ctx: Pick<NodeContext, "redis">): Promise<NodeStatus[]> {
  // A junk key where the set of nodes should be (a Redis writer's) is said by name: Redis's
  // WRONGTYPE names no key, and it is no ACL's refusal.
  const ids = (
    await readMirror(() =>
      ctx.redis.smembers(RedisKeys.nodes).catch(naming(RedisKeys.nodes, "a set of node ids")),
    )
  ).sort();
  const pipe = ctx.redis.pipeline();
  for (const id of ids) pipe.hgetall(RedisKeys.node(id)).exists(RedisKeys.alive(id));
  const rows = await readMirror(async () => {
    const r = (await pipe.exec()) ?? [];
    // A record that is no hash is said malformed below; any other error (NOPERM) is a refusal
    // of the read, not a malformed record.
    const failed = r.find(([e]) => e && !WRONGTYPE.test(e.message))?.[0];
    if (failed) throw failed;
    return r;
  });
  return ids.map((id, i) => {
    // A key that is no hash (a Redis writer's): its read fails, and it is said malformed.
    const [wrongType, h] = rows[2 * i] ?? [];
    const s = nodeOf(id, (wrongType ? {} : (h ?? {})) as Record<string, string>, rows[2 * i + 1]?.[1] === 1);
    if (wrongType) s.malformed = `its record in Redis is malformed: it is not a hash (${RedisKeys.node(id)})`;
    return s;
  });
}

const WRONGTYPE = /^WRONGTYPE\b/;

/** Rethrows a WRONGTYPE reply on `key` as one naming the key and what a node keeps there. */
function naming(key: string, what: string): (e: unknown) => never {
  return (e: unknown) => {
    const text = (e as Error | undefined)?.message ?? "";
    if (e instanceof ReplyError && WRONGTYPE.test(text))
      throw new ReplyError(`${text} (the key ${key} holds another type; the cluster keeps ${what} there)`);
    throw e;
  };
}

/** The furthest from 1970 a Date can be (ms): a heartbeat past it has no ISO time. */
const LATEST_DATE_MS = 8.64e15;

/** One node's record as cluster.status lists it; each field that is not what a node writes is named in `malformed`. */
function nodeOf(id: string, h: Record<string, string>, alive: boolean): NodeStatus {
  const wrong: string[] = [];
  const count = (field: "pid" | "running" | "capacity"): number => {
    const v = h[field];
    if (v === undefined) return 0;
    const n = Number(v);
    if (Number.isSafeInteger(n) && n >= 0) return n;
    wrong.push(`${field} is not a count`);
    return 0;
  };
  let last_heartbeat: string | null = null;
  if (h.last_heartbeat) {
    const beat = Number(h.last_heartbeat);
    if (Number.isFinite(beat) && Math.abs(beat) <= LATEST_DATE_MS)
      last_heartbeat = new Date(beat).toISOString();
    else wrong.push("last_heartbeat is not a time in ms");
  }
  let goals: string[] = [];
  if (h.goals) {
    try {
      const v = JSON.parse(h.goals) as unknown;
      if (!Array.isArray(v) || !v.every((g) => typeof g === "string")) throw new Error("not a list of ids");
      goals = v;
    } catch {
      wrong.push("goals is not a JSON list of goal ids");
    }
  }
  const s: NodeStatus = {
    node_id: id,
    alive,
    last_heartbeat,
    key_id: h.key_id ?? "",
    host: h.host ?? "",
    pid: count("pid"),
    running: count("running"),
    capacity: count("capacity"),
    goals,
  };
  if (wrong.length > 0) s.malformed = `its record in Redis is malformed: ${wrong.join("; ")}`;
  return s;
}

/**
 * Whether Redis keeps the cluster's state on disk: "aof" (appendonly), "rdb" (save
 * points), both, "none" (a Redis restart loses the queued goals and the goals' view), or
 * "unknown" when Redis refuses CONFIG (managed services often do) or does not answer.
 */
export async function redisPersistence(redis: Redis): Promise<RedisPersistence> {
  try {
    const get = (key: string) => withTimeout(redis.config("GET", key) as Promise<string[]>, REDIS_ANSWER_MS);
    const [, aof] = await get("appendonly");
    const [, save] = await get("save");
    if (aof === undefined || save === undefined) return "unknown";
    const kinds = [aof === "yes" ? "aof" : "", save.trim() !== "" ? "rdb" : ""].filter((k) => k !== "");
    return kinds.length === 0 ? "none" : (kinds.join("+") as RedisPersistence);
  } catch {
    return "unknown";
  }
}
