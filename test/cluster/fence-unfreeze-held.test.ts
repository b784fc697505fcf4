// Cluster mode: a try again at a kept goal's unfreeze (cluster/fence.ts) that the engine never
// answers. The tries again ran in one loop, one goal after the other: a try the engine held kept
// every other goal's from being made until it was answered, and for good when it never was (a
// daemon stuck on that container's freezer): their held calls waited for ever under a node that
// kept them. Now each goal is tried on its own, and a try not answered within 10 s counts as
// refused: the other goal is unfrozen at its next try, the held one's goal at a later try.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that refuses each goal's first unpauses and holds one for the test's length, a real
// redis-server stopped for the fence.

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

/** Once armed: the container whose second unpause is held, and each container's unpauses seen. */
let held: string | undefined;
const unpauses = new Map<string, number>();
const heldSeen = latch();
/** What the held unpause waits for: the test's end. */
const release = latch();
let engine: EngineProxy;
beforeAll(async () => {
  requireDocker();
  engine = await engineProxy((line) => {
    const name = /^POST \S*\/containers\/([^/]+)\/unpause$/.exec(line)?.[1];
    if (name === undefined || held === undefined) return undefined;
    const n = (unpauses.get(name) ?? 0) + 1;
    unpauses.set(name, n);
    // The lift's unpause refused for both; the held goal's first try again held for ever, the
    // other's refused once more; the next tries pass.
    if (n === 1) return "refuse";
    if (n === 2 && name === held) {
      heldSeen.open();
      return { holdUntil: release.promise };
    }
    if (n === 2) return "refuse";
    return undefined;
  });
});
afterAll(async () => {
  release.open();
  await engine?.close();
});

const docker = new Docker();
const paused = (name: string) =>
  docker
    .getContainer(name)
    .inspect()
    .then((c) => c.State.Paused);

/** Settles with what \`p\` settled with, or "pending" after \`ms\`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | "pending"> =>
  Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);

const readManifest = `${manifest()}capabilities:\n  - "tool: file_list"\n  - "tool: file_read"\n  - "file_read: /workspace/**"\n`;

describe("cluster mode: a kept goal's try again that the engine never answers", () => {
  it("holds no other goal's tries: the other goal is unfrozen at its next try, the held one's at a later one", async () => {
    const markers = ["unfreeze-held-a", "unfreeze-held-b"];
    const redis = await startRedis();
    let node: ClusterNode | undefined;
    const h: Harness = await openNodeHarness(server, {
      backend: engine.docker,
      redisUrl: redis.url,
      nodeId: "n-unfreeze-held",
      node: () => node,
    });
    const answer = latch();
    const finish = latch();
    let down = false;
    const goals: string[] = [];
    try {
      const made = await ClusterNode.start(h.home.config, h.rt, () => {});
      node = made;
      for (const marker of markers) {
        server.script(forGoal(marker), [
          turn.toolUse("file_list", { path: "/workspace" }),
          turn.toolUse("file_read", { path: "/workspace/note.txt" }, { until: answer.promise }),
          turn.text(`done ${marker}`, { until: finish.promise }),
        ]);
        const { goal_id } = await made.goals.submit({ goal: `run ${marker}`, manifest: readManifest });
        goals.push(goal_id);
      }
      for (const [i, marker] of markers.entries()) {
        await until(() => (server.requestsMatching(forGoal(marker)).length >= 2 ? true : undefined), 60_000);
        writeFileSync(join(h.home.config.goalsDir, goals[i] ?? "", "workspace", "note.txt"), "a note\n", {
          mode: 0o644,
        });
      }
      const backend = h.rt.backend as DockerBackend;
      const containers = goals.map((g) => backend.containerName(g));
      await redis.stop();
      down = true;
      await until(() => (made.fenceStatus().fenced ? true : undefined), 10_000);
      for (const c of containers) await until(async () => ((await paused(c)) ? true : undefined), 10_000);
      answer.open(); // both file_reads wait at the hold
      held = containers[0];
      await redis.start();
      down = false;
      await until(() => (made.fenceStatus().fenced === false ? true : undefined), 20_000);
      expect(await within(heldSeen.promise, 10_000)).not.toBe("pending");
      // The other goal: its try again refused once more, the next unfreezes it (heartbeats every
      // 250 ms), and its held call runs in its own container while the held unpause is still out.
      await until(
        () => (server.requestsMatching(forGoal(markers[1] ?? "")).length >= 3 ? true : undefined),
        8_000,
      );
      expect(await paused(containers[1] ?? "")).toBe(false);
      // The held goal: its try not answered within 10 s counts as refused, and the next unfreezes it.
      await until(
        () => (server.requestsMatching(forGoal(markers[0] ?? "")).length >= 3 ? true : undefined),
        25_000,
      );
      expect(await paused(containers[0] ?? "")).toBe(false);
      for (const goal_id of goals) {
        const ends = h.rt.audit
          .query({ goal_id })
          .filter((e) => e.kind.startsWith("tool.") && e.kind !== "tool.invoked")
          .map((e) => [e.kind, (e.payload as { tool?: string }).tool]);
        expect(ends.sort()).toEqual([
          ["tool.completed", "file_list"],
          ["tool.completed", "file_read"],
        ]);
      }
      finish.open();
      for (const goal_id of goals)
        await until(() => (h.rt.goals.status(goal_id).state === "succeeded" ? true : undefined), 30_000);
    } finally {
      held = undefined;
      answer.open();
      finish.open();
      release.open();
      if (down) await redis.start().catch(() => {});
      await until(() => (node?.fenceStatus().fenced === false ? true : undefined), 20_000).catch(() => {});
      await node?.stop();
      for (const goal_id of goals) await h.rt.backend.remove(goal_id).catch(() => {});
      await h.close();
      await redis.stop();
    }
  }, 180_000);
});
