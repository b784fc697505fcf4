// Cluster mode: an MCP session's end reaches the goals it submitted wherever they run. A
// session open on node A submits a goal that node B takes (A's only slot is busy); when the
// session closes on A, the cancel is routed to B, whose Runtime ends the goal cancelled with
// the reason naming the session. Before, the goal ran on on B after its session was gone.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startRedis, stopAll } from "./fixture.js";
import { startTwoNodes } from "./support/busy-nodes.js";

let server: ProviderServer;
let redisUrl: string;

beforeAll(async () => {
  server = await startProviderServer();
  redisUrl = (await startRedis()).url;
}, 90_000);

afterAll(async () => {
  await stopAll();
  await server?.close();
}, 60_000);

describe("an MCP session's end in a cluster", () => {
  it("cancels its goal running on another node, the owner ending it with the session's reason", async () => {
    server.script(forGoal("remote-run"), [turn.hang()]);
    // A's only slot: a user's goal, taken by A before B joins.
    const { ca, cb, busy } = await startTwoNodes(server, redisUrl, "session-node");
    const { session_id } = await ca.call("session.open", { client: "cluster test" });
    const { goal_id } = await ca.call("goal.submit", {
      goal: "run remote-run",
      manifest: manifest(),
      session_id,
    });
    await until(() => (server.requestsMatching(forGoal("remote-run")).length === 1 ? true : undefined));
    expect((await ca.call("goal.status", { goal_id: busy })).node).toBe("session-node-a");
    const runner = (await ca.call("goal.status", { goal_id })).node;
    expect(runner).toBe("session-node-b");

    await ca.call("session.close", { session_id });
    const end = await cb.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    expect(end.state, `goal ${goal_id} ran on on ${runner} after its session ended`).toBe("cancelled");
    expect(end.error).toContain(
      `the MCP session ${session_id} that submitted it ended (closed over the socket (session.close))`,
    );
    await ca.call("goal.cancel", { goal_id: busy });
    expect((await ca.call("goal.wait", { goal_id: busy, timeout_ms: 20_000 })).state).toBe("cancelled");
  }, 120_000);
});
