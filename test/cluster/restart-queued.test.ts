// Cluster mode, a node killed (kill -9) while one goal runs in its only slot and another
// waits behind it, then started again on the same home. A goal left queued in the node's
// own database would be started by the Runtime's recovery as the daemon opens, before the
// node has joined, whatever the cluster decided meanwhile: it could run twice, or stay
// queued in Redis forever. A cluster node never queues a goal in its own database (its
// worker takes no more jobs than the Runtime runs goals at once, and a take ends only once
// its goal has left the Runtime): the goal behind waits in the cluster's queue, and runs
// once after the restart; the running one ends failed on every node's view.

import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { conversationsStarted, forGoal, manifest, startNode, startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

/** The states of the goals in the node's own database. */
function localStates(dbPath: string): Record<string, string> {
  const db = new Database(dbPath, { readonly: true });
  try {
    const rows = db.prepare("SELECT id, state FROM goals").all() as { id: string; state: string }[];
    return Object.fromEntries(rows.map((r) => [r.id, r.state]));
  } finally {
    db.close();
  }
}

describe("cluster mode: a node restarted with a goal running and one behind it", () => {
  it("runs the goal behind once after the restart, and the running one ends failed: none stays queued or runs twice", async () => {
    const redis = await startRedis();
    const node = await startNode(server, redis.url, "cluster-full", { capacity: 1 });
    server.script(forGoal("busy-goal"), [turn.text("never", { delayMs: 60_000 })]);
    server.script(forGoal("behind-goal"), [turn.text("done behind-goal")]);
    const c = await node.client();
    const busy = (await c.call("goal.submit", { goal: "run busy-goal", manifest: manifest() })).goal_id;
    await until(() => (server.requestsMatching(forGoal("busy-goal")).length > 0 ? true : undefined));
    const behind = (await c.call("goal.submit", { goal: "run behind-goal", manifest: manifest() })).goal_id;
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await c.call("goal.status", { goal_id: behind })).state).toBe("queued");
    // Waiting in the cluster's queue only: not in the node's own database.
    const before = localStates(node.home.config.dbPath);
    expect(before[busy]).toBe("running");
    expect(before[behind]).toBeUndefined();

    await node.kill();
    await node.restart();
    const back = await node.client();
    expect(await back.call("goal.wait", { goal_id: behind, timeout_ms: 20_000 })).toMatchObject({
      state: "succeeded",
      node: "cluster-full",
      result: "done behind-goal",
    });
    expect(await back.call("goal.wait", { goal_id: busy, timeout_ms: 20_000 })).toMatchObject({
      state: "failed",
      error: expect.stringContaining("daemon restarted while the goal was running"),
    });
    expect(conversationsStarted(server, "busy-goal")).toBe(1);
    expect(conversationsStarted(server, "behind-goal")).toBe(1);
    expect(localStates(node.home.config.dbPath)).toMatchObject({ [busy]: "failed", [behind]: "succeeded" });
    await redis.stop();
  }, 90_000);
});
