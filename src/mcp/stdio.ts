// mcp/stdio.ts — `aido mcp serve` over stdio, what desktop clients and IDEs launch: one
// process, one MCP session, one daemon session. stdout carries the protocol only
// (diagnostics go to stderr). The session ends when the client closes stdin or the
// transport, or when the daemon goes away; ending it closes the daemon session, so its
// container is removed (and were this process killed, the daemon would see its
// connection close and do the same).
//
// The SDK's stdio transport reads a message of at most STDIO_DEFAULT_MAX_BUFFER_SIZE bytes
// (10 MiB) and closes itself on a larger one, which read as the client leaving: the session
// ended with exit 0 and no word to anyone. Such a message now ends it saying why: a log
// notification to the client, a line on stderr and session.call_refused in the audit.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { STDIO_DEFAULT_MAX_BUFFER_SIZE, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Config, Env } from "../config.js";
import { errorMessage } from "../errors.js";
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
  let overflow: Promise<unknown> | undefined;
  await session.server.connect(transport);
  session.server.onerror = (e) => {
    const message = errorMessage(e);
    if (!message.includes("ReadBuffer exceeded maximum size")) {
      opts.log(`a message from the MCP client was not read: ${message}`);
      return;
    }
    const reason = `a message from the MCP client was larger than ${STDIO_DEFAULT_MAX_BUFFER_SIZE} bytes, what the stdio transport reads: the session ends`;
    opts.log(reason);
    // The transport closes right after this: the client is told now, in the same write.
    process.stdout.write(
      serializeMessage({
        jsonrpc: "2.0",
        method: "notifications/message",
        params: { level: "error", logger: "aido", data: reason },
      }),
    );
    overflow = session.link.client
      .call("session.refused", { session_id: session.link.session.session_id, tool: "(message)", reason })
      .catch((err) => opts.log(`recording the refusal of an oversized message: ${errorMessage(err)}`));
  };
  const s = session.link.session;
  opts.log(
    `MCP session ${s.session_id} (agent ${s.agent_id}${s.workspace ? `, workspace ${s.workspace}` : ""}) serving on stdio`,
  );
  const why = await Promise.race([clientLeft, session.bridge.ended.then(() => "daemon" as const)]);
  await overflow;
  await session.close();
  if (why === "daemon") opts.log("the Aido daemon went away: the MCP session ended");
  return why === "daemon" ? 1 : 0;
}
