// The owner's cancel marks (ClusterGoalRunner.cancel): a cancel that ends in Redis a goal
// this node claimed but does not run leaves a mark for a take of the goal to read before it
// starts it or gives it back. The mark must not outlive every take: a restarted node's goals
// (claimed before it died, never in its Runtime) would each leave one for good. Against a
// real redis-server; the Runtime is the part of it cancel() reads, for a goal it never had.
// The race the mark exists for (a cancel between the claim and the local start) is
// test/cluster/cancel-races.test.ts, through real daemons. And a goal taken as the node
// began to shut down, cancelled while it is being given back: it ends cancelled, not refused.

import type { Job } from "bullmq";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import type { ClusterGoalRunner, GoalJob } from "../../src/cluster/goal-runner.js";
import type { RedisServer } from "./fixture.js";
import { withRedisHome } from "./support/file-cluster.js";
import { claimedGoal, closingGoals, jobOf, standInNode } from "./support/stand-in-node.js";

let server: RedisServer;
let redis: Redis;
let home: string;
// `redis` is the connection (Redis's default user), `server` the redis-server it is to.
withRedisHome("aido-cancel-marks-", (r) => ({ redis: server, raw: redis, home } = r));

const NODE = "n-restarted";

/**
 * A node whose Runtime has no record of any goal: it restarted after claiming them, or it
 * is shutting down (`closing`: it refuses a goal submitted to it).
 */
function restartedNode(closing = false): {
  runner: ClusterGoalRunner;
  audited: string[];
  marks: () => number;
} {
  const audited: string[] = [];
  const { runner } = standInNode({
    nodeId: NODE,
    redis,
    home,
    goals: { ...closingGoals, closing },
    audit: (kind) => audited.push(kind),
  });
  // The runner's marks (cancel-marks.ts), read where it keeps them: nothing else shows them.
  const marks = () => (runner as unknown as { marks: { marks: Map<string, unknown> } }).marks.marks.size;
  return { runner, audited, marks };
}

/** A goal the mirror says runs on NODE: claimed, no model call started. */
function claimed(goalId: string): Promise<void> {
  return claimedGoal(redis, goalId, { via: NODE, node: NODE });
}

/** The goal's job, whose moves back to the queue (a give-back's) are noted in `moved` (their tokens). */
function jobMovedTo(goalId: string, moved: string[]): Job<GoalJob> {
  return Object.assign(jobOf(goalId, NODE), {
    moveToWait: async (token?: string) => {
      moved.push(token ?? "");
      return 0;
    },
  });
}

describe("a cancel's mark on the owner", () => {
  it("is gone once the cancel ended a goal no take of this node is under way for (a restarted node's claimed goals)", async () => {
    const { runner, audited, marks } = restartedNode();
    const ids = ["g_markleak1", "g_markleak2", "g_markleak3"];
    for (const id of ids) await claimed(id);
    for (const id of ids) expect(await runner.cancel(id)).toBe("handled");
    for (const id of ids) expect(await redis.hget(`aido:goal:${id}`, "state")).toBe("cancelled");
    expect(audited).toEqual(ids.map(() => "cluster.goal_cancelled"));
    expect(marks()).toBe(0);
  });

  it("stays while a take of the goal is under way, for it to read, and goes when the take ends", async () => {
    const { runner, marks } = restartedNode();
    await claimed("g_marktake");
    await runner.take("g_marktake", async () => {
      expect(await runner.cancel("g_marktake")).toBe("handled");
      expect(marks()).toBe(1);
      // A second cancel meanwhile finds it ended, and leaves the first one's mark in place.
      expect(await runner.cancel("g_marktake")).toBe("handled");
      expect(marks()).toBe(1);
      return "taken";
    });
    await new Promise((r) => setImmediate(r));
    expect(marks()).toBe(0);
  });
});

describe("a goal taken as its node began to shut down", () => {
  it("ends cancelled, not refused, when a cancel ends it while it is being given back", async () => {
    const { runner, audited } = restartedNode(true);
    const goalId = "g_closecancel";
    await claimed(goalId);
    const moved: string[] = [];
    const job = jobMovedTo(goalId, moved);
    // Redis holds writes: the give-back's release waits, and the cancel's write comes after it.
    const control = new Redis(server.url);
    await control.call("CLIENT", "PAUSE", "5000", "WRITE");
    let ran: Promise<string>;
    let cancelled: Promise<string>;
    try {
      ran = runner.take(goalId, () => runner.runHere(job, "token-1"));
      await new Promise((r) => setTimeout(r, 200));
      cancelled = runner.cancel(goalId);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await control.call("CLIENT", "UNPAUSE");
      control.disconnect();
    }
    expect(await cancelled).toBe("handled");
    expect(await ran).toBe("cancelled");
    expect(moved).toEqual([]);
    expect(await redis.hget(`aido:goal:${goalId}`, "state")).toBe("cancelled");
    expect(audited).toEqual(["cluster.goal_cancelled"]);
  });

  it("is audited as lost, not refused, when another node took it over before it could be given back", async () => {
    const { runner, audited } = restartedNode(true);
    const goalId = "g_closetaken";
    await claimed(goalId);
    // A node that judged this one dead (paused past its lease as it took the goal) took it over.
    expect(await new GoalMirror(redis).takeover(goalId, NODE, "n-survivor")).toBe("taken");
    const moved: string[] = [];
    const job = jobMovedTo(goalId, moved);
    expect(await runner.take(goalId, () => runner.runHere(job, "token-1"))).toBe("skipped");
    // Its job stays with the survivor, and so does the goal.
    expect(moved).toEqual([]);
    expect(await redis.hgetall(`aido:goal:${goalId}`)).toMatchObject({
      state: "running",
      owner: "n-survivor",
    });
    expect(audited).toEqual(["cluster.goal_lost"]);
  });

  it("is audited as lost, and no end written for it, when it ran here, ended by the shutdown, and another node took it over", async () => {
    const goalId = "g_closedtaken";
    await claimed(goalId);
    const audited: string[] = [];
    const at = new Date().toISOString();
    // The goal ran here and the shutdown ended it before its first model call.
    const ended = {
      goal_id: goalId,
      state: "failed",
      error: "runtime closing",
      usage: { input_tokens: 0, output_tokens: 0 },
      output_dir: "",
      goal: `run ${goalId}`,
      created_at: at,
      finished_at: at,
    };
    const { runner } = standInNode({
      nodeId: NODE,
      redis,
      home,
      goals: {
        closing: true,
        status: () => ended,
        wait: async () => ended,
        endedByClose: () => true,
      },
      audit: (kind) => audited.push(kind),
    });
    // A node that judged this one dead (paused past its lease) took it over meanwhile.
    expect(await new GoalMirror(redis).takeover(goalId, NODE, "n-survivor")).toBe("taken");
    const job = jobMovedTo(goalId, []);
    expect(await runner.take(goalId, () => runner.awaitLocalEnd(job, "token-1"))).toBe("skipped");
    expect(await redis.hgetall(`aido:goal:${goalId}`)).toMatchObject({
      state: "running",
      owner: "n-survivor",
    });
    expect(audited).toEqual(["cluster.goal_lost"]);
  });
});
