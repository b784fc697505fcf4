// Cluster mode, fencing (cluster.on_redis_loss, cluster/fence.ts): a node cut off from Redis
// alone (a partition, made by a TCP proxy in front of the real redis-server that only this node
// goes through, cut by closing its connections) holds its goals once it has not renewed its lease
// for lease_ms less the margin: no model call, no tool call, its goals' containers frozen. The
// survivor, on the real port, ends the goal once the lease lapsed; the cut-off node, back,
// looks, finds it lost and stops it. With `finish` the old behaviour stays: the node runs on.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import {
  conversationsStarted,
  forGoal,
  LEASE_MS,
  manifest,
  type Node,
  startNode,
  startRedis,
  startRedisProxy,
  stopAll,
} from "./fixture.js";

/** Where the fence falls after the last renewal's send: lease less a quarter lease (fence.ts). */
const FENCE_MS = LEASE_MS - LEASE_MS / 4;
/** A model call or tool call in flight as the fence falls may end after it (turns take 150 ms). */
const SETTLE_MS = 700;

let server: ProviderServer;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
}, 30_000);

afterAll(async () => {
  await stopAll();
  await server?.close();
}, 60_000);

/** A goal that lists a path in /workspace and asks the model again, turn after turn, for a long while. */
function busyGoal(marker: string, turns = 120): void {
  server.script(forGoal(marker), [
    // Each call lists another path: the repeat guard refuses a third identical one.
    ...Array.from({ length: turns }, (_, i) =>
      turn.toolUse("file_list", { path: `/workspace/n${i}` }, { delayMs: 150 }),
    ),
    turn.text(`done ${marker}`),
  ]);
}

const busyManifest = `${manifest()}capabilities:\n  - "tool: file_list"\n  - "file_read: /workspace/**"\nlimits:\n  max_iterations: 200\n`;

async function invokedTimes(node: Node, goalId: string): Promise<number[]> {
  const c = await node.client();
  const r = await c.call("audit.query", { kind: "tool.invoked", goal_id: goalId, limit: 10_000 });
  return r.entries.map((e) => Date.parse(e.time));
}

async function auditOf(node: Node, kind: string): Promise<{ goal_id: string | null; payload: unknown }[]> {
  const c = await node.client();
  return (await c.call("audit.query", { kind, limit: 1_000 })).entries;
}

