// mcp/stdio.ts — `aido mcp serve` over stdio, what desktop clients and IDEs launch: one
// process, one MCP session, one daemon session. stdout carries the protocol only
// (diagnostics go to stderr). The session ends when the client closes stdin or the
// transport, or when the daemon goes away; ending it closes the daemon session, so its
// container is removed (and were this process killed, the daemon would see its
// connection close and do the same).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { Config, Env } from "../config.js";
import { connectDaemon, type SessionOptions } from "./daemon-link.js";
import { openMcpSession } from "./session.js";

export interface ServeOptions extends SessionOptions {
  config: Config;
  env: Env;
  allowApprove: boolean;
  log(message: string): void;
}

export function aidoVersion(config: Config): string {
  try {
    const pkg = JSON.parse(readFileSync(join(config.packageRoot, "package.json"), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/** Serve one MCP session on stdin/stdout until either side leaves; 0, or 1 when the daemon went away. */
export async function serveStdio(opts: ServeOptions): Promise<number> {
  const client = await connectDaemon(opts.config, opts.env, opts.log);
  const session = await openMcpSession(client, {
    ...opts,
    client: opts.client ?? "stdio",
    version: aidoVersion(opts.config),
  });
  const transport = new StdioServerTransport();
  const clientLeft = new Promise<"client">((resolve) => {
    transport.onclose = () => resolve("client");
    process.stdin.once("end", () => resolve("client"));
    process.stdin.once("close", () => resolve("client"));
  });
  await session.server.connect(transport);
  const s = session.link.session;
  opts.log(
    `MCP session ${s.session_id} (agent ${s.agent_id}${s.workspace ? `, workspace ${s.workspace}` : ""}) serving on stdio`,
  );
  const why = await Promise.race([clientLeft, session.bridge.ended.then(() => "daemon" as const)]);
  await session.close();
  if (why === "daemon") opts.log("the Aido daemon went away: the MCP session ended");
  return why === "daemon" ? 1 : 0;
}
