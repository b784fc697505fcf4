// cluster/event-stream.ts — goal events across nodes. The owner appends each event of its
// goals, as the socket shows it (daemon/events.ts) plus the node it happened on, to the
// goal's stream and to the all-goals stream (XADD with MAXLEN ~, so Redis memory is
// bounded); events.subscribe on any node reads them back with XREAD on a connection of its
// own. Publishing never waits on Redis and never fails an agent: Redis commands of one
// connection keep their order, and an event lost while Redis is down is lost to remote
// watchers only (the owner's own stream, audit and SQLite keep everything).

import type { Redis } from "ioredis";
import type { WireEvent } from "../daemon/events.js";
import { errorMessage } from "../errors.js";
import { ALL_EVENTS_MAXLEN, ENDED_TTL_SECONDS, GOAL_EVENTS_MAXLEN, RedisKeys } from "./redis-keys.js";

/** An event as it travels between nodes: the wire event and the node it happened on. */
export type ClusterEvent = WireEvent & { node: string };

export function publishEvent(redis: Redis, ev: ClusterEvent, log: (m: string) => void): void {
  if (ev.goal_id === null) return;
  const data = JSON.stringify(ev);
  const pipe = redis
    .pipeline()
    .xadd(RedisKeys.goalEvents(ev.goal_id), "MAXLEN", "~", GOAL_EVENTS_MAXLEN, "*", "e", data)
    .xadd(RedisKeys.allEvents, "MAXLEN", "~", ALL_EVENTS_MAXLEN, "*", "e", data);
  if (ev.type === "goal.finished") pipe.expire(RedisKeys.goalEvents(ev.goal_id), ENDED_TTL_SECONDS);
  pipe.exec().catch((e: unknown) => log(`publishing an event of ${ev.goal_id} failed: ${errorMessage(e)}`));
}

/** The id of the newest entry of a stream now ("0-0" when empty): read from there. */
export async function streamTip(redis: Redis, key: string): Promise<string> {
  const last = (await redis.xrevrange(key, "+", "-", "COUNT", 1)) as [string, string[]][];
  return last[0]?.[0] ?? "0-0";
}

/**
 * Deliver the events of `key` after `from` to `deliver` until stop() or `deliver` returns
 * "stop". One blocking connection per reader, closed when it ends.
 */
export function readEvents(
  redis: Redis,
  key: string,
  from: string,
  deliver: (ev: ClusterEvent) => "stop" | undefined,
  log: (m: string) => void,
): { stop(): void } {
  const reader = blockingReader(redis);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    reader.disconnect();
  };
  void (async () => {
    let last = from;
    while (!stopped) {
      let batch: [string, [string, string[]][]][] | null;
      try {
        batch = (await reader.xread("COUNT", 500, "BLOCK", 1000, "STREAMS", key, last)) as typeof batch;
      } catch (e) {
        if (stopped) return;
        log(`reading ${key} failed (retrying): ${errorMessage(e)}`);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [, entries] of batch ?? []) {
        for (const [id, fields] of entries) {
          last = id;
          if (stopped) return;
          try {
            if (deliver(JSON.parse(fields[1] ?? "null") as ClusterEvent) === "stop") {
              stop();
              return;
            }
          } catch {
            // An entry that is not an event: skipped.
          }
        }
      }
    }
  })();
  return { stop };
}

/**
 * A connection of its own for a blocking read (XREAD BLOCK, BLPOP): connected at once, and
 * queueing its command while Redis is away instead of failing it (its loop retries anyway).
 */
export function blockingReader(redis: Redis): Redis {
  const r = redis.duplicate({ lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null });
  r.on("error", () => {});
  return r;
}
