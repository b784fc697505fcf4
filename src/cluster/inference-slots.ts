// cluster/inference-slots.ts — `inference.cluster_max_concurrent`: a cap on model calls in
// flight per provider across every node, to protect an API quota the nodes share. A
// semaphore in Redis: a sorted set per provider whose members are the slots held, scored by
// when their lease runs out. Taking a slot drops the expired ones first, so the slots of a
// node that died come back within one lease; a holder renews its lease every third of it
// while its call runs, and gives the slot back when the call ends. A call waits for a slot
// (its own local slot held, as a retry's backoff does), polling; it stops waiting when its
// agent is stopped. Redis away: the cap cannot be kept, and a call that waited one lease
// for it goes ahead (running goals finish; said once in the log).

import { randomUUID } from "node:crypto";
import { AidoError, ErrorCode } from "../errors.js";
import type { NodeContext } from "./context.js";
import { RedisKeys } from "./redis-keys.js";

const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  return 1
end
return 0`;

const POLL_MS = 50;

export class InferenceSlots {
  private warnedDown = false;

  constructor(
    private readonly ctx: NodeContext,
    private readonly max: number,
  ) {}

  /** Wait for one of the provider's cluster-wide slots; resolves to its release. */
  async acquire(provider: string, signal?: AbortSignal): Promise<() => void> {
    const { redis, config, identity, log } = this.ctx;
    const lease = config.cluster.leaseMs;
    const key = RedisKeys.inferenceSlots(provider);
    const member = `${identity.nodeId}:${randomUUID()}`;
    const downSince = { at: undefined as number | undefined };
    for (;;) {
      if (signal?.aborted) throw new AidoError(ErrorCode.cancelled, `inference on ${provider} cancelled`, {});
      try {
        const now = Date.now();
        const got = await redis.eval(
          ACQUIRE,
          1,
          key,
          String(now),
          String(this.max),
          String(now + lease),
          member,
        );
        downSince.at = undefined;
        if (got === 1) break;
      } catch {
        downSince.at ??= Date.now();
        if (Date.now() - downSince.at >= lease) {
          if (!this.warnedDown)
            log(`cluster: Redis unreachable, model calls go ahead without inference.cluster_max_concurrent`);
          this.warnedDown = true;
          return () => {};
        }
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    this.warnedDown = false;
    const renew = setInterval(
      () => {
        redis.zadd(key, "XX", Date.now() + lease, member).catch(() => 0);
      },
      Math.max(100, Math.floor(lease / 3)),
    );
    return () => {
      clearInterval(renew);
      redis.zrem(key, member).catch(() => 0);
    };
  }
}
