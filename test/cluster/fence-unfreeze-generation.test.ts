// Cluster mode: a try to unfreeze a kept goal (cluster/fence.ts, unfreezeAgain) that the engine
// holds past a whole new fence and its lift. The new fence's freeze waits for that unpause
// (sandbox/frozen-goals.ts), and the lift waits for the freeze 10 s at most: the new lift then
// tries the goal itself while the old try is still out. Before, the old try's count went on in
// the new fence's: the old last try (the sixth), refused once answered, gave the goal up at once
// (its container removed, its held call sent into a fresh one) though the new fence had tried it
// once. Now each fence counts its own tries: the old try counts for nothing, the new fence's next
// try unfreezes the goal, and it runs on in its own container.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that refuses (and holds) unpause requests, a real redis-server stopped for each fence.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UNFREEZE_TRIES } from "../../src/cluster/fence.js";
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

/** How long the old fence's last try is held: past a new fence (0.75 s) and its lift's 10 s wait. */
const HOLD_MS = 16_000;

/** Unpause requests seen since the test armed the proxy (undefined: not armed). */
let unpauses: number | undefined;
const lastTryHeld = latch();
let engine: EngineProxy;
beforeAll(async () => {
  requireDocker();
  engine = await engineProxy((line) => {
    if (!/^POST \S+\/unpause$/.test(line) || unpauses === undefined) return undefined;
    unpauses++;
    // The lift's try and the next four refused; the last (the sixth) held, then refused; the new
    // lift's refused too; the new fence's next try passes.
    if (unpauses < UNFREEZE_TRIES) return "refuse";
    if (unpauses === UNFREEZE_TRIES) {
      lastTryHeld.open();
      return { refuseAfterMs: HOLD_MS };
    }
    if (unpauses === UNFREEZE_TRIES + 1) return "refuse";
    return undefined;
  });
});
afterAll(async () => {
  await engine?.close();
});

const docker = new Docker();
const stateOf = (name: string) =>
  docker
    .getContainer(name)
    .inspect()
    .then(
      (c) => ({ id: c.Id, state: c.State.Paused ? "paused" : c.State.Status }),
      () => ({ id: "", state: "gone" }),
    );

const readManifest = `${manifest()}capabilities:\n  - "tool: file_list"\n  - "tool: file_read"\n  - "file_read: /workspace/**"\n`;

describe("cluster mode: a try to unfreeze a kept goal held past a new fence and its lift", () => {
  it("counts for nothing in the new fence: the goal is not given up, it runs on in its own container", async () => {
    const marker = "unfreeze-generation";
    const redis = await startRedis();
    let node: ClusterNode | undefined;
    const h: Harness = await openNodeHarness(server, {
      backend: engine.docker,
      redisUrl: redis.url,
      nodeId: "n-unfreeze-generation",
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
        turn.toolUse("file_list", { path: "/workspace/" }),
        turn.text(`done ${marker}`, { until: finish.promise }),
      ]);
      const { goal_id } = await made.goals.submit({ goal: `run ${marker}`, manifest: readManifest });
      goalId = goal_id;
      await until(() => (server.requestsMatching(forGoal(marker)).length >= 2 ? true : undefined), 60_000);
      writeFileSync(join(h.home.config.goalsDir, goal_id, "workspace", "note.txt"), "a note\n", {
        mode: 0o644,
      });
      const container = (h.rt.backend as DockerBackend).containerName(goal_id);
      const before = (await stateOf(container)).id;
      // The first fence: the goal frozen, its file_read held.
      await redis.stop();
      down = true;
      await until(() => (made.fenceStatus().fenced ? true : undefined), 10_000);
      await until(async () => ((await stateOf(container)).state === "paused" ? true : undefined), 10_000);
      answer.open();
      unpauses = 0;
      await redis.start();
      down = false;
      // Its lift and four tries refused; the last try is out, held by the engine.
      await lastTryHeld.promise;
      // A whole new fence and lift while it is held.
      await redis.stop();
      down = true;
      await until(() => (made.fenceStatus().fenced ? true : undefined), 10_000);
      await redis.start();
      down = false;
      await until(() => (made.fenceStatus().fenced === false ? true : undefined), 30_000);
      // The new lift's try, refused while the old one is still held.
      await until(() => ((unpauses ?? 0) > UNFREEZE_TRIES ? true : undefined), 10_000);
      // The held call, then the next, ran in the goal's own container.
      await until(() => (server.requestsMatching(forGoal(marker)).length >= 4 ? true : undefined), 40_000);
      const ends = h.rt.audit
        .query({ goal_id })
        .filter((e) => e.kind.startsWith("tool.") && e.kind !== "tool.invoked")
        .map((e) => [e.kind, (e.payload as { tool?: string }).tool]);
      expect(ends).toEqual([
        ["tool.completed", "file_list"],
        ["tool.completed", "file_read"],
        ["tool.completed", "file_list"],
      ]);
      expect(await stateOf(container)).toEqual({ id: before, state: "running" });
      expect(unpauses).toBeGreaterThan(UNFREEZE_TRIES + 1); // unfrozen by the new fence's own try
      finish.open();
      await until(() => (h.rt.goals.status(goal_id).state === "succeeded" ? true : undefined), 30_000);
    } finally {
      unpauses = undefined;
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
