// The owner's ends that Redis refused while it stayed connected, retried where the order of
// things decides whether the goal is announced finished once: after a late event of the goal
// reached its stream, and when its job is handed back to its own node while the end waits
// for a heartbeat. Each end is written once Redis takes it, and announced finished exactly
// once. Redis refuses for real (the owner joins as an ACL user of its own whose write access
// to some keys is taken away); the Runtime is the part of it these paths read: the goals it
// recorded, ended. The heartbeat's retry is called as the heartbeat calls it (node.ts beat),
// so each step happens in a known order, which real daemons' timers would not give. Ends
// that a cancel or a take of a dead node's goal wrote are announced by the same retry. (A goal
// its node took but never recorded: test/cluster/refused-writes.test.ts, real daemons.)

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { publishEvent } from "../../src/cluster/event-stream.js";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import type { ClusterGoalRunner } from "../../src/cluster/goal-runner.js";
import { ClusterGoals } from "../../src/cluster/goal-view.js";
import { migrate, openDatabase } from "../../src/db/database.js";
import { AidoError, ErrorCode } from "../../src/errors.js";
import { type GoalStatus, TERMINAL } from "../../src/kernel/goal-store.js";
import { stopAll } from "./fixture.js";
import { type RedisAsNode, startRedisAsNode } from "./support/node-user.js";
import { claimedGoal, jobOf, noGoal, type StandInNode, standInNode } from "./support/stand-in-node.js";

const NODE = "n-refused";
let redis: RedisAsNode;
let raw: Redis;
let owner: Redis;
let home: string;

beforeAll(async () => {
  redis = await startRedisAsNode(NODE);
  ({ raw, owner } = redis);
  home = mkdtempSync(join(tmpdir(), "aido-refused-ends-"));
});

afterEach(async () => {
  await raw.config("SET", "maxmemory", "0");
  await writable([]);
});

afterAll(async () => {
  await stopAll();
  rmSync(home, { recursive: true, force: true });
});

/** The owner may write only keys matching these (reads stay): `[]` gives all back. */
function writable(patterns: string[]): Promise<void> {
  return redis.writable(patterns);
}

/** The owner node: its runner over a Runtime that recorded `ended` (each goal ended here). */
function ownerNode(
  ended: GoalStatus[] = [],
  others: "alive" | "dead" = "alive",
  /** An audit entry kind the node's audit log refuses (its write fails). */
  refusedEntry?: string,
  /** The node's database (one in memory by default) and id (NODE by default). */
  node: { db?: ReturnType<typeof openDatabase>; id?: string } = {},
): StandInNode {
  const goals = new Map(ended.map((s) => [s.goal_id, s]));
  const status = (id: string): GoalStatus => goals.get(id) ?? noGoal(id);
  return standInNode({
    nodeId: node.id ?? NODE,
    redis: owner,
    home,
    others,
    ...(node.db !== undefined ? { db: node.db } : {}),
    goals: {
      status,
      wait: async (id: string) => status(id),
      isLive: (id: string) => goals.has(id) && !TERMINAL.has(status(id).state),
      // A goal submitted here ends at once, succeeded.
      submit: (_s: unknown, opts: { goalId: string }) => {
        goals.set(opts.goalId, succeeded(opts.goalId));
        return { goal_id: opts.goalId };
      },
    },
    audit: (kind) => {
      if (kind === refusedEntry)
        throw new AidoError(ErrorCode.auditFailed, `audit write failed (${kind})`, {});
    },
  });
}

/** A goal the mirror says runs on NODE, its model calls started. */
function running(goalId: string, now = Date.now()): Promise<void> {
  return claimedGoal(raw, goalId, { via: NODE, node: NODE, modelStarted: true, now });
}

