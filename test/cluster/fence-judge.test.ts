// Cluster mode, fencing (cluster/fence.ts) of a tool call that reaches the gate's judge stage
// while its node is fenced: file_read resolves its path in the goal's container (realpath,
// gate/judge.ts stage 5), and that container is frozen. Before, the call went into the frozen
// container, its executor did not answer for 10 s, and it ended as a sandbox error (neither run
// nor refused by the gate, no tool.denied). Now it waits, as the calls held after approval do,
// and runs once the fence is lifted; one let go without running (its goal stopped while it
// waits) is refused at stage hold, audited.
// A real Runtime (scripted provider) on the real Docker engine, a real redis-server stopped for
// the fence, the node in this process.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ClusterNode } from "../../src/cluster/node.js";
import type { Harness } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import { requireDocker } from "../support/docker.js";
import { latch, type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { openNodeHarness } from "./support/node-harness.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

const readManifest = `${manifest()}capabilities:\n  - "tool: file_list"\n  - "tool: file_read"\n  - "file_read: /workspace/**"\n`;

/** A node whose goal has listed /workspace (its container is up) and whose next answer, a file_read, waits for `answer`. */
async function fencedWithReadPending(nodeId: string, marker: string) {
  requireDocker();
  const redis = await startRedis();
  let node: ClusterNode | undefined;
  const h: Harness = await openNodeHarness(server, {
    backend: "docker",
    redisUrl: redis.url,
    nodeId,
    node: () => node,
  });
  const answer = latch();
  try {
    return await pendingRead(
      h,
      redis,
      answer,
      (made) => {
        node = made;
      },
      marker,
    );
  } catch (e) {
    answer.open();
    await node?.stop();
    await h.close();
    await redis.stop();
    throw e;
  }
}

async function pendingRead(
  h: Harness,
  redis: Awaited<ReturnType<typeof startRedis>>,
  answer: ReturnType<typeof latch>,
  made: (n: ClusterNode) => void,
  marker: string,
) {
  const node = await ClusterNode.start(h.home.config, h.rt, () => {});
  made(node);
  server.script(forGoal(marker), [
    turn.toolUse("file_list", { path: "/workspace" }),
    turn.toolUse("file_read", { path: "/workspace/note.txt" }, { until: answer.promise }),
    turn.text(`done ${marker}`),
  ]);
  const { goal_id } = await node.goals.submit({ goal: `run ${marker}`, manifest: readManifest });
  await until(() => (server.requestsMatching(forGoal(marker)).length >= 2 ? true : undefined), 60_000);
  writeFileSync(join(h.home.config.goalsDir, goal_id, "workspace", "note.txt"), "a note\n", { mode: 0o644 });
  await redis.stop();
  await until(() => (node.fenceStatus().fenced ? true : undefined), 10_000);
  await until(() => (h.rt.audit.query({ kind: "cluster.fenced" }).length > 0 ? true : undefined), 10_000);
  const toolEntries = () =>
    h.rt.audit
      .query({ goal_id })
      .filter((e) => e.kind.startsWith("tool.") && (e.payload as { tool?: string }).tool === "file_read");
  // `down`: Redis is stopped (started again only then: a second start orphans the first server).
  return { redis, node, h, answer, goal_id, toolEntries, down: true };
}

describe("cluster mode: a tool call at the judge stage while the node is fenced", () => {
  it("waits, its path not resolved in the frozen container, and runs once the fence is lifted", async () => {
    const f = await fencedWithReadPending("n-fence-judge", "judge-wait");
    try {
      f.answer.open();
      // Longer than the executor's 10 s answer time for a path resolution.
      await new Promise((r) => setTimeout(r, 12_000));
      expect(f.toolEntries()).toEqual([]);
      await f.redis.start();
      f.down = false;
      await until(() => (f.node.fenceStatus().fenced === false ? true : undefined), 20_000);
      await until(() => (f.h.rt.goals.status(f.goal_id).state === "succeeded" ? true : undefined), 30_000);
      expect(
        f
          .toolEntries()
          .map((e) => e.kind)
          .sort(),
      ).toEqual(["tool.completed", "tool.invoked"]);
    } finally {
      f.answer.open();
      if (f.down) await f.redis.start().catch(() => {});
      await f.node.stop();
      await f.h.rt.backend.remove(f.goal_id).catch(() => {});
      await f.h.close();
      await f.redis.stop();
    }
  }, 120_000);

  it("is refused at stage hold, audited, when its goal is stopped while it waits", async () => {
    const f = await fencedWithReadPending("n-fence-judge-stop", "judge-stop");
    try {
      f.answer.open();
      await new Promise((r) => setTimeout(r, 1_000));
      expect(f.toolEntries()).toEqual([]);
      f.h.rt.goals.fail(f.goal_id, "another node took the goal");
      const entries = await until(() => (f.toolEntries().length > 0 ? f.toolEntries() : undefined), 15_000);
      expect(entries.map((e) => [e.kind, e.payload])).toEqual([
        ["tool.denied", expect.objectContaining({ tool: "file_read", stage: "hold", code: "cancelled" })],
      ]);
    } finally {
      f.answer.open();
      if (f.down) await f.redis.start().catch(() => {});
      await until(() => (f.node.fenceStatus().fenced === false ? true : undefined), 20_000).catch(() => {});
      await f.node.stop();
      await f.h.rt.backend.remove(f.goal_id).catch(() => {});
      await f.h.close();
      await f.redis.stop();
    }
  }, 120_000);
});
