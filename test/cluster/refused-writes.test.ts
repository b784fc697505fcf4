// Writes Redis refuses while the owner stays connected and healthy are written again with its
// heartbeats: a goal's end (else every other node shows the goal running and its goal.wait
// waits), and a pending approval (else no other node lists it, nor can answer it). Redis
// refuses for real: the owner joins as an ACL user of its own, and the test takes away its
// write access to some keys only (the goal hashes, or the approvals), so its heartbeats and
// its BullMQ jobs go on as before. Real redis-server, real daemons.

import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { conversationsStarted, forGoal, manifest, type Node, startNode } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { startRedisAsNode } from "./support/node-user.js";

const OWNER = "refused-owner";
let server: ProviderServer;
withProvider((p) => ({ server } = p), { stopAll: "after each test" });

/** A Redis, a node that joins it as an ACL user of its own, and a node that joins as default. */
async function cluster(): Promise<{
  raw: Redis;
  url: string;
  ownerUrl: string;
  /** The owner may write only keys matching these (reads stay): `[]` gives all back. */
  writable(patterns: string[]): Promise<void>;
}> {
  const { server, raw, url, writable } = await startRedisAsNode(OWNER);
  return { raw, url: server.url, ownerUrl: url, writable };
}

function logged(node: Node, text: string): Promise<true> {
  return until(() => (node.child.output().includes(text) ? true : undefined), 10_000);
}

describe("a goal's end Redis refused while its owner stayed connected", () => {
  it("reaches goal.wait and goal.status on another node with the owner's next heartbeats, once", async () => {
    const c = await cluster();
    const marker = "end-refused-first";
    server.script(forGoal(marker), [turn.text(`finished ${marker}`, { delayMs: 1_500 })]);
    const owner = await startNode(server, c.ownerUrl, OWNER, { capacity: 1 });
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", { goal: `say ${marker}`, manifest: manifest() });
    // Its model call started (marked in its hash); then the goal hashes (and the goal-ends
    // stream) refuse the owner's writes: everything else of it (heartbeat, jobs) goes on.
    await until(() => (conversationsStarted(server, marker) >= 1 ? true : undefined), 10_000);
    await c.writable(["bull:*", "aido:[^g]*"]);
    let restored = false;
    const other = await startNode(server, c.url, "refused-other", { capacity: 1 });
    const b = await other.client();
    try {
      await logged(owner, `could not write the end of goal ${goal_id}`);
      // Its own node answers from its own record at once.
      expect(await o.call("goal.status", { goal_id })).toMatchObject({ state: "succeeded", node: OWNER });
      expect(await o.call("goal.wait", { goal_id, timeout_ms: 1_000 })).toMatchObject({ state: "succeeded" });
      // And lists it so, under the state it ended in, not the one its hash still says.
      const ids = async (state?: string) =>
        (await o.call("goal.list", state ? { state: state as "running" } : {})).goals
          .filter((g) => g.goal_id === goal_id)
          .map((g) => [g.state, g.node]);
      expect(await ids()).toEqual([["succeeded", OWNER]]);
      expect(await ids("succeeded")).toEqual([["succeeded", OWNER]]);
      expect(await ids("running")).toEqual([]);
      // Two heartbeats later the owner is alive and the goal still shows running elsewhere.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await c.raw.exists(`aido:node:${OWNER}:alive`)).toBe(1);
      expect(await b.call("goal.status", { goal_id })).toMatchObject({ state: "running", node: OWNER });
      // Retried with each heartbeat, logged once (Redis may refuse for hours).
      expect(owner.child.output().split(`could not write the end of goal ${goal_id}`)).toHaveLength(2);
      const waiting = b.call("goal.wait", { goal_id, timeout_ms: 20_000 });
      await c.writable([]);
      restored = true;
      const t0 = Date.now();
      expect(await waiting).toMatchObject({ state: "succeeded", result: `finished ${marker}` });
      expect(Date.now() - t0).toBeLessThan(3_000);
    } finally {
      if (!restored) await c.writable([]);
    }
    expect(await b.call("goal.status", { goal_id })).toMatchObject({ state: "succeeded", node: OWNER });
    await logged(owner, `the end of goal ${goal_id} is written to Redis now`);
    // Announced once, and its goal.finished (which Redis took as it happened) not sent again.
    await new Promise((r) => setTimeout(r, 1_000));
    const ends = (await c.raw.xrange("aido:goal-ends", "-", "+")).filter(([, f]) => f[1] === goal_id);
    expect(ends).toHaveLength(1);
    const finished = (await c.raw.xrange(`aido:events:${goal_id}`, "-", "+")).filter(
      ([, f]) => (JSON.parse(f[1] ?? "{}") as { type?: string }).type === "goal.finished",
    );
    expect(finished).toHaveLength(1);
  }, 60_000);

  it("is not written over an end another node wrote meanwhile", async () => {
    const c = await cluster();
    const marker = "end-superseded";
    server.script(forGoal(marker), [turn.text(`finished ${marker}`, { delayMs: 1_000 })]);
    const owner = await startNode(server, c.ownerUrl, OWNER, { capacity: 1 });
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", { goal: `say ${marker}`, manifest: manifest() });
    await until(() => (conversationsStarted(server, marker) >= 1 ? true : undefined), 10_000);
    await c.writable(["bull:*", "aido:[^g]*"]);
    try {
      await logged(owner, `could not write the end of goal ${goal_id}`);
      // What a survivor that judged the owner dead writes (goal-mirror.ts failDead).
      await c.raw.hset(`aido:goal:${goal_id}`, {
        state: "failed",
        error: "ended elsewhere",
        ended_by: "refused-survivor",
      });
    } finally {
      await c.writable([]);
    }
    // Retried with the heartbeats: the compare-and-set finds it ended, and leaves it so.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await c.raw.hgetall(`aido:goal:${goal_id}`)).toMatchObject({
      state: "failed",
      error: "ended elsewhere",
    });
    const ends = (await c.raw.xrange("aido:goal-ends", "-", "+")).filter(([, f]) => f[1] === goal_id);
    expect(ends).toHaveLength(0);
    await logged(
      owner,
      `the end of goal ${goal_id} is not written: another node ended or took over the goal`,
    );
  }, 60_000);
});

