// `aido watch` on a cluster node when part of the cluster does not answer (cli/watch/
// cluster-panel.ts, cluster/node-status.ts), with real agentd nodes on a real redis-server:
// a cluster.status that hangs (its daemon stopped) is said stale, with the time of the last
// answer, rather than leaving the panel as it was, unsaid; a node record in Redis that is
// malformed is listed as such, the others as they are, rather than failing cluster.status; and
// an all-goals watch started while Redis is down starts with this node's goals, says the
// cluster's are unavailable, and shows them once Redis answers again.

import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, type Node, type RedisServer, startNode } from "./fixture.js";
import { type FileCluster, withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let cluster: FileCluster;
let redisServer: RedisServer;
let node: Node;
withCluster((c) => {
  server = c.server;
  cluster = c;
  redisServer = c.redis;
});

beforeAll(async () => {
  node = await startNode(server, redisServer.url, "outage-a");
}, 60_000);

/** The frames a terminal watch drew (the last is what the screen shows). */
function terminal() {
  const written: string[] = [];
  return {
    screen: { write: (t: string) => written.push(t), isTTY: true, columns: 220 },
    last: (): string => written.join("").split("\x1b[J").at(-1) ?? "",
  };
}

async function shows(tty: ReturnType<typeof terminal>, text: string | RegExp, ms = 30_000): Promise<string> {
  return until(async () => {
    const f = tty.last();
    return (typeof text === "string" ? f.includes(text) : text.test(f)) ? f : undefined;
  }, ms).catch((e) => {
    throw new Error(`${e}: waiting for ${text} in\n${tty.last()}`);
  });
}

/** An all-goals watch on `n` (it ends when the node goes away). */
function watchAll(n: Node, tty: ReturnType<typeof terminal>, err: string[] = []) {
  return runCli(
    ["watch"],
    { out: () => {}, err: (l: string) => err.push(l), interactive: false, screen: tty.screen },
    { ...n.home.env, AIDO_HOME: n.home.dir },
  );
}

describe("aido watch when the cluster does not answer", () => {
  it("lists a node whose record is malformed as such, and every other node as it is", async () => {
    const raw = cluster.raw;
    await raw.sadd("aido:nodes", "outage-bad");
    await raw.hset("aido:node:outage-bad", {
      node_id: "outage-bad",
      last_heartbeat: "soon",
      running: "many",
      goals: "{not json",
    });
    try {
      const status = await (await node.client()).call("cluster.status", {});
      if (!status.enabled) throw new Error("not a cluster");
      const bad = status.nodes.find((n) => n.node_id === "outage-bad");
      expect(bad?.malformed).toMatch(/last_heartbeat is not a time in ms/);
      expect(bad?.malformed).toMatch(/running is not a count/);
      expect(bad?.malformed).toMatch(/goals is not a JSON list/);
      expect(bad).toMatchObject({ last_heartbeat: null, running: 0, goals: [] });
      const good = status.nodes.find((n) => n.node_id === node.id);
      expect(good?.alive).toBe(true);
      expect(good?.malformed).toBeUndefined();
      // `aido cluster status` says it too (its zero load and "never" are not what the node said).
      const out: string[] = [];
      await runCli(
        ["cluster", "status"],
        { out: (l: string) => out.push(l), err: () => {}, interactive: false },
        { ...node.home.env, AIDO_HOME: node.home.dir },
      );
      const text = out.join("\n");
      expect(text).toMatch(
        /outage-bad .*\n {2}MALFORMED: its record in Redis is malformed: last_heartbeat is not a time in ms/,
      );
      expect(text).toMatch(new RegExp(`${node.id} +up `));
      // A record that is no hash at all (a Redis writer's string) is said malformed too, not
      // listed as a node that heartbeated never with no load.
      await raw.sadd("aido:nodes", "outage-string");
      await raw.set("aido:node:outage-string", "not a hash");
      const again = await (await node.client()).call("cluster.status", {});
      if (!again.enabled) throw new Error("not a cluster");
      expect(again.nodes.find((n) => n.node_id === "outage-string")?.malformed).toMatch(
        /its record in Redis is malformed: it is not a hash/,
      );
      expect(again.nodes.find((n) => n.node_id === node.id)?.alive).toBe(true);
    } finally {
      await raw.srem("aido:nodes", "outage-bad", "outage-string");
      await raw.del("aido:node:outage-bad", "aido:node:outage-string");
    }
  }, 60_000);

  it("says the cluster panel is stale, and since when, while cluster.status does not answer", async () => {
    const tty = terminal();
    const watching = watchAll(node, tty);
    await shows(tty, `  ${node.id} (this)  up`);
    const pid = node.child.child.pid as number;
    process.kill(pid, "SIGSTOP");
    try {
      // The next refresh (5 s) times out (4 s): said within 9 s, and again after.
      const frame = await shows(
        tty,
        /STALE \(as of \d\d:\d\d:\d\d\): cluster\.status failed: .*did not answer/,
        15_000,
      );
      expect(frame).toContain(`  ${node.id} (this)  up`);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await shows(tty, /^(?![\s\S]*STALE)[\s\S]*outage-a \(this\) {2}up/, 30_000);
    await node.kill();
    await watching.catch(() => 1);
    await node.restart();
  }, 90_000);

  it("starts an all-goals watch while Redis is down with this node's goals, and the cluster's once it is back", async () => {
    const raw = cluster.raw;
    // A goal of this node, its agent waiting for an approval; and one the cluster says another node runs.
    const marker = "outage-own-goal";
    server.script(forGoal(marker), [
      turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
      turn.text(`finished ${marker}`),
    ]);
    const c = await node.client();
    const { goal_id } = await c.call("goal.submit", {
      goal: `write ${marker}`,
      manifest: manifest({ approve: true }),
    });
    await until(async () => (await c.call("approval.list", {})).approvals.find((a) => a.goal_id === goal_id));
    const elsewhere = "g_outageelsewhere";
    await raw.hset(`aido:goal:${elsewhere}`, {
      goal_id: elsewhere,
      state: "running",
      owner: "outage-other",
      goal: "runs on another node",
      created_at: String(Date.now()),
      submitted_via: "outage-other",
    });
    await raw.zadd("aido:goals", Date.now(), elsewhere);
    raw.on("error", () => {});

    await redisServer.stop();
    const tty = terminal();
    const err: string[] = [];
    let watching: Promise<number> | undefined;
    try {
      watching = watchAll(node, tty, err);
      const frame = await shows(tty, "cluster goals unavailable");
      // cluster.status answers with this node alone, from its memory: its goal is shown on it.
      expect(frame).toMatch(new RegExp(`\\n  ${goal_id}  running  on node ${node.id}\\n`));
      expect(frame).toMatch(
        new RegExp(
          `\\n  ${node.id} \\(this\\)  up  load 1/2 .*\\n  STALE \\(never read\\): Redis cannot be reached: Stream`,
        ),
      );
      expect(frame).not.toContain(elsewhere);
    } finally {
      await redisServer.start();
    }
    const back = await shows(tty, elsewhere, 40_000);
    expect(back).not.toContain("cluster goals unavailable");
    expect(back).toContain(`  ${goal_id}  running  on node ${node.id}`);
    expect(err.join("\n")).toBe("");
    await c.call("goal.cancel", { goal_id }).catch(() => {});
    await node.kill();
    expect(await watching?.catch(() => 1)).toBeDefined();
  }, 120_000);
});