function succeeded(goalId: string): GoalStatus {
  const at = new Date().toISOString();
  return {
    goal_id: goalId,
    state: "succeeded",
    result: `done ${goalId}`,
    usage: { input_tokens: 3, output_tokens: 4 },
    output_dir: "",
    goal: `run ${goalId}`,
    created_at: at,
    finished_at: at,
  };
}

/** The goal's job, submitted via NODE. */
const job = (goalId: string) => jobOf(goalId, NODE);

/** The goal.finished events of the goal's stream, and its announcements on the goal-ends stream. */
async function announced(goalId: string): Promise<{ finished: number; ends: number }> {
  // Published at the end of the turn: let it go out first.
  await new Promise((r) => setTimeout(r, 100));
  const events = await raw.xrange(`aido:events:${goalId}`, "-", "+");
  const finished = events.filter(
    ([, f]) => (JSON.parse(f[1] ?? "{}") as { type?: string }).type === "goal.finished",
  ).length;
  const ends = (await raw.xrange("aido:goal-ends", "-", "+")).filter(([, f]) => f[1] === goalId).length;
  return { finished, ends };
}

/** What OwnedMirror publishes as the goal ends here: its goal.finished, on the goal's stream. */
function finishedAsItHappened(s: GoalStatus): void {
  publishEvent(
    owner,
    {
      type: "goal.finished",
      time: s.finished_at ?? "",
      goal_id: s.goal_id,
      state: s.state,
      usage: s.usage,
      node: NODE,
    },
    () => {},
  );
}

describe("a goal's end Redis refused, retried after a late event of the goal reached its stream", () => {
  it("is announced finished once: its goal.finished, which Redis took, is not sent again", async () => {
    const goalId = "g_lateevent";
    await running(goalId);
    const s = succeeded(goalId);
    const { runner } = ownerNode([s]);
    // The goal hashes and the goal-ends stream refuse; its events' stream takes them.
    await writable(["bull:*", "aido:[^g]*"]);
    finishedAsItHappened(s);
    await runner.awaitLocalEnd(job(goalId), undefined);
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("running");
    // A stuck tool call's events land after it: more than a page of them.
    for (let i = 0; i < 250; i++)
      publishEvent(
        owner,
        {
          type: "tool.completed",
          time: new Date().toISOString(),
          goal_id: goalId,
          tool: "exec",
          call_id: `c${i}`,
          node: NODE,
        },
        () => {},
      );
    await writable([]);
    await runner.retryEnds();
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  });
});

describe("a goal's job handed back to its own node while the goal's end waits for a heartbeat", () => {
  for (const went of [false, true])
    it(`announces the end once when its goal.finished ${went ? "went out" : "was refused with it"}`, async () => {
      const goalId = went ? "g_retakensent" : "g_retakenlost";
      await running(goalId);
      const s = succeeded(goalId);
      const { runner, intake } = ownerNode([s]);
      // The goal hashes and the goal-ends stream refuse; the events too, or not.
      await writable(went ? ["bull:*", "aido:[^g]*"] : ["bull:*", "aido:[^eg]*"]);
      finishedAsItHappened(s);
      await runner.awaitLocalEnd(job(goalId), "token-1");
      await new Promise((r) => setTimeout(r, 100));
      expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("running");
      // Writes come back and BullMQ hands the same job to this node before its next heartbeat.
      await writable([]);
      expect(await intake.process(job(goalId), "token-2")).toBe("succeeded");
      expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
      await runner.retryEnds();
      expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
    });
});

describe("a goal that ran in this process, whose job BullMQ hands back to it while its end waits", () => {
  it("has the second take write the end as the retry would, not wait for a heartbeat that may never come", async () => {
    const goalId = "g_retakensame";
    await running(goalId);
    const { runner, intake } = ownerNode();
    // The goal hashes, the goal-ends stream and the events refuse.
    await writable(["bull:*", "aido:[^eg]*"]);
    expect(await runner.runHere(job(goalId), "token-1")).toBe("succeeded");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("running");
    // Writes come back, and BullMQ hands the job to this node again before a heartbeat
    // retried the end; or after the last one (the node is leaving: its heartbeats stop
    // before its worker closes, and the worker waits for this take). No heartbeat comes.
    await writable([]);
    const second = intake.process(job(goalId), "token-2");
    const waited = new Promise((r) => setTimeout(() => r("still waiting for a heartbeat"), 2_000));
    expect(await Promise.race([second, waited])).toBe("succeeded");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  });
});

