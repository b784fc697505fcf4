// cluster/event-stream.ts — goal events across nodes. The owner appends each event of its
// goals, as the socket shows it (daemon/events.ts) plus the node it happened on, to the
// goal's stream and to the all-goals stream (XADD with MAXLEN ~, so Redis memory is
// bounded); the events of one event-loop turn go out as one pipeline at its end. A goal's end,
// once its mirrored hash says so, is announced on the goal-ends stream too. events.subscribe
// on any node reads the events back with XREAD on a connection of its own, and GoalEndWatch
// wakes goal.wait callers from the goal-ends stream with one reader per node. Publishing
// never waits on Redis and never fails an agent: Redis commands of one connection keep
// their order, and an event lost while Redis is down is lost to remote watchers only (the
// owner's own stream, audit and SQLite keep everything).

import type { Redis } from "ioredis";
import type { WireEvent } from "../daemon/events.js";
import { errorMessage } from "../errors.js";
import { blockingTimeout, READ_BLOCK_MS } from "./connections.js";
import {
  ALL_EVENTS_MAXLEN,
  ENDED_TTL_SECONDS,
  GOAL_ENDS_MAXLEN,
  GOAL_EVENTS_MAXLEN,
  RedisKeys,
} from "./redis-keys.js";

/** An event as it travels between nodes: the wire event and the node it happened on. */
export type ClusterEvent = WireEvent & { node: string };

/** Events published in this event-loop turn, per connection: sent as one pipeline at its end. */
const outbox = new WeakMap<Redis, { events: ClusterEvent[]; log: (m: string) => void }>();

export function publishEvent(redis: Redis, ev: ClusterEvent, log: (m: string) => void): void {
  if (ev.goal_id === null) return;
  const queued = outbox.get(redis);
  if (queued) {
    queued.events.push(ev);
    return;
  }
  outbox.set(redis, { events: [ev], log });
  setImmediate(() => flushEvents(redis));
}

/** One pipeline for the events of a turn, in the order they happened (one connection keeps it). */
function flushEvents(redis: Redis): void {
  const queued = outbox.get(redis);
  outbox.delete(redis);
  if (!queued) return;
  const pipe = redis.pipeline();
  for (const ev of queued.events) {
    const goalId = ev.goal_id as string;
    const data = JSON.stringify(ev);
    pipe
      .xadd(RedisKeys.goalEvents(goalId), "MAXLEN", "~", GOAL_EVENTS_MAXLEN, "*", "e", data)
      .xadd(RedisKeys.allEvents, "MAXLEN", "~", ALL_EVENTS_MAXLEN, "*", "e", data);
    if (ev.type === "goal.finished") pipe.expire(RedisKeys.goalEvents(goalId), ENDED_TTL_SECONDS);
  }
  const goals = [...new Set(queued.events.map((ev) => ev.goal_id))].join(", ");
  pipe.exec().catch((e: unknown) => queued.log(`publishing events of ${goals} failed: ${errorMessage(e)}`));
}

/**
 * The end its owner wrote to a goal's hash, announced and waited for (goal-ends.ts retries it
 * when Redis refuses): `ev`, its goal.finished, when it is to go out, then the goal-ends
 * entry. One transaction, so that a refusal leaves none of it. Throws what Redis refused.
 */
export async function announceWrittenEnd(redis: Redis, goalId: string, ev?: ClusterEvent): Promise<void> {
  const tx = redis.multi();
  if (ev !== undefined) {
    const data = JSON.stringify(ev);
    tx.xadd(RedisKeys.goalEvents(goalId), "MAXLEN", "~", GOAL_EVENTS_MAXLEN, "*", "e", data)
      .xadd(RedisKeys.allEvents, "MAXLEN", "~", ALL_EVENTS_MAXLEN, "*", "e", data)
      .expire(RedisKeys.goalEvents(goalId), ENDED_TTL_SECONDS);
  }
  tx.xadd(RedisKeys.goalEnds, "MAXLEN", "~", GOAL_ENDS_MAXLEN, "*", "g", goalId);
  for (const [err] of (await tx.exec()) ?? []) if (err) throw err;
}

/** How many entries endPublished reads at a time, newest first. */
const END_SCAN_PAGE = 100;

/**
 * Whether the goal's stream holds a goal.finished that `node` published: an end whose write
 * is retried re-publishes the event only when it was lost (refused with the write) or held
 * back. Not only its last entry: events of the goal can land after its goal.finished (a stuck
 * tool call's, while the end itself waits for a retry), and the goal is announced finished
 * once. Read from the newest entry back, a page at a time, at most as many entries as the
 * stream keeps (GOAL_EVENTS_MAXLEN, trimmed approximately: twice that): a goal.finished is
 * gone only when the stream expired or that many events came after it, and then it goes out
 * again (better than never, for a watcher that reads the stream from the start).
 */
