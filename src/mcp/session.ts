// mcp/session.ts — one MCP session end to end: a daemon connection of its own with the
// session opened on it (daemon-link.ts), the approvals bridge on the event stream, the
// per-call connections its cancellable calls run on (call-connections.ts), and the MCP
// server over them (server.ts). close() ends them all; the stdio and HTTP
// transports each hold one of these per MCP session.

import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { AidoClient } from "../client/client.js";
import type { Config } from "../config.js";
import { ApprovalsBridge } from "./approvals-bridge.js";
import { CallConnections } from "./call-connections.js";
import { type DaemonLink, openSession, type SessionOptions } from "./daemon-link.js";
import { createMcpServer } from "./server.js";

export interface McpSession {
  server: Server;
  link: DaemonLink;
  bridge: ApprovalsBridge;
  close(): Promise<void>;
}

export interface McpSessionOptions extends SessionOptions {
  config: Config;
  version: string;
  allowApprove: boolean;
  log(message: string): void;
}

/** Open the daemon session on `client` (which it then owns) and build its MCP server. */
export async function openMcpSession(client: AidoClient, opts: McpSessionOptions): Promise<McpSession> {
  const link = await openSession(client, { ...opts, maxLineBytes: opts.config.daemon.maxLineBytes });
  const calls = new CallConnections(
    opts.config.socketPath,
    link.maxLineBytes,
    opts.config.daemon.mcpMaxQueuedCalls,
    (reason) =>
      void link.client
        .call("session.refused", { session_id: link.session.session_id, tool: "(call queue)", reason })
        .catch((e) => opts.log(`recording a refused call: ${String(e)}`)),
  );
  let bridge: ApprovalsBridge;
  let server: Server;
  try {
    // A request's stored input (secrets blanked): the form shows it whole when the summary cut it,
    // and the text of the code it runs.
    bridge = await ApprovalsBridge.start(
      opts.config.socketPath,
      link.session.agent_id,
      opts.log,
      async (id) => {
        const { approvals } = await link.client.call("approval.list", {});
        const a = approvals.find((r) => r.id === id);
        return { input: a?.input, code: Array.isArray(a?.code) ? a.code : [] };
      },
    );
  } catch (e) {
    await link.close();
    throw e;
  }
  try {
    server = await createMcpServer(link, bridge, calls, opts);
  } catch (e) {
    bridge.close();
    await link.close();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    server,
    link,
    bridge,
    close() {
      closing ??= (async () => {
        bridge.close();
        calls.close();
        await link.close();
        await server.close().catch(() => {});
      })();
      return closing;
    },
  };
}
