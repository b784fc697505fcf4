// inference.cluster_max_concurrent: a cap on model calls in flight per provider across
// every node of the cluster (a shared API quota), kept by a Redis semaphore with leases so
// that the slots of a node that dies come back.

import { beforeAll, describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, LEASE_MS, manifest, type Node, type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let nodes: Node[];
let redis: RedisServer;
withCluster((c) => ({ server, redis } = c));

beforeAll(async () => {
  // Each node would send three calls at once on its own; the cluster allows one in all.
  nodes = await Promise.all(
    ["cluster-cap-a", "cluster-cap-b"].map((id) =>
      startNode(server, redis.url, id, { capacity: 3, inference: 3, clusterInference: 1 }),
    ),
  );
}, 60_000);

describe("inference.cluster_max_concurrent", () => {
  it("keeps the cluster's calls in flight to the cap, and a dead node's slot comes back within its lease", async () => {
    const markers = ["cap-0", "cap-1", "cap-2", "cap-3"];
    for (const m of markers) server.script(forGoal(m), [turn.text(`done ${m}`, { delayMs: 300 })]);
    const a = await nodes[0]!.client();
    const ids: string[] = [];
    for (const m of markers)
      ids.push((await a.call("goal.submit", { goal: `run ${m}`, manifest: manifest() })).goal_id);
    const ended = await Promise.all(
      ids.map((id) => a.call("goal.wait", { goal_id: id, timeout_ms: 30_000 })),
    );
    expect(ended.map((s) => s.state)).toEqual(ids.map(() => "succeeded"));
    expect(new Set(ended.map((s) => s.node)).size).toBe(2);
    expect(server.maxInFlight).toBe(1);

    // A node dies holding the slot (its call never answers); the other's call waits, then runs.
    server.script(forGoal("cap-held"), [turn.text("never", { delayMs: 60_000 })]);
    server.script(forGoal("cap-after"), [turn.text("done cap-after")]);
    const held = (await a.call("goal.submit", { goal: "run cap-held", manifest: manifest() })).goal_id;
    await until(() => (server.requestsMatching(forGoal("cap-held")).length > 0 ? true : undefined));
    const holder = (await a.call("goal.status", { goal_id: held })).node;
    const victim = nodes.find((n) => n.id === holder) as Node;
    const survivor = nodes.find((n) => n.id !== holder) as Node;
    await victim.kill();
    const killedAt = Date.now();
    const s = await survivor.client();
    const { goal_id } = await s.call("goal.submit", { goal: "run cap-after", manifest: manifest() });
    const after = await s.call("goal.wait", { goal_id, timeout_ms: 30_000 }, { timeoutMs: 40_000 });
    expect(after).toMatchObject({ state: "succeeded", node: survivor.id });
    const firstCall = server.requestsMatching(forGoal("cap-after"))[0];
    expect(firstCall).toBeDefined();
    // It waited for the dead node's lease to run out, and no longer than that (plus slack).
    expect(Date.now() - killedAt).toBeLessThan(LEASE_MS + 4_000);
  }, 90_000);
});
