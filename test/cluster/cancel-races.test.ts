// goal.cancel in the windows where the owner holds a goal its Runtime does not run: after
// the claim, while the job's inputs are unpacked; and after the node's shutdown ended the
// goal, before it is given back. The cancel is honoured in both: the goal ends cancelled,
// never runs (no model call), and is never given back. Real redis-server, real daemons.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import {
  conversationsStarted,
  forGoal,
  manifest,
  type Node,
  type RedisServer,
  startNode,
} from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redis: RedisServer;
let raw: Redis;
const folders: string[] = [];

withCluster((c) => ({ server, redis, raw } = c));

afterAll(() => {
  for (const f of folders) rmSync(f, { recursive: true, force: true });
});

function auditKinds(node: Node, goalId: string): string[] {
  const db = new Database(node.home.config.dbPath, { readonly: true });
  try {
    return db
      .prepare("SELECT kind FROM audit WHERE goal_id = ? ORDER BY seq")
      .pluck()
      .all(goalId) as string[];
  } finally {
    db.close();
  }
}

/** The goal's state in the node's own database (undefined before the node has a row for it). */
function localState(node: Node, goalId: string): string | undefined {
  const db = new Database(node.home.config.dbPath, { readonly: true });
  try {
    return db.prepare("SELECT state FROM goals WHERE id = ?").pluck().get(goalId) as string | undefined;
  } finally {
    db.close();
  }
}

/** Until BullMQ has no job for the goal any more: whatever its node did with it is done. */
async function jobGone(goalId: string): Promise<void> {
  await until(async () => ((await raw.exists(`bull:aido-goals:${goalId}`)) === 0 ? true : undefined), 20_000);
}

/** A node busy with one goal whose model call never ends (it takes no other goal). */
async function busyNode(id: string, marker: string): Promise<Node> {
  const node = await startNode(server, redis.url, id, { capacity: 1 });
  server.script(forGoal(marker), [turn.text("never", { delayMs: 60_000 })]);
  const c = await node.client();
  await c.call("goal.submit", { goal: `run ${marker}`, manifest: manifest() });
  await until(() => (server.requestsMatching(forGoal(marker)).length > 0 ? true : undefined));
  return node;
}

/**
 * A goal the owner has claimed (the hash says running on it) but whose inputs it is still
 * unpacking (600 small files), so its Runtime does not run it yet. Submitted on a busy
 * node, which takes nothing else; `answer` is what the scripted model says if it runs.
 */
async function claimedWhileUnpacking(
  tag: string,
  marker: string,
  answer: string,
): Promise<{ busy: Node; owner: Node; b: Awaited<ReturnType<Node["client"]>>; goal_id: string }> {
  const busy = await busyNode(`race-busy${tag}`, `race-held${tag}`);
  const owner = await startNode(server, redis.url, `race-owner${tag}`, { capacity: 1 });
  const inputs = mkdtempSync(join(tmpdir(), "aido-race-inputs-"));
  folders.push(inputs);
  mkdirSync(join(inputs, "many"));
  for (let i = 0; i < 600; i++) writeFileSync(join(inputs, "many", `f${i}.txt`), `${i}\n`);
  server.script(forGoal(marker), [turn.text(answer)]);
  const b = await busy.client();
  const { goal_id } = await b.call("goal.submit", {
    goal: `run ${marker}`,
    manifest: manifest(),
    inputs: [join(inputs, "many")],
  });
  for (;;) {
    if ((await raw.hget(`aido:goal:${goal_id}`, "state")) === "running") break;
    await new Promise((r) => setTimeout(r, 2));
  }
  expect(localState(owner, goal_id)).toBeUndefined();
  return { busy, owner, b, goal_id };
}

