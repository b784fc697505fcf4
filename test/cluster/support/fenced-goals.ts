// The opening the fence's unfreeze tests share (fence-unfreeze-*.test.ts): a node in this process
// (a real Runtime over the scripted provider, its DockerBackend speaking to the real engine
// through the test's engine proxy, a real redis-server), and goals that have listed /workspace
// (their containers up) and whose next answer, a file_read of /workspace/note.txt, is held until
// the node is fenced (fence(): Redis stopped, every goal's container paused), so that it waits at
// the fence's hold. Each test then lifts the fence (lift(): Redis back) as its engine answers,
// and checks; withFencedGoals lets the goals finish and cleans up whatever happened.
// useCountedUnpauses: the engine proxy those files answer each container's nth unpause with.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll } from "vitest";
import { ClusterNode } from "../../../src/cluster/node.js";
import type { DockerBackend } from "../../../src/sandbox/docker.js";
import type { Harness } from "../../agent/harness.js";
import { until } from "../../daemon/process.js";
import { requireDocker } from "../../support/docker.js";
import { type EngineAnswer, type EngineProxy, engineProxy } from "../../support/engine-proxy.js";
import { latch, type ProviderServer, turn } from "../../support/provider-server.js";
import { forGoal, manifest, startRedis } from "../fixture.js";
import { openNodeHarness } from "./node-harness.js";

/** The file's engine proxy and how it answers unpauses: see useCountedUnpauses. */
export interface CountedUnpauses {
  /** Set before the file's first test. */
  readonly engine: EngineProxy;
  /** Once armed: how the engine answers container `name`'s nth unpause (undefined: passed on). */
  answer: ((name: string, n: number) => EngineAnswer) | undefined;
  /** Unarmed again, every container's count back at 0 (a test's end). */
  disarm(): void;
}

/** An engine proxy (opened before the file's tests, closed after) counting each container's unpauses. */
export function useCountedUnpauses(): CountedUnpauses {
  const counts = new Map<string, number>();
  let engine: EngineProxy | undefined;
  const unpauses: CountedUnpauses = {
    get engine() {
      if (!engine) throw new Error("the engine proxy opens before the file's first test");
      return engine;
    },
    answer: undefined,
    disarm() {
      unpauses.answer = undefined;
      counts.clear();
    },
  };
  beforeAll(async () => {
    requireDocker();
    engine = await engineProxy((line) => {
      const name = /^POST \S*\/containers\/([^/]+)\/unpause$/.exec(line)?.[1];
      if (name === undefined || unpauses.answer === undefined) return undefined;
      const n = (counts.get(name) ?? 0) + 1;
      counts.set(name, n);
      return unpauses.answer(name, n);
    });
  });
  afterAll(async () => {
    await engine?.close();
  });
  return unpauses;
}

const readManifest = `${manifest()}capabilities:\n  - "tool: file_list"\n  - "tool: file_read"\n  - "file_read: /workspace/**"\n`;

export interface FencedGoals {
  h: Harness;
  node: ClusterNode;
  /** Per marker, in order: the goal and its container's name. */
  goals: string[];
  containers: string[];
  /** Redis stopped: once the node is fenced and every container paused, the file_reads come (and wait). */
  fence(): Promise<void>;
  /** Redis back; with `unfenced`, settles once the node's fence is lifted. */
  lift(opts?: { unfenced?: boolean }): Promise<void>;
  /** How many model requests the goal of `marker` made (3: its file_read ended). */
  requests(marker: string): number;
  /** The goal's tool entries that ended a call (kind, tool), in order. */
  toolEnds(goalId: string): [string, string | undefined][];
}

export interface FencedGoalsOptions {
  nodeId: string;
  /** One goal per marker (its scripted answers matched by it). */
  markers: string[];
  /** A file_list after the file_read (a fourth request once both ran). */
  listAfter?: boolean;
  /**
   * Let the engine go (the test's refusals and held requests) before the clean-up, which waits
   * for the node and its goals: a test that failed with an unpause held would wait on it.
   */
  letGo?: () => void;
  /** The node's lease (default NODE_LEASE_MS, node-harness.ts). */
  leaseMs?: number;
  /** How each goal is to end once the test ran (default succeeded: let finish). */
  ends?: "succeeded" | "cancelled";
}

