// mcp/server.ts — one MCP server per MCP session, over one daemon session. Built on the
// SDK's low-level `Server`, not `McpServer`: the typed actions' input schemas arrive from
// the daemon as JSON Schema (tool.list, generated from the gate's zod definitions) and
// are served verbatim — McpServer wants zod shapes to register and would validate input
// itself, where the gate must stay the one judge of a tool's input. Orchestrator tools
// parse their own strict zod inputs (orchestrator-tools.ts).
//
// tools/list: the session's typed actions, then the orchestrator tools. tools/call: the
// tool's call with a context that can send progress (when the client sent a
// progressToken), log notices, and elicit (when the client declared elicitation).

import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ErrorCode as McpErrorCode,
} from "@modelcontextprotocol/sdk/types.js";
import type { Config } from "../config.js";
import { argumentDepthRefusal } from "../gate/argument-depth.js";
import type { ApprovalsBridge } from "./approvals-bridge.js";
import type { CallConnections } from "./call-connections.js";
import type { DaemonLink } from "./daemon-link.js";
import { orchestratorTools } from "./orchestrator-tools.js";
import { type CallContext, type McpTool, textResult } from "./tool-types.js";
import { typedTools } from "./typed-tools.js";

export interface ServerOptions {
  config: Config;
  version: string;
  /** `--allow-approve`: aido_approve may answer approvals of goals this session submitted. */
  allowApprove: boolean;
  log(message: string): void;
}

export async function createMcpServer(
  link: DaemonLink,
  bridge: ApprovalsBridge,
  calls: CallConnections,
  opts: ServerOptions,
): Promise<Server> {
  const tools: McpTool[] = [
    ...(await typedTools(link.client, link.session)),
    ...orchestratorTools(opts.config, opts.version),
  ];
  const byName = new Map(tools.map((t) => [t.name, t]));
  const submitted = new Set<string>();
  const plans = new Set<string>();
  const server = new Server(
    { name: "aido", version: opts.version },
    {
      capabilities: { tools: {}, logging: {} },
      instructions:
        "Aido guards this session: every tool call passes its gate (capabilities, policy, budget, approvals), runs in a sandbox and is audited. A refused call comes back as an error result naming the stage and the reason; adapt rather than retry it unchanged.",
    },
  );

  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: tools.map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: t.inputSchema as { type: "object" },
      annotations: t.annotations,
    })),
  }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const t = byName.get(req.params.name);
    if (!t) {
      // A tool this session was not given (aido_approve without --allow-approve, say) is a
      // refusal like any other: audited as the session's, then a protocol error.
      const reason = `unknown tool: tools/list names the tools of this session`;
      await link.client
        .call("session.refused", {
          session_id: link.session.session_id,
          tool: req.params.name.slice(0, 200),
          reason,
        })
        .catch((e) => opts.log(`recording a refusal of an unknown tool: ${String(e)}`));
      throw new McpError(
        McpErrorCode.InvalidParams,
        `unknown tool "${req.params.name}": tools/list names the tools of this session`,
      );
    }
    const token = req.params._meta?.progressToken;
    let progress = 0;
    const elicitation = server.getClientCapabilities()?.elicitation !== undefined;
    const ctx: CallContext = {
      link,
      session: link.session,
      bridge,
      calls,
      submitted,
      plans,
      allowApprove: opts.allowApprove,
      signal: extra.signal,
      log: opts.log,
      progress(message) {
        if (token === undefined) return;
        progress += 1;
        void extra
          .sendNotification({
            method: "notifications/progress",
            params: { progressToken: token, progress, message },
          })
          .catch(() => {});
      },
      notice(message) {
        void extra
          .sendNotification({
            method: "notifications/message",
            params: { level: "warning", logger: "aido", data: message },
          })
          .catch(() => {});
      },
      ...(elicitation
        ? {
            elicit: (params) =>
              server.elicitInput(params as Parameters<Server["elicitInput"]>[0], {
                relatedRequestId: extra.requestId,
                timeout: opts.config.approvals.timeoutMs,
                signal: extra.signal,
              }),
          }
        : {}),
    };
    const args = (req.params.arguments ?? {}) as Record<string, unknown>;
    // Arguments nested past the gate's limit are refused here, with the gate's reason: the
    // daemon link encodes a request recursively, and a value tens of thousands of levels
    // deep would overflow it rather than reach the gate. Audited as the session's refusal.
    // Arguments the daemon's request line cannot carry are refused here too: the daemon drops
    // such a line with an error that names no request, so the call would wait for ever.
    const refusal = argumentDepthRefusal(t.name, args) ?? argumentSizeRefusal(args, link.maxLineBytes);
    if (refusal !== undefined) {
      await link.client
        .call("session.refused", { session_id: link.session.session_id, tool: t.name, reason: refusal })
        .catch((e) => opts.log(`recording a refusal of ${t.name}: ${String(e)}`));
      return textResult(`refused: ${refusal}`, true);
    }
    return t.call(args, ctx);
  });
  return server;
}

/** Room a daemon request needs around a call's arguments (method, ids, tool name). */
const ENVELOPE_BYTES = 1024;

/** Why `args` cannot travel to the daemon in one request line of `maxLineBytes`; undefined when they can. */
export function argumentSizeRefusal(args: Record<string, unknown>, maxLineBytes: number): string | undefined {
  const bytes = Buffer.byteLength(JSON.stringify(args));
  const room = maxLineBytes - ENVELOPE_BYTES;
  if (bytes <= room) return undefined;
  return `arguments of ${bytes} bytes: a request to the daemon takes at most ${room} (daemon.max_line_bytes ${maxLineBytes}, less ${ENVELOPE_BYTES} for the request around them)`;
}
