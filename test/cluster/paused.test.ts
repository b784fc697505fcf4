// Cluster mode, double execution by a node that was only slow: its daemon is stopped
// (SIGSTOP, as a long GC pause or a frozen VM) for longer than its lease mid-goal, a survivor
// ends the goal, then the daemon resumes (SIGCONT). The goal must not carry on there.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startNode, startRedis, stopAll } from "./fixture.js";

let server: ProviderServer;

beforeAll(async () => {
  server = await startProviderServer();
}, 30_000);

afterAll(async () => {
  await stopAll();
  await server?.close();
}, 60_000);

describe("cluster mode: a node paused past its lease", () => {
  it("stops the goal a survivor ended as soon as it resumes: no model call or tool runs after", async () => {
    const redis = await startRedis();
    const slow = await startNode(server, redis.url, "cluster-paused", { capacity: 1 });
    // The first answer (a tool call) reaches the paused node only after it resumes; had it
    // carried on, it would run the tool and ask the model again.
    server.script(forGoal("paused-goal"), [
      turn.toolUse("file_read", { path: "/input/x" }, { delayMs: 9_000 }),
      turn.text("asked again after the goal had ended"),
    ]);
    const c = await slow.client();
    const { goal_id } = await c.call("goal.submit", { goal: "run paused-goal", manifest: manifest() });
    await until(() => (server.requestsMatching(forGoal("paused-goal")).length > 0 ? true : undefined));
    const firstAt = Date.now();
    const survivor = await startNode(server, redis.url, "cluster-awake", { capacity: 1 });
    const s = await survivor.client();
    slow.child.child.kill("SIGSTOP");
    try {
      const ended = await s.call("goal.wait", { goal_id, timeout_ms: 20_000 });
      expect(ended.state).toBe("failed");
      expect(ended.error).toContain("node cluster-paused stopped heartbeating during the goal");
    } finally {
      slow.child.child.kill("SIGCONT");
    }
    expect(Date.now() - firstAt).toBeLessThan(8_000); // resumed before its model's answer came
    // Past the answer, and time for a second turn.
    await new Promise((r) => setTimeout(r, Math.max(0, firstAt + 13_000 - Date.now())));
    expect(server.requestsMatching(forGoal("paused-goal"))).toHaveLength(1);
    // The resumed node ended it locally and says why, and the cluster's view stays failed.
    const lost = await c.call("audit.query", { kind: "cluster.goal_lost" });
    expect(lost.entries.filter((e) => e.goal_id === goal_id)).toHaveLength(1);
    expect(await c.call("goal.status", { goal_id })).toMatchObject({
      state: "failed",
      error: expect.stringContaining("stopped heartbeating"),
    });
    await redis.stop();
  }, 90_000);
});