describe("goal.cancel while the owner holds a goal its Runtime does not run", () => {
  it("is honoured when it reaches the owner after the claim, while the job's inputs are unpacked: the goal ends cancelled and never calls the model", async () => {
    // Claimed (the hash says running on the owner) but not yet in the owner's Runtime.
    const { busy, owner, b, goal_id } = await claimedWhileUnpacking("", "race-unpacking", "must not run");
    // Through the other node: routed to the owner.
    const cancelled = await b.call("goal.cancel", { goal_id });
    expect(cancelled).toMatchObject({ state: "cancelled", node: "race-owner" });

    await jobGone(goal_id);
    expect(await b.call("goal.status", { goal_id })).toMatchObject({ state: "cancelled" });
    expect(conversationsStarted(server, "race-unpacking")).toBe(0);
    expect(localState(owner, goal_id)).toBeUndefined();
    expect(auditKinds(owner, goal_id)).toContain("cluster.goal_cancelled");
    await busy.kill();
    await owner.kill();
  }, 90_000);

  it("leaves the goal to run when the owner cannot write the cancel to Redis: the answer is an error, and the goal is neither dropped nor stuck running", async () => {
    const { busy, owner, b, goal_id } = await claimedWhileUnpacking(
      "-3",
      "race-refused-write",
      "ran after all",
    );
    // For a moment Redis refuses HEXISTS (an ACL change): the cluster's lookup of the goal
    // answers (running, on the owner), but the owner's compare-and-set that would end it,
    // the one script that asks whether a model call started, fails. Asked on the owner.
    const o = await owner.client();
    await raw.call("ACL", "SETUSER", "default", "-hexists");
    let answer: unknown;
    try {
      answer = await o.call("goal.cancel", { goal_id }).catch((e: unknown) => e);
    } finally {
      await raw.call("ACL", "SETUSER", "default", "+hexists");
    }
    expect(String(answer)).toContain("internal error");
    // The cancel did not take: the goal runs as if it had not been asked, and ends.
    expect(await b.call("goal.wait", { goal_id, timeout_ms: 30_000 })).toMatchObject({ state: "succeeded" });
    expect(conversationsStarted(server, "race-refused-write")).toBe(1);
    await busy.kill();
    await owner.kill();
  }, 90_000);

  for (const via of ["leaving", "staying"] as const) {
    const title =
      via === "leaving"
        ? "wins over the give-back when it reaches a leaving node after its shutdown ended the goal: the goal ends cancelled and runs nowhere"
        : "wins over the give-back when it is routed from another node to a leaving node after its shutdown ended the goal";
    it(title, async () => {
      const tag = via === "leaving" ? "" : "-2";
      // The leaving node runs two goals with one model call at a time: the second waits for it.
      const leaving = await startNode(server, redis.url, `race-leaving${tag}`, { capacity: 2, inference: 1 });
      server.script(forGoal(`race-spent${tag}`), [turn.text("never", { delayMs: 60_000 })]);
      server.script(forGoal(`race-unstarted${tag}`), [turn.text("must not run")]);
      const a = await leaving.client();
      await a.call("goal.submit", { goal: `run race-spent${tag}`, manifest: manifest() });
      await until(() => (server.requestsMatching(forGoal(`race-spent${tag}`)).length > 0 ? true : undefined));
      const { goal_id } = await a.call("goal.submit", {
        goal: `run race-unstarted${tag}`,
        manifest: manifest(),
      });
      await until(() => (localState(leaving, goal_id) === "running" ? true : undefined));
      // Another node that would take the goal once its held goal is cancelled.
      const staying = await busyNode(`race-staying${tag}`, `race-staying-held${tag}`);
      const s = await staying.client();

      // Redis holds every write from here (reads still answer), so the order in which the
      // cancel and the give-back reach it is fixed: the cancel first, then the release.
      // Asked on the leaving node, or on the other one, which routes it to the leaving one.
      await raw.call("CLIENT", "PAUSE", "10000", "WRITE");
      let answer: Promise<unknown>;
      try {
        answer = (via === "leaving" ? a : s).call("goal.cancel", { goal_id }).catch((e: unknown) => e);
        await new Promise((r) => setTimeout(r, 300));
        leaving.child.child.kill("SIGTERM");
        // The shutdown ended the goal here (its end is held back, it is to be given back).
        await until(() => (localState(leaving, goal_id) === "failed" ? true : undefined), 5_000);
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        await raw.call("CLIENT", "UNPAUSE");
      }
      expect(await answer).toMatchObject({ state: "cancelled" });
      await leaving.child.exited;

      expect(await s.call("goal.wait", { goal_id, timeout_ms: 5_000 })).toMatchObject({ state: "cancelled" });
      // The staying node is free again: the goal's job, if it went back, would run there now.
      const held = (await s.call("goal.list", { state: "running" })).goals.find(
        (g) => g.node === `race-staying${tag}`,
      );
      if (held) await s.call("goal.cancel", { goal_id: held.goal_id });
      await jobGone(goal_id);
      expect(await s.call("goal.status", { goal_id })).toMatchObject({ state: "cancelled" });
      expect(conversationsStarted(server, `race-unstarted${tag}`)).toBe(0);
      // Asked there, the leaving node ends it (routed, it may be looked up again and ended
      // by the sender once the hash says queued).
      if (via === "leaving") expect(auditKinds(leaving, goal_id)).toContain("cluster.goal_cancelled");
      await staying.kill();
    }, 90_000);
  }
});