describe("cluster mode: a node cut off from Redis alone", () => {
  it("holds its goal's model and tool calls once its lease could run out, and stops the goal the survivor ended", async () => {
    const redis = await startRedis();
    const proxy = await startRedisProxy(redis.url);
    const cutOff = await startNode(server, proxy.url, "fence-cut", { capacity: 1 });
    busyGoal("fenced-goal");
    const c = await cutOff.client();
    const { goal_id } = await c.call("goal.submit", { goal: "run fenced-goal", manifest: busyManifest });
    // Its agent is listing the workspace and asking the model, turn after turn.
    await until(async () => ((await invokedTimes(cutOff, goal_id)).length >= 2 ? true : undefined), 30_000);
    const survivor = await startNode(server, redis.url, "fence-survivor", { capacity: 1 });
    const s = await survivor.client();
    await new Promise((r) => setTimeout(r, LEASE_MS)); // the survivor's connection up for a lease

    const cutAt = Date.now();
    proxy.cut();
    // Past the fence (and a call in flight as it fell): nothing more of the goal from this node.
    await new Promise((r) => setTimeout(r, FENCE_MS + SETTLE_MS));
    const asked = server.requestsMatching(forGoal("fenced-goal")).length;
    const status = await c.call("cluster.status", {});
    expect(status).toMatchObject({ enabled: true, fence: { on_redis_loss: "hold", fenced: true } });
    expect(status.enabled && status.redis.unreachable).toBeTruthy();

    // The survivor ends it once the cut-off node's lease lapsed (a model call had started).
    const ended = await s.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    expect(ended.state).toBe("failed");
    expect(ended.error).toContain("node fence-cut stopped heartbeating during the goal");
    // Still cut off a while after the survivor ended it: the node has asked nothing more.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(server.requestsMatching(forGoal("fenced-goal"))).toHaveLength(asked);

    // Back: the node looks, finds the goal lost and stops it; it never asked the model again.
    proxy.restore();
    await until(
      async () => ((await auditOf(cutOff, "cluster.unfenced")).length > 0 ? true : undefined),
      20_000,
    );
    expect((await auditOf(cutOff, "cluster.goal_lost")).map((e) => e.goal_id)).toEqual([goal_id]);
    expect(await c.call("goal.status", { goal_id })).toMatchObject({
      state: "failed",
      error: expect.stringContaining("stopped heartbeating"),
    });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(server.requestsMatching(forGoal("fenced-goal"))).toHaveLength(asked);
    // No tool call of it ran on the cut-off node past the fence.
    const late = (await invokedTimes(cutOff, goal_id)).filter((t) => t > cutAt + FENCE_MS + SETTLE_MS);
    expect(late).toEqual([]);
    const [fenced] = await auditOf(cutOff, "cluster.fenced");
    expect(fenced?.payload).toMatchObject({ goals: [goal_id], frozen: [goal_id], not_frozen: [] });
    const [unfenced] = await auditOf(cutOff, "cluster.unfenced");
    expect(unfenced?.payload).toMatchObject({ kept: [], lost: [goal_id] });
    expect(await c.call("cluster.status", {})).toMatchObject({ fence: { fenced: false } });
    await redis.stop();
  }, 90_000);

  it("with on_redis_loss finish, runs on as before: its goal keeps asking the model past the lease", async () => {
    const redis = await startRedis();
    const proxy = await startRedisProxy(redis.url);
    const cutOff = await startNode(server, proxy.url, "fence-finish", { capacity: 1, onRedisLoss: "finish" });
    busyGoal("finish-goal");
    const c = await cutOff.client();
    const { goal_id } = await c.call("goal.submit", { goal: "run finish-goal", manifest: busyManifest });
    await until(async () => ((await invokedTimes(cutOff, goal_id)).length >= 2 ? true : undefined), 30_000);
    proxy.cut();
    await new Promise((r) => setTimeout(r, FENCE_MS + SETTLE_MS));
    const asked = server.requestsMatching(forGoal("finish-goal")).length;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(server.requestsMatching(forGoal("finish-goal")).length).toBeGreaterThan(asked);
    // Not fenced, cut off: it answers with itself from memory, and that Redis cannot be reached.
    const status = await c.call("cluster.status", {});
    expect(status).toMatchObject({
      enabled: true,
      fence: { fenced: false },
      nodes: [{ node_id: "fence-finish" }],
    });
    expect(status.enabled && status.redis.unreachable).toBeTruthy();
    expect(await auditOf(cutOff, "cluster.fenced")).toEqual([]);
    proxy.restore();
    await c.call("goal.cancel", { goal_id }).catch(() => undefined);
    await redis.stop();
  }, 90_000);

  it("freezes the container of an exec under way while fenced, and lets it finish once Redis is back", async () => {
    const redis = await startRedis();
    const proxy = await startRedisProxy(redis.url);
    const node = await startNode(server, proxy.url, "fence-exec", { capacity: 1 });
    // One tick a tenth of a second into /workspace/ticks, 60 of them: a frozen exec writes none.
    const command = `python3 -c "import time;[(open('/workspace/ticks','a').write('x\\n'),time.sleep(0.1)) for i in range(60)];print('ticked')"`;
    server.script(forGoal("frozen-exec"), [
      turn.toolUse("exec", { command, timeout_ms: 60_000 }),
      turn.text("done frozen-exec"),
    ]);
    const c = await node.client();
    const { goal_id } = await c.call("goal.submit", {
      goal: "run frozen-exec",
      manifest: `${manifest()}capabilities:\n  - "tool: exec"\n  - "exec: python3 *"\n  - "file_write: /workspace/**"\n  - "file_read: /workspace/**"\n`,
    });
    const ticks = join(node.home.config.goalsDir, goal_id, "workspace", "ticks");
    const count = () => (existsSync(ticks) ? readFileSync(ticks, "utf8").split("\n").length - 1 : 0);
    await until(() => (count() >= 3 ? true : undefined), 30_000);
    proxy.cut();
    const container = await until(() => {
      const paused = dockerPaused(goal_id);
      return paused?.paused ? paused.name : undefined;
    }, FENCE_MS + 3_000);
    const at = count();
    expect(at).toBeLessThan(60);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(count()).toBe(at); // frozen: no progress
    expect(await c.call("cluster.status", {})).toMatchObject({ fence: { fenced: true } });
    proxy.restore();
    // Back, the goal still this node's: unfrozen, the exec finishes, the goal succeeds.
    await until(() => (dockerPaused(goal_id)?.paused === false ? true : undefined), 20_000);
    expect(await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).toMatchObject({
      state: "succeeded",
      result: "done frozen-exec",
      node: "fence-exec",
    });
    expect(count()).toBe(60);
    const [unfenced] = await auditOf(node, "cluster.unfenced");
    expect(unfenced?.payload).toMatchObject({ kept: [goal_id], lost: [] });
    expect(container).toContain(goal_id);
    await redis.stop();
  }, 90_000);
});