const docker = new Docker();

/** A container's id and state ("paused", "running", ..., "gone"). */
export const containerState = (name: string): Promise<{ id: string; state: string }> =>
  docker
    .getContainer(name)
    .inspect()
    .then(
      (c) => ({ id: c.Id, state: c.State.Paused ? "paused" : c.State.Status }),
      () => ({ id: "", state: "gone" }),
    );

/** Settles with what `p` settled with, or "pending" after `ms`. */
export const within = <T>(p: Promise<T>, ms: number): Promise<T | "pending"> =>
  Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);

/** Run `test` over the opening (see the header); then each goal is let finish, and all is cleaned up. */
export async function withFencedGoals(
  server: ProviderServer,
  engine: EngineProxy,
  opts: FencedGoalsOptions,
  test: (f: FencedGoals) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  let node: ClusterNode | undefined;
  const h: Harness = await openNodeHarness(server, {
    backend: engine.docker,
    redisUrl: redis.url,
    nodeId: opts.nodeId,
    node: () => node,
    ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
  });
  const answer = latch();
  const finish = latch();
  let down = false;
  const goals: string[] = [];
  try {
    const made = await ClusterNode.start(h.home.config, h.rt, () => {});
    node = made;
    for (const marker of opts.markers) {
      server.script(forGoal(marker), [
        turn.toolUse("file_list", { path: "/workspace" }),
        turn.toolUse("file_read", { path: "/workspace/note.txt" }, { until: answer.promise }),
        ...(opts.listAfter ? [turn.toolUse("file_list", { path: "/workspace/" })] : []),
        turn.text(`done ${marker}`, { until: finish.promise }),
      ]);
      const { goal_id } = await made.goals.submit({ goal: `run ${marker}`, manifest: readManifest });
      goals.push(goal_id);
    }
    for (const [i, marker] of opts.markers.entries()) {
      await until(() => (server.requestsMatching(forGoal(marker)).length >= 2 ? true : undefined), 60_000);
      writeFileSync(join(h.home.config.goalsDir, goals[i] ?? "", "workspace", "note.txt"), "a note\n", {
        mode: 0o644,
      });
    }
    const containers = goals.map((g) => (h.rt.backend as DockerBackend).containerName(g));
    await test({
      h,
      node: made,
      goals,
      containers,
      fence: async () => {
        await redis.stop();
        down = true;
        await until(() => (made.fenceStatus().fenced ? true : undefined), (opts.leaseMs ?? 0) + 10_000);
        for (const c of containers)
          await until(async () => ((await containerState(c)).state === "paused" ? true : undefined), 10_000);
        answer.open(); // the file_reads wait at the hold
      },
      lift: async ({ unfenced = false } = {}) => {
        await redis.start();
        down = false;
        if (unfenced) await until(() => (made.fenceStatus().fenced === false ? true : undefined), 20_000);
      },
      requests: (marker) => server.requestsMatching(forGoal(marker)).length,
      toolEnds: (goalId) =>
        h.rt.audit
          .query({ goal_id: goalId })
          .filter((e) => e.kind.startsWith("tool.") && e.kind !== "tool.invoked")
          .map((e) => [e.kind, (e.payload as { tool?: string }).tool]),
    });
    finish.open();
    const ends = opts.ends ?? "succeeded";
    for (const goal_id of goals)
      await until(() => (h.rt.goals.status(goal_id).state === ends ? true : undefined), 30_000);
  } finally {
    opts.letGo?.();
    answer.open();
    finish.open();
    if (down) await redis.start().catch(() => {});
    await until(() => (node?.fenceStatus().fenced === false ? true : undefined), 20_000).catch(() => {});
    await node?.stop();
    for (const goal_id of goals) await h.rt.backend.remove(goal_id).catch(() => {});
    await h.close();
    await redis.stop();
  }
}