describe("a goal's end Redis refused, its owner restarted before writes came back", () => {
  it("is written by the restarted owner and its goal.finished, which Redis took, is not sent again", async () => {
    const c = await cluster();
    const marker = "end-refused-restart";
    server.script(forGoal(marker), [turn.text(`finished ${marker}`, { delayMs: 1_000 })]);
    const owner = await startNode(server, c.ownerUrl, OWNER, { capacity: 1 });
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", { goal: `say ${marker}`, manifest: manifest() });
    await until(() => (conversationsStarted(server, marker) >= 1 ? true : undefined), 10_000);
    // The goal hashes and the goal-ends stream refuse; its events' stream takes them.
    await c.writable(["bull:*", "aido:[^g]*"]);
    try {
      await logged(owner, `could not write the end of goal ${goal_id}`);
      await owner.kill();
    } finally {
      await c.writable([]);
    }
    await owner.restart();
    const other = await startNode(server, c.url, "refused-other", { capacity: 1 });
    const b = await other.client();
    expect(await b.call("goal.wait", { goal_id, timeout_ms: 20_000 })).toMatchObject({
      state: "succeeded",
      result: `finished ${marker}`,
    });
    await new Promise((r) => setTimeout(r, 1_000));
    const finished = (await c.raw.xrange(`aido:events:${goal_id}`, "-", "+")).filter(
      ([, f]) => (JSON.parse(f[1] ?? "{}") as { type?: string }).type === "goal.finished",
    );
    expect(finished).toHaveLength(1);
    const ends = (await c.raw.xrange("aido:goal-ends", "-", "+")).filter(([, f]) => f[1] === goal_id);
    expect(ends).toHaveLength(1);
  }, 60_000);
});

describe("a goal's end Redis refused to the owner's new process after a restart", () => {
  it("is written again with its heartbeats, not left running on every other node", async () => {
    const c = await cluster();
    const marker = "recovery-refused";
    server.script(forGoal(marker), [turn.text(`finished ${marker}`, { delayMs: 30_000 })]);
    const owner = await startNode(server, c.ownerUrl, OWNER, { capacity: 1 });
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", { goal: `say ${marker}`, manifest: manifest() });
    await until(() => (conversationsStarted(server, marker) >= 1 ? true : undefined), 10_000);
    // Killed during its model call; its new process ends the goal failed (the daemon
    // restarted) and Redis refuses that end.
    await owner.kill();
    await c.writable(["bull:*", "aido:[^g]*"]);
    let restored = false;
    try {
      await owner.restart();
      // Its own node says so from its own record; its recovery met the refusal.
      const o2 = await owner.client();
      await until(async () =>
        (await o2.call("goal.status", { goal_id })).state === "failed" ? true : undefined,
      );
      await new Promise((r) => setTimeout(r, 1_000));
      const other = await startNode(server, c.url, "refused-other", { capacity: 1 });
      const b = await other.client();
      expect(await b.call("goal.status", { goal_id })).toMatchObject({ state: "running", node: OWNER });
      const waiting = b.call("goal.wait", { goal_id, timeout_ms: 20_000 });
      await c.writable([]);
      restored = true;
      const t0 = Date.now();
      expect(await waiting).toMatchObject({ state: "failed", node: OWNER });
      expect(Date.now() - t0).toBeLessThan(3_000);
    } finally {
      if (!restored) await c.writable([]);
    }
    // Its goal.finished reaches the goal's stream too, once.
    await new Promise((r) => setTimeout(r, 1_000));
    const finished = (await c.raw.xrange(`aido:events:${goal_id}`, "-", "+")).filter(
      ([, f]) => (JSON.parse(f[1] ?? "{}") as { type?: string }).type === "goal.finished",
    );
    expect(finished).toHaveLength(1);
  }, 60_000);
});

