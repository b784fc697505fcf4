// A goal's end that Redis took while it refused the end's announcement (the goal's events,
// the goal-ends stream), and whose node then restarted: the announcement outlives the
// process (kept in the node's database), so a follower on another node still sees the goal
// end, once, when Redis takes it. Redis refuses for real (the owner joins as an ACL user of
// its own whose write access to the streams is taken away); real daemons, a real kill -9.

import { describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import type { WireEvent } from "../../src/daemon/events.js";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startNode } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { startRedisAsNode } from "./support/node-user.js";

const OWNER = "unannounced-owner";
let server: ProviderServer;
withProvider((p) => ({ server } = p), { stopAll: "after each test" });

describe("an end Redis wrote but whose announcement it refused, its node restarted before Redis took it", () => {
  it("is announced by the restarted node: the follower on another node sees the goal end, once", async () => {
    const { server: redis, raw: r, url: ownerUrl, writable } = await startRedisAsNode(OWNER);
    const marker = "unannounced-restart";
    server.script(forGoal(marker), [turn.text(`finished ${marker}`, { delayMs: 15_000 })]);
    const owner = await startNode(server, ownerUrl, OWNER, { capacity: 1 });
    const o = await owner.client();
    // Every stream refuses the owner's writes (as out of memory); the goal's hash, the goal
    // index, its heartbeats and jobs take them.
    await writable(["bull:*", "aido:[^eg]*", "aido:goal:*", "aido:goals"]);
    const { goal_id } = await o.call("goal.submit", { goal: `say ${marker}`, manifest: manifest() });
    // The answer waits 15 s: the other node starts and its follower subscribes before the goal
    // ends (a follower subscribing after the end reads it from the goal hash, under load in CI).
    // The other node joins once the owner runs the goal: its worker, had it been there, could
    // have taken the goal's job instead, and then nothing of the goal was refused.
    await until(() => (server.requestsMatching(forGoal(marker)).length > 0 ? true : undefined), 20_000);
    expect(await r.hget(`aido:goal:${goal_id}`, "owner")).toBe(OWNER);
    const other = await startNode(server, redis.url, "unannounced-other", { capacity: 1 });
    // Someone follows the goal from the other node (aido watch does this).
    const seen: WireEvent[] = [];
    const followed = await AidoClient.subscribe(other.home.config.socketPath, goal_id, (ev) => {
      seen.push(ev);
    });
    let restored = false;
    try {
      expect(await o.call("goal.wait", { goal_id, timeout_ms: 30_000 }, { timeoutMs: 40_000 })).toMatchObject(
        {
          state: "succeeded",
        },
      );
      const refused = `the end of goal ${goal_id} is written to Redis, but Redis refused its announcement`;
      await until(() => (owner.child.output().includes(refused) ? true : undefined), 10_000).catch(() => {
        throw new Error(`the owner did not log "${refused}":\n${owner.child.output()}`);
      });
      expect(await r.hget(`aido:goal:${goal_id}`, "state")).toBe("succeeded");
      await owner.kill();
      await writable([]);
      restored = true;
    } finally {
      if (!restored) await writable([]);
    }
    expect(seen.filter((e) => e.type === "goal.finished")).toEqual([]);
    await owner.restart();
    // The restarted owner's heartbeats announce it.
    try {
      await Promise.race([
        followed.done,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("the follower never saw the goal end")), 10_000),
        ),
      ]);
    } finally {
      followed.close();
    }
    expect(seen.filter((e) => e.type === "goal.finished").map((e) => [e.state, e.node])).toEqual([
      ["succeeded", OWNER],
    ]);
    await until(
      () => (owner.child.output().includes(`the end of goal ${goal_id} is announced now`) ? true : undefined),
      5_000,
    );
    // Once: not again with the next heartbeats.
    await new Promise((res) => setTimeout(res, 1_500));
    const finished = (await r.xrange(`aido:events:${goal_id}`, "-", "+")).filter(
      ([, f]) => (JSON.parse(f[1] ?? "{}") as { type?: string }).type === "goal.finished",
    );
    expect(finished).toHaveLength(1);
    const ends = (await r.xrange("aido:goal-ends", "-", "+")).filter(([, f]) => f[1] === goal_id);
    expect(ends).toHaveLength(1);
  }, 90_000);
});
