// Cluster mode, a node paused past its lease whose goal is still its own (no node took it
// over): what the goal did between the node's resume and its next heartbeat that succeeds is
// held (owned-mirror.ts), and must reach the goal's stream, before its goal.finished, once the
// node has looked. A goal that ends in that window had its end written at once, and the end's
// write made the node forget the goal: the events held of it were then dropped, and a follower
// saw the goal finish without its last turn. The node's heartbeats are refused for real (it
// joins as an ACL user of its own that may not write its heartbeat keys for a while), so the
// window is as long as the test needs. Real redis-server, real daemon, SIGSTOP for the pause.

import { describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { conversationsStarted, forGoal, LEASE_MS, manifest, startNode } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { startRedisAsNode } from "./support/node-user.js";

const OWNER = "held-owner";
let server: ProviderServer;
withProvider((p) => ({ server } = p), { stopAll: "after each test" });

describe("cluster mode: a node paused past its lease that still owns its goal", () => {
  it("publishes what the goal did before its end once it has looked, and its end after", async () => {
    const { server: redis, raw: r, ...user } = await startRedisAsNode(OWNER);
    const marker = "held-ends-here";
    // The answer comes while the node is stopped: it reads it as it resumes, and the goal ends.
    server.script(forGoal(marker), [turn.text(`finished ${marker}`, { delayMs: 1_500 })]);
    const owner = await startNode(server, user.url, OWNER, { capacity: 1 });
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", { goal: `say ${marker}`, manifest: manifest() });
    await until(() => (conversationsStarted(server, marker) >= 1 ? true : undefined), 10_000);
    // Its heartbeats are refused from now (aido:node*: its alive key and its node hash).
    await user.writable(["bull:*", "aido:[^n]*"]);
    owner.child.child.kill("SIGSTOP");
    try {
      await new Promise((res) => setTimeout(res, LEASE_MS + 1_500));
    } finally {
      owner.child.child.kill("SIGCONT");
    }
    // Resumed, the goal ended, and the node's heartbeat cannot yet look which goals are its own.
    await until(async () =>
      (await o.call("goal.status", { goal_id })).state === "succeeded" ? true : undefined,
    );
    await new Promise((res) => setTimeout(res, 1_500));
    // The node says why its goals wait (its heartbeat is refused: it may wait for long).
    const said = (text: string) => owner.child.output().split(text).length - 1;
    expect(said("past the lease: model calls, tool calls, events and ends of this node's goals wait")).toBe(
      1,
    );
    expect(said("looked which goals are still this node's after its pause")).toBe(0);
    await user.writable([]);
    await until(async () =>
      (await r.hget(`aido:goal:${goal_id}`, "state")) === "succeeded" ? true : undefined,
    );
    await new Promise((res) => setTimeout(res, 1_500));
    const types = (await r.xrange(`aido:events:${goal_id}`, "-", "+")).map(
      ([, f]) => (JSON.parse(f[1] ?? "{}") as { type?: string }).type,
    );
    // The model's answer read after the resume (its usage), then the end, once, last.
    expect(types, types.join(" ")).toContain("usage");
    expect(types.filter((t) => t === "goal.finished")).toHaveLength(1);
    expect(types.at(-1)).toBe("goal.finished");
    const ends = (await r.xrange("aido:goal-ends", "-", "+")).filter(([, f]) => f[1] === goal_id);
    expect(ends).toHaveLength(1);
    expect(said("looked which goals are still this node's after its pause")).toBe(1);
    await redis.stop();
  }, 60_000);
});