describe("an end Redis took while it refused the goal's events and its announcement (out of memory)", () => {
  it("is announced with the first heartbeat Redis takes it at, once", async () => {
    const goalId = "g_outofmemory";
    await running(goalId);
    const { runner } = ownerNode();
    // Out of memory, Redis refuses every stream write, but lets the end's script go on once
    // it has written (its first write, a removal, is one it takes): the end lands, its
    // goal.finished and its announcement do not.
    await raw.config("SET", "maxmemory", "1");
    finishedAsItHappened(succeeded(goalId));
    expect(await runner.runHere(job(goalId), "token-1")).toBe("succeeded");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 0, ends: 0 });
    await raw.config("SET", "maxmemory", "0");
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  });
});

describe("an end whose announcement its node's database kept, read back under another node id", () => {
  it("is announced as the node that wrote it: its goal.finished, which Redis took, is not sent again", async () => {
    const goalId = "g_renamednode";
    await running(goalId);
    const s = succeeded(goalId);
    const file = join(home, "renamed-node.db");
    const { runner } = ownerNode([s], "alive", undefined, { db: openDatabase(file) });
    // Its goal.finished went out as it happened; then only the goal-ends stream refuses.
    finishedAsItHappened(s);
    await new Promise((r) => setTimeout(r, 100));
    await writable(["bull:*", "aido:goal:*", "aido:goals", "aido:approval*", "aido:events*"]);
    await runner.awaitLocalEnd(job(goalId), undefined);
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 0 });
    // The node's next process reads it back under a new id (cluster.node_id changed, or a
    // copy of the home started as another node).
    await writable([]);
    const renamed = ownerNode([], "alive", undefined, { db: openDatabase(file), id: "n-renamed" });
    await renamed.runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
    await renamed.runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  });
});

describe("an end kept in a node database from before the writer's node id was recorded", () => {
  it("is announced as this node's, once: the migration keeps the row", async () => {
    const goalId = "g_keptbefore";
    await running(goalId);
    const s = succeeded(goalId);
    expect(await new GoalMirror(raw).finish(goalId, NODE, s)).toBe(true);
    finishedAsItHappened(s);
    await new Promise((r) => setTimeout(r, 100));
    // The table as the first migration made it, with a row in it.
    const file = join(home, "kept-before.db");
    const old = openDatabase(file);
    migrate(old, "cluster.ends", [
      "CREATE TABLE cluster_unannounced_ends (goal_id TEXT PRIMARY KEY, end_status TEXT NOT NULL)",
    ]);
    old
      .prepare("INSERT INTO cluster_unannounced_ends (goal_id, end_status) VALUES (?, ?)")
      .run(goalId, JSON.stringify(s));
    old.close();
    const { runner } = ownerNode([], "alive", undefined, { db: openDatabase(file) });
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  });
});

describe("an unannounced end in the node's database that is not one", () => {
  it("does not keep the node from starting: it is named in the log and left unannounced", async () => {
    const file = join(home, "unreadable-end.db");
    ownerNode([], "alive", undefined, { db: openDatabase(file) });
    const db = openDatabase(file);
    const add = db.prepare(
      "INSERT INTO cluster_unannounced_ends (goal_id, end_status, node_id) VALUES (?, ?, ?)",
    );
    add.run("g_notjson", "{cut short", NODE);
    add.run("g_notastatus", "null", NODE);
    db.close();
    const { runner, logs } = ownerNode([], "alive", undefined, { db: openDatabase(file) });
    for (const goalId of ["g_notjson", "g_notastatus"])
      expect(logs.filter((l) => l.includes(`the unannounced end of goal ${goalId}`))).toHaveLength(1);
    expect(logs.find((l) => l.includes("g_notjson"))).toMatch(/cluster_unannounced_ends.*not JSON/);
    await runner.retryEnds();
    expect(await announced("g_notjson")).toEqual({ finished: 0, ends: 0 });
  });
});

