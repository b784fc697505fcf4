// mcp/tool-types.ts — what an MCP tool of `aido mcp serve` is: a name, a description, a
// JSON Schema for its input, honest annotations, and a call. Typed actions
// (typed-tools.ts) and orchestrator tools (orchestrator-tools.ts) both take this shape,
// so the server (server.ts) lists and dispatches them in one way. A refusal by the
// daemon becomes a tool result with isError naming the stage and the reason, never a
// protocol error: the client's model reads it and can recover.

import type { CallToolResult, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { AidoRpcError } from "../client/client.js";
import type { SessionInfo } from "../client/types.js";
import { errorMessage } from "../errors.js";
import type { ApprovalsBridge } from "./approvals-bridge.js";
import type { CallConnections } from "./call-connections.js";
import type { DaemonLink } from "./daemon-link.js";

/** What a call may do besides talk to the daemon: report progress, ask the client. */
export interface CallContext {
  link: DaemonLink;
  session: SessionInfo;
  bridge: ApprovalsBridge;
  /** The session's per-call daemon connections: a call run on one is stopped when the client cancels it. */
  calls: CallConnections;
  /** Send a progress notification (no-op when the client sent no progressToken). */
  progress(message: string): void;
  /** Send a log notification to the client. */
  notice(message: string): void;
  /** Ask the client through elicitation; undefined when it did not declare the capability. */
  elicit?: (params: {
    mode: "form";
    message: string;
    requestedSchema: Record<string, unknown>;
  }) => Promise<{ action: string; content?: Record<string, unknown> }>;
  /** Goals this session submitted (aido_submit): the only ones aido_approve may answer for. */
  submitted: Set<string>;
  /** Plans this session recorded (aido_plan): the only ones aido_plan_execute runs. */
  plans: Set<string>;
  /** `--allow-approve` was given. */
  allowApprove: boolean;
  signal: AbortSignal;
  log(message: string): void;
}

export interface McpTool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
  annotations: ToolAnnotations;
  call(input: Record<string, unknown>, ctx: CallContext): Promise<CallToolResult>;
}

export function textResult(text: string, isError = false): CallToolResult {
  return { content: [{ type: "text", text }], ...(isError ? { isError: true } : {}) };
}

/** A daemon refusal or failure as the client's model reads it. */
export function errorResult(e: unknown): CallToolResult {
  if (e instanceof AidoRpcError) {
    const stage = typeof e.details.stage === "string" ? e.details.stage : undefined;
    const where = stage ? `denied at the ${stage} stage` : "refused";
    return textResult(`${where} (${e.code}): ${e.message}`, true);
  }
  return textResult(`failed: ${errorMessage(e)}`, true);
}
