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
    const tooDeep = argumentDepthRefusal(t.name, args);
    if (tooDeep !== undefined) {
      await link.client
        .call("session.refused", { session_id: link.session.session_id, tool: t.name, reason: tooDeep })
        .catch((e) => opts.log(`recording a refusal of ${t.name}: ${String(e)}`));
      return textResult(`refused: ${tooDeep}`, true);
    }
    return t.call(args, ctx);
  });
  return server;
}