export async function endPublished(redis: Redis, goalId: string, node: string): Promise<boolean> {
  const key = RedisKeys.goalEvents(goalId);
  let end = "+";
  for (let read = 0; read < 2 * GOAL_EVENTS_MAXLEN; read += END_SCAN_PAGE) {
    const page = (await redis.xrevrange(key, end, "-", "COUNT", END_SCAN_PAGE)) as [string, string[]][];
    for (const [, fields] of page) {
      const ev = eventOf(fields);
      if (ev?.type === "goal.finished" && ev.node === node) return true;
    }
    const oldest = page.at(-1)?.[0];
    if (page.length < END_SCAN_PAGE || oldest === undefined) return false;
    end = `(${oldest}`;
  }
  return false;
}

/** A stream entry's event (its fields: "e", the JSON), or undefined when it is not one. */
function eventOf(fields: string[]): { type?: unknown; node?: unknown } | undefined {
  try {
    return (JSON.parse(fields[1] ?? "null") as { type?: unknown; node?: unknown } | null) ?? undefined;
  } catch {
    return undefined;
  }
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
  // An entry that is not an event is skipped.
  return readStream(
    redis,
    key,
    from,
    (fields) => deliver(JSON.parse(fields[1] ?? "null") as ClusterEvent),
    log,
  );
}

/** The entries of stream `key` after `from`, each entry's fields to `deliver` (readEvents). */
function readStream(
  redis: Redis,
  key: string,
  from: string,
  deliver: (fields: string[]) => "stop" | undefined,
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
        batch = (await reader.xread(
          "COUNT",
          500,
          "BLOCK",
          READ_BLOCK_MS,
          "STREAMS",
          key,
          last,
        )) as typeof batch;
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
            if (deliver(fields) === "stop") {
              stop();
              return;
            }
          } catch {
            // An entry its reader cannot take: skipped.
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
  // The node's socket timeout plus the longest a read here blocks (connections.ts):
  // without one, a silent connection held the reader until TCP gave it up, minutes later.
  const r = redis.duplicate({
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    socketTimeout: blockingTimeout(redis),
  });
  r.on("error", () => {});
  return r;
}

/**
 * Wakes goal.wait callers when a goal's end is announced: one reader of the goal-ends stream
 * for all the waiters of this node, started with the first and stopped with the last, so a
 * waiter costs nothing until its goal ends (no polling per waiter). The stream can miss an
 * end (Redis away, an owner that died: a survivor's end is published too), so waiters still
 * re-read the goal now and then.
 */
export class GoalEndWatch {
  private readonly waiters = new Map<string, Set<() => void>>();
  private reader: { stop(): void } | undefined;
  /** The reader being started: read from the stream's tip as it is now. */
  private starting: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly log: (m: string) => void,
  ) {}

  /**
   * Call `wake` when `goalId`'s end is announced from now on. `ready` resolves once the
   * reader reads from a point no later than this call, and rejects when Redis does not
   * answer (the caller then polls); `unsubscribe` ends it either way.
   */
  subscribe(goalId: string, wake: () => void): { ready: Promise<void>; unsubscribe(): void } {
    let set = this.waiters.get(goalId);
    if (!set) {
      set = new Set();
      this.waiters.set(goalId, set);
    }
    set.add(wake);
    const unsubscribe = () => {
      const s = this.waiters.get(goalId);
      if (!s?.delete(wake)) return;
      if (s.size === 0) this.waiters.delete(goalId);
      if (this.waiters.size === 0) this.stopReader();
    };
    return { ready: this.start(), unsubscribe };
  }

  close(): void {
    this.waiters.clear();
    this.stopReader();
  }

  private start(): Promise<void> {
    if (this.reader) return Promise.resolve();
    this.starting ??= (async () => {
      try {
        const from = await streamTip(this.redis, RedisKeys.goalEnds);
        // Everyone left while the tip was read: no reader needed.
        if (this.waiters.size === 0 || this.reader) return;
        this.reader = readStream(
          this.redis,
          RedisKeys.goalEnds,
          from,
          (fields) => {
            const goalId = fields[0] === "g" ? fields[1] : undefined;
            for (const wake of [...((goalId && this.waiters.get(goalId)) || [])]) wake();
            return undefined;
          },
          this.log,
        );
      } finally {
        this.starting = undefined;
      }
    })();
    return this.starting;
  }

  private stopReader(): void {
    this.reader?.stop();
    this.reader = undefined;
  }
}
