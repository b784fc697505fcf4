// test/cluster/support/orphans.ts — an orphan for the sweep (cluster/job-intake.ts
// requeueOrphans) to find: a goal a node queued whose job failed in BullMQ while its goal
// stayed queued. Made with the goal queue paused, so that no node takes the job first.

import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { expect } from "vitest";
import { GOAL_QUEUE, RedisKeys } from "../../../src/cluster/redis-keys.js";
import { type ProviderServer, turn } from "../../support/provider-server.js";
import { forGoal, manifest, type Node } from "../fixture.js";

/** A goal `node` queued whose model answers `done <name>`; its id. Call it with the queue paused. */
export async function makeOrphan(
  server: ProviderServer,
  node: Node,
  name: string,
  raw: Redis,
): Promise<string> {
  server.script(forGoal(name), [turn.text(`done ${name}`)]);
  const c = await node.client();
  const goalId = (await c.call("goal.submit", { goal: `run ${name}`, manifest: manifest() })).goal_id;
  expect(await raw.hget(RedisKeys.goal(goalId), "state")).toBe("queued");
  return goalId;
}

/** The goal's job failed, as BullMQ keeps one: in the failed set, `reason` its failedReason. */
export async function failJob(
  raw: Redis,
  goalId: string,
  reason = "goal still runs on another node",
): Promise<void> {
  await raw
    .multi()
    .lrem(`bull:${GOAL_QUEUE}:wait`, 0, goalId)
    .lrem(`bull:${GOAL_QUEUE}:paused`, 0, goalId)
    .zadd(`bull:${GOAL_QUEUE}:failed`, Date.now(), goalId)
    .hset(`bull:${GOAL_QUEUE}:${goalId}`, "failedReason", reason)
    .exec();
}

/** Runs `fn` with the goal queue paused (so no node takes a job while an orphan is made). */
export async function withPausedQueue(redisUrl: string, fn: (queue: Queue) => Promise<void>): Promise<void> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(GOAL_QUEUE, { connection });
  try {
    await queue.pause();
    await fn(queue);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** Whether the goal's job left the failed set (the sweep put it back). */
export const backInQueue = (raw: Redis, goalId: string) => async () =>
  (await raw.zscore(`bull:${GOAL_QUEUE}:failed`, goalId)) === null ? true : undefined;
