// cluster/redis-failure.ts — what kind of failure a Redis command's error is: Redis did not
// answer, it answered that it cannot serve now (a transient state of its own), or it refused
// this node. Told apart because each sends the person reading it somewhere else: the network,
// waiting, or the node's ACL user (docs/scale-out.md "Redis down").

import { ReplyError } from "ioredis";

export { isAclRefusal } from "./refusal-advice.js";

/**
 * Why a command failed: Redis did not answer (down, cut off, too slow) or answered that it
 * cannot serve now (`unreachable`: try again when it is back), or it answered with a refusal
 * (`refused`: an ACL `NOPERM`, `WRONGPASS`, `NOAUTH`, a read-only replica, no memory left).
 */
export type RedisFailure = "unreachable" | "refused";

/**
 * Replies by which a live Redis says it cannot serve now, not that it refuses this node:
 * loading its data, running a long script, its replica link down, the cluster not ready.
 * They pass without anyone fixing an ACL.
 */
const NOT_NOW = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

/** Whether `e` (from a Redis command) is Redis's refusal rather than its silence. */
export function redisFailureOf(e: unknown): RedisFailure {
  const first = queuedError(e) ?? e;
  return first instanceof ReplyError && !NOT_NOW.test((first as Error).message) ? "refused" : "unreachable";
}

/**
 * A Redis error's text, with why a transaction was discarded: EXECABORT alone ("because of
 * previous errors") hides the NOPERM or OOM that refused a command queued in it.
 */
export function redisErrorText(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const first = queuedError(e);
  return first === undefined ? text : `${text.replace(/\.$/, "")}: ${first.message}`;
}

/** The first error of a command queued in a transaction Redis discarded (ioredis previousErrors). */
function queuedError(e: unknown): Error | undefined {
  const prev = (e as { previousErrors?: unknown } | null)?.previousErrors;
  return Array.isArray(prev) && prev[0] instanceof Error ? prev[0] : undefined;
}
