// A node killed while its agent waited for an approval, and started again before any other
// node judged it dead: its new process closes the approval as expired (the call that waited
// for it died with the old one) and ends the goal as failed. The approval must not stay
// pending in aido:approvals, where every other node lists it as waiting for an answer (and
// routes answers to a node that refuses them), while its own node lists it expired. Real
// redis-server, real daemons.

import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, type RedisServer, startNode, startRedis } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redis: RedisServer;
let raw: Redis;

withCluster((c) => ({ server, redis, raw } = c));

describe("an approval pending on a node that was killed and came back", () => {
  it("is settled expired on every node, not left pending in the cluster's list", async () => {
    const marker = "restart-approval";
    server.script(forGoal(marker), [turn.toolUse("file_write", { path: "/output/x.md", content: "x" })]);
    const owner = await startNode(server, redis.url, "appr-owner", { capacity: 1 });
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", {
      goal: `write ${marker}`,
      manifest: manifest({ approve: true }),
    });
    const pending = await until(async () =>
      (await o.call("approval.list", {})).approvals.find((x) => x.goal_id === goal_id),
    );
    expect(await raw.hexists("aido:approvals", pending.id)).toBe(1);

    await owner.kill();
    await owner.restart();
    const other = await startNode(server, redis.url, "appr-other", { capacity: 1 });
    const b = await other.client();
    // The restarted node ends the goal itself (it came back within its lease).
    expect(await b.call("goal.wait", { goal_id, timeout_ms: 20_000 })).toMatchObject({
      state: "failed",
      node: "appr-owner",
    });
    const o2 = await owner.client();
    expect(
      (await o2.call("approval.list", { status: "expired" })).approvals.find((x) => x.id === pending.id),
    ).toMatchObject({ status: "expired", node: "appr-owner" });

    // Every node: no longer pending, and its outcome listed.
    await until(
      async () =>
        (await b.call("approval.list", {})).approvals.some((x) => x.id === pending.id) ? undefined : true,
      5_000,
    );
    expect(
      (await b.call("approval.list", { status: "expired" })).approvals.find((x) => x.id === pending.id),
    ).toMatchObject({ status: "expired", node: "appr-owner" });
    expect(await raw.hexists("aido:approvals", pending.id)).toBe(0);
  }, 60_000);
});

// Whoever can write to Redis can put anything in aido:approvals: a forged entry misleads a
// watcher at most (docs/scale-out.md). One that is not an approval record at all must not
// fail every node's approval.list, nor stop a node settling its own stale approvals.
describe("an entry of aido:approvals that is not an approval record", () => {
  it("is skipped by approval.list and approval.respond on every node", async () => {
    const n = await startNode(server, redis.url, "junk-lister", { capacity: 1 });
    const c = await n.client();
    // After the node connected (it drops such entries then: the next test).
    await raw.hset("aido:approvals", "junk-text", "{not json", "junk-null", "null");
    expect((await c.call("approval.list", {})).approvals.map((x) => x.id)).not.toContain("junk-text");
    expect((await c.call("approval.list", { status: "all" })).approvals.map((x) => x.id)).not.toContain(
      "junk-null",
    );
    await expect(c.call("approval.respond", { id: "junk-text", decision: "deny" })).rejects.toThrow(
      /no pending approval junk-text in the cluster \(its entry in aido:approvals is not an approval record\)/,
    );
  }, 60_000);

  it("does not stop a restarted node settling its stale approvals, and is dropped", async () => {
    const marker = "restart-approval-junk";
    server.script(forGoal(marker), [turn.toolUse("file_write", { path: "/output/x.md", content: "x" })]);
    // A Redis of its own: the goal runs on this test's node, no other.
    const own = await startRedis();
    const r = new Redis(own.url);
    const owner = await startNode(server, own.url, "junk-owner", { capacity: 1 });
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", {
      goal: `write ${marker}`,
      manifest: manifest({ approve: true }),
    });
    // Read from Redis itself: the node's own list is not what is under test here.
    const pendingId = await until(async () => {
      const all = await r.hgetall("aido:approvals");
      return Object.keys(all).find((id) => all[id]?.includes(goal_id));
    });
    await owner.kill();
    // Junk ahead of the node's own entry in the hash's order (new fields go last), so that
    // a reader in that order meets it first.
    const entry = (await r.hget("aido:approvals", pendingId)) ?? "";
    await r.hdel("aido:approvals", pendingId);
    await r.hset("aido:approvals", "junk-first", "{not json");
    await r.hset("aido:approvals", pendingId, entry);
    await owner.restart();
    await until(
      async () => ((await r.hexists("aido:approvals", pendingId)) === 0 ? true : undefined),
      10_000,
    );
    expect(JSON.parse((await r.get(`aido:approval:${pendingId}`)) ?? "{}")).toMatchObject({
      status: "expired",
      node: "junk-owner",
    });
    expect(await r.hexists("aido:approvals", "junk-first")).toBe(0);
    expect(owner.child.output()).toContain(
      'dropped aido:approvals entry "junk-first": not an approval record',
    );
    r.disconnect();
  }, 60_000);
});