describe("a goal's end retried by two writers at once (overlapping heartbeats, a reconnect's catch-up)", () => {
  it("is written and announced once, and no log says another node ended the goal", async () => {
    const goalId = "g_tworetries";
    await running(goalId);
    const s = succeeded(goalId);
    const { runner, logs } = ownerNode([s]);
    await writable(["bull:*", "aido:[^g]*"]);
    finishedAsItHappened(s);
    await runner.awaitLocalEnd(job(goalId), undefined);
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("running");
    await writable([]);
    // Writers of one end that do not wait for each other (the heartbeat's retry, one with a
    // recovery due, as after a reconnect).
    const retry = runner.retryEnds();
    runner.recoveryNeeded();
    await Promise.all([retry, runner.retryEnds(), runner.retryEnds()]);
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
    expect(logs.filter((l) => l.includes("another node ended or took over"))).toEqual([]);
    expect(logs.filter((l) => l.includes(`goal ${goalId} is written to Redis now`))).toHaveLength(1);
  });
});

describe("an end that Redis took, whose goal's approvals it then would not drop", () => {
  it("is not reported refused, nor later as ended by another node", async () => {
    const goalId = "g_dropfails";
    await running(goalId);
    const s = succeeded(goalId);
    const { runner, logs } = ownerNode([s]);
    const approval = {
      id: "ap_dropfails",
      node: NODE,
      status: "pending",
      created_at: Date.now(),
      goal_id: goalId,
    };
    await raw.hset("aido:approvals", approval.id, JSON.stringify(approval));
    // Everything but the approvals may be written.
    await writable(["bull:*", "aido:goal*", "aido:events*", "aido:node*"]);
    finishedAsItHappened(s);
    await runner.awaitLocalEnd(job(goalId), undefined);
    await runner.retryEnds();
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
    expect(logs.filter((l) => l.includes(`could not write the end of goal ${goalId}`))).toEqual([]);
    expect(logs.filter((l) => l.includes("another node ended or took over"))).toEqual([]);
    await raw.hdel("aido:approvals", approval.id);
  });
});

describe("a restarted node's recovery that Redis did not answer in full", () => {
  it("still ends its goals when the index holds a goal whose hash expired and Redis refuses to drop it", async () => {
    const goalId = "g_recoverexpired";
    await running(goalId);
    // A goal whose hash expired: its id is still in the index (goal.list drops it when it reads it).
    await raw.zadd("aido:goals", Date.now() + 1, "g_expiredhash");
    // The node's previous process ended the goal; this one does not run it.
    const { runner, logs } = ownerNode([succeeded(goalId)]);
    // The goal index refuses writes; the goals' hashes and streams take them.
    await writable(["bull:*", "aido:[^g]*", "aido:goal:*", "aido:goal-ends"]);
    runner.recoveryNeeded();
    await runner.retryEnds();
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
    expect(logs.filter((l) => l.includes("recovery against Redis failed"))).toEqual([]);
    await raw.zrem("aido:goals", "g_expiredhash");
  });

  it("is done again with the heartbeats until it is, not only when Redis reconnects", async () => {
    const goalId = "g_recoverlater";
    await running(goalId);
    const { runner, logs } = ownerNode([succeeded(goalId)]);
    // The goal index cannot even be read.
    await raw.call(
      "ACL",
      "SETUSER",
      NODE,
      "resetkeys",
      "~bull:*",
      "~aido:[^g]*",
      "~aido:goal:*",
      "~aido:goal-ends",
    );
    runner.recoveryNeeded();
    await runner.retryEnds();
    await runner.retryEnds();
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("running");
    expect(logs.filter((l) => l.includes("recovery against Redis failed"))).toHaveLength(1);
    await writable([]);
    await runner.retryEnds();
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  });
});

