// Cluster mode, fencing (cluster/fence.ts) of a goal's stdio MCP server: its container is
// frozen with the goal's own. Before, only the goal's container was: a server mid-way through
// something (here a tool that started writing a counter every 50 ms) went on acting while the
// node was fenced and a survivor could already run the goal. Now the server makes no progress
// while the node is fenced, and resumes once a heartbeat has lifted the fence. And a call the
// server is running as the fence falls is held with it: its timeout does not run while the
// server is frozen. Before, a fence longer than the call's timeout failed it, the ping after it
// went unanswered too, and the session was closed: the server was started again on the next
// call, whatever it held lost. Now the call answers after the lift, the server's state intact.
// A real Runtime (scripted provider) on the real Docker engine, a real redis-server behind a
// TCP proxy that only this node goes through (the partition: cut), the node in this process.

import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterNode } from "../../src/cluster/node.js";
import { LABEL } from "../../src/sandbox/docker-containers.js";
import type { Harness } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import { requireDocker } from "../support/docker.js";
import { latch, type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, startRedis, startRedisProxy, stopAll } from "./fixture.js";
import { withProvider } from "./support/file-cluster.js";
import { openNodeHarness } from "./support/node-harness.js";

/** How long the server takes to answer a call of `count`. */
const COUNT_ANSWER_MS = 3_000;

/**
 * A stdio MCP server (newline-delimited JSON-RPC): `start` writes /workspace/counter every 50 ms;
 * `count` adds one to a count it keeps in memory, writes it to /workspace/count-calls at once
 * and answers it COUNT_ANSWER_MS later.
 */
const TICKER = `
const fs = require("node:fs");
const tools = ["start", "count"].map((name) =>
  ({ name, description: name, inputSchema: { type: "object", properties: {} } }));
const send = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
let n = 0;
let calls = 0;
let buf = "";
process.stdin.on("data", (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf("\\n")) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    if (!line.trim()) continue;
    const m = JSON.parse(line);
    if (m.method === "initialize")
      send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion,
        capabilities: { tools: {} }, serverInfo: { name: "ticker", version: "1" } } });
    else if (m.method === "tools/list") send({ jsonrpc: "2.0", id: m.id, result: { tools } });
    else if (m.method === "tools/call" && m.params.name === "count") {
      const at = ++calls;
      fs.writeFileSync("/workspace/count-calls", String(at));
      setTimeout(() => send({ jsonrpc: "2.0", id: m.id,
        result: { content: [{ type: "text", text: "count " + at }] } }), ${COUNT_ANSWER_MS});
    } else if (m.method === "tools/call") {
      setInterval(() => fs.writeFileSync("/workspace/counter", String(++n)), 50);
      send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: "counting" }] } });
    } else if (m.id !== undefined) send({ jsonrpc: "2.0", id: m.id, result: {} });
  }
});
`;

const NODE = "n-fence-mcp";
let server: ProviderServer;
withProvider((p) => ({ server } = p));
let dir: string;
beforeAll(() => {
  requireDocker();
  dir = mkdtempSync(join(tmpdir(), "fence-mcp-"));
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "server.js"), TICKER, { mode: 0o644 });
});
afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** Whether the goal's MCP server container is paused; undefined: none. */
function serverPaused(goalId: string): boolean | undefined {
  const [name] = execFileSync(
    "docker",
    [
      "ps",
      "-a",
      "--filter",
      `label=${LABEL.goal}=${goalId}`,
      "--filter",
      `label=${LABEL.mcpServer}`,
      "--format",
      "{{.Names}}",
    ],
    { encoding: "utf8" },
  )
    .split("\n")
    .filter(Boolean);
  if (!name) return undefined;
  return (
    execFileSync("docker", ["inspect", "-f", "{{.State.Paused}}", name], { encoding: "utf8" }).trim() ===
    "true"
  );
}

/** The node and its goal's fence: a real partition (the proxy cut) and a real lift (restored). */
interface FencedNode {
  h: Harness;
  node: ClusterNode;
  proxy: Awaited<ReturnType<typeof startRedisProxy>>;
  /** The goal's /workspace on the host. */
  workspace(goalId: string): string;
  /** Submit a goal of the ticker's tools whose model turns are `marker`'s script. */
  submit(marker: string): Promise<string>;
  close(goalId: string | undefined): Promise<void>;
}

/** A node (its own Redis behind a proxy) whose runtime declares the ticker server, approved. */
async function tickerNode(nodeId: string, timeoutMs: number): Promise<FencedNode> {
  const redis = await startRedis();
  const proxy = await startRedisProxy(redis.url);
  let node: ClusterNode | undefined;
  const h: Harness = await openNodeHarness(server, {
    backend: "docker",
    redisUrl: proxy.url,
    nodeId,
    node: () => node,
    config: (c) => {
      c.mcp.servers.ticker = {
        name: "ticker",
        transport: "stdio",
        command: ["node", "/opt/ticker/server.js"],
        env: {},
        workspace: "rw",
        mounts: [{ source: dir, target: "/opt/ticker" }],
        readOnlyTools: ["*"],
        timeoutMs,
      };
      c.grantCeilings = [["mcp: ticker/*"]];
    },
  });
  const made = await ClusterNode.start(h.home.config, h.rt, () => {});
  node = made;
  await h.rt.mcp.approve("ticker", undefined, "test");
  return {
    h,
    node: made,
    proxy,
    workspace: (goalId) => join(h.home.config.goalsDir, goalId, "workspace"),
    submit: async (marker) =>
      (
        await made.goals.submit({
          goal: `run ${marker}`,
          manifest: `${manifest()}capabilities:\n  - "mcp: ticker/*"\nmcp_servers: [ticker]\n`,
        })
      ).goal_id,
    close: async (goalId) => {
      proxy.restore();
      await until(() => (made.fenceStatus().fenced === false ? true : undefined), 20_000).catch(() => {});
      await made.stop();
      if (goalId) await h.rt.backend.remove(goalId).catch(() => {});
      await h.close();
    },
  };
}