/** The goal's container and whether it is paused (docker inspect State.Paused); undefined: none. */
function dockerPaused(goalId: string): { name: string; paused: boolean } | undefined {
  const names = execFileSync(
    "docker",
    ["ps", "-a", "--filter", `label=aido.goal=${goalId}`, "--format", "{{.Names}}"],
    {
      encoding: "utf8",
    },
  )
    .trim()
    .split("\n")
    .filter((n) => n !== "");
  const name = names[0];
  if (!name) return undefined;
  const paused = execFileSync("docker", ["inspect", "-f", "{{.State.Paused}}", name], {
    encoding: "utf8",
  }).trim();
  return { name, paused: paused === "true" };
}

describe("cluster mode: Redis away for every node, with on_redis_loss hold", () => {
  for (const [what, outageMs, fences] of [
    ["shorter than the lease less the margin", 1_000, false],
    ["longer than the lease less the margin", 4_000, true],
  ] as const) {
    it(`runs every goal once and loses none when Redis is away ${what}`, async () => {
      const redis = await startRedis();
      const ids = fences ? ["fence-o1", "fence-o2"] : ["fence-s1", "fence-s2"];
      const nodes = await Promise.all(ids.map((id) => startNode(server, redis.url, id, { capacity: 2 })));
      const markers = [0, 1, 2, 3].map((i) => `${ids[0]}-goal-${i}`);
      for (const m of markers) server.script(forGoal(m), [turn.text(`done ${m}`, { delayMs: 2_000 })]);
      const c1 = await nodes[0]!.client();
      const goals: string[] = [];
      for (const m of markers)
        goals.push((await c1.call("goal.submit", { goal: `run ${m}`, manifest: manifest() })).goal_id);
      await until(
        () => (markers.every((m) => server.requestsMatching(forGoal(m)).length > 0) ? true : undefined),
        20_000,
      );
      await redis.stop();
      await new Promise((r) => setTimeout(r, outageMs));
      await redis.start();
      const c2 = await nodes[1]!.client();
      const ended = await Promise.all(
        goals.map((id) => c2.call("goal.wait", { goal_id: id, timeout_ms: 20_000 })),
      );
      expect(ended.map((s) => s.state)).toEqual(goals.map(() => "succeeded"));
      expect(ended.map((s) => s.result)).toEqual(markers.map((m) => `done ${m}`));
      for (const m of markers) expect(conversationsStarted(server, m)).toBe(1);
      for (const n of nodes) {
        const fenced = await auditOf(n, "cluster.fenced");
        expect(fenced.length > 0).toBe(fences);
        if (fences) {
          const unfenced = await auditOf(n, "cluster.unfenced");
          expect(unfenced.length).toBeGreaterThan(0);
          expect(unfenced.flatMap((e) => (e.payload as { lost: string[] }).lost)).toEqual([]);
        }
        expect(await auditOf(n, "cluster.goal_lost")).toEqual([]);
      }
      await redis.stop();
    }, 60_000);
  }
});
