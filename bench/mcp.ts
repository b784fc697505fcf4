// bench/mcp.ts — what the MCP face costs. The same gated call — file_read of a small file
// in a session's bound host folder, in the session's real container — timed as an MCP
// `tools/call` through `aido mcp serve` (the SDK client over stdio, the server process in
// between) and as a `tool.invoke` straight on the daemon's socket, interleaved in blocks
// so drift hits both. Reports p50/p95 of each and the MCP overhead at p50 (target ≤ 1 ms).
// The daemon runs as its own process on a temp home with the Docker backend.

import { type ChildProcess, spawn } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { AidoClient } from "../src/client/client.js";
import { socketAnswers } from "../src/daemon/socket.js";
import { makeTempHome } from "../test/support/home.js";
import type { BenchSection } from "./report.js";
import { percentile, round } from "./report.js";

const CALLS = 300;
const BLOCK = 25;
const ROOT = join(import.meta.dirname, "..");
const DAEMON = join(ROOT, "src", "daemon", "main.ts");
const CLI = join(ROOT, "src", "cli", "main.ts");

async function until(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`bench mcp: ${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function benchMcp(): Promise<BenchSection> {
  const home = makeTempHome();
  const scratch = mkdtempSync(join(tmpdir(), "aido-bench-mcp-"));
  const project = join(scratch, "repo");
  mkdirSync(project);
  writeFileSync(join(project, "small.txt"), "a small file\n".repeat(20));
  if (process.getuid?.() === 0) {
    chownSync(project, 1000, 1000);
    chownSync(join(project, "small.txt"), 1000, 1000);
  }
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    AIDO_HOME: home.dir,
  };
  if (process.env.AIDO_SANDBOX_IMAGE) env.AIDO_SANDBOX_IMAGE = process.env.AIDO_SANDBOX_IMAGE;
  let daemon: ChildProcess | undefined;
  let mcp: Client | undefined;
  let socket: AidoClient | undefined;
  try {
    daemon = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), DAEMON, "--foreground"], {
      env,
      cwd: home.dir,
      stdio: ["ignore", "ignore", "pipe"],
    });
    await until(
      async () => existsSync(home.config.socketPath) && (await socketAnswers(home.config.socketPath)),
      60_000,
      "daemon start-up",
    );
    socket = await AidoClient.connect(home.config.socketPath);
    const session = await socket.call("session.open", { workspace: project, client: "bench" });
    const viaSocket = async () => {
      const t = performance.now();
      const r = await socket?.call("tool.invoke", {
        agent_id: session.agent_id,
        tool: "file_read",
        input: { path: "/workspace/small.txt" },
      });
      if (r?.is_error) throw new Error(`socket file_read failed: ${r.output}`);
      return performance.now() - t;
    };

    mcp = new Client({ name: "bench", version: "1" });
    await mcp.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ["--import", "tsx", CLI, "mcp", "serve", "--workspace", project],
        env,
        cwd: ROOT,
        stderr: "ignore",
      }),
    );
    const viaMcp = async () => {
      const t = performance.now();
      const r = await mcp?.callTool({ name: "file_read", arguments: { path: "/workspace/small.txt" } });
      if (r?.isError) throw new Error(`MCP file_read failed: ${JSON.stringify(r.content)}`);
      return performance.now() - t;
    };

    for (let i = 0; i < 20; i++) await Promise.all([viaSocket(), viaMcp()]); // containers up, JIT warm
    const sock: number[] = [];
    const over: number[] = [];
    for (let done = 0; done < CALLS; done += BLOCK) {
      for (let i = 0; i < BLOCK; i++) sock.push(await viaSocket());
      for (let i = 0; i < BLOCK; i++) over.push(await viaMcp());
    }
    const s50 = percentile(sock, 50);
    const m50 = percentile(over, 50);
    return {
      name: "mcp",
      metrics: [
        { name: "socket tool.invoke file_read p50", value: round(s50, 2), unit: "ms" },
        { name: "socket tool.invoke file_read p95", value: round(percentile(sock, 95), 2), unit: "ms" },
        {
          name: "MCP tools/call file_read p50",
          value: round(m50, 2),
          unit: "ms",
          baseline: { name: "socket tool.invoke p50", value: round(s50, 2) },
        },
        { name: "MCP tools/call file_read p95", value: round(percentile(over, 95), 2), unit: "ms" },
        {
          name: "MCP overhead at p50 (MCP - socket)",
          value: round(m50 - s50, 2),
          unit: "ms",
          target: { op: "<=", value: 1 },
        },
      ],
      notes: [
        `${CALLS} calls each, interleaved in blocks of ${BLOCK}, after 20 warm-up pairs; file_read of a 260-byte file in the session's bound host folder, executed in its container.`,
        "The MCP path: SDK Client -> stdio -> aido mcp serve (its own session) -> daemon socket tool.invoke -> gate -> container.",
      ],
    };
  } finally {
    await mcp?.close().catch(() => {});
    socket?.close();
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon?.once("exit", r));
      daemon.kill("SIGTERM");
      await exited;
    }
    home.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  }
}
