// A cluster node shut down (SIGTERM: docker stop, systemd, k8s send one and SIGKILL after
// their timeout) while Redis is down and while it runs a goal exits within a bounded time,
// the goal's end recorded in its own database and logged as not told to Redis; started again
// with Redis back, it announces that end, once, and the goal never runs again. Before, it
// stayed in its shutdown for good: BullMQ's Worker waited for Redis to settle the goal's job
// (its connection retries forever), and only a second signal (or SIGKILL) ended it.
// Real redis-server, a real daemon, its real database.

import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import type { ProviderServer } from "../support/provider-server.js";
import { connectRedis, conversationsStarted, HEARTBEAT_MS, startRedis } from "./fixture.js";
import { localEnd, startBusyNode } from "./support/busy-nodes.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p), { stopAll: "after each test" });

/** From SIGTERM to exit: the goal's end (its Redis writes fail at once), then BullMQ's bounded wait. */
const EXIT_BOUND_MS = 15_000;

/** BullMQ's keys of the cluster's goal queue. */
const JOBS = "bull:aido-goals";

describe("a cluster node shut down while Redis is down, as it runs a goal", () => {
  it("exits within a bounded time, its goal's end kept locally and announced once when it starts again with Redis back", async () => {
    const marker = "down-leave";
    const redis = await startRedis();
    // Its model call has started (marked in Redis): the goal is never run again anywhere.
    const { node, busy: goal_id } = await startBusyNode(server, redis.url, "down-leaver", marker);
    const raw = connectRedis(redis.url);
    raw.on("error", () => {}); // while Redis is stopped
    expect(await raw.lrange(`${JOBS}:active`, 0, -1)).toContain(goal_id);
    await redis.stop();

    const started = Date.now();
    node.child.child.kill("SIGTERM");
    const exit = await Promise.race([node.child.exited, sleep(EXIT_BOUND_MS, "still running")]);
    const took = Date.now() - started;
    expect(exit, `the node after SIGTERM with Redis down:\n${node.child.output()}`).toBe(0);
    expect(took).toBeLessThan(EXIT_BOUND_MS);
    // Its end is in its own database, and the log says Redis was not told.
    expect(localEnd(node, goal_id)).toMatchObject({ state: "failed" });
    expect(node.child.output()).toMatch(
      new RegExp(
        `cluster: leaving with the end of goal ${goal_id} not written to Redis \\(.+\\); it is in this node's database, and written when the node starts again`,
      ),
    );

    // Redis back, the node started again: the end it kept is written and announced.
    await redis.start();
    await node.restart();
    await until(async () =>
      (await raw.hget(`aido:goal:${goal_id}`, "state")) === "failed" ? true : undefined,
    );
    expect(await raw.hget(`aido:goal:${goal_id}`, "error")).toBe(localEnd(node, goal_id)?.error);
    // The goal's job, active as the node left, is settled by the node's next take of it (its
    // lock lapsed meanwhile), which finds the goal ended and does not run it: completed (and
    // removed, as every completed job is), not failed, not waiting for a node.
    await until(async () => ((await raw.exists(`${JOBS}:${goal_id}`)) === 0 ? true : undefined));
    expect(await raw.zscore(`${JOBS}:failed`, goal_id)).toBeNull();
    // A few heartbeats more: nothing of it is announced or run again.
    await sleep(6 * HEARTBEAT_MS);
    const finished = (await raw.xrange(`aido:events:${goal_id}`, "-", "+")).filter(
      ([, f]) => (JSON.parse(f[1] ?? "{}") as { type?: string }).type === "goal.finished",
    );
    expect(finished.map(([, f]) => (JSON.parse(f[1] ?? "{}") as { state?: string }).state)).toEqual([
      "failed",
    ]);
    expect((await raw.xrange("aido:goal-ends", "-", "+")).filter(([, f]) => f[1] === goal_id)).toHaveLength(
      1,
    );
    expect(conversationsStarted(server, marker)).toBe(1);
    expect((await (await node.client()).call("goal.status", { goal_id })).state).toBe("failed");
  }, 120_000);
});
