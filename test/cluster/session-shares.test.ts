// Cluster mode: an MCP session's goals and the session's budget and end, wherever the goals run.
// - A goal that ran on another node gives back what it did not spend of its share: the node
//   that ran it writes what it spent with its end, and the session's node charges the share
//   that and returns the rest. Before, the share stayed charged in full until the session ended.
// - A session that ends while Redis is down still cancels its queued goal: the cancel is kept
//   and made when Redis answers, and a node that takes the goal's job first reads the
//   session's end and never starts it. Before, the cancel was lost and the goal ran.
// Real redis-server, real daemons, the scripted provider.

import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import {
  conversationsStarted,
  forGoal,
  HEARTBEAT_MS,
  LEASE_MS,
  manifest,
  type RedisServer,
  startRedis,
  stopAll,
} from "./fixture.js";
import { nodeRow, shareOf, startTwoNodes } from "./support/busy-nodes.js";

let server: ProviderServer;

beforeAll(async () => {
  server = await startProviderServer();
}, 90_000);

afterAll(async () => {
  await stopAll();
  await server?.close();
}, 60_000);

describe("an MCP session's goal in a cluster", () => {
  it("gives back the unspent rest of its share once it ended on another node, charged what it spent", async () => {
    const redis = await startRedis();
    server.script(forGoal("share-remote"), [
      turn.text("done share-remote", { usage: { input_tokens: 1200, output_tokens: 300 } }),
    ]);
    const { a, ca, cb } = await startTwoNodes(server, redis.url, "share-node");
    const { session_id } = await ca.call("session.open", {
      client: "cluster test",
      manifest: { name: "share-session", system_prompt: "An MCP session.", budget: { max_tokens: 100_000 } },
    });
    const { goal_id } = await ca.call("goal.submit", {
      goal: "run share-remote",
      manifest: `${manifest()}budget: { max_tokens: 30000 }\n`,
      session_id,
    });
    const end = await cb.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    expect(end.state).toBe("succeeded");
    expect(end.node).toBe("share-node-b");
    const spent = end.usage.input_tokens + end.usage.output_tokens;
    expect(spent).toBeGreaterThan(0);

    // A's ledger: the share, charged what B's ledger charged the goal, is closed; the rest is
    // back in the session's account (nothing carved for it any more).
    await until(() => (shareOf(a, goal_id)?.closed === 1 ? true : undefined), 15_000);
    expect(shareOf(a, goal_id)).toEqual({
      closed: 1,
      limit: 30_000,
      spent,
      parentCarved: 0,
      parentSpent: spent,
    });
    const audited = nodeRow<{ payload: string }>(
      a,
      "SELECT payload FROM audit WHERE kind = 'goal.share_returned' AND goal_id = ?",
      goal_id,
    );
    expect(JSON.parse(audited?.payload ?? "{}")).toMatchObject({
      share: 30_000,
      spent,
      returned: 30_000 - spent,
    });
    // Settled once: a few heartbeats later, nothing more was charged or audited.
    await sleep(4 * HEARTBEAT_MS);
    expect(shareOf(a, goal_id)?.parentSpent).toBe(spent);
    expect(
      nodeRow<{ n: number }>(a, "SELECT count(*) AS n FROM audit WHERE kind = 'goal.share_returned'")?.n,
    ).toBe(1);
  }, 180_000);

  it("never starts its queued goal when its session ended while Redis was down, ending it cancelled once Redis is back", async () => {
    const redis: RedisServer = await startRedis();
    server.script(forGoal("kept-b-busy"), [turn.hang()]);
    server.script(forGoal("kept-queued"), [turn.text("done kept-queued")]);
    const { ca, cb } = await startTwoNodes(server, redis.url, "kept-node");
    // B's only slot too: the session's goal waits in Redis.
    const bBusy = (await cb.call("goal.submit", { goal: "run kept-b-busy", manifest: manifest() })).goal_id;
    await until(() => (server.requestsMatching(forGoal("kept-b-busy")).length === 1 ? true : undefined));
    const { session_id } = await ca.call("session.open", {
      client: "cluster test",
      manifest: { name: "share-session", system_prompt: "An MCP session.", budget: { max_tokens: 100_000 } },
    });
    const { goal_id } = await ca.call("goal.submit", {
      goal: "run kept-queued",
      manifest: manifest(),
      session_id,
    });
    expect((await ca.call("goal.status", { goal_id })).state).toBe("queued");

    await redis.stop();
    // B's slot frees while Redis is away (its lease runs: the cancel is made there): once Redis
    // is back, B takes the next job at once, the session's goal.
    await cb.call("goal.cancel", { goal_id: bBusy });
    await ca.call("session.close", { session_id });
    // Longer than a lease: every lease key is gone when Redis comes back.
    await sleep(LEASE_MS + 1_000);
    await redis.start();

    const end = await cb.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    expect(end.state, `goal ${goal_id} of the ended session`).toBe("cancelled");
    expect(end.error ?? "").toContain(
      `the MCP session ${session_id} that submitted it ended (closed over the socket (session.close))`,
    );
    // A few heartbeats with B's slot free: never taken, never a model call of it.
    await sleep(6 * HEARTBEAT_MS);
    expect(conversationsStarted(server, "kept-queued"), "a conversation of the ended session's goal").toBe(0);
    expect((await cb.call("goal.status", { goal_id })).state).toBe("cancelled");
  }, 180_000);
});
