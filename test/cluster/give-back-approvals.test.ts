// A goal this node gives back to the queue (it began to shut down as it took the goal) has only
// this node's mirrored approvals dropped. Before, the give-back dropped every node's approvals
// of the goal: another node that took the re-queued goal meanwhile and asked an approval had
// it gone from approval.list on every node, and its agent waited for an answer no one could
// give. Real redis-server and a real BullMQ job (taken with a lock, moved back to waiting);
// the Runtime is the part the give-back reads: it is closing, and refuses the goal.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Job, Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import type { ClusterGoalRunner, GoalJob } from "../../src/cluster/goal-runner.js";
import { GOAL_QUEUE } from "../../src/cluster/redis-keys.js";
import { type RedisServer, startRedis, stopAll } from "./fixture.js";
import { closingGoals, mirrorApproval, standInNode } from "./support/stand-in-node.js";

const NODE = "n-leaving";
const OTHER = "n-taker";
let server: RedisServer;
let redis: Redis;
let queue: Queue<GoalJob>;
let worker: Worker<GoalJob>;
let home: string;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
  queue = new Queue<GoalJob>(GOAL_QUEUE, { connection: redis });
  // No processor: the test takes the job itself, as the node's worker would.
  worker = new Worker<GoalJob>(GOAL_QUEUE, null, { connection: redis, autorun: false });
  home = mkdtempSync(join(tmpdir(), "aido-give-back-"));
});

afterAll(async () => {
  await worker?.close();
  await queue?.close();
  redis?.disconnect();
  await stopAll();
  rmSync(home, { recursive: true, force: true });
});

/** This node, shutting down: its Runtime refuses the goal, so the runner gives it back. */
function leavingNode(): { runner: ClusterGoalRunner; audited: string[] } {
  const audited: string[] = [];
  const { runner } = standInNode({
    nodeId: NODE,
    redis,
    home,
    goals: closingGoals,
    audit: (kind) => audited.push(kind),
  });
  return { runner, audited };
}

describe("a goal given back to the queue as its node shuts down", () => {
  it("keeps the approval another node that took it meanwhile asked, and drops this node's", async () => {
    const goalId = "g_givebackapprovals";
    const mirror = new GoalMirror(redis);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    await queue.add(
      "goal",
      { goal_id: goalId, goal: `run ${goalId}`, inputs: { names: [], entries: [] }, via: NODE },
      { jobId: goalId },
    );
    const token = "token-leaving";
    const job = (await worker.getNextJob(token)) as Job<GoalJob>;
    expect(job.id).toBe(goalId);
    expect(await mirror.claim(goalId, NODE)).toEqual({ kind: "claimed" });
    // Left by this node's take of the goal: its approvals go with the give-back.
    await mirrorApproval(redis, `ap_${goalId}_leaving`, goalId, NODE);
    // The window: once the job is back in the queue, another node takes the goal and asks an
    // approval before this node's give-back has dropped the approvals of it.
    const moveToWait = job.moveToWait.bind(job);
    job.moveToWait = async (t?: string) => {
      const back = await moveToWait(t);
      expect(await redis.hget(`aido:goal:${goalId}`, "state")).toBe("queued");
      expect(await mirror.claim(goalId, OTHER)).toEqual({ kind: "claimed" });
      await mirrorApproval(redis, `ap_${goalId}_taker`, goalId, OTHER);
      return back;
    };
    const { runner, audited } = leavingNode();
    await expect(runner.take(goalId, () => runner.runHere(job, token))).rejects.toThrow(
      /given back to the queue/,
    );
    expect(audited).toEqual(["cluster.goal_released"]);
    expect(await redis.hexists("aido:approvals", `ap_${goalId}_taker`)).toBe(1);
    expect(await redis.hexists("aido:approvals", `ap_${goalId}_leaving`)).toBe(0);
  });
});
