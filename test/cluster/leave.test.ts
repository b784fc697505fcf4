// A node that shuts down (SIGTERM) gives back the goals it took but had not started: a goal
// still waiting for its first model call goes back to the queue and runs on another node,
// once, instead of failing with "runtime closing". One whose model call had started ends
// failed there, as before (it may have had side effects). Someone following the goals sees
// one end each, the real one. Real redis-server, real daemons.

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import type { WireEvent } from "../../src/daemon/events.js";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import {
  conversationsStarted,
  forGoal,
  LEASE_MS,
  manifest,
  type Node,
  type RedisServer,
  startNode,
} from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redis: RedisServer;

/** A latch the node's process loads: it holds a goal's unpack (test/support/hold-unpack.mjs). */
const HOLD_UNPACK = join(import.meta.dirname, "..", "support", "hold-unpack.mjs");

withCluster((c) => ({ server, redis } = c));

/** The goal's state in the node's own database (undefined before the node has a row for it). */
function localState(node: Node, goalId: string): string | undefined {
  const db = new Database(node.home.config.dbPath, { readonly: true });
  try {
    return db.prepare("SELECT state FROM goals WHERE id = ?").pluck().get(goalId) as string | undefined;
  } finally {
    db.close();
  }
}

function auditKinds(node: Node, goalId: string): string[] {
  const db = new Database(node.home.config.dbPath, { readonly: true });
  try {
    return (
      db.prepare("SELECT kind FROM audit WHERE goal_id = ? ORDER BY seq").pluck().all(goalId) as string[]
    ).filter((k) => k.startsWith("cluster.") || k.startsWith("goal."));
  } finally {
    db.close();
  }
}

