// Goals a node paused past its lease finds another node ended or took over are stopped each
// on its own: one whose look, audit entry or stop throws is logged and done again with the
// next heartbeat, and the goals after it are stopped at once, not left running until a look
// gets past it. Real redis-server (the mirror a survivor changed); the Runtime is the part of
// it stopLost drives (goals running here; a stop or an audit write that throws for one goal,
// as a stop whose agent-stopped entry the audit log refuses does), and stopLost is called as
// the heartbeat calls it (node.ts beat), so each look happens in a known order.

import { existsSync, mkdirSync, promises } from "node:fs";
import { join } from "node:path";
import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import type { ClusterGoalRunner, GoalJob } from "../../src/cluster/goal-runner.js";
import { openDatabase } from "../../src/db/database.js";
import { AidoError, ErrorCode } from "../../src/errors.js";
import type { GoalStatus } from "../../src/kernel/goal-store.js";
import { withRedisHome } from "./support/file-cluster.js";
import { claimedGoal, jobOf, noGoal, standInNode } from "./support/stand-in-node.js";

const NODE = "n-lost";
let raw: Redis;
let home: string;
withRedisHome("aido-lost-goals-", (r) => ({ raw, home } = r));

/** A node whose Runtime runs what it is given until fail(); `throwing` says which fails throw. */
function pausedNode(throwing: { stop: Set<string>; audit: Set<string> }, db = openDatabase(":memory:")) {
  const goals = new Map<string, GoalStatus>();
  const ends = new Map<string, () => void>();
  const status = (id: string): GoalStatus => goals.get(id) ?? noGoal(id);
  const audited: { kind: string; goalId?: string }[] = [];
  const { runner, logs } = standInNode({
    nodeId: NODE,
    redis: raw,
    db,
    home,
    goals: {
      status,
      isLive: (id: string) => goals.get(id)?.state === "running",
      wait: (id: string) =>
        status(id).state === "running"
          ? new Promise<GoalStatus>((r) => ends.set(id, () => r(status(id))))
          : Promise.resolve(status(id)),
      submit: (s: { goal: string }, opts: { goalId: string }) => {
        const at = new Date().toISOString();
        goals.set(opts.goalId, {
          goal_id: opts.goalId,
          state: "running",
          usage: { input_tokens: 0, output_tokens: 0 },
          output_dir: "",
          goal: s.goal,
          created_at: at,
        });
        return { goal_id: opts.goalId };
      },
      // As a stop whose agents' stop threw (its audit write refused) does.
      fail: (id: string, reason: string) => {
        if (throwing.stop.has(id)) throw new Error(`stopping the agents of ${id} failed`);
        const s = goals.get(id);
        if (s?.state !== "running") return false;
        goals.set(id, { ...s, state: "failed", error: reason, finished_at: new Date().toISOString() });
        ends.get(id)?.();
        return true;
      },
    },
    audit: (kind, _p, ids = {}) => {
      if (kind === "cluster.goal_lost" && ids.goalId && throwing.audit.has(ids.goalId))
        throw new AidoError(ErrorCode.auditFailed, `audit write failed (${kind})`, {});
      audited.push({ kind, ...ids });
    },
  });
  return { runner, state: (id: string) => goals.get(id)?.state, audited, logs };
}

/** Goals running on NODE (claimed, model calls started), run by `runner`, then taken by a survivor. */
async function runningThenTaken(runner: ClusterGoalRunner, ids: string[]): Promise<Promise<string>[]> {
  const mirror = new GoalMirror(raw);
  const runs: Promise<string>[] = [];
  for (const goalId of ids) {
    await claimedGoal(raw, goalId, { via: NODE, node: NODE, modelStarted: true });
    runs.push(runner.runHere(jobOf(goalId, NODE), undefined));
  }
  await new Promise((r) => setTimeout(r, 50));
  expect(runner.running().sort()).toEqual([...ids].sort());
  // While this node was paused past its lease, a survivor failed them (goal-mirror.ts failDead).
  for (const goalId of ids)
    expect(await mirror.failDead(goalId, NODE, "n-survivor", "node n-lost stopped heartbeating")).toBe(
      "taken",
    );
  return runs;
}

