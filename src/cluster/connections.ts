// cluster/connections.ts — a node's connections to Redis and their socket timeouts. Each
// connection is dropped and made again once a command on it has had no answer for its socket
// timeout. A silent one (a partition that drops packets without a reset: a firewall that
// forgot it) otherwise held what was sent on it until TCP gave it up, minutes later: the
// renewal sent on the node's own (the node stayed fenced after the partition healed), the
// queue's submissions, the worker's job locks and ends, the readers' routed commands.
// The node's own and the queue's: the fence point (fence.ts). One that blocks legitimately
// waits as long as it blocks, so the fence point after that: the readers' (event-stream.ts,
// commands.ts: READ_BLOCK_MS) and the Worker's. BullMQ duplicates the Worker's connection for
// its commands (job locks, the stalled check, a job's end) and for its fetch of the next job
// (BZPOPMIN: drainDelay, 5 s, with no delayed job; its maximumBlockTimeout, 10 s, at most),
// so both get the fetch's bound; the fetch is bounded besides by BullMQ's own watchdog, which
// resets its connection a second past the fetch's timeout.

import type { Redis as RedisClient } from "ioredis";
import { Redis } from "ioredis";
import type { ClusterConfig } from "../config.js";
import { fenceMargin } from "./fence.js";
import { redisFailureOf } from "./redis-failure.js";
import { redisGreeting } from "./redis-greeting.js";

/** How long a blocking read of the node blocks at most (XREAD BLOCK, BLPOP). */
export const READ_BLOCK_MS = 1_000;
/** How long BullMQ's Worker blocks fetching the next job at most (its drainDelay is 5 s). */
export const WORKER_FETCH_MAX_MS = 10_000;
/** The Worker's drainDelay (seconds): its fetch blocks that long with no delayed job. */
export const WORKER_DRAIN_DELAY_S = 5;

function reconnectDelay(times: number): number {
  return Math.min(100 * times, 2_000);
}

/** The node's own connection (not connected yet: lazy) and the queue's, each with the fence point. */
export function nodeConnections(c: ClusterConfig): { redis: RedisClient; queue: RedisClient } {
  const options = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: reconnectDelay,
    socketTimeout: c.leaseMs - fenceMargin(c.leaseMs),
  };
  const redis = new Redis(c.redisUrl, { ...options, lazyConnect: true });
  // Reported through failed commands and the node's log; a refusal of the handshake (a wrong
  // password, an ACL user disabled) is kept: commands then fail only as "not writeable". A
  // Redis still loading its data (LOADING) refuses nothing: that is an outage, not kept.
  keepHandshakeRefusal(redis);
  const queue = new Redis(c.redisUrl, { ...options });
  keepHandshakeRefusal(queue);
  return { redis, queue };
}

/**
 * Keep what Redis refused `r`'s handshake with, as long as that is the last word of Redis on
 * it: a new connection made (its handshake's outcome yet to come), a failure that is no
 * refusal (Redis since gone: refused, reset) or the connection ready ends it. A refusal kept
 * past them said a Redis that went down afterwards still refused the node's password.
 */
function keepHandshakeRefusal(r: RedisClient): void {
  // A connection made that drops before it is ready (its first write fails: EPIPE, a reset)
  // may be one Redis refused with a line lost with the socket (maxclients): Redis is asked
  // again, writing nothing, and its greeting, if it is an error, is the refusal kept.
  let made = false;
  r.on("error", (e: unknown) => {
    if (redisFailureOf(e) === "refused") {
      handshakeRefusals.set(r, e as Error);
      return;
    }
    handshakeRefusals.delete(r);
    const dropped = made && /\b(EPIPE|ECONNRESET)\b/.test((e as Error | undefined)?.message ?? "");
    made = false;
    if (dropped)
      void redisGreeting(r).then((refusal) => {
        if (refusal && r.status !== "ready") handshakeRefusals.set(r, refusal);
      });
  });
  r.on("connect", () => {
    made = true;
    handshakeRefusals.delete(r);
  });
  r.on("ready", () => {
    made = false;
    handshakeRefusals.delete(r);
  });
}

const handshakeRefusals = new WeakMap<RedisClient, Error>();

/**
 * What Redis refused the node's connection with when it last tried to connect (WRONGPASS,
 * NOAUTH, an ACL user turned off), while it is not connected: its commands then fail with
 * the client's "Stream isn't writeable", which says nothing of why.
 */
export function handshakeRefusal(redis: RedisClient): Error | undefined {
  return redis.status === "ready" ? undefined : handshakeRefusals.get(redis);
}

/** The connection BullMQ's Worker duplicates for its commands and its fetch. */
export function workerConnection(c: ClusterConfig): RedisClient {
  const r = new Redis(c.redisUrl, {
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
    socketTimeout: c.leaseMs - fenceMargin(c.leaseMs) + WORKER_FETCH_MAX_MS,
  });
  r.on("error", () => {});
  return r;
}

/** The socket timeout of a blocking reader duplicating `redis`: its own plus READ_BLOCK_MS (none without one). */
export function blockingTimeout(redis: RedisClient): number | undefined {
  const own = redis.options.socketTimeout;
  return own === undefined ? undefined : own + READ_BLOCK_MS;
}