describe("a node that leaves", () => {
  it("gives back a goal still waiting for its first model call, which then runs on another node once", async () => {
    // One model call in the whole cluster: the first goal holds it, the second waits for it
    // without having started anything.
    const leaving = await startNode(server, redis.url, "leave-a", { capacity: 2, clusterInference: 1 });
    server.script(forGoal("leave-held"), [turn.text("never", { delayMs: 60_000 })]);
    server.script(forGoal("leave-waiting"), [turn.text("done leave-waiting")]);
    const a = await leaving.client();
    const held = (await a.call("goal.submit", { goal: "run leave-held", manifest: manifest() })).goal_id;
    await until(() => (server.requestsMatching(forGoal("leave-held")).length > 0 ? true : undefined));
    const waiting = (await a.call("goal.submit", { goal: "run leave-waiting", manifest: manifest() }))
      .goal_id;
    await until(async () => {
      const s = await a.call("goal.status", { goal_id: waiting });
      return s.state === "running" && s.node === "leave-a" ? true : undefined;
    });
    expect(server.requestsMatching(forGoal("leave-waiting"))).toHaveLength(0);

    const staying = await startNode(server, redis.url, "leave-b", { capacity: 2, clusterInference: 1 });
    // Someone follows the waiting goal from the node that stays (aido watch does this).
    const seen: WireEvent[] = [];
    const followed = await AidoClient.subscribe(staying.home.config.socketPath, waiting, (ev) => {
      seen.push(ev);
    });
    const heldSeen: WireEvent[] = [];
    const heldFollowed = await AidoClient.subscribe(staying.home.config.socketPath, held, (ev) => {
      heldSeen.push(ev);
    });
    leaving.child.child.kill("SIGTERM");
    await leaving.child.exited;

    const b = await staying.client();
    const ran = await b.call("goal.wait", { goal_id: waiting, timeout_ms: 30_000 }, { timeoutMs: 40_000 });
    expect(ran).toMatchObject({ state: "succeeded", node: "leave-b" });
    expect(conversationsStarted(server, "leave-waiting")).toBe(1);
    expect(auditKinds(leaving, waiting)).toContain("cluster.goal_released");
    // The follower was not told it ended when it was given back: its one end is the real one.
    await followed.done;
    expect(seen.filter((e) => e.type === "goal.finished").map((e) => e.state)).toEqual(["succeeded"]);

    // The goal whose model call had started is not run again: it ended failed on its node.
    await heldFollowed.done;
    expect(heldSeen.filter((e) => e.type === "goal.finished").map((e) => e.state)).toEqual(["failed"]);
    const ended = await b.call("goal.status", { goal_id: held });
    expect(ended).toMatchObject({ state: "failed", node: "leave-a" });
    expect(ended.error).toMatch(/runtime closing/);
    expect(conversationsStarted(server, "leave-held")).toBe(1);
    expect(auditKinds(leaving, held)).not.toContain("cluster.goal_released");
    await staying.kill(); // takes no goal of the next test
  }, 120_000);

  it("gives back a goal whose job another node failed meanwhile: the failed job goes back to waiting and the goal runs once, never stuck queued", async () => {
    const raw = new Redis(redis.url);
    try {
      const leaving = await startNode(server, redis.url, "orphan-a", { capacity: 2, inference: 1 });
      server.script(forGoal("orphan-held"), [turn.text("never", { delayMs: 60_000 })]);
      server.script(forGoal("orphan-waiting"), [turn.text("done orphan-waiting")]);
      const a = await leaving.client();
      await a.call("goal.submit", { goal: "run orphan-held", manifest: manifest() });
      await until(() => (server.requestsMatching(forGoal("orphan-held")).length > 0 ? true : undefined));
      const waiting = (await a.call("goal.submit", { goal: "run orphan-waiting", manifest: manifest() }))
        .goal_id;
      await until(async () => {
        const s = await a.call("goal.status", { goal_id: waiting });
        return s.state === "running" && s.node === "orphan-a" ? true : undefined;
      });
      const staying = await startNode(server, redis.url, "orphan-b", { capacity: 2 });

      // The job's lock is gone while its node lives (as after a long stall): a stalled check
      // hands the job to the other node, which finds the goal still running on a node that
      // heartbeats and fails the job; the goal's hash still says running on orphan-a.
      await raw.del(`bull:aido-goals:${waiting}:lock`);
      await until(
        async () => ((await raw.zscore("bull:aido-goals:failed", waiting)) !== null ? true : undefined),
        3 * LEASE_MS,
      );
      // Now the node leaves: the goal is given back (queued), but its job cannot go back from
      // here (its lock is not this node's).
      leaving.child.child.kill("SIGTERM");
      await leaving.child.exited;

      const b = await staying.client();
      const ran = await b.call("goal.wait", { goal_id: waiting, timeout_ms: 20_000 }, { timeoutMs: 30_000 });
      expect(ran).toMatchObject({ state: "succeeded", node: "orphan-b", result: "done orphan-waiting" });
      expect(conversationsStarted(server, "orphan-waiting")).toBe(1);
      expect(auditKinds(leaving, waiting)).toContain("cluster.goal_released");
      expect(auditKinds(staying, waiting)).toContain("cluster.goal_requeued");
      await staying.kill(); // takes no goal of the next test
    } finally {
      raw.disconnect();
    }
  }, 90_000);

  it("puts back a given-back goal's failed job however many jobs failed after it: the goal runs once, never stuck queued", async () => {
    const raw = new Redis(redis.url);
    try {
      const leaving = await startNode(server, redis.url, "old-orphan-a", { capacity: 2, inference: 1 });
      server.script(forGoal("old-orphan-held"), [turn.text("never", { delayMs: 60_000 })]);
      server.script(forGoal("old-orphan-waiting"), [turn.text("done old-orphan-waiting")]);
      const a = await leaving.client();
      await a.call("goal.submit", { goal: "run old-orphan-held", manifest: manifest() });
      await until(() => (server.requestsMatching(forGoal("old-orphan-held")).length > 0 ? true : undefined));
      const waiting = (await a.call("goal.submit", { goal: "run old-orphan-waiting", manifest: manifest() }))
        .goal_id;
      await until(async () => {
        const s = await a.call("goal.status", { goal_id: waiting });
        return s.state === "running" && s.node === "old-orphan-a" ? true : undefined;
      });
      const staying = await startNode(server, redis.url, "old-orphan-b", { capacity: 2 });
      // As above: the other node fails the job while the goal still runs on the leaving node.
      await raw.del(`bull:aido-goals:${waiting}:lock`);
      await until(
        async () => ((await raw.zscore("bull:aido-goals:failed", waiting)) !== null ? true : undefined),
        3 * LEASE_MS,
      );
      // The goal waits for its first model call (one at a time here) while a thousand other
      // jobs fail (failed jobs are kept a day; after a Redis outage every job whose goal runs
      // fails alike): its job is no longer among the newest failed ones.
      const later = raw.pipeline();
      const now = Date.now();
      for (let i = 0; i < 1_000; i++) later.zadd("bull:aido-goals:failed", now + 1 + i, `g_later${i}`);
      await later.exec();
      leaving.child.child.kill("SIGTERM");
      await leaving.child.exited;

      const b = await staying.client();
      const ran = await b.call("goal.wait", { goal_id: waiting, timeout_ms: 20_000 }, { timeoutMs: 30_000 });
      expect(ran).toMatchObject({
        state: "succeeded",
        node: "old-orphan-b",
        result: "done old-orphan-waiting",
      });
      expect(conversationsStarted(server, "old-orphan-waiting")).toBe(1);
      expect(auditKinds(staying, waiting)).toContain("cluster.goal_requeued");
      await staying.kill();
    } finally {
      raw.disconnect();
    }
  }, 90_000);

  it("gives back a goal whose job came back to the same node: the job goes back to waiting, not completed, and the goal runs once elsewhere", async () => {
    const raw = new Redis(redis.url);
    try {
      // A free slot: the node's own worker takes the job again when its lock lapses.
      const leaving = await startNode(server, redis.url, "again-a", { capacity: 3, inference: 1 });
      server.script(forGoal("again-held"), [turn.text("never", { delayMs: 60_000 })]);
      server.script(forGoal("again-waiting"), [turn.text("done again-waiting")]);
      const a = await leaving.client();
      await a.call("goal.submit", { goal: "run again-held", manifest: manifest() });
      await until(() => (server.requestsMatching(forGoal("again-held")).length > 0 ? true : undefined));
      const waiting = (await a.call("goal.submit", { goal: "run again-waiting", manifest: manifest() }))
        .goal_id;
      await until(async () => {
        const s = await a.call("goal.status", { goal_id: waiting });
        return s.state === "running" && s.node === "again-a" ? true : undefined;
      });
      // The job's lock lapses while its node lives (a long stall): the stalled check puts the
      // job back, and the same node's worker takes it again (the goal is still its own).
      const jobKey = `bull:aido-goals:${waiting}`;
      await raw.del(`${jobKey}:lock`);
      await until(async () => {
        const [lock, stalledCount] = await Promise.all([
          raw.exists(`${jobKey}:lock`),
          raw.hget(jobKey, "stc"),
        ]);
        return lock === 1 && Number(stalledCount ?? 0) > 0 ? true : undefined;
      }, 3 * LEASE_MS);
      // The node leaves: the goal had not made its first model call, so it is given back.
      leaving.child.child.kill("SIGTERM");
      await leaving.child.exited;
      expect(await raw.hget(`aido:goal:${waiting}`, "state")).toBe("queued");
      expect(await raw.exists(jobKey)).toBe(1);

      const staying = await startNode(server, redis.url, "again-b", { capacity: 2 });
      const b = await staying.client();
      const ran = await b.call("goal.wait", { goal_id: waiting, timeout_ms: 20_000 }, { timeoutMs: 30_000 });
      expect(ran).toMatchObject({ state: "succeeded", node: "again-b", result: "done again-waiting" });
      expect(conversationsStarted(server, "again-waiting")).toBe(1);
      expect(auditKinds(leaving, waiting).filter((k) => k === "cluster.goal_released")).toHaveLength(1);
      await staying.kill();
    } finally {
      raw.disconnect();
    }
  }, 90_000);
  it("announces no end for a goal that its give-back finds claimed by another node: the goal did not end", async () => {
    const raw = new Redis(redis.url);
    try {
      const leaving = await startNode(server, redis.url, "claimed-a", { capacity: 2, inference: 1 });
      server.script(forGoal("claimed-held"), [turn.text("never", { delayMs: 60_000 })]);
      const a = await leaving.client();
      await a.call("goal.submit", { goal: "run claimed-held", manifest: manifest() });
      await until(() => (server.requestsMatching(forGoal("claimed-held")).length > 0 ? true : undefined));
      const waiting = (await a.call("goal.submit", { goal: "run claimed-waiting", manifest: manifest() }))
        .goal_id;
      await until(async () => {
        const s = await a.call("goal.status", { goal_id: waiting });
        return s.state === "running" && s.node === "claimed-a" ? true : undefined;
      });
      const staying = await startNode(server, redis.url, "claimed-b", { capacity: 1 });
      const seen: WireEvent[] = [];
      const followed = await AidoClient.subscribe(staying.home.config.socketPath, waiting, (ev) => {
        seen.push(ev);
      });
      // Another node holds the goal now (as after a take that passed this one's): the leaving
      // node's give-back finds it not its own.
      await raw.hset(`aido:goal:${waiting}`, "owner", "claimed-b");
      leaving.child.child.kill("SIGTERM");
      await leaving.child.exited;
      await new Promise((r) => setTimeout(r, 1_500));
      followed.close();
      expect(seen.filter((e) => e.type === "goal.finished")).toEqual([]);
      expect(await raw.hget(`aido:goal:${waiting}`, "state")).toBe("running");
      await staying.kill();
    } finally {
      raw.disconnect();
    }
  }, 90_000);

  it("goes on with a goal whose job its own node took again while it still unpacked the inputs: the goal runs once and does not fail", async () => {
    const raw = new Redis(redis.url);
    const monitor = await raw.monitor();
    const inputs = mkdtempSync(join(tmpdir(), "aido-retake-inputs-"));
    // The first take's unpack is held (test/support/hold-unpack.mjs) until the test lets it go:
    // the second take then comes while it unpacks for certain, not only when it is slow enough.
    const hold = join(inputs, "hold");
    writeFileSync(hold, "");
    try {
      mkdirSync(join(inputs, "many"));
      for (let i = 0; i < 20; i++) writeFileSync(join(inputs, "many", `f${i}.txt`), `${i}\n`);
      // A free slot: the node's own worker takes the job again when its lock lapses.
      const node = await startNode(server, redis.url, "retake-a", {
        capacity: 2,
        preload: { module: HOLD_UNPACK, env: { AIDO_TEST_HOLD_UNPACK: hold } },
      });
      server.script(forGoal("retake-unpacking"), [turn.text("done retake-unpacking")]);
      // The goals each take of a job claims (goal-mirror.ts CLAIM), as Redis runs it.
      const claimed: string[] = [];
      monitor.on("monitor", (_time: string, args: string[]) => {
        if (args[0]?.toLowerCase() === "eval" && args[1]?.includes("'claimed'")) claimed.push(args[3] ?? "");
      });
      const a = await node.client();
      const { goal_id } = await a.call("goal.submit", {
        goal: "run retake-unpacking",
        manifest: manifest(),
        inputs: [join(inputs, "many")],
      });
      const goalKey = `aido:goal:${goal_id}`;
      const claims = () => claimed.filter((k) => k === goalKey).length;
      await until(() => (existsSync(`${hold}.reached`) ? true : undefined), 20_000);
      expect(await raw.hget(goalKey, "state")).toBe("running");
      const jobKey = `bull:aido-goals:${goal_id}`;
      // The lock lapses during the unpack (as in a long one): the stalled check puts the job
      // back and the same node's worker takes it again, and claims it, before the unpack is done.
      await raw.del(`${jobKey}:lock`);
      // Taken again (stalled count up), or (before the fix) failed by the second take at once.
      const retaken = await until(async () => {
        const [stalled, job] = await Promise.all([raw.hget(jobKey, "stc"), raw.exists(jobKey)]);
        return Number(stalled ?? 0) > 0 ? "retaken" : job === 0 ? "gone" : undefined;
      }, 10_000);
      expect(retaken).toBe("retaken");
      // The second take has claimed the goal (it found it running here) while the first unpacks.
      await until(() => (claims() >= 2 ? true : undefined), 10_000);
      // Still unpacking: the goal is not in the node's Runtime yet.
      expect(localState(node, goal_id)).toBeUndefined();
      rmSync(hold);
      const ran = await a.call("goal.wait", { goal_id, timeout_ms: 60_000 }, { timeoutMs: 70_000 });
      expect(ran).toMatchObject({ state: "succeeded", node: "retake-a", result: "done retake-unpacking" });
      expect(conversationsStarted(server, "retake-unpacking")).toBe(1);
      await node.kill();
    } finally {
      monitor.disconnect();
      raw.disconnect();
      rmSync(inputs, { recursive: true, force: true });
    }
  }, 90_000);
});