describe("a paused node's look at goals another node ended meanwhile", () => {
  it("stops the goals after one whose stop throws, and stops that one with a later look", async () => {
    const [bad, after] = ["g_stopthrows", "g_afterstop"];
    const throwing = { stop: new Set([bad]), audit: new Set<string>() };
    const { runner, state, audited, logs } = pausedNode(throwing);
    await runningThenTaken(runner, [bad, after]);

    const looked = await runner.stopLost(true).catch((e: unknown) => e);
    expect(state(after)).toBe("failed");
    expect(state(bad)).toBe("running");
    expect(looked).toBe(false); // the node is not sure of its goals yet
    expect(runner.owns(bad)).toBe(false); // nothing of it published from here meanwhile
    expect(logs.filter((l) => l.includes(`could not stop goal ${bad}`))).toHaveLength(1);
    // Logged once however many heartbeats it throws at.
    expect(await runner.stopLost()).toBe(false);
    expect(logs.filter((l) => l.includes(`could not stop goal ${bad}`))).toHaveLength(1);

    throwing.stop.clear();
    expect(await runner.stopLost()).toBe(true);
    expect(state(bad)).toBe("failed");
    // Audited lost once each.
    expect(audited.filter((a) => a.kind === "cluster.goal_lost").map((a) => a.goalId)).toEqual([bad, after]);
  });

  it("stops a goal whose goal_lost entry the audit log refused, and the goals after it, and writes the entry later", async () => {
    const [bad, after] = ["g_auditthrows", "g_afteraudit"];
    const throwing = { stop: new Set<string>(), audit: new Set([bad]) };
    const { runner, state, audited, logs } = pausedNode(throwing);
    const runs = await runningThenTaken(runner, [bad, after]);

    const looked = await runner.stopLost(true).catch((e: unknown) => e);
    expect([state(bad), state(after)]).toEqual(["failed", "failed"]);
    expect(looked).toBe(true); // both stopped: the entry left for later does not keep the node unsure
    expect(logs.filter((l) => l.includes(`could not audit that goal ${bad} was lost`))).toHaveLength(1);
    expect(audited.filter((a) => a.kind === "cluster.goal_lost").map((a) => a.goalId)).toEqual([after]);

    expect(await runner.stopLost()).toBe(true);
    expect(logs.filter((l) => l.includes(`could not audit that goal ${bad} was lost`))).toHaveLength(1);
    throwing.audit.clear();
    expect(await runner.stopLost()).toBe(true);
    expect(audited.filter((a) => a.kind === "cluster.goal_lost").map((a) => a.goalId)).toEqual([after, bad]);
    // Their ends are not this node's to write: the survivor's stand.
    await Promise.all(runs);
    for (const goalId of [bad, after])
      expect(await raw.hgetall(`aido:goal:${goalId}`)).toMatchObject({
        state: "failed",
        ended_by: "n-survivor",
      });
  });

  it("writes a refused goal_lost entry after the node restarted, from its database, once", async () => {
    const goalId = "g_auditrestart";
    const dir = join(home, "restart");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "aido.db");
    const first = pausedNode({ stop: new Set<string>(), audit: new Set([goalId]) }, openDatabase(file));
    await runningThenTaken(first.runner, [goalId]);
    expect(await first.runner.stopLost(true)).toBe(true);
    expect(first.state(goalId)).toBe("failed");
    expect(first.audited.filter((a) => a.kind === "cluster.goal_lost")).toEqual([]);

    // The process dies before a heartbeat writes the entry; the next one opens the same
    // database, its audit log takes writes, and it runs none of the goal.
    const next = pausedNode({ stop: new Set<string>(), audit: new Set<string>() }, openDatabase(file));
    expect(await next.runner.stopLost()).toBe(true);
    const lost = (a: { kind: string }) => a.kind === "cluster.goal_lost";
    expect(next.audited.filter(lost).map((a) => a.goalId)).toEqual([goalId]);
    expect(await next.runner.stopLost()).toBe(true);
    expect(next.audited.filter(lost)).toHaveLength(1);
    // Written, it is not written again by a later process either.
    const third = pausedNode({ stop: new Set<string>(), audit: new Set<string>() }, openDatabase(file));
    expect(await third.runner.stopLost()).toBe(true);
    expect(third.audited.filter(lost)).toEqual([]);
  });

  it("does not start a goal a survivor took over while its inputs were still unpacking here", async () => {
    const goalId = "g_lostunpacking";
    const { runner, state, audited } = pausedNode({ stop: new Set<string>(), audit: new Set<string>() });
    const mirror = new GoalMirror(raw);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    expect(await mirror.claim(goalId, NODE)).toEqual({ kind: "claimed" });
    // The take's unpack is held as it makes the goal's folder (a long unpack, thousands of files).
    const folder = join(home, "inbox", `cluster-${goalId}`);
    const mkdir = promises.mkdir;
    let reached = false;
    let release = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    promises.mkdir = (async (path: string, opts: unknown) => {
      if (String(path) === folder) {
        reached = true;
        await released;
      }
      return mkdir.call(promises, path, opts as never);
    }) as typeof promises.mkdir;
    try {
      const job = {
        data: {
          goal_id: goalId,
          goal: `run ${goalId}`,
          inputs: { names: ["a"], entries: [{ path: "a", type: "dir", mode: 0o755 }] },
          via: NODE,
        },
      } as unknown as Job<GoalJob>;
      const run = runner.runHere(job, undefined);
      while (!reached) await new Promise((r) => setTimeout(r, 5));
      // This node paused past its lease meanwhile; a survivor took the goal over (no model
      // call had started) and runs it.
      expect(await mirror.takeover(goalId, NODE, "n-survivor")).toBe("taken");
      expect(await runner.stopLost(true)).toBe(true);
      release();
      await Promise.race([run, new Promise((r) => setTimeout(r, 500))]);
      // Never started here, audited lost once, and what the take unpacked is gone.
      expect(state(goalId)).toBeUndefined();
      expect(await run).toBe("skipped");
      expect(audited.filter((a) => a.kind === "cluster.goal_lost").map((a) => a.goalId)).toEqual([goalId]);
      expect(existsSync(folder)).toBe(false);
      expect(await raw.hmget(`aido:goal:${goalId}`, "state", "owner")).toEqual(["running", "n-survivor"]);
    } finally {
      release();
      promises.mkdir = mkdir;
    }
  });
});
