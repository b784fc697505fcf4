// Cluster mode, the fence's lift (cluster/fence.ts) when the engine refuses to unfreeze a kept
// goal's container. Before, one refusal (even a passing one) let the goal's held calls go into
// the container still paused (a path resolution then got no answer for 10 s and failed), and
// nothing unfroze it again: the sweep removed it as a stopped container under a goal its node
// kept. Now the goal stays frozen, its calls waiting, and the unfreeze is tried again with the
// heartbeats: the goal runs on in its own container. An engine that keeps refusing is given up
// after UNFREEZE_TRIES tries: the goal's container is removed, and the call held on it runs in
// a fresh container over the same workspace.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that refuses unpause requests, a real redis-server stopped for the fence, the node in
// this process.

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

/** How many unpause requests the engine refuses from now on. */
let refusals = 0;
let engine: EngineProxy;
beforeAll(async () => {
  requireDocker();
  engine = await engineProxy((line) => {
    if (!/^POST \S+\/unpause$/.test(line) || refusals <= 0) return undefined;
    refusals--;
    return "refuse";
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

/**
 * A node whose goal has listed /workspace (its container is up) and whose next answer, a
 * file_read, comes once the node is fenced (Redis stopped) and the container frozen; then
 * Redis is back with the engine refusing `refused` unpauses, and the test's checks run.
 */
async function liftRefused(
  nodeId: string,
  marker: string,
  refused: number,
  check: (f: { h: Harness; goalId: string; container: string; before: string }) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  let node: ClusterNode | undefined;
  const h: Harness = await openNodeHarness(server, {
    backend: engine.docker,
    redisUrl: redis.url,
    nodeId,
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
    await redis.stop();
    down = true;
    await until(() => (made.fenceStatus().fenced ? true : undefined), 10_000);
    await until(async () => ((await stateOf(container)).state === "paused" ? true : undefined), 10_000);
    answer.open(); // the file_read waits at the hold
    refusals = refused;
    await redis.start();
    down = false;
    await until(() => (made.fenceStatus().fenced === false ? true : undefined), 20_000);
    // The goal's last tool call ended (its container is removed once the goal ends).
    await until(() => (server.requestsMatching(forGoal(marker)).length >= 4 ? true : undefined), 40_000);
    await check({ h, goalId: goal_id, container, before });
    finish.open();
    await until(() => (h.rt.goals.status(goal_id).state === "succeeded" ? true : undefined), 30_000);
  } finally {
    refusals = 0;
    answer.open();
    finish.open();
    if (down) await redis.start().catch(() => {});
    await until(() => (node?.fenceStatus().fenced === false ? true : undefined), 20_000).catch(() => {});
    await node?.stop();
    if (goalId) await h.rt.backend.remove(goalId).catch(() => {});
    await h.close();
    await redis.stop();
  }
}

/** The goal's tool entries (kind, tool) that ended a call, in order. */
function toolEnds(h: Harness, goalId: string): [string, string | undefined][] {
  return h.rt.audit
    .query({ goal_id: goalId })
    .filter((e) => e.kind.startsWith("tool.") && e.kind !== "tool.invoked")
    .map((e) => [e.kind, (e.payload as { tool?: string }).tool]);
}

describe("cluster mode: a kept goal whose unfreeze the engine refuses", () => {
  it("stays frozen, its held call waiting, until a heartbeat's try unfreezes it: it runs on in its own container", async () => {
    await liftRefused("n-unfreeze-retry", "unfreeze-once", 1, async ({ h, goalId, container, before }) => {
      expect(toolEnds(h, goalId)).toEqual([
        ["tool.completed", "file_list"],
        ["tool.completed", "file_read"],
        ["tool.completed", "file_list"],
      ]);
      expect(refusals).toBe(0); // the lift's unpause was refused
      // The same container, running: not left paused for the sweep to remove.
      expect(await stateOf(container)).toEqual({ id: before, state: "running" });
    });
  }, 120_000);

  it("is given up after every try is refused: its container is removed, and the held call runs in a fresh one", async () => {
    await liftRefused(
      "n-unfreeze-gave-up",
      "unfreeze-never",
      1_000,
      async ({ h, goalId, container, before }) => {
        // The held call ran in a fresh container, and so did the next.
        expect(toolEnds(h, goalId)).toEqual([
          ["tool.completed", "file_list"],
          ["tool.completed", "file_read"],
          ["tool.completed", "file_list"],
        ]);
        const now = await stateOf(container);
        expect(now.state).toBe("running");
        expect(now.id).not.toBe(before);
      },
    );
  }, 120_000);
});
