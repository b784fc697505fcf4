// cluster/context.ts — what the parts of a node share (cluster/node.ts builds it): its
// config, Runtime, Redis connection, goal mirror and identity, plus the two helpers every
// part needs: a bounded wait, and the goal.finished event a goal's end is announced with.

import type { Redis } from "ioredis";
import type { ClusterConfig, Config } from "../config.js";
import { withoutConfigSecrets } from "../config-secrets.js";
import type { WireEvent } from "../daemon/events.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { GoalStatus } from "../kernel/goal-store.js";
import type { Runtime } from "../kernel/runtime.js";
import type { CommandSender } from "./command-sender.js";
import type { GoalMirror } from "./goal-mirror.js";
import type { NodeIdentity } from "./identity.js";
import { type RedisFailure, redisErrorText, redisFailureOf } from "./redis-failure.js";

export type ClusteredConfig = Config & { cluster: ClusterConfig };

export interface NodeContext {
  config: ClusteredConfig;
  rt: Runtime;
  /** Commands of the node (mirror, heartbeats, routing): they fail at once while Redis is down. */
  redis: Redis;
  mirror: GoalMirror;
  /** Commands to other nodes, their answers read on one connection (command-sender.ts). */
  sender: CommandSender;
  identity: NodeIdentity;
  log: (m: string) => void;
}

/**
 * `text` as a node may record it or hand it to Redis: the secrets of its config (its Redis
 * URL's, its providers' API keys, its MCP servers' headers: config-secrets.ts) blanked ("***"). What a node is
 * given through Redis (a routed command's fields) is anyone's who can write there, and an
 * error it quotes may name the URL (security/blank-secrets.ts).
 */
export function withoutNodeSecrets(text: string, config: ClusteredConfig): string {
  return withoutConfigSecrets(text, config);
}

/** `p`, or an error once `ms` passed without it settling. */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** How long a client's read or submit waits for Redis before it is refused. */
export const REDIS_ANSWER_MS = 5_000;

export { isAclRefusal, type RedisFailure, redisErrorText, redisFailureOf } from "./redis-failure.js";

/** The failure a readMirror error carries (details.redis), if it is one. */
export function readFailureOf(e: unknown): RedisFailure | undefined {
  if (!(e instanceof AidoError) || e.code !== ErrorCode.clusterUnavailable) return undefined;
  const r = (e.details as { redis?: unknown } | undefined)?.redis;
  return r === "refused" || r === "unreachable" ? r : undefined;
}

/**
 * Why a read failed (`e`, readMirror's error), as an answer says it: a connection Redis
 * refused at its handshake (`handshake`, connections.ts handshakeRefusal: a wrong password)
 * is refused, though its commands only fail as unreachable.
 */
export function readFailure(
  e: unknown,
  handshake: Error | undefined,
): { redis: RedisFailure; reason: string } {
  const failure = readFailureOf(e) ?? "unreachable";
  const refusal = failure === "unreachable" ? handshake : undefined;
  if (refusal)
    return { redis: "refused", reason: `it refused this node's connection: ${errorMessage(refusal)}` };
  return { redis: failure, reason: errorMessage(e).replace(REDIS_FAILED[failure], "") };
}

/**
 * Read from Redis for a client: a clear cluster_unavailable error when it cannot be reached
 * or refuses the read, saying which (details.redis: RedisFailure).
 */
export async function readMirror<T>(fn: () => Promise<T>, ms = REDIS_ANSWER_MS): Promise<T> {
  try {
    return await withTimeout(fn(), ms);
  } catch (e) {
    if (e instanceof AidoError) throw e;
    const redis = redisFailureOf(e);
    throw new AidoError(ErrorCode.clusterUnavailable, `${REDIS_FAILED[redis]}${redisErrorText(e)}`, {
      redis,
    });
  }
}

/** What readMirror's message begins with, by failure: what follows is Redis's own text. */
export const REDIS_FAILED: Record<RedisFailure, string> = {
  unreachable: "the cluster's Redis cannot be reached: ",
  refused: "the cluster's Redis refused this node's read: ",
};

/** A goal's end as the event streams show it (goal.finished). */
export function goalEndEvent(s: GoalStatus): WireEvent {
  return {
    type: "goal.finished",
    time: s.finished_at ?? new Date().toISOString(),
    goal_id: s.goal_id,
    state: s.state,
    usage: s.usage,
    ...(s.error !== undefined ? { error: s.error } : {}),
  };
}
