// A routed goal.cancel's reason is read from Redis, where any writer could have put it, and
// becomes the goal's error, which goal.status hands to JSON readers and the dashboard: it is
// taken only as bounded text without control characters (an escape sequence in it would
// reach a reader's terminal). Real redis-server; the Runtime is the part this path reads.

import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import { ClusterGoals } from "../../src/cluster/goal-view.js";
import { UNSTARTED_CANCEL } from "../../src/kernel/goal-store.js";
import { stopAll } from "./fixture.js";
import { type RedisAsNode, startRedisAsNode } from "./support/node-user.js";
import { noGoal, standInNode } from "./support/stand-in-node.js";

const NODE = "n-reason";
let redis: RedisAsNode;
let raw: Redis;

beforeAll(async () => {
  redis = await startRedisAsNode(NODE);
  raw = redis.raw;
});

afterAll(stopAll);

function node(): ClusterGoals {
  const { ctx, runner, kept } = standInNode({ nodeId: NODE, redis: redis.owner, goals: { cancel: noGoal } });
  return new ClusterGoals(
    ctx,
    { remove: async () => 0 } as never,
    (id, reason) => runner.cancel(id, reason),
    (id, end) => runner.announceEnd(id, end),
    () => Date.now(),
    kept,
  );
}

async function queued(goalId: string): Promise<void> {
  await new GoalMirror(raw).create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
}

it("keeps a routed cancel's reason as bounded text without control characters", async () => {
  const goalId = "g_reasoncontrol";
  await queued(goalId);
  const reason = `session s1 ended\u001b]0;owned\u0007\u001b[2J\r\nfake line\u0000${"x".repeat(600)}`;
  await node().handleCommand({ type: "goal.cancel", goal_id: goalId, reason });
  const error = (await raw.hget(`aido:goal:${goalId}`, "error")) ?? "";
  expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("cancelled");
  expect(error.startsWith("session s1 ended ]0;owned  [2J  fake line ")).toBe(true);
  expect(error).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  expect(error).toHaveLength(500);
});

it("gives a routed cancel without a reason the unstarted goal's usual error", async () => {
  const goalId = "g_reasonnone";
  await queued(goalId);
  await node().handleCommand({ type: "goal.cancel", goal_id: goalId, reason: 42 } as never);
  expect(await raw.hget(`aido:goal:${goalId}`, "error")).toBe(UNSTARTED_CANCEL);
});
