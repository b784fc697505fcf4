// A cluster's one view when its Redis fails, with real agentd nodes on a real redis-server
// (cluster/command-sender.ts, goal-view.ts, daemon/cluster-methods.ts, cli/watch): a Redis
// failure on a routed command's path is cluster_unavailable naming Redis, not a raw
// `internal`; with Redis stopped a node that is not fenced still answers cluster.status
// (itself, from memory, and that Redis cannot be reached), answers goal.status of its own
// goal from its own record and cancels it when asked, and a watch of its goal starts; a
// watch of another node's goal says the cluster cannot be reached and follows the goal once
// Redis is back.

import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { until } from "../daemon/process.js";
import { failureOf as failure } from "../llm/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, LEASE_MS, manifest, type Node, type RedisServer } from "./fixture.js";
import { type OwnerAsker, withOwnerAndAsker } from "./support/owner-asker.js";

let server: ProviderServer;
let redisServer: RedisServer;
let raw: Redis;
let owner: Node;
let asker: Node;
let goalOn: OwnerAsker["goalOn"];
// Never fenced: what a node answers with Redis away, not what the fence holds.
withOwnerAndAsker("down", { onRedisLoss: "finish" }, (c) => {
  ({ server, redis: redisServer, raw, owner, asker, goalOn } = c);
});

/** A goal id with a terminal title sequence in it (ESC ] 0 ; … BEL). */
const ESC_GOAL = "g_esc\x1b]0;pwned\x07";

/** The frames a terminal watch drew (the last is what the screen shows). */
function terminal() {
  const written: string[] = [];
  return {
    screen: { write: (t: string) => written.push(t), isTTY: true, columns: 220 },
    last: (): string => written.join("").split("\x1b[J").at(-1) ?? "",
  };
}

function watchOne(n: Node, goalId: string, tty: ReturnType<typeof terminal>, err: string[]) {
  return runCli(
    ["watch", goalId],
    { out: () => {}, err: (l: string) => err.push(l), interactive: false, screen: tty.screen },
    { ...n.home.env, AIDO_HOME: n.home.dir },
  );
}

