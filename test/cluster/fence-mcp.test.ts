// Cluster mode, fencing (cluster/fence.ts) of a goal's stdio MCP server: its container is
// frozen with the goal's own. Before, only the goal's container was: a server mid-way through
// something (here a tool that started writing a counter every 50 ms) went on acting while the
// node was fenced and a survivor could already run the goal. Now the server makes no progress
// while the node is fenced, and resumes once a heartbeat has lifted the fence.
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

/** A stdio MCP server (newline-delimited JSON-RPC): `start` writes /workspace/counter every 50 ms. */
const TICKER = `
const fs = require("node:fs");
const tools = [{ name: "start", description: "start counting", inputSchema: { type: "object", properties: {} } }];
const send = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
let n = 0;
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
    else if (m.method === "tools/call") {
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

describe("cluster mode: a fenced node's goal with a stdio MCP server", () => {
  it("freezes the server's container with the goal's: it makes no progress while fenced, and resumes after the lift", async () => {
    const redis = await startRedis();
    const proxy = await startRedisProxy(redis.url);
    let node: ClusterNode | undefined;
    const h: Harness = await openNodeHarness(server, {
      backend: "docker",
      redisUrl: proxy.url,
      nodeId: NODE,
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
          timeoutMs: 30_000,
        };
        c.grantCeilings = [["mcp: ticker/*"]];
      },
    });
    const release = latch();
    let goalId: string | undefined;
    try {
      node = await ClusterNode.start(h.home.config, h.rt, () => {});
      await h.rt.mcp.approve("ticker", undefined, "test");
      server.script(forGoal("ticker-goal"), [
        turn.toolUse("mcp__ticker__start", {}),
        turn.text("done ticker-goal", { until: release.promise }),
      ]);
      const { goal_id } = await node.goals.submit({
        goal: "run ticker-goal",
        manifest: `${manifest()}capabilities:\n  - "mcp: ticker/*"\nmcp_servers: [ticker]\n`,
      });
      goalId = goal_id;
      const counter = join(h.home.config.goalsDir, goal_id, "workspace", "counter");
      const count = () => (existsSync(counter) ? Number(readFileSync(counter, "utf8") || "0") : 0);
      await until(() => (count() >= 5 ? true : undefined), 60_000);

      // Cut off: the fence falls, and the server's container is frozen with the goal's.
      proxy.cut();
      await until(() => (node?.fenceStatus().fenced ? true : undefined), 10_000);
      await until(() => (serverPaused(goal_id) ? true : undefined), 10_000);
      const at = count();
      await new Promise((r) => setTimeout(r, 1_000));
      expect(count()).toBe(at);
      expect(node.fenceStatus().fenced).toBe(true);

      // Back: the fence is lifted, the goal still this node's, the server counts on.
      proxy.restore();
      await until(() => (node?.fenceStatus().fenced === false ? true : undefined), 20_000);
      expect(serverPaused(goal_id)).toBe(false);
      await until(() => (count() > at + 5 ? true : undefined), 10_000);
      const [unfenced] = h.rt.audit.query({ kind: "cluster.unfenced" });
      expect(unfenced?.payload).toMatchObject({ kept: [goal_id], lost: [] });
      release.open();
      await until(() => (h.rt.goals.status(goal_id).state === "succeeded" ? true : undefined), 30_000);
    } finally {
      release.open();
      proxy.restore();
      await until(() => (node?.fenceStatus().fenced === false ? true : undefined), 20_000).catch(() => {});
      await node?.stop();
      if (goalId) await h.rt.backend.remove(goalId).catch(() => {});
      await h.close();
    }
  }, 120_000);
});
