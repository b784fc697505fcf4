// A routed command whose sender gave up is never acted on afterwards. The owner of a goal is
// paused (SIGSTOP, as a long GC pause or a frozen VM) just as another node routes a
// goal.cancel to it: the sender sees the owner's heartbeat key expire and answers the client
// with an error. When the owner resumes it reads the command from its stream; acting on it
// then would cancel a goal whose client was told the cancel failed. Real redis-server, real
// daemons.

import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redis: RedisServer;
let raw: Redis;

withCluster((c) => ({ server, redis, raw } = c));

describe("a routed command whose sender gave up", () => {
  it("is not acted on when the paused owner resumes: a goal.cancel answered with an error leaves the goal running", async () => {
    const owner = await startNode(server, redis.url, "gaveup-owner", { capacity: 1 });
    server.script(forGoal("gaveup-goal"), [turn.text("done late", { delayMs: 20_000 })]);
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", { goal: "run gaveup-goal", manifest: manifest() });
    await until(() => (server.requestsMatching(forGoal("gaveup-goal")).length > 0 ? true : undefined));
    // The sender is busy with a goal of its own: its worker takes nothing of the paused owner's.
    const sender = await startNode(server, redis.url, "gaveup-sender", { capacity: 1 });
    server.script(forGoal("gaveup-held"), [turn.text("never", { delayMs: 60_000 })]);
    const s = await sender.client();
    await s.call("goal.submit", { goal: "run gaveup-held", manifest: manifest() });
    await until(() => (server.requestsMatching(forGoal("gaveup-held")).length > 0 ? true : undefined));

    owner.child.child.kill("SIGSTOP");
    let answer: unknown;
    try {
      // Sent while the owner's heartbeat key still lives; it expires during the wait.
      answer = await s.call("goal.cancel", { goal_id }).catch((e: unknown) => e);
    } finally {
      owner.child.child.kill("SIGCONT");
    }
    expect(answer).toBeInstanceOf(Error);
    expect(String((answer as Error).message)).toContain("node gaveup-owner stopped heartbeating");

    // The owner reads its stream again and heartbeats: the command must not be acted on.
    // Once it has read the command (refused, audited), under load that takes a while.
    await until(async () => ((await raw.exists("aido:node:gaveup-owner:alive")) === 1 ? true : undefined));
    await expect
      .poll(
        async () =>
          (await o.call("audit.query", { kind: "cluster.command_refused" })).entries.map((e) => e.payload),
        { timeout: 15_000 },
      )
      .toContainEqual(
        expect.objectContaining({ type: "goal.cancel", reason: expect.stringContaining("gave up") }),
      );
    expect(await s.call("goal.status", { goal_id })).toMatchObject({
      state: "running",
      node: "gaveup-owner",
    });

    // A cancel asked now reaches it.
    expect(await s.call("goal.cancel", { goal_id })).toMatchObject({ state: expect.any(String) });
    expect(await s.call("goal.wait", { goal_id, timeout_ms: 10_000 })).toMatchObject({ state: "cancelled" });
  }, 90_000);
});
