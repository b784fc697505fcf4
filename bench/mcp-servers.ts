// bench/mcp-servers.ts — what the gate adds to an external MCP tool call. The same echo,
// timed as `tool.invoke` of mcp__<server>__echo on the daemon's socket (schema against the
// pinned inputSchema, grants, policy, budget, audit written before and after, then the
// server) and as the server's own round trip (an SDK Client calling the same server
// directly), interleaved in blocks so drift hits both. Two servers: a remote one made here
// with the SDK (Streamable HTTP on loopback), and the reference server-everything as a
// stdio server in its container (the direct client speaks to a second container of the
// same image, command and mounts). The daemon runs in this process on a temp home with the
// Docker backend; its echo tools are marked read-only, so no human is asked.

import { realpathSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { AidoClient } from "../src/client/client.js";
import type { McpServerConfig } from "../src/config.js";
import { startDaemon } from "../src/daemon/server.js";
import { makeTempHome } from "../test/support/home.js";
import { startRemoteMcpServer } from "../test/support/mcp-remote-server.js";
import type { BenchSection, Metric } from "./report.js";
import { percentile, round } from "./report.js";

const CALLS = 200;
const BLOCK = 20;
const NODE_MODULES = realpathSync(join(import.meta.dirname, "..", "node_modules"));
const EVERYTHING = "/opt/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js";

async function paired(
  label: string,
  gated: () => Promise<void>,
  direct: () => Promise<void>,
): Promise<Metric[]> {
  const time = async (fn: () => Promise<void>) => {
    const t = performance.now();
    await fn();
    return performance.now() - t;
  };
  for (let i = 0; i < 20; i++) {
    await gated();
    await direct();
  }
  const g: number[] = [];
  const d: number[] = [];
  for (let done = 0; done < CALLS; done += BLOCK) {
    for (let i = 0; i < BLOCK; i++) g.push(await time(gated));
    for (let i = 0; i < BLOCK; i++) d.push(await time(direct));
  }
  const g50 = percentile(g, 50);
  const d50 = percentile(d, 50);
  return [
    { name: `${label}: server's own round trip p50`, value: round(d50, 2), unit: "ms" },
    {
      name: `${label}: through the gate (tool.invoke) p50`,
      value: round(g50, 2),
      unit: "ms",
      baseline: { name: "direct p50", value: round(d50, 2) },
    },
    {
      name: `${label}: through the gate p95`,
      value: round(percentile(g, 95), 2),
      unit: "ms",
      baseline: { name: "direct p95", value: round(percentile(d, 95), 2) },
    },
    { name: `${label}: gate overhead at p50`, value: round(g50 - d50, 2), unit: "ms" },
  ];
}

export async function benchMcpServers(): Promise<BenchSection> {
  const home = makeTempHome({ ANTHROPIC_API_KEY: "sk-bench", ANTHROPIC_BASE_URL: "http://127.0.0.1:9" });
  const remote = await startRemoteMcpServer();
  const mount = { source: NODE_MODULES, target: "/opt/mcp/node_modules" };
  const everything: McpServerConfig = {
    name: "everything",
    transport: "stdio",
    command: ["node", EVERYTHING, "stdio"],
    env: {},
    workspace: "none",
    mounts: [mount],
    readOnlyTools: ["echo"],
    timeoutMs: 60_000,
  };
  const cfg = home.config;
  cfg.mcp.servers = {
    remote: {
      name: "remote",
      transport: "http",
      url: remote.url,
      headers: {},
      readOnlyTools: ["echo"],
      timeoutMs: 10_000,
    },
    everything,
  };
  cfg.grantCeilings = [["mcp: remote/*", "mcp: everything/*"]];
  cfg.models.allowed = [["anthropic/*"]];
  const daemon = await startDaemon(cfg, { eventLog: null, log: () => {} });
  const socket = await AidoClient.connect(cfg.socketPath);
  const directRemote = new Client({ name: "bench", version: "1" });
  const directStdio = new Client({ name: "bench", version: "1" });
  const benchGoal = `bench-mcp-direct-${process.pid}`;
  try {
    for (const server of ["remote", "everything"]) await socket.call("mcp.approve", { server });
    const agent = await socket.call("agent.spawn", {
      manifest: {
        name: "bench-mcp",
        model: "anthropic/claude-bench",
        lifecycle: "persistent",
        capabilities: ["mcp: remote/echo", "mcp: everything/echo"],
        mcp_servers: ["remote", "everything"],
      },
    });
    const gated = (tool: string, args: Record<string, unknown>) => async () => {
      const r = await socket.call("tool.invoke", { agent_id: agent.agent_id, tool, input: args });
      if (r.is_error) throw new Error(`${tool} failed: ${r.output}`);
    };
    await directRemote.connect(new StreamableHTTPClientTransport(new URL(remote.url)));
    const container = await daemon.runtime.backend.startMcpServer({
      goalId: benchGoal,
      server: "everything",
      command: everything.command,
      workspace: "none",
      mounts: [mount],
    });
    await directStdio.connect(container.transport, { timeout: 60_000 });
    const direct = (client: Client, args: Record<string, unknown>) => async () => {
      const r = await client.callTool({ name: "echo", arguments: args });
      if (r.isError) throw new Error(`direct echo failed: ${JSON.stringify(r.content)}`);
    };
    const metrics = [
      ...(await paired(
        "remote (Streamable HTTP, loopback)",
        gated("mcp__remote__echo", { text: "bench" }),
        direct(directRemote, { text: "bench" }),
      )),
      ...(await paired(
        "server-everything (stdio, container)",
        gated("mcp__everything__echo", { message: "bench" }),
        direct(directStdio, { message: "bench" }),
      )),
    ];
    return {
      name: "mcp-servers",
      metrics,
      notes: [
        `${CALLS} calls each, interleaved in blocks of ${BLOCK}, after 20 warm-up pairs.`,
        "Gated: AidoClient -> daemon socket tool.invoke -> gate (pinned schema with ajv, grants, policy, budget, audit before and after) -> the goal's MCP connection -> server.",
        "Direct: an SDK Client on the same server (the remote one), or on a second container of server-everything with the same image, command and mounts.",
      ],
    };
  } finally {
    await directRemote.close().catch(() => {});
    await directStdio.close().catch(() => {});
    await daemon.runtime.backend.remove(benchGoal).catch(() => {});
    socket.close();
    await daemon.close();
    await remote.close();
    home.cleanup();
  }
}
