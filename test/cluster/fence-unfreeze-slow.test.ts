// Cluster mode, the fence's lift (cluster/fence.ts) when the engine does not answer a kept goal's
// unfreeze (a daemon slow or stuck on that container's freezer). The lift waited for each kept
// goal's unpause in turn, with no bound, and the node was sure of its goals only once the lift
// returned: one goal's unanswered unpause held every goal of the node (their model and tool
// calls, events and ends) and every later look, for as long as the engine took. Now the lift
// waits for an unfreeze as long as for the freeze (10 s): one not answered by then counts as a
// refused try (the goal stays frozen, tried again with the heartbeats) and the node goes on.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that holds the first unpause request, a real redis-server stopped for the fence.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterNode } from "../../src/cluster/node.js";
import type { DockerBackend } from "../../src/sandbox/docker.js";
import type { Harness } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import { requireDocker } from "../support/docker.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { latch, type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { openNodeHarness } from "./support/node-harness.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

/** How long the engine holds the lift's unpause (then passes it on). */
const HOLD_MS = 40_000;
let holdNext = false;
let engine: EngineProxy;
beforeAll(async () => {
  requireDocker();
  engine = await engineProxy((line) => {
    if (!holdNext || !/^POST \S+\/unpause$/.test(line)) return undefined;
    holdNext = false;
    return HOLD_MS;
  });
});
afterAll(async () => {
  await engine?.close();
});

const docker = new Docker();
const paused = (name: string) =>
  docker
    .getContainer(name)
    .inspect()
    .then((c) => c.State.Paused);

/** Settles with what `p` settled with, or "pending" after `ms`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | "pending"> =>
  Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);

const readManifest = `${manifest()}capabilities:\n  - "tool: file_list"\n  - "tool: file_read"\n  - "file_read: /workspace/**"\n`;

describe("cluster mode: a kept goal whose unfreeze the engine does not answer", () => {
  it("holds neither the node's other goals nor itself past the lift's wait: it runs on once a later try unfreezes it", async () => {
    const marker = "unfreeze-slow";
    const redis = await startRedis();
    let node: ClusterNode | undefined;
    const h: Harness = await openNodeHarness(server, {
      backend: engine.docker,
      redisUrl: redis.url,
      nodeId: "n-unfreeze-slow",
      node: () => node,
    });
    const answer = latch();
    const finish = latch();
    let down = false;
    let goalId: string | undefined;
    try {
      const made = await ClusterNode.start(h.home.config, h.rt, () => {});
      node = made;
      server.script(forGoal(marker), [
        turn.toolUse("file_list", { path: "/workspace" }),
        turn.toolUse("file_read", { path: "/workspace/note.txt" }, { until: answer.promise }),
        turn.text(`done ${marker}`, { until: finish.promise }),
      ]);
      const { goal_id } = await made.goals.submit({ goal: `run ${marker}`, manifest: readManifest });
      goalId = goal_id;
      await until(() => (server.requestsMatching(forGoal(marker)).length >= 2 ? true : undefined), 60_000);
      writeFileSync(join(h.home.config.goalsDir, goal_id, "workspace", "note.txt"), "a note\n", {
        mode: 0o644,
      });
      const container = (h.rt.backend as DockerBackend).containerName(goal_id);
      await redis.stop();
      down = true;
      await until(() => (made.fenceStatus().fenced ? true : undefined), 10_000);
      await until(async () => ((await paused(container)) ? true : undefined), 10_000);
      answer.open(); // the file_read waits at the hold
      holdNext = true; // the lift's unpause: held by the engine
      await redis.start();
      down = false;
      await until(() => (made.fenceStatus().fenced === false ? true : undefined), 20_000);
      // Another goal's tool call (one not frozen) goes on once the lift has waited its 10 s.
      expect(await within(made.beforeToolCall("g_another"), 20_000)).toBeUndefined();
      // The held call ran in the goal's own container, unfrozen by a later try, long before the
      // engine answered the lift's unpause.
      await until(() => (server.requestsMatching(forGoal(marker)).length >= 3 ? true : undefined), 15_000);
      const ends = h.rt.audit
        .query({ goal_id })
        .filter((e) => e.kind.startsWith("tool.") && e.kind !== "tool.invoked")
        .map((e) => [e.kind, (e.payload as { tool?: string }).tool]);
      expect(ends.sort()).toEqual([
        ["tool.completed", "file_list"],
        ["tool.completed", "file_read"],
      ]);
      finish.open();
      await until(() => (h.rt.goals.status(goal_id).state === "succeeded" ? true : undefined), 30_000);
    } finally {
      holdNext = false;
      answer.open();
      finish.open();
      if (down) await redis.start().catch(() => {});
      await until(() => (node?.fenceStatus().fenced === false ? true : undefined), 20_000).catch(() => {});
      await node?.stop();
      if (goalId) await h.rt.backend.remove(goalId).catch(() => {});
      await h.close();
      await redis.stop();
    }
  }, 150_000);
});
