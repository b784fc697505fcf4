// goal.wait on a node that does not own the goal wakes when the owner announces the goal's
// end (cluster/event-stream.ts GoalEndWatch): one reader of the goal-ends stream per node,
// started with the first waiter and gone with the last, instead of every waiter polling
// Redis. Against a real redis-server.

import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeContext } from "../../src/cluster/context.js";
import { announceWrittenEnd, GoalEndWatch } from "../../src/cluster/event-stream.js";
import type { ClusterGoalStatus } from "../../src/cluster/goal-mirror.js";
import { ClusterGoals } from "../../src/cluster/goal-view.js";
import { KeptCancels } from "../../src/cluster/kept-cancels.js";
import { openDatabase } from "../../src/db/database.js";
import type { GoalStatus } from "../../src/kernel/goal-store.js";
import { type RedisServer, startRedis, stopAll } from "./fixture.js";

let server: RedisServer;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { lazyConnect: false });
});

afterAll(async () => {
  redis.disconnect();
  await stopAll();
});

const clients = async () =>
  String(await redis.client("LIST"))
    .trim()
    .split("\n").length;
/** The number of connections Redis has, once it settles at `n` (a reader connects and leaves asynchronously). */
async function clientsBecome(n: number): Promise<number> {
  let now = await clients();
  for (let i = 0; i < 100 && now !== n; i++) {
    await new Promise((r) => setTimeout(r, 20));
    now = await clients();
  }
  return now;
}
const log: string[] = [];
const next = (wakes: string[], n: number) =>
  new Promise<void>((resolve, reject) => {
    const t0 = Date.now();
    const poll = () => {
      if (wakes.length >= n) resolve();
      else if (Date.now() - t0 > 5_000) reject(new Error(`woken ${wakes.length} times, expected ${n}`));
      else setTimeout(poll, 10);
    };
    poll();
  });

describe("GoalEndWatch", () => {
  it("wakes the waiters of the goal whose end is announced, and only them", async () => {
    const watch = new GoalEndWatch(redis, (m) => log.push(m));
    const wakes: string[] = [];
    const a1 = watch.subscribe("g_one", () => wakes.push("a1"));
    const a2 = watch.subscribe("g_one", () => wakes.push("a2"));
    const b = watch.subscribe("g_two", () => wakes.push("b"));
    await Promise.all([a1.ready, a2.ready, b.ready]);
    await announceWrittenEnd(redis, "g_one");
    await next(wakes, 2);
    expect(wakes.sort()).toEqual(["a1", "a2"]);
    // An announcement from before a subscription does not wake it; one after does.
    const c = watch.subscribe("g_three", () => wakes.push("c"));
    await c.ready;
    await announceWrittenEnd(redis, "g_two");
    await next(wakes, 3);
    expect(wakes).toContain("b");
    expect(wakes).not.toContain("c");
    for (const s of [a1, a2, b, c]) s.unsubscribe();
    watch.close();
    expect(log).toEqual([]);
  });

  it("holds one Redis connection while anyone waits, and none once the last waiter left", async () => {
    // Only this test's own connection once the first test's reader has gone.
    const before = await clientsBecome(1);
    const watch = new GoalEndWatch(redis, () => {});
    const subs = Array.from({ length: 50 }, (_, i) => watch.subscribe(`g_${i}`, () => {}));
    await Promise.all(subs.map((s) => s.ready));
    expect(await clientsBecome(before + 1)).toBe(before + 1);
    for (const s of subs) s.unsubscribe();
    expect(await clientsBecome(before)).toBe(before);
    // A new waiter starts a reader again.
    const again = watch.subscribe("g_again", () => {});
    await again.ready;
    expect(await clientsBecome(before + 1)).toBe(before + 1);
    watch.close();
    expect(await clientsBecome(before)).toBe(before);
  });

  it("says when Redis does not answer, so the waiter polls instead", async () => {
    const dead = new Redis("redis://127.0.0.1:1", {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    dead.on("error", () => {});
    const watch = new GoalEndWatch(dead, () => {});
    const s = watch.subscribe("g_x", () => {});
    await expect(s.ready).rejects.toThrow();
    s.unsubscribe();
    watch.close();
    dead.disconnect();
  });
});

describe("goal.wait", () => {
  it("returns at once when the end is announced while it is reading the goal, not at the next re-read", async () => {
    const goalId = "g_raced";
    let reads = 0;
    let midRead: () => void = () => {};
    const during = new Promise<void>((r) => {
      midRead = r;
    });
    let answer: (s: ClusterGoalStatus) => void = () => {};
    const status = (state: GoalStatus["state"]) =>
      ({ id: goalId, state, submitted_via: "n1", node: "n1" }) as unknown as ClusterGoalStatus;
    const mirror = {
      status: () => {
        reads++;
        // The first read answers "running" only after the end was announced meanwhile
        // (two connections: the wake can come before this read's answer).
        if (reads === 1) {
          midRead();
          return new Promise<ClusterGoalStatus>((r) => {
            answer = r;
          });
        }
        return Promise.resolve(status("succeeded"));
      },
    };
    const ctx = { config: {}, rt: {}, redis, mirror, identity: { nodeId: "n2" }, log: () => {} };
    const goals = new ClusterGoals(
      ctx as unknown as NodeContext,
      {} as never,
      () => {
        throw new Error("no cancel in this test");
      },
      async () => {},
      () => Date.now(),
      new KeptCancels(openDatabase(":memory:"), () => {}),
    );
    // Another node's watch, to know when the announcement has been read back.
    const probe = new GoalEndWatch(redis, () => {});
    const seen: string[] = [];
    const p = probe.subscribe(goalId, () => seen.push("woken"));
    await p.ready;
    try {
      const waited = goals.wait(goalId, 10_000);
      await during;
      await announceWrittenEnd(redis, goalId);
      await next(seen, 1);
      await new Promise((r) => setTimeout(r, 50));
      // Timed from the stale answer: the wait's next read is at once, not after its 2 s
      // re-read pause. Timed from before the wait, the Redis round trips above (a loaded
      // machine) counted against the bound too.
      const answered = Date.now();
      answer(status("running"));
      expect((await waited).state).toBe("succeeded");
      expect(Date.now() - answered).toBeLessThan(1_000);
    } finally {
      p.unsubscribe();
      probe.close();
      goals.close();
    }
  });
});