describe("the failed end of a goal its node took but never recorded, refused to the node's new process", () => {
  it("is written again with its heartbeats, and the recovery of the node's other goals goes on", async () => {
    const c = await cluster();
    // Claimed by the owner, which died before its Runtime recorded them (as the claim leaves
    // the hash). The refused one is the newer: the recovery meets it first.
    const mirror = new GoalMirror(c.raw);
    const [refused, other] = ["g_unrecordedrefused", "g_unrecordedother"];
    for (const [i, goalId] of [other, refused].entries()) {
      await mirror.create({ goalId, goal: `run ${goalId}`, via: OWNER, now: Date.now() - 1_000 + i });
      expect(await mirror.claim(goalId, OWNER)).toEqual({ kind: "claimed" });
    }
    await c.writable(["bull:*", "aido:[^g]*", `aido:goal:${other}`, "aido:goal-ends"]);
    let restored = false;
    try {
      const owner = await startNode(server, c.ownerUrl, OWNER, { capacity: 1 });
      await logged(owner, `could not write the end of goal ${refused}`);
      const why = `node ${OWNER} restarted after taking the goal, before it started`;
      await until(async () =>
        (await c.raw.hget(`aido:goal:${other}`, "state")) === "failed" ? true : undefined,
      );
      expect(await c.raw.hget(`aido:goal:${other}`, "error")).toBe(why);
      expect(owner.child.output()).not.toContain("recovery against Redis failed");
      // Two heartbeats later it is still running for every other node, and logged once.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await c.raw.hget(`aido:goal:${refused}`, "state")).toBe("running");
      expect(owner.child.output().split(`could not write the end of goal ${refused}`)).toHaveLength(2);
      const other2 = await startNode(server, c.url, "refused-other", { capacity: 1 });
      const b = await other2.client();
      const waiting = b.call("goal.wait", { goal_id: refused, timeout_ms: 20_000 });
      await c.writable([]);
      restored = true;
      const t0 = Date.now();
      expect(await waiting).toMatchObject({ state: "failed", error: why, node: OWNER });
      expect(Date.now() - t0).toBeLessThan(3_000);
      await logged(owner, `the end of goal ${refused} is written to Redis now`);
    } finally {
      if (!restored) await c.writable([]);
    }
    // Announced once each, its goal.finished too.
    await new Promise((r) => setTimeout(r, 1_000));
    for (const goalId of [refused, other]) {
      const finished = (await c.raw.xrange(`aido:events:${goalId}`, "-", "+")).filter(
        ([, f]) => (JSON.parse(f[1] ?? "{}") as { type?: string }).type === "goal.finished",
      );
      expect(finished).toHaveLength(1);
      const ends = (await c.raw.xrange("aido:goal-ends", "-", "+")).filter(([, f]) => f[1] === goalId);
      expect(ends).toHaveLength(1);
    }
  }, 60_000);
});