describe("an end a cancel or a dead node's take wrote, whose announcement Redis refused", () => {
  // The goals' hashes, index and approvals take writes; their streams and goal-ends refuse.
  const streamsRefused = ["bull:*", "aido:goal:*", "aido:goals", "aido:approval*"];

  /** Refused as it is written, then announced once by the first heartbeat Redis takes it at. */
  async function announcedOnRetry(goalId: string, runner: ClusterGoalRunner): Promise<void> {
    expect(await announced(goalId)).toEqual({ finished: 0, ends: 0 });
    await writable([]);
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  }

  it("announces a queued goal's cancel", async () => {
    const goalId = "g_cancelqueued";
    await new GoalMirror(raw).create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    const { runner, ctx, kept } = ownerNode();
    const goals = new ClusterGoals(
      ctx,
      { remove: async () => 0 } as never,
      (id) => runner.cancel(id),
      (id, end) => runner.announceEnd(id, end),
      () => Date.now(),
      kept,
    );
    await writable(streamsRefused);
    expect((await goals.cancel(goalId)).state).toBe("cancelled");
    await announcedOnRetry(goalId, runner);
    goals.close();
  });

  it("announces the cancel of a goal this node took and had not started", async () => {
    const goalId = "g_cancelclaimed";
    const mirror = new GoalMirror(raw);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    expect(await mirror.claim(goalId, NODE)).toEqual({ kind: "claimed" });
    const { runner } = ownerNode();
    await writable(streamsRefused);
    expect(await runner.cancel(goalId)).toBe("handled");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("cancelled");
    await announcedOnRetry(goalId, runner);
  });

  it("announces the cancel of a goal whose end Redis refused before the cancel", async () => {
    const goalId = "g_cancelrefusedend";
    const mirror = new GoalMirror(raw);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    expect(await mirror.claim(goalId, NODE)).toEqual({ kind: "claimed" });
    const { runner, logs } = ownerNode();
    // Refused here before it started (as runHere refuses a job): Redis refuses that end.
    await writable(["bull:*", "aido:goals", "aido:approval*"]);
    await runner.endFailed(goalId, `run ${goalId}`, `refused by node ${NODE}: no such model`);
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("running");
    // Redis takes writes again, and a cancel comes before the next heartbeat.
    await writable([]);
    expect(await runner.cancel(goalId)).toBe("handled");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("cancelled");
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
    const events = await raw.xrange(`aido:events:${goalId}`, "-", "+");
    expect(events.map(([, f]) => JSON.parse(f[1] ?? "{}").state).filter(Boolean)).toEqual(["cancelled"]);
    expect(logs.filter((l) => l.includes("another node ended or took over"))).toEqual([]);
  });

  it("announces the end of a dead node's goal that it failed", async () => {
    const goalId = "g_deadowner";
    const mirror = new GoalMirror(raw);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    expect(await mirror.claim(goalId, "n-dead")).toEqual({ kind: "claimed" });
    expect(await mirror.modelStarted(goalId, "n-dead")).toBe(true);
    const { runner, intake } = ownerNode([], "dead");
    await writable(streamsRefused);
    expect(await intake.process(job(goalId), "token")).toBe("failed");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("failed");
    await announcedOnRetry(goalId, runner);
  });

  it("announces the end of a dead node's goal that it failed though Redis would not drop the goal's approvals", async () => {
    const goalId = "g_deadapprovals";
    const mirror = new GoalMirror(raw);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    expect(await mirror.claim(goalId, "n-dead")).toEqual({ kind: "claimed" });
    expect(await mirror.modelStarted(goalId, "n-dead")).toBe(true);
    await pendingApprovalOf(goalId, "n-dead");
    const { runner, intake, logs } = ownerNode([], "dead");
    // Its streams, goal-ends and the approvals list refuse (the approvals as an ACL would).
    await writable(["bull:*", "aido:goal:*", "aido:goals"]);
    expect(await intake.process(job(goalId), "token")).toBe("failed");
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("failed");
    expect(
      logs.filter((l) => l.includes(`could not drop the mirrored approvals of goal ${goalId}`)),
    ).toHaveLength(1);
    await announcedOnRetry(goalId, runner);
  });

  it("runs a dead node's goal it took over though Redis would not drop the goal's approvals", async () => {
    const goalId = "g_takenapprovals";
    const mirror = new GoalMirror(raw);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    expect(await mirror.claim(goalId, "n-dead")).toEqual({ kind: "claimed" });
    await pendingApprovalOf(goalId, "n-dead");
    const { intake } = ownerNode([], "dead");
    // Everything takes the node's writes but the approvals list.
    await writable(["bull:*", "aido:[^a]*"]);
    expect(await intake.process(job(goalId), "token")).toBe("succeeded");
    // Not left running on this node, which lives and runs nothing of it.
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("succeeded");
  });
});

