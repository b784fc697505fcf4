// Cluster mode, failure without loss: a node killed with kill -9 mid-goal, and Redis
// stopped mid-burst. Real redis-server, real agentd child processes, the scripted provider.

import { describe, expect, it } from "vitest";
import type { AidoRpcError } from "../../src/client/client.js";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import {
  conversationsStarted,
  forGoal,
  HEARTBEAT_MS,
  LEASE_MS,
  manifest,
  type Node,
  type RedisServer,
  startNode,
  startRedis,
} from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

describe("cluster mode: a node dies", () => {
  it("ends a dead node's goals on a survivor within the lease: failed if a model call had started, else re-queued and run once", async () => {
    const redis = await startRedis();
    // The victim runs alone first, so both goals are its own; one inference slot: the second
    // goal waits for it, so no model call of it has started when the node dies.
    const victim = await startNode(server, redis.url, "cluster-victim", { capacity: 2, inference: 1 });
    server.script(forGoal("spent-goal"), [turn.text("never", { delayMs: 60_000 })]);
    server.script(forGoal("waiting-goal"), [turn.text("done waiting-goal")]);
    const v = await victim.client();
    const spent = (await v.call("goal.submit", { goal: "run spent-goal", manifest: manifest() })).goal_id;
    await until(() => (server.requestsMatching(forGoal("spent-goal")).length > 0 ? true : undefined));
    const waiting = (await v.call("goal.submit", { goal: "run waiting-goal", manifest: manifest() })).goal_id;
    await until(async () =>
      (await v.call("goal.status", { goal_id: waiting })).state === "running" ? true : undefined,
    );

    const survivor = await startNode(server, redis.url, "cluster-survivor", { capacity: 2 });
    const s = await survivor.client();
    const killedAt = Date.now();
    await victim.kill();

    const failed = await s.call("goal.wait", { goal_id: spent, timeout_ms: 20_000 });
    const endedIn = Date.now() - killedAt;
    expect(failed.state).toBe("failed");
    expect(failed.error).toContain("node cluster-victim stopped heartbeating during the goal");
    // The lease, plus BullMQ's stalled check (two passes of one heartbeat each), plus slack.
    expect(endedIn).toBeLessThan(LEASE_MS + 4 * HEARTBEAT_MS + 2_000);

    const requeued = await s.call("goal.wait", { goal_id: waiting, timeout_ms: 20_000 });
    expect(requeued).toMatchObject({
      state: "succeeded",
      node: "cluster-survivor",
      result: "done waiting-goal",
    });
    // Nothing ran twice: each bootstrap conversation started once, on one node.
    expect(conversationsStarted(server, "spent-goal")).toBe(1);
    expect(conversationsStarted(server, "waiting-goal")).toBe(1);

    // The victim comes back: it recovers like a restarted daemon, and takes nothing back.
    await victim.restart();
    const back = await victim.client();
    await until(async () => {
      const st = await back.call("cluster.status", {});
      return st.enabled && st.nodes.find((n) => n.node_id === "cluster-victim")?.alive ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS));
    expect(await back.call("goal.status", { goal_id: spent })).toMatchObject({
      state: "failed",
      error: expect.stringContaining("stopped heartbeating during the goal"),
    });
    expect(await back.call("goal.status", { goal_id: waiting })).toMatchObject({
      state: "succeeded",
      node: "cluster-survivor",
    });
    expect(conversationsStarted(server, "spent-goal")).toBe(1);
    expect(conversationsStarted(server, "waiting-goal")).toBe(1);
    await redis.stop();
  }, 90_000);
});

describe("cluster mode: Redis goes away", () => {
  let redis: RedisServer;
  let nodes: Node[];

  it("refuses submissions clearly while Redis is down, lets running goals finish, and loses nothing", async () => {
    redis = await startRedis();
    nodes = await Promise.all(
      ["cluster-r1", "cluster-r2"].map((id) => startNode(server, redis.url, id, { capacity: 2 })),
    );
    const markers = ["outage-0", "outage-1", "outage-2", "outage-3"];
    for (const m of markers) server.script(forGoal(m), [turn.text(`done ${m}`, { delayMs: 3_000 })]);
    const c1 = await nodes[0]!.client();
    const ids: string[] = [];
    for (const m of markers)
      ids.push((await c1.call("goal.submit", { goal: `run ${m}`, manifest: manifest() })).goal_id);
    // All four are in their model call (two per node) when Redis stops.
    await until(
      () => (markers.every((m) => server.requestsMatching(forGoal(m)).length > 0) ? true : undefined),
      20_000,
    );
    await redis.stop();

    const refused = await c1.call("goal.submit", { goal: "run outage-late", manifest: manifest() }).then(
      () => undefined,
      (e: unknown) => e as AidoRpcError,
    );
    expect(refused?.code).toBe("cluster_unavailable");
    expect(refused?.message).toContain("Redis cannot be reached");
    expect(refused?.message).not.toContain("127.0.0.1:"); // no address (and so no password) in what a client sees

    // The goals end while Redis is away (their turns take 3 s); then Redis comes back.
    await new Promise((r) => setTimeout(r, 4_000));
    await redis.start();
    const c2 = await nodes[1]!.client();
    const ended = await Promise.all(
      ids.map((id) => c2.call("goal.wait", { goal_id: id, timeout_ms: 30_000 })),
    );
    expect(ended.map((s) => s.state)).toEqual(ids.map(() => "succeeded"));
    expect(ended.map((s) => s.result)).toEqual(markers.map((m) => `done ${m}`));
    for (const m of markers) expect(conversationsStarted(server, m)).toBe(1);

    // And the cluster takes goals again.
    server.script(forGoal("after-outage"), [turn.text("done after-outage")]);
    const { goal_id } = await c2.call("goal.submit", { goal: "run after-outage", manifest: manifest() });
    expect(await c1.call("goal.wait", { goal_id, timeout_ms: 20_000 })).toMatchObject({ state: "succeeded" });
  }, 90_000);
});
