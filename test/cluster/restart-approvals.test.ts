// A node killed while its agent waited for an approval, and started again before any other
// node judged it dead: its new process closes the approval as expired (the call that waited
// for it died with the old one) and ends the goal as failed. The approval must not stay
// pending in aido:approvals, where every other node lists it as waiting for an answer (and
// routes answers to a node that refuses them), while its own node lists it expired. Real
// redis-server, real daemons.

import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, type RedisServer, startNode, startRedis, stopAll } from "./fixture.js";

let server: ProviderServer;
let redis: RedisServer;
let raw: Redis;

beforeAll(async () => {
  server = await startProviderServer();
  redis = await startRedis();
  raw = new Redis(redis.url);
}, 60_000);

afterAll(async () => {
  raw?.disconnect();
  await stopAll();
  await server?.close();
}, 60_000);

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
