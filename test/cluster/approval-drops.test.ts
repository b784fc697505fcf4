// The mirrored approvals of a dead node's goal that this node failed, whose drop Redis refused,
// are dropped with a later heartbeat, and after a restart in between. Before, the refused drop
// was logged and never tried again: the approvals stayed listed as pending on every node for a
// goal that had ended. Real redis-server: the node joins as an ACL user of its own that may
// not write the approvals list while the test says so. The Runtime is the part these paths
// read: it has no record of the goal (the dead node ran it).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GoalJob } from "../../src/cluster/goal-runner.js";
import { openDatabase } from "../../src/db/database.js";
import { stopAll } from "./fixture.js";
import { type RedisAsNode, startRedisAsNode } from "./support/node-user.js";
import { claimedGoal, jobOf, mirrorApproval, noGoal, standInNode } from "./support/stand-in-node.js";

const NODE = "n-drops";
let redis: RedisAsNode;
let raw: Redis;
let home: string;

beforeAll(async () => {
  redis = await startRedisAsNode(NODE);
  raw = redis.raw;
  home = mkdtempSync(join(tmpdir(), "aido-approval-drops-"));
});

afterAll(async () => {
  await stopAll();
  rmSync(home, { recursive: true, force: true });
});

/** The node may write every key but the approvals list (`false`: every key). */
async function approvalsRefused(refused: boolean): Promise<void> {
  await redis.writable(refused ? ["bull:*", "aido:goal*", "aido:events*"] : []);
}

/**
 * This node over `db`, a Runtime with no record of any goal; other nodes are dead. `runs`: the
 * goals submitted here, which run on (they are running, and never end).
 */
function ownerNode(db: ReturnType<typeof openDatabase>, runs = new Set<string>()) {
  return standInNode({
    nodeId: NODE,
    redis: redis.owner,
    db,
    home,
    goals: {
      status: (id: string) => (runs.has(id) ? { goal_id: id, state: "running", output_dir: "" } : noGoal(id)),
      submit: (_s: unknown, o: { goalId: string }) => {
        runs.add(o.goalId);
        return { goal_id: o.goalId };
      },
      wait: () => new Promise(() => {}),
      isLive: (id: string) => runs.has(id),
    },
  });
}

/**
 * A dead node's goal with one pending approval it mirrored, its model calls started (or not,
 * `modelStarted` false: it is re-queued by the node that takes its job).
 */
async function deadNodesGoal(goalId: string, modelStarted = true): Promise<Job<GoalJob>> {
  await claimedGoal(raw, goalId, { via: NODE, node: "n-dead", modelStarted });
  await mirrorApproval(raw, `ap_${goalId}`, goalId, "n-dead");
  return jobOf(goalId, NODE);
}

describe("a dead node's goal failed here, whose approvals Redis would not drop", () => {
  it("drops them with a later heartbeat once Redis takes the drop, logged once", async () => {
    const goalId = "g_dropretry";
    const job = await deadNodesGoal(goalId);
    const { runner, intake, logs } = ownerNode(openDatabase(":memory:"));
    await approvalsRefused(true);
    try {
      expect(await intake.process(job, "token")).toBe("failed");
      expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("failed");
      expect(await raw.hexists("aido:approvals", `ap_${goalId}`)).toBe(1);
      await runner.retryEnds();
      expect(await raw.hexists("aido:approvals", `ap_${goalId}`)).toBe(1);
      expect(
        logs.filter((l) => l.includes(`could not drop the mirrored approvals of goal ${goalId}`)),
      ).toHaveLength(1);
    } finally {
      await approvalsRefused(false);
    }
    await runner.retryEnds();
    expect(await raw.hexists("aido:approvals", `ap_${goalId}`)).toBe(0);
  });

  it("drops them after the node restarted, from its database", async () => {
    const goalId = "g_droprestart";
    const job = await deadNodesGoal(goalId);
    const file = join(home, "restart.db");
    const first = ownerNode(openDatabase(file));
    await approvalsRefused(true);
    try {
      expect(await first.intake.process(job, "token")).toBe("failed");
    } finally {
      await approvalsRefused(false);
    }
    expect(await raw.hexists("aido:approvals", `ap_${goalId}`)).toBe(1);
    // The process dies before a heartbeat; the next one opens the same database.
    const next = ownerNode(openDatabase(file));
    await next.runner.retryEnds();
    expect(await raw.hexists("aido:approvals", `ap_${goalId}`)).toBe(0);
  });
});

describe("a dead node's goal taken over (re-queued) here, whose approvals Redis would not drop", () => {
  it("drops the dead node's approvals later, not those the goal's new run asked", async () => {
    const goalId = "g_droprerun";
    const job = await deadNodesGoal(goalId, false);
    const runs = new Set<string>();
    const { runner, intake } = ownerNode(openDatabase(":memory:"), runs);
    await approvalsRefused(true);
    try {
      // Taken over and run here: it waits for its end, which never comes in this test.
      intake.process(job, "token").catch(() => {});
      for (let i = 0; i < 100 && !runs.has(goalId); i++) await new Promise((r) => setTimeout(r, 20));
      expect(runs.has(goalId)).toBe(true);
      expect(await raw.hexists("aido:approvals", `ap_${goalId}`)).toBe(1);
    } finally {
      await approvalsRefused(false);
    }
    // The goal's run here asks an approval (mirrored), before the next heartbeat.
    await mirrorApproval(raw, `ap_${goalId}_new`, goalId, NODE);
    await runner.retryEnds();
    expect(await raw.hexists("aido:approvals", `ap_${goalId}`)).toBe(0);
    expect(await raw.hexists("aido:approvals", `ap_${goalId}_new`)).toBe(1);
  });

  it("after a restart in between too, from the node's database", async () => {
    const goalId = "g_droprerunrestart";
    const job = await deadNodesGoal(goalId, false);
    const file = join(home, "rerun.db");
    const runs = new Set<string>();
    const first = ownerNode(openDatabase(file), runs);
    await approvalsRefused(true);
    try {
      first.intake.process(job, "token").catch(() => {});
      for (let i = 0; i < 100 && !runs.has(goalId); i++) await new Promise((r) => setTimeout(r, 20));
      expect(runs.has(goalId)).toBe(true);
    } finally {
      await approvalsRefused(false);
    }
    // Another node runs the goal now (this one restarted), and asked an approval.
    await raw.hset(`aido:goal:${goalId}`, "node", "n-other");
    await mirrorApproval(raw, `ap_${goalId}_other`, goalId, "n-other");
    const next = ownerNode(openDatabase(file));
    await next.runner.retryEnds();
    expect(await raw.hexists("aido:approvals", `ap_${goalId}`)).toBe(0);
    expect(await raw.hexists("aido:approvals", `ap_${goalId}_other`)).toBe(1);
  });
});
