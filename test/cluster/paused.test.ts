// Cluster mode, double execution by a node that was only slow: its daemon is stopped
// (SIGSTOP, as a long GC pause or a frozen VM) for longer than its lease mid-goal, a survivor
// ends the goal, then the daemon resumes (SIGCONT). The goal must not carry on there, and
// nothing of it goes out from there: the local end the resumed node gives it is not published
// on the goal's stream, which may by then follow the goal running on another node.

import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import { until } from "../daemon/process.js";
import { latch, type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startNode, startRedis } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

describe("cluster mode: a node paused past its lease", () => {
  it("stops the goal a survivor ended as soon as it resumes: no model call or tool runs after", async () => {
    const redis = await startRedis();
    const slow = await startNode(server, redis.url, "cluster-paused", { capacity: 1 });
    // The first answer (a tool call) is held until the resumed node has found the goal lost:
    // had it carried on, it would read it, run the tool and ask the model again. Held by a latch,
    // not a delay: a busy machine took longer to start the survivor and end the goal than the
    // delay, and the answer came while the node was still stopped.
    const answer = latch();
    server.script(forGoal("paused-goal"), [
      turn.toolUse("file_read", { path: "/input/x" }, { until: answer.promise }),
      turn.text("asked again after the goal had ended"),
    ]);
    const c = await slow.client();
    const { goal_id } = await c.call("goal.submit", { goal: "run paused-goal", manifest: manifest() });
    const [first] = await until(() => {
      const asked = server.requestsMatching(forGoal("paused-goal"));
      return asked.length > 0 ? asked : undefined;
    });
    const survivor = await startNode(server, redis.url, "cluster-awake", { capacity: 1 });
    const s = await survivor.client();
    slow.child.child.kill("SIGSTOP");
    try {
      const ended = await s.call("goal.wait", { goal_id, timeout_ms: 20_000 });
      expect(ended.state).toBe("failed");
      expect(ended.error).toContain("node cluster-paused stopped heartbeating during the goal");
    } finally {
      slow.child.child.kill("SIGCONT");
    }
    // The resumed node ended it locally and says why, and the cluster's view stays failed.
    const lostEntries = async () =>
      (await c.call("audit.query", { kind: "cluster.goal_lost" })).entries.filter(
        (e) => e.goal_id === goal_id,
      );
    await until(async () => ((await lostEntries()).length > 0 ? true : undefined), 20_000);
    // Its model call is given up unanswered: the answer, let go only now, reaches no one.
    answer.open();
    await until(() => first?.ended, 20_000);
    expect(first?.ended).toBe("left");
    expect(server.requestsMatching(forGoal("paused-goal"))).toHaveLength(1);
    expect(await lostEntries()).toHaveLength(1);
    expect(await c.call("goal.status", { goal_id })).toMatchObject({
      state: "failed",
      error: expect.stringContaining("stopped heartbeating"),
    });
    await redis.stop();
  }, 90_000);

  it("publishes nothing of the goals it lost once it resumes: a re-queued goal's followers see only its real end", async () => {
    const redis = await startRedis();
    // One inference slot: the second goal waits for it, so the survivor re-queues it (no model
    // call started) and runs it while the paused node is still stopped.
    const slow = await startNode(server, redis.url, "cluster-paused-2", { capacity: 2, inference: 1 });
    // Its model's answer (a tool call) is let go while the node is stopped: the node reads it as
    // it resumes, before its first heartbeat finds the goal lost. Held by a latch until then, not
    // a delay: on a busy machine the answer came before the node was stopped, the slot went to
    // the second goal, whose model call then started there, and the survivor rightly failed it.
    const spentAnswer = latch();
    server.script(forGoal("lost-spent"), [
      turn.toolUse("file_read", { path: "/input/x" }, { until: spentAnswer.promise }),
      turn.text("never", { delayMs: 60_000 }),
    ]);
    // Still running on the survivor when the paused node resumes and stops its copy: its answer
    // is held until the test has looked.
    const movedAnswer = latch();
    server.script(forGoal("lost-moved"), [turn.text("done lost-moved", { until: movedAnswer.promise })]);
    const c = await slow.client();
    const spent = (await c.call("goal.submit", { goal: "run lost-spent", manifest: manifest() })).goal_id;
    const [spentCall] = await until(() => {
      const asked = server.requestsMatching(forGoal("lost-spent"));
      return asked.length > 0 ? asked : undefined;
    });
    const moved = (await c.call("goal.submit", { goal: "run lost-moved", manifest: manifest() })).goal_id;
    await until(async () =>
      (await c.call("goal.status", { goal_id: moved })).state === "running" ? true : undefined,
    );
    const survivor = await startNode(server, redis.url, "cluster-awake-2", { capacity: 2 });
    const s = await survivor.client();
    const raw = new Redis(redis.url);
    const seen: { type: string; state?: string }[] = [];
    let sub: Awaited<ReturnType<typeof AidoClient.subscribe>> | undefined;
    const tips: Record<string, string> = {};
    let loggedBefore = 0;
    slow.child.child.kill("SIGSTOP");
    try {
      expect((await s.call("goal.wait", { goal_id: spent, timeout_ms: 20_000 })).state).toBe("failed");
      // Re-queued and running on the survivor, its model call under way.
      await until(
        () => (server.requestsMatching(forGoal("lost-moved")).length > 0 ? true : undefined),
        20_000,
      );
      expect(await s.call("goal.status", { goal_id: moved })).toMatchObject({
        state: "running",
        node: "cluster-awake-2",
      });
      // Someone follows the moved goal on the survivor, as `aido watch` does.
      sub = await AidoClient.subscribe(survivor.home.config.socketPath, moved, (ev) => {
        if (ev.goal_id === moved) seen.push(ev as { type: string; state?: string });
      });
      for (const id of [spent, moved]) tips[id] = await streamTip(raw, id);
      // The spent goal's answer, in the stopped node's socket before it resumes.
      spentAnswer.open();
      await until(() => spentCall?.ended, 20_000);
      expect(spentCall?.ended).toBe("answered");
    } finally {
      loggedBefore = slow.child.output().length;
      slow.child.child.kill("SIGCONT");
    }
    // The resumed node finds the spent goal lost at its first heartbeat and stops it; the
    // moved one too, by the same look or when it gets the inference slot and finds that it is
    // not its own any more.
    await until(async () => {
      const lost = await c.call("audit.query", { kind: "cluster.goal_lost" });
      return lost.entries.some((e) => e.goal_id === spent) ? true : undefined;
    }, 20_000);
    // Sure of its goals again: what it held since the resume went out then, had any been sent.
    await until(() => (slow.child.output().slice(loggedBefore).includes(LOOKED) ? true : undefined), 20_000);
    await new Promise((r) => setTimeout(r, 1_500)); // its events, had it sent any, are out by now
    const fromPaused: Record<string, unknown[]> = {};
    for (const [name, id] of Object.entries({ spent, moved })) {
      const after = await raw.xrange(`aido:events:${id}`, `(${tips[id]}`, "+");
      fromPaused[name] = after
        .map(([, f]) => JSON.parse(f[1] ?? "{}") as { type: string; node?: string })
        .filter((e) => e.node === "cluster-paused-2")
        .map((e) => e.type);
    }
    expect(fromPaused).toEqual({ spent: [], moved: [] });
    // Nor did it ask the model again for the goal another node had ended.
    expect(server.requestsMatching(forGoal("lost-spent"))).toHaveLength(1);
    // Not ended early for its follower, nor for goal.wait / goal.status on either node.
    expect(seen.filter((e) => e.type === "goal.finished")).toEqual([]);
    expect(await c.call("goal.status", { goal_id: moved })).toMatchObject({
      state: "running",
      node: "cluster-awake-2",
    });
    movedAnswer.open();
    expect(await c.call("goal.wait", { goal_id: moved, timeout_ms: 20_000 })).toMatchObject({
      state: "succeeded",
      node: "cluster-awake-2",
      result: "done lost-moved",
    });
    await sub?.done;
    expect(seen.filter((e) => e.type === "goal.finished")).toMatchObject([{ state: "succeeded" }]);
    raw.disconnect();
    await redis.stop();
  }, 90_000);
});

/** What a node logs once a heartbeat after its pause has looked which goals are still its own. */
const LOOKED = "looked which goals are still this node's after its pause";

/** The id of the newest entry of the goal's event stream ("0-0" when it has none). */
async function streamTip(raw: Redis, goalId: string): Promise<string> {
  const last = await raw.xrevrange(`aido:events:${goalId}`, "+", "-", "COUNT", 1);
  return last[0]?.[0] ?? "0-0";
}
