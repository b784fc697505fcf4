// An end this node wrote by its own compare-and-set (a queued goal's cancel, the cancel of a
// goal it took and had not started, a dead node's goal failed here) is announced though Redis
// does not answer the read of the goal's hash that follows the write. Before, the hash was
// read first and the end announced from it: a read that failed lost the announcement for good
// (the end written, never recorded nor announced), and followers on other nodes never saw the
// goal end. Real redis-server; the node's user may not read hashes whole (HGETALL refused by
// an ACL) while the test says so. The Runtime is the part these paths read: it has no record
// of the goals.

import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import { ClusterGoals } from "../../src/cluster/goal-view.js";
import { stopAll } from "./fixture.js";
import { type RedisAsNode, startRedisAsNode } from "./support/node-user.js";
import { claimedGoal, jobOf, noGoal, standInNode } from "./support/stand-in-node.js";

const NODE = "n-unread";
let redis: RedisAsNode;
let raw: Redis;

beforeAll(async () => {
  redis = await startRedisAsNode(NODE);
  raw = redis.raw;
});

afterEach(async () => {
  await raw.call("ACL", "SETUSER", NODE, "+hgetall", "+xadd");
});

afterAll(stopAll);

/** The owner node over a Runtime with no record of any goal; other nodes are dead. */
function ownerNode() {
  const { ctx, runner, intake, kept } = standInNode({
    nodeId: NODE,
    redis: redis.owner,
    goals: { cancel: noGoal },
  });
  const goals = new ClusterGoals(
    ctx,
    { remove: async () => 0 } as never,
    (id) => runner.cancel(id),
    (id, end) => runner.announceEnd(id, end),
    () => Date.now(),
    kept,
  );
  return { runner, intake, goals };
}

/** The goal's goal.finished events (their states) and its announcements on the goal-ends stream. */
async function announced(goalId: string): Promise<{ finished: string[]; ends: number }> {
  await new Promise((r) => setTimeout(r, 100));
  const finished = (await raw.xrange(`aido:events:${goalId}`, "-", "+"))
    .map(([, f]) => JSON.parse(f[1] ?? "{}") as { type?: string; state?: string })
    .filter((e) => e.type === "goal.finished")
    .map((e) => e.state ?? "");
  const ends = (await raw.xrange("aido:goal-ends", "-", "+")).filter(([, f]) => f[1] === goalId).length;
  return { finished, ends };
}

/** From now on Redis refuses the node's reads of whole hashes (GoalMirror.status). */
async function unreadable(): Promise<void> {
  await raw.call("ACL", "SETUSER", NODE, "-hgetall");
}

describe("an end this node wrote, whose hash Redis would not let it read after the write", () => {
  it("announces the cancel of a goal it took and had not started", async () => {
    const goalId = "g_unreadcancel";
    await claimedGoal(raw, goalId, { via: NODE, node: NODE });
    const { runner } = ownerNode();
    await unreadable();
    expect(await runner.cancel(goalId)).toBe("handled");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("cancelled");
    expect(await announced(goalId)).toEqual({ finished: ["cancelled"], ends: 1 });
    // Once only, whatever the heartbeats retry.
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: ["cancelled"], ends: 1 });
  });

  it("announces a dead node's goal that it failed", async () => {
    const goalId = "g_unreaddead";
    await claimedGoal(raw, goalId, { via: NODE, node: "n-dead", modelStarted: true });
    const { runner, intake } = ownerNode();
    await unreadable();
    expect(await intake.process(jobOf(goalId, NODE), "token")).toBe("failed");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("failed");
    expect(await announced(goalId)).toEqual({ finished: ["failed"], ends: 1 });
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: ["failed"], ends: 1 });
  });

  it("announces a queued goal's cancel", async () => {
    const goalId = "g_unreadqueued";
    await new GoalMirror(raw).create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    const { runner, goals } = ownerNode();
    await unreadable();
    // Its answer needs the hash read: refused, but the cancel is written and announced.
    await goals.cancel(goalId).catch(() => undefined);
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("cancelled");
    expect(await announced(goalId)).toEqual({ finished: ["cancelled"], ends: 1 });
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: ["cancelled"], ends: 1 });
    goals.close();
  });
});

describe("an end this node wrote, neither read back nor announced while Redis was away", () => {
  it("is announced by a later heartbeat with the usage the goal's hash holds, not none", async () => {
    const goalId = "g_unreadusage";
    await claimedGoal(raw, goalId, { via: NODE, node: "n-dead", modelStarted: true });
    const mirror = new GoalMirror(raw);
    // The dead node's heartbeats left its usage in the hash.
    expect(await mirror.update(goalId, "n-dead", { input_tokens: "1200", output_tokens: "340" })).toBe(true);
    const { runner, intake } = ownerNode();
    // Neither the read after the write nor the announcement is answered.
    await unreadable();
    await raw.call("ACL", "SETUSER", NODE, "-xadd");
    expect(await intake.process(jobOf(goalId, NODE), "token")).toBe("failed");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("failed");
    expect(await announced(goalId)).toEqual({ finished: [], ends: 0 });
    // Redis answers again: the heartbeat's retry announces the end.
    await raw.call("ACL", "SETUSER", NODE, "+hgetall", "+xadd");
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: ["failed"], ends: 1 });
    const usage = (await raw.xrange(`aido:events:${goalId}`, "-", "+"))
      .map(([, f]) => JSON.parse(f[1] ?? "{}") as { type?: string; usage?: unknown })
      .find((e) => e.type === "goal.finished")?.usage;
    expect(usage).toEqual({ input_tokens: 1200, output_tokens: 340 });
  });
});
