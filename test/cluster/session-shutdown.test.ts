// Cluster mode: a node shut down (SIGTERM, as `aido daemon stop` sends) ends the MCP sessions
// open on it while it is still a member of the cluster, so the goals they submitted are
// cancelled wherever they are: one running on another node ends there cancelled, one still
// queued in Redis never starts. Before, the node left the cluster first (no more listener for
// its sessions' ends) and ended them only as its Runtime closed: the running goal ran on, and
// the queued one was taken and run by the other node, for a session that no longer existed.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { latch, type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { conversationsStarted, forGoal, HEARTBEAT_MS, manifest, startRedis, stopAll } from "./fixture.js";
import { shareOf, startBusyNode, startTwoNodes } from "./support/busy-nodes.js";

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

describe("a cluster node shut down with an MCP session open", () => {
  it("cancels the session's goal running on another node and its queued one, which never starts", async () => {
    // The remote goal answers when the test lets it: under the old order it ran on and
    // finished, freeing the other node to take the queued one.
    const remoteAnswer = latch();
    server.script(forGoal("shut-remote"), [turn.text("done shut-remote", { until: remoteAnswer.promise })]);
    server.script(forGoal("shut-queued"), [turn.text("done shut-queued")]);
    // A's only slot: a user's goal, taken by A before B joins.
    const { a, ca, cb, busy } = await startTwoNodes(server, redisUrl, "shutdown-node");
    const { session_id } = await ca.call("session.open", {
      client: "cluster test",
      manifest: { name: "shut-session", system_prompt: "An MCP session.", budget: { max_tokens: 100_000 } },
    });
    const submit = async (marker: string) =>
      (
        await ca.call("goal.submit", {
          goal: `run ${marker}`,
          manifest: `${manifest()}budget: { max_tokens: 30000 }\n`,
          session_id,
        })
      ).goal_id as string;
    const remote = await submit("shut-remote");
    await until(() => (server.requestsMatching(forGoal("shut-remote")).length === 1 ? true : undefined));
    expect((await cb.call("goal.status", { goal_id: remote })).node).toBe("shutdown-node-b");
    // Both nodes' only slots are taken: this one waits in Redis.
    const queued = await submit("shut-queued");
    expect((await cb.call("goal.status", { goal_id: queued })).state).toBe("queued");

    // A is shut down the way a user does it.
    a.child.child.kill("SIGTERM");
    expect(await a.child.exited).toBe(0);
    const why = `the MCP session ${session_id} that submitted it ended (the daemon shut down)`;

    // By the time A is gone, B has been told: the remote goal ended cancelled, saying why.
    const remoteEnd = await cb.call("goal.wait", { goal_id: remote, timeout_ms: 5_000 });
    expect
      .soft(remoteEnd.state, `goal ${remote} ran on on B after A's shutdown ended its session`)
      .toBe("cancelled");
    expect.soft(remoteEnd.error ?? "").toContain(why);

    // Let a remote goal still running answer: B's slot frees, and a queued goal still
    // queued would be taken now.
    remoteAnswer.open();
    const queuedEnd = await cb.call("goal.wait", { goal_id: queued, timeout_ms: 20_000 });
    expect.soft(queuedEnd.state, `goal ${queued} was taken by B after its session ended`).toBe("cancelled");
    expect.soft(queuedEnd.error ?? "").toContain(why);
    // A few heartbeats with B's slot free: it never takes the goal, never calls a model for it.
    await new Promise((r) => setTimeout(r, 6 * HEARTBEAT_MS));
    expect
      .soft(conversationsStarted(server, "shut-queued"), "a bootstrap conversation of the queued goal")
      .toBe(0);
    expect.soft((await cb.call("goal.status", { goal_id: queued })).usage).toEqual({
      input_tokens: 0,
      output_tokens: 0,
    });
    // A's ledger: the queued goal's share spent nothing and is back in the session's account
    // (which closed with the session).
    expect(shareOf(a, queued)).toMatchObject({ closed: 1, spent: 0, parentCarved: 0 });
    expect(server.requestsMatching(forGoal("shutdown-node-busy")).length).toBe(1);
    expect((await cb.call("goal.status", { goal_id: busy })).state).toBe("failed");
  }, 120_000);

  it("ends its sessions within a bounded wait when Redis is down, logging the cancel it could not make", async () => {
    const redis = await startRedis();
    const {
      node: c,
      client: cc,
      busy,
    } = await startBusyNode(server, redis.url, "shutdown-node-c", "down-busy");
    const { session_id } = await cc.call("session.open", { client: "cluster test" });
    const { goal_id } = await cc.call("goal.submit", {
      goal: "run down-queued",
      manifest: manifest(),
      session_id,
    });
    await redis.stop();

    const started = Date.now();
    c.child.child.kill("SIGTERM");
    // The node got past its sessions' end to ending the goals it runs: the goal it ran finished.
    await until(() => (c.child.output().includes(`"goal_id":"${busy}","state":"failed"`) ? true : undefined));
    // One Redis read's wait (REDIS_ANSWER_MS) at most for the cancel, not the session step's whole bound.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(c.child.output()).toContain(`cancelling goal ${goal_id} of ended session ${session_id} failed`);
    // It then leaves within a bounded time, its goal's end kept (test: shutdown-redis-down.test.ts).
  }, 120_000);
});
