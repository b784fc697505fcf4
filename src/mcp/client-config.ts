// mcp/client-config.ts — the JSON an MCP client needs to launch `aido mcp serve` over
// stdio, for each client we document (docs/mcp.md): Claude Code (.mcp.json in a project,
// or `claude mcp add-json`), Claude Desktop (claude_desktop_config.json) and Cursor
// (.cursor/mcp.json). The command is the absolute path of the Node binary running Aido
// and the first argument the absolute path of Aido's CLI entry: desktop clients launch
// servers with a minimal PATH, where `aido` (and the `node` its shebang asks for) may
// not be found. AIDO_HOME goes into env when it is set, so the server reaches the same
// daemon as the user's shell.

import { realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AidoError, ErrorCode } from "../errors.js";

export const MCP_CLIENTS = ["claude-code", "claude-desktop", "cursor"] as const;
export type McpClientName = (typeof MCP_CLIENTS)[number];

export interface LaunchSpec {
  /** Absolute path of the Node binary. */
  node: string;
  /** What Node runs before the CLI entry (a TypeScript loader when running from source). */
  nodeArgs: string[];
  /** Absolute path of the `aido` CLI entry. */
  cli: string;
}

/** How this very process was launched, as absolute paths. */
export function currentLaunch(argv1: string): LaunchSpec {
  const cli = realpathSync(argv1);
  const nodeArgs = cli.endsWith(".ts") ? ["--import", fileURLToPath(import.meta.resolve("tsx"))] : [];
  return { node: process.execPath, nodeArgs, cli };
}

export function clientConfig(
  client: McpClientName,
  launch: LaunchSpec,
  opts: { workspace?: string; aidoHome?: string },
): Record<string, unknown> {
  const args = [...launch.nodeArgs, launch.cli, "mcp", "serve"];
  if (opts.workspace !== undefined) {
    const dir = resolve(opts.workspace);
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) throw new AidoError(ErrorCode.usage, `--workspace ${dir}: not a directory`);
    args.push("--workspace", dir);
  }
  const server: Record<string, unknown> = {
    ...(client === "claude-code" ? { type: "stdio" } : {}),
    command: launch.node,
    args,
    ...(opts.aidoHome ? { env: { AIDO_HOME: resolve(opts.aidoHome) } } : {}),
  };
  return { mcpServers: { aido: server } };
}
