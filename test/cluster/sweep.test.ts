// Cluster mode, the orphan sweep (cluster/job-intake.ts requeueOrphans): one node sweeps
// the failed jobs per heartbeat period however many nodes there are, a node with a slower
// heartbeat holding the lease does not stretch that period, and a queued goal whose job
// failed still gets its job back when the node holding the sweep lease is killed -9.
// Real redis-server (watched with MONITOR), real agentd child processes.

import { spawn } from "node:child_process";
import type { Redis } from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import { GOAL_QUEUE, RedisKeys } from "../../src/cluster/redis-keys.js";
import { until } from "../daemon/process.js";
import type { ProviderServer } from "../support/provider-server.js";
import {
  conversationsStarted,
  HEARTBEAT_MS,
  LEASE_MS,
  type Node,
  type RedisServer,
  startNode,
} from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";
import { backInQueue, failJob, makeOrphan, withPausedQueue } from "./support/orphans.js";

let server: ProviderServer;
let redis: RedisServer;
let nodes: Node[];
let raw: Redis;
withCluster((c) => ({ server, redis, raw } = c));

beforeAll(async () => {
  nodes = await Promise.all(
    ["sweep-a", "sweep-b", "sweep-c"].map((id) => startNode(server, redis.url, id, { capacity: 1 })),
  );
  const c = await nodes[0]!.client();
  await until(async () => {
    const st = await c.call("cluster.status", {});
    return st.enabled && st.nodes.filter((n) => n.alive).length === 3 ? true : undefined;
  });
}, 60_000);

describe("cluster mode: the orphan sweep", () => {
  it("is done by one node per heartbeat period, not by every node", async () => {
    // redis-cli's MONITOR, not ioredis's: under load ioredis can take the first monitored
    // command for a reply ("Command queue state error").
    const monitor = spawn("redis-cli", ["-u", redis.url, "monitor"]);
    let sweeps = 0;
    let rest = "";
    // Each sweep reads the newest failed jobs once (BullMQ's getRanges: ZREVRANGE on the set).
    // A line: 1795750028.803178 [0 127.0.0.1:50008] "zrevrange" "bull:goals:failed" "0" "-1"
    monitor.stdout.setEncoding("utf8");
    monitor.stdout.on("data", (chunk: string) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
        if (args[0]?.toLowerCase() === "zrevrange" && args[1] === `bull:${GOAL_QUEUE}:failed`) sweeps++;
      }
    });
    await new Promise((r) => monitor.stdout.once("data", r));
    const periods = 10;
    await new Promise((r) => setTimeout(r, periods * HEARTBEAT_MS));
    monitor.kill();
    // Three nodes each sweeping every beat would be about 3 * periods.
    expect(sweeps).toBeGreaterThanOrEqual(periods / 2);
    expect(sweeps).toBeLessThanOrEqual(periods + 2);
  }, 30_000);

  it("is not held off for a period by a node with a slower heartbeat holding the lease", async () => {
    await withPausedQueue(redis.url, async (queue) => {
      const goalId = await makeOrphan(server, nodes[0]!, "sweep-slow", raw);
      // What a node configured with heartbeat_ms 20000 leaves when its heartbeat takes the
      // lease: its id and the time by Redis's clock, kept for its own heartbeat.
      const [sec, micro] = await raw.time();
      const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
      await raw.set(RedisKeys.sweepLease, `sweep-slow ${now}`, "PX", 20_000);
      await failJob(raw, goalId);
      const failedAt = Date.now();
      await queue.resume();

      // The 0.5 s nodes sweep once their own period has passed, not after the slow node's 20 s.
      await until(backInQueue(raw, goalId), 10_000);
      expect(Date.now() - failedAt).toBeLessThan(10_000);
      expect((await raw.get(RedisKeys.sweepLease))?.split(" ")[0]).not.toBe("sweep-slow");
      const c = await nodes[0]!.client();
      const ran = await c.call("goal.wait", { goal_id: goalId, timeout_ms: 20_000 }, { timeoutMs: 30_000 });
      expect(ran).toMatchObject({ state: "succeeded", result: "done sweep-slow" });
      expect(conversationsStarted(server, "sweep-slow")).toBe(1);
    });
  }, 60_000);

  it("puts an orphan back when the node holding the sweep lease is killed -9", async () => {
    await withPausedQueue(redis.url, async (queue) => {
      const goalId = await makeOrphan(server, nodes[0]!, "sweep-orphan", raw);

      // The lease holder is killed while its lease has most of a period left to run.
      const holder = await until(async () => {
        const [lease, ttl] = await Promise.all([
          raw.get(RedisKeys.sweepLease),
          raw.pttl(RedisKeys.sweepLease),
        ]);
        return lease && ttl >= HEARTBEAT_MS / 2 ? lease.split(" ")[0] : undefined;
      });
      const victim = nodes.find((n) => n.id === holder);
      expect(victim).toBeDefined();
      await victim!.kill();
      await failJob(raw, goalId);
      const failedAt = Date.now();
      await queue.resume();

      // Another node takes the next period's lease and puts the job back: well within the
      // dead node's liveness lease.
      await until(backInQueue(raw, goalId), LEASE_MS);
      expect(Date.now() - failedAt).toBeLessThan(LEASE_MS);
      const survivor = nodes.find((n) => n.id !== holder)!;
      const s = await survivor.client();
      const ran = await s.call("goal.wait", { goal_id: goalId, timeout_ms: 20_000 }, { timeoutMs: 30_000 });
      expect(ran).toMatchObject({ state: "succeeded", result: "done sweep-orphan" });
      expect(ran.node).not.toBe(holder);
      expect(conversationsStarted(server, "sweep-orphan")).toBe(1);
    });
  }, 60_000);
});