describe("cluster mode: a fenced node's goal with a stdio MCP server", () => {
  it("freezes the server's container with the goal's: it makes no progress while fenced, and resumes after the lift", async () => {
    const f = await tickerNode(NODE, 30_000);
    const { h, node, proxy } = f;
    const release = latch();
    let goalId: string | undefined;
    try {
      server.script(forGoal("ticker-goal"), [
        turn.toolUse("mcp__ticker__start", {}),
        turn.text("done ticker-goal", { until: release.promise }),
      ]);
      const goal_id = await f.submit("ticker-goal");
      goalId = goal_id;
      const counter = join(f.workspace(goal_id), "counter");
      const count = () => (existsSync(counter) ? Number(readFileSync(counter, "utf8") || "0") : 0);
      await until(() => (count() >= 5 ? true : undefined), 60_000);

      // Cut off: the fence falls, and the server's container is frozen with the goal's.
      proxy.cut();
      await until(() => (node.fenceStatus().fenced ? true : undefined), 10_000);
      await until(() => (serverPaused(goal_id) ? true : undefined), 10_000);
      const at = count();
      await new Promise((r) => setTimeout(r, 1_000));
      expect(count()).toBe(at);
      expect(node.fenceStatus().fenced).toBe(true);

      // Back: the fence is lifted, the goal still this node's, the server counts on.
      proxy.restore();
      await until(() => (node.fenceStatus().fenced === false ? true : undefined), 20_000);
      // The status says lifted as the lift begins unfreezing the kept goals: the server's
      // container is unpaused right after.
      await until(() => (serverPaused(goal_id) ? undefined : true), 10_000);
      await until(() => (count() > at + 5 ? true : undefined), 10_000);
      const [unfenced] = h.rt.audit.query({ kind: "cluster.unfenced" });
      expect(unfenced?.payload).toMatchObject({ kept: [goal_id], lost: [] });
      release.open();
      await until(() => (h.rt.goals.status(goal_id).state === "succeeded" ? true : undefined), 30_000);
    } finally {
      release.open();
      await f.close(goalId);
    }
  }, 120_000);

  it("holds a call the server runs as the fence falls: longer than its timeout, it answers after the lift, the server's state intact", async () => {
    const timeoutMs = 4_000;
    const f = await tickerNode(`${NODE}-call`, timeoutMs);
    const { h, node, proxy } = f;
    const release = latch();
    let goalId: string | undefined;
    try {
      server.script(forGoal("count-goal"), [
        turn.toolUse("mcp__ticker__count", {}),
        turn.toolUse("mcp__ticker__count", {}),
        turn.text("done count-goal", { until: release.promise }),
      ]);
      const goal_id = await f.submit("count-goal");
      goalId = goal_id;
      const calls = join(f.workspace(goal_id), "count-calls");
      await until(() => (existsSync(calls) ? true : undefined), 60_000);

      // The server runs the call (it answers in 3 s): the node is cut off now, and the fence
      // falls within 750 ms (lease 1 s less a quarter), freezing the server mid-call.
      proxy.cut();
      await until(() => (node.fenceStatus().fenced ? true : undefined), 10_000);
      await until(() => (serverPaused(goal_id) ? true : undefined), 10_000);
      // Longer than the call's timeout and the ping's after it (4 s each).
      await new Promise((r) => setTimeout(r, 2 * timeoutMs + 1_500));
      expect(node.fenceStatus().fenced).toBe(true);
      const toolEnds = () =>
        h.rt.audit.query({ goal_id }).filter((e) => e.kind === "tool.completed" || e.kind === "tool.failed");
      expect(toolEnds()).toEqual([]);

      // Back: the call answers, and the next one is answered by the same server.
      proxy.restore();
      await until(() => (node.fenceStatus().fenced === false ? true : undefined), 20_000);
      const asked = () => server.requestsMatching(forGoal("count-goal"));
      await until(() => (asked().length >= 3 ? true : undefined), 30_000);
      const results = asked()
        .slice(1, 3)
        .map((r) => /count \d+|error|timed out|ended/.exec(JSON.stringify(r.body.messages.at(-1)))?.[0]);
      expect(results).toEqual(["count 1", "count 2"]);
      expect(readFileSync(calls, "utf8")).toBe("2");
      expect(h.rt.audit.query({ kind: "mcp.disconnected" })).toEqual([]);
      expect(toolEnds().map((e) => e.kind)).toEqual(["tool.completed", "tool.completed"]);
      release.open();
      await until(() => (h.rt.goals.status(goal_id).state === "succeeded" ? true : undefined), 30_000);
    } finally {
      release.open();
      await f.close(goalId);
    }
  }, 120_000);
});