describe("an end a cancel or a dead node's take wrote, whose audit entry the audit log then refused", () => {
  const streamsRefused = ["bull:*", "aido:goal:*", "aido:goals", "aido:approval*"];

  it("announces the end of a dead node's goal that it failed", async () => {
    const goalId = "g_deadunaudited";
    const mirror = new GoalMirror(raw);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    expect(await mirror.claim(goalId, "n-dead")).toEqual({ kind: "claimed" });
    expect(await mirror.modelStarted(goalId, "n-dead")).toBe(true);
    const { runner, intake } = ownerNode([], "dead", "cluster.goal_taken_over");
    await writable(streamsRefused);
    await expect(intake.process(job(goalId), "token")).rejects.toThrow(/audit write failed/);
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("failed");
    expect(await announced(goalId)).toEqual({ finished: 0, ends: 0 });
    await writable([]);
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  });

  it("ends failed a dead node's goal it took over, not left running on this live node", async () => {
    const goalId = "g_takenunaudited";
    const mirror = new GoalMirror(raw);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    expect(await mirror.claim(goalId, "n-dead")).toEqual({ kind: "claimed" });
    const { intake } = ownerNode([], "dead", "cluster.goal_taken_over");
    expect(await intake.process(job(goalId), "token")).toBe("failed");
    expect(await raw.hmget(`aido:goal:${goalId}`, "state", "owner")).toEqual(["failed", NODE]);
    expect(await raw.hget(`aido:goal:${goalId}`, "error")).toMatch(/could not audit it: audit write failed/);
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  });

  it("announces the cancel of a goal this node took and had not started", async () => {
    const goalId = "g_cancelunaudited";
    const mirror = new GoalMirror(raw);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    expect(await mirror.claim(goalId, NODE)).toEqual({ kind: "claimed" });
    const { runner } = ownerNode([], "alive", "cluster.goal_cancelled");
    await writable(streamsRefused);
    await expect(runner.cancel(goalId)).rejects.toThrow(/audit write failed/);
    expect(await raw.hget(`aido:goal:${goalId}`, "state")).toBe("cancelled");
    await writable([]);
    await runner.retryEnds();
    expect(await announced(goalId)).toEqual({ finished: 1, ends: 1 });
  });
});

/** A pending approval of the goal, mirrored by `node` (owned-mirror.ts) into the cluster's list. */
async function pendingApprovalOf(goalId: string, node: string): Promise<void> {
  const id = `ap_${goalId}`;
  await raw.hset(
    "aido:approvals",
    id,
    JSON.stringify({ id, node, status: "pending", created_at: Date.now(), goal_id: goalId }),
  );
}