describe("a pending approval Redis refused while its owner stayed connected", () => {
  it("is listed on another node with the owner's next heartbeats, and answered there", async () => {
    const c = await cluster();
    const marker = "pending-refused-first";
    server.script(forGoal(marker), [
      turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
      turn.text(`finished ${marker}`),
    ]);
    const owner = await startNode(server, c.ownerUrl, OWNER, { capacity: 1 });
    const o = await owner.client();
    // The approvals' keys refuse the owner's writes (aido:approvals, aido:approval:<id>, and
    // the settled index); its goals, heartbeats and jobs do not.
    await c.writable(["bull:*", "aido:[^a]*", "aido:audit-head:*"]);
    let restored = false;
    try {
      const { goal_id } = await o.call("goal.submit", {
        goal: `write ${marker}`,
        manifest: manifest({ approve: true }),
      });
      const pending = await until(async () =>
        (await o.call("approval.list", {})).approvals.find((x) => x.goal_id === goal_id),
      );
      await logged(owner, `mirroring approval ${pending.id} failed`);
      const other = await startNode(server, c.url, "refused-other", { capacity: 1 });
      const b = await other.client();
      expect((await b.call("approval.list", {})).approvals.map((x) => x.id)).not.toContain(pending.id);
      // The other node's start took several of the owner's heartbeats: each retried it, one logged.
      expect(owner.child.output().split(`mirroring approval ${pending.id} failed`)).toHaveLength(2);

      await c.writable([]);
      restored = true;
      const t0 = Date.now();
      const listed = await until(
        async () => (await b.call("approval.list", {})).approvals.find((x) => x.id === pending.id),
        5_000,
      );
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(listed).toMatchObject({ status: "pending", node: OWNER, goal_id });
      // Answered on the other node: routed to the owner, where the agent waits.
      expect(await b.call("approval.respond", { id: pending.id, decision: "allow_once" })).toMatchObject({
        status: "decided",
        decision: "allow_once",
      });
      expect(await b.call("goal.wait", { goal_id, timeout_ms: 20_000 })).toMatchObject({
        state: "succeeded",
      });
      expect(await c.raw.hexists("aido:approvals", pending.id)).toBe(0);
    } finally {
      if (!restored) await c.writable([]);
    }
  }, 60_000);

  it("answered before a heartbeat wrote it again is never made pending again", async () => {
    const c = await cluster();
    const marker = "settled-first";
    server.script(forGoal(marker), [
      turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
      turn.text(`finished ${marker}`, { delayMs: 3_000 }),
    ]);
    const owner = await startNode(server, c.ownerUrl, OWNER, { capacity: 1 });
    const o = await owner.client();
    await c.writable(["bull:*", "aido:[^a]*", "aido:audit-head:*"]);
    let restored = false;
    try {
      const { goal_id } = await o.call("goal.submit", {
        goal: `write ${marker}`,
        manifest: manifest({ approve: true }),
      });
      const pending = await until(async () =>
        (await o.call("approval.list", {})).approvals.find((x) => x.goal_id === goal_id),
      );
      await logged(owner, `mirroring approval ${pending.id} failed`);
      const other = await startNode(server, c.url, "refused-other", { capacity: 1 });
      const b = await other.client();
      // Writes come back and the approval is answered at once, before the owner's next
      // heartbeat (they come every 500 ms): its outcome is written, then the heartbeats go on.
      await c.writable([]);
      restored = true;
      expect(await o.call("approval.respond", { id: pending.id, decision: "deny" })).toMatchObject({
        status: "decided",
      });
      await until(
        async () =>
          (await b.call("approval.list", { status: "decided" })).approvals.find((x) => x.id === pending.id),
        5_000,
      );
      // The request it held is never written back by them.
      for (let i = 0; i < 6; i++) {
        expect(await c.raw.hexists("aido:approvals", pending.id)).toBe(0);
        expect((await b.call("approval.list", {})).approvals.map((x) => x.id)).not.toContain(pending.id);
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(await b.call("goal.wait", { goal_id, timeout_ms: 20_000 })).toMatchObject({
        state: "succeeded",
      });
    } finally {
      if (!restored) await c.writable([]);
    }
  }, 60_000);
});

describe("an approval whose outcome Redis refused, answered from another node meanwhile", () => {
  it("is refused by its owner with an error that says it was answered already, and by whom", async () => {
    const c = await cluster();
    const marker = "answered-elsewhere";
    server.script(forGoal(marker), [
      turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
      turn.text(`finished ${marker}`, { delayMs: 2_000 }),
    ]);
    const owner = await startNode(server, c.ownerUrl, OWNER, { capacity: 1 });
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", {
      goal: `write ${marker}`,
      manifest: manifest({ approve: true }),
    });
    const pending = await until(async () =>
      (await o.call("approval.list", {})).approvals.find((x) => x.goal_id === goal_id),
    );
    const other = await startNode(server, c.url, "refused-other", { capacity: 1 });
    const b = await other.client();
    expect((await b.call("approval.list", {})).approvals.map((x) => x.id)).toContain(pending.id);
    await c.writable(["bull:*", "aido:[^a]*", "aido:audit-head:*"]);
    try {
      await o.call("approval.respond", { id: pending.id, decision: "deny" });
      await logged(owner, `mirroring approval ${pending.id}'s outcome failed`);
      // The other node still lists it pending and routes the answer to the owner.
      expect((await b.call("approval.list", {})).approvals.map((x) => x.id)).toContain(pending.id);
      const refused = await b.call("approval.respond", { id: pending.id, decision: "allow_once" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toMatchObject({ code: "invalid_input" });
      expect((refused as Error).message).toBe(
        `node ${OWNER}: approval ${pending.id} is already decided (deny by socket client via node ${OWNER})`,
      );
    } finally {
      await c.writable([]);
    }
    expect(await b.call("goal.wait", { goal_id, timeout_ms: 20_000 })).toMatchObject({ state: "succeeded" });
  }, 60_000);
});