describe("a Redis failure on a routed command's path", () => {
  // First: the asker reads its reply stream's tip with its first routed command.
  it("reading where the answers start is cluster_unavailable naming Redis", async () => {
    const goalId = "g_downtip";
    await goalOn(owner.id, goalId);
    const replies = `aido:node:${asker.id}:replies`;
    await raw.set(replies, "not a stream"); // a Redis writer's: every read of it fails
    try {
      const e = await failure((await asker.client()).call("agent.list", { goal_id: goalId }));
      expect(e.code).toBe("cluster_unavailable");
      expect(e.message).toMatch(
        /the cluster's Redis refused a command \(reading where its answers will start for agent\.list to node down-owner: WRONGTYPE/,
      );
      expect(e.message).toContain("nothing was sent");
    } finally {
      await raw.del(replies);
    }
    // Redis right again: the same read is answered by its node.
    expect((await (await asker.client()).call("agent.list", { goal_id: goalId })).agents).toEqual([]);
  }, 60_000);

  it("a send Redis refuses is cluster_unavailable, and goal.cancel looks the goal up again", async () => {
    const goalId = "g_downsend";
    await goalOn(owner.id, goalId);
    const commands = `aido:node:${owner.id}:commands`;
    await raw.del(commands);
    await raw.set(commands, "not a stream");
    try {
      const e = await failure((await asker.client()).call("goal.cancel", { goal_id: goalId }));
      expect(e.code).toBe("cluster_unavailable");
      expect(e.message).toMatch(/the cluster's Redis refused goal\.cancel for node down-owner \(WRONGTYPE/);
      expect(e.message).toContain("nothing was sent");
    } finally {
      await raw.del(commands);
    }
  }, 60_000);
});

/**
 * A goal waiting for a human (its file_write needs an approval), submitted to `owner`: its
 * pending request, the node that runs it and the other node.
 */
async function waitingGoal(marker: string) {
  server.script(forGoal(marker), [
    turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
    turn.text(`finished ${marker}`),
  ]);
  const a = await owner.client();
  const { goal_id } = await a.call("goal.submit", {
    goal: `write ${marker}`,
    manifest: manifest({ approve: true }),
  });
  const pending = await until(async () =>
    (await a.call("approval.list", {})).approvals.find((p) => p.goal_id === goal_id),
  );
  const ownId = (await a.call("goal.status", { goal_id })).node;
  const own = ownId === owner.id ? owner : asker;
  return { goal_id, pending, own, other: own === owner ? asker : owner };
}

describe("Redis stopped", () => {
  it("a node answers cluster.status and its own goal; a watch of another node's goal retries until Redis is back", async () => {
    const { goal_id, pending, own, other } = await waitingGoal("down-own-goal");
    raw.on("error", () => {});

    await redisServer.stop();
    const ownTty = terminal();
    const otherTty = terminal();
    const ownErr: string[] = [];
    const otherErr: string[] = [];
    let watchingOwn: Promise<number> | undefined;
    let watchingOther: Promise<number> | undefined;
    let watchingEsc: Promise<number> | undefined;
    const escErr: string[] = [];
    try {
      // cluster.status: this node from memory, and that Redis cannot be reached.
      const status = await (await other.client()).call("cluster.status", {});
      if (!status.enabled) throw new Error("not a cluster");
      expect(status.fence.fenced).toBe(false);
      expect(status.redis.unreachable).toBeTruthy();
      expect(status.nodes.map((n) => n.node_id)).toEqual([other.id]);
      expect(status.nodes[0]).toMatchObject({ alive: true, capacity: 2, running: 0 });
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(
        ["cluster", "status"],
        { out: (l: string) => out.push(l), err: (l: string) => err.push(l), interactive: false },
        { ...other.home.env, AIDO_HOME: other.home.dir },
      );
      expect(code).toBe(1);
      expect(err.join("\n")).toMatch(/Redis cannot be reached from this node: .*this node alone is listed/);
      expect(out.join("\n")).toMatch(new RegExp(`${other.id} +up `));

      // goal.status: the node that runs it answers from its own record; the other cannot.
      const s = await (await own.client()).call("goal.status", { goal_id });
      expect(s).toMatchObject({ goal_id, state: "running", node: own.id });
      // ...marked so: not the cluster's word, as of the last heartbeat Redis took.
      expect(s.cluster).toMatchObject({ redis: "unreachable", reason: expect.any(String) });
      expect(Date.parse(s.cluster?.as_of ?? "")).toBeLessThanOrEqual(Date.now());
      const e = await failure((await other.client()).call("goal.status", { goal_id }));
      expect(e.code).toBe("cluster_unavailable");
      // A cancel asked meanwhile is refused, saying why; the goal runs on.
      const refused = await failure((await other.client()).call("goal.cancel", { goal_id }));
      expect(refused.code).toBe("cluster_unavailable");
      expect(refused.message).toContain("the cluster's Redis cannot be reached");
      // Its agents, from the node that runs it: answered there from its own records.
      expect((await (await own.client()).call("agent.list", { goal_id })).agents.length).toBeGreaterThan(0);

      watchingOwn = watchOne(own, goal_id, ownTty, ownErr);
      watchingOther = watchOne(other, goal_id, otherTty, otherErr);
      // A goal id the daemon echoes in its refusal, with a terminal title sequence in it.
      watchingEsc = watchOne(other, ESC_GOAL, terminal(), escErr);
      await until(async () =>
        ownTty.last().includes(`goal ${goal_id}  running  on node ${own.id}`) ? true : undefined,
      );
      // The own watch says its goal is this node's record, not the cluster's.
      await until(async () => (ownTty.last().includes("FROM THIS NODE'S RECORD") ? true : undefined));
      expect(ownTty.last()).toContain("another node may have ended or taken this goal since");
      await until(async () =>
        escErr.some((l) => l.includes("the cluster cannot be reached")) ? true : undefined,
      );
      expect(escErr.join("\n")).toContain("g_esc\\x1b]0;pwned\\x07");
      await until(async () =>
        otherErr.some((l) => /the cluster cannot be reached \(.*Redis.*\); retrying/.test(l))
          ? true
          : undefined,
      );
    } finally {
      await redisServer.start();
    }
    await until(
      async () => (otherErr.some((l) => l.includes("the cluster answers again")) ? true : undefined),
      30_000,
    );
    await until(
      async () => (otherTty.last().includes(`goal ${goal_id}  running`) ? true : undefined),
      30_000,
    );
    // Redis back: the own watch's mark goes with the next cluster.status it reads.
    await until(async () => (ownTty.last().includes("FROM THIS NODE'S RECORD") ? undefined : true), 30_000);
    // The goal id watched is no goal: the watch ends on the refusal, printed inert throughout.
    expect(await watchingEsc).toBe(1);
    expect(escErr.join("\n")).toMatch(/no goal g_esc\\x1b\]0;pwned\\x07/);
    expect(escErr.join("\n")).not.toMatch(/[\x1b\x07]/);
    // Answered: the goal ends, and both watches with it.
    await (await own.client()).call("approval.respond", { id: pending.id, decision: "allow_once" });
    expect(await watchingOwn).toBe(0);
    expect(await watchingOther).toBe(0);
    expect(ownErr.join("\n")).not.toMatch(/cluster cannot be reached/);
  }, 120_000);

  it("a node cancels a goal it runs while Redis is stopped, and the cluster learns the end once Redis is back", async () => {
    const { goal_id, own, other } = await waitingGoal("down-cancel-own");
    raw.on("error", () => {});
    await redisServer.stop();
    // A watch of the goal from the other node, which cannot read it meanwhile.
    const otherErr: string[] = [];
    const watching = watchOne(other, goal_id, terminal(), otherErr);
    try {
      await until(async () =>
        otherErr.some((l) => l.includes("the cluster cannot be reached")) ? true : undefined,
      );
      // The node that runs it cancels it: Redis being away is no reason to refuse the person.
      const cancelled = await (await own.client()).call("goal.cancel", { goal_id });
      expect(cancelled).toMatchObject({ goal_id, node: own.id });
      // Its agents stop as on a lone daemon: the goal ends cancelled.
      await until(async () => {
        const s = await (await own.client()).call("goal.status", { goal_id });
        return s.state === "cancelled" ? s : undefined;
      });
      // Another node cannot reach the goal's owner: refused, saying why.
      const refused = await failure((await other.client()).call("goal.cancel", { goal_id }));
      expect(refused.code).toBe("cluster_unavailable");
    } finally {
      await redisServer.start();
    }
    // The end reaches Redis: the other node sees it cancelled.
    await until(async () => {
      const s = await (await other.client()).call("goal.status", { goal_id }).catch(() => undefined);
      return s?.state === "cancelled" ? s : undefined;
    }, 30_000);
    // The watch learns the end once the cluster answers: it says the goal ended unwatched and
    // ends non-zero, rather than draw a run it never saw.
    expect(await watching).toBe(1);
    expect(otherErr.join("\n")).toContain(
      `goal ${goal_id} ended cancelled while the cluster could not be reached; nothing of its run was watched`,
    );
  }, 120_000);

  it("past its lease a node cut off from Redis refuses to cancel its goal, saying another node may have it", async () => {
    const { goal_id, pending, own } = await waitingGoal("down-cancel-lapsed");
    raw.on("error", () => {});
    await redisServer.stop();
    try {
      await new Promise((r) => setTimeout(r, LEASE_MS + 500));
      const refused = await failure((await own.client()).call("goal.cancel", { goal_id }));
      expect(refused.code).toBe("cluster_unavailable");
      expect(refused.message).toMatch(
        /this node's lease ran out .*another node may have taken the goal over/,
      );
      expect(await (await own.client()).call("goal.status", { goal_id })).toMatchObject({ state: "running" });
    } finally {
      await redisServer.start();
    }
    // Redis back: the goal is still this node's, and it ends when answered.
    await until(async () => {
      const list = await (await own.client()).call("approval.list", {}).catch(() => undefined);
      return list?.approvals.some((p) => p.id === pending.id) ? true : undefined;
    }, 30_000);
    await (await own.client()).call("approval.respond", { id: pending.id, decision: "allow_once" });
    const end = await (await own.client()).call("goal.wait", { goal_id, timeout_ms: 60_000 });
    expect(end.state).toBe("succeeded");
  }, 120_000);
});
