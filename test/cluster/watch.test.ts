// `aido watch` on a node of a cluster (docs/cli.md, docs/scale-out.md): two agentd nodes on
// one real redis-server. Watching a goal another node runs, the watch shows its whole agent
// tree (agent.list of a goal is asked of the node that runs it: the agents spawned before the
// watch began live only in that node's database), the node it runs on, the node its approval
// waits on, and the cluster's nodes with their load and heartbeats, as the dashboard does;
// the goal's audit entries are read from its node too (the dashboard's goal page).

import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { connectRedis, forGoal, manifest, type Node, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redisUrl: string;
let nodes: Node[];
withCluster((c) => {
  server = c.server;
  redisUrl = c.redis.url;
});

beforeAll(async () => {
  nodes = await Promise.all(
    ["watch-a", "watch-b"].map((id) => startNode(server, redisUrl, id, { capacity: 2 })),
  );
}, 60_000);

/** The frames a terminal watch drew, each as its lines (the last is what the screen shows). */
function terminal() {
  const written: string[] = [];
  return {
    screen: { write: (t: string) => written.push(t), isTTY: true, columns: 200 },
    last: (): string => {
      const frames = written.join("").split("\x1b[J");
      return frames.at(-1) ?? "";
    },
  };
}

describe("aido watch in a cluster", () => {
  it("shows a goal another node runs with its agents, its node, its approval's node and the cluster's nodes", async () => {
    const marker = "watch-remote-goal";
    server.script(forGoal(marker), [
      turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
      turn.text(`finished ${marker}`),
    ]);
    const { goal_id } = await (await nodes[0]!.client()).call("goal.submit", {
      goal: `write ${marker}`,
      manifest: manifest({ approve: true }),
    });
    const pending = await until(async () => {
      const list = await (await nodes[1]!.client()).call("approval.list", {});
      return list.approvals.find((x) => x.goal_id === goal_id);
    });
    const owner = pending.node as string;
    const other = nodes.find((n) => n.id !== owner) as Node;

    // The goal's agents, asked of a node that does not run it: the owner's answer.
    const listed = await (await other.client()).call("agent.list", { goal_id, include_stopped: true });
    expect(listed.agents.map((a) => [a.goal_id, a.manifest])).toEqual([[goal_id, "clu-worker"]]);

    const tty = terminal();
    const watching = runCli(
      ["watch", goal_id],
      { out: () => {}, err: () => {}, interactive: false, screen: tty.screen },
      { ...other.home.env, AIDO_HOME: other.home.dir },
    );
    // Nothing happens in the goal while its approval waits: all of this is from the seeding.
    await until(async () => (tty.last().includes("approvals waiting (1)") ? true : undefined)).catch((e) => {
      throw new Error(`${e}: ${tty.last()}`);
    });
    const frame = tty.last();
    expect(frame).toContain(`aido watch — goal ${goal_id}  running  on node ${owner}`);
    expect(frame).toMatch(/● clu-worker {2}a_/);
    expect(frame).toContain(`clu-worker wants file_write (node ${owner})`);
    expect(frame).toContain(`cluster  this node ${other.id}`);
    for (const n of nodes) {
      const me = n.id === other.id ? " (this)" : "";
      expect(frame).toMatch(
        new RegExp(`  ${n.id}${me.replace(/[()]/g, "\\$&")}  up  load \\d/2  heartbeat \\d\\d:\\d\\d:\\d\\d`),
      );
    }

    await (await other.client()).call("approval.respond", { id: pending.id, decision: "deny" });
    expect(await watching).toBe(0);
    expect(tty.last()).toContain(`goal ${goal_id} succeeded`);

    // Its audit entries, asked of a node that does not run it (the dashboard's goal page):
    // the owner's log, that goal's entries only.
    const entries = (await (await other.client()).call("audit.query", { goal_id, limit: 10_000 })).entries;
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.goal_id === goal_id)).toBe(true);
    expect(entries.map((e) => e.kind)).toEqual(expect.arrayContaining(["approval.requested", "tool.denied"]));
    // Each filter, asked the same way: the owner's answers pass the asker's check of them
    // (command-replies.ts), and are what the owner's log holds (a guard: an over-strict check
    // would fail only the cluster's view).
    const ask = async (q: Record<string, unknown>) =>
      (await (await other.client()).call("audit.query", { goal_id, ...q })).entries
        .map((e) => e.seq)
        .sort((a, b) => a - b);
    const seqs = entries.map((e) => e.seq).sort((a, b) => a - b);
    const agentId = entries.find((e) => e.agent_id !== null)?.agent_id as string;
    const mid = seqs[Math.floor(seqs.length / 2)] as number;
    const only = (f: (e: (typeof entries)[number]) => boolean) =>
      entries
        .filter(f)
        .map((e) => e.seq)
        .sort((a, b) => a - b);
    expect(await ask({ kind: "tool.denied" })).toEqual(only((e) => e.kind === "tool.denied"));
    expect(await ask({ agent_id: agentId })).toEqual(only((e) => e.agent_id === agentId));
    expect(await ask({ after_seq: mid })).toEqual(seqs.filter((q) => q > mid));
    expect(await ask({ before_seq: mid })).toEqual(seqs.filter((q) => q < mid));
    expect((await ask({ limit: 1 })).length).toBe(1);
    const live = await (await other.client()).call("agent.list", { goal_id });
    expect(live.agents).toEqual([]);
  }, 60_000);

  // A goal whose node is gone (it left the cluster, or died and its goal ended elsewhere) has
  // its agents in that node's database only: nobody can list them. The watch still shows the
  // goal and its end, and says why its agents are missing; it does not fail on the list.
  it("watches a goal whose node is not heartbeating: the goal and its end shown, its agents said unknown", async () => {
    const redis = connectRedis(redisUrl);
    const goalId = "g_watch_gone_node";
    try {
      await redis.hset(`aido:goal:${goalId}`, {
        goal_id: goalId,
        state: "succeeded",
        owner: "watch-gone",
        goal: "ran on a node that left",
        created_at: String(Date.now()),
        finished_at: String(Date.now()),
      });
      const tty = terminal();
      const err: string[] = [];
      const code = await runCli(
        ["watch", goalId],
        { out: () => {}, err: (l: string) => err.push(l), interactive: false, screen: tty.screen },
        { ...nodes[0]!.home.env, AIDO_HOME: nodes[0]!.home.dir },
      );
      expect(err.join("\n")).toContain("the agents of this goal could not be listed");
      expect(err.join("\n")).toContain("watch-gone");
      expect(code).toBe(0);
      expect(tty.last()).toContain(`aido watch — goal ${goalId}  succeeded  on node watch-gone`);
    } finally {
      await redis.del(`aido:goal:${goalId}`);
      redis.disconnect();
    }
  }, 60_000);

  // Whoever can write to Redis can put a routed read in a node's stream (cluster/routed-reads.ts):
  // one naming no goal is refused, never read as every goal's, and the refusal is audited.
  it("refuses a forged routed read that names no goal, and audits the refusal", async () => {
    const redis = connectRedis(redisUrl);
    const target = nodes[0]!;
    try {
      const forged = [
        { type: "agent.list", include_stopped: true },
        { type: "audit.query", query: { kind: "goal.enqueued" } },
      ];
      for (const [i, command] of forged.entries()) {
        const id = `forged-read-${i}`;
        await redis.set(`aido:request:${id}`, "pending", "EX", 60);
        await redis.xadd(
          `aido:node:${target.id}:commands`,
          "*",
          "c",
          JSON.stringify({ request_id: id, reply_to: "forger", command }),
        );
        const reply = (await redis.xread("BLOCK", 10_000, "STREAMS", "aido:node:forger:replies", "0-0")) as
          | [string, [string, string[]][]][]
          | null;
        const answers = (reply?.[0]?.[1] ?? []).map(([, f]) => JSON.parse(f[1] ?? "{}"));
        await redis.del("aido:node:forger:replies");
        expect(answers.find((a) => a.request_id === id)).toMatchObject({
          ok: false,
          error: { code: "invalid_input", message: expect.stringContaining("names no goal") },
        });
      }
      const refused = await (await target.client()).call("audit.query", { kind: "cluster.command_refused" });
      expect(refused.entries.map((e) => (e.payload as { type: string }).type).sort()).toEqual([
        "agent.list",
        "audit.query",
      ]);
    } finally {
      redis.disconnect();
    }
  }, 60_000);
});
