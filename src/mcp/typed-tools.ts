// mcp/typed-tools.ts — every gated tool the session's agent may call, as an MCP tool of
// the same name. The list and the input schemas come from the daemon (tool.list: the JSON
// Schema the gate's own zod definitions generate), filtered to the tools the session's
// grants allow (session.open's `tools`). Spawn tools are not exposed: an MCP session is
// not an orchestrator of children of its own (aido_submit hands work to the swarm).
// Each call is the daemon's tool.invoke with the session's agent id — the one gate —
// with a heartbeat of progress while it runs and approvals bridged to the client; a call
// the client cancels while it waits for a human is denied, one it cancels while it runs is
// stopped (its own daemon connection closes: call-connections.ts).

import type { ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import type { AidoClient } from "../client/client.js";
import type { SessionInfo } from "../client/types.js";
import {
  ANY_TOOL,
  approvalForm,
  decisionOf,
  formWithheld,
  respond,
  type Started,
} from "./approvals-bridge.js";
import { type CallContext, errorResult, type McpTool, textResult } from "./tool-types.js";

const SPAWN_TOOLS = new Set(["spawn_agent", "spawn_agents", "spawn_worlds", "adopt_world"]);
const READ_ONLY = new Set([
  "file_read",
  "file_read_many",
  "file_list",
  "grep",
  "snapshot_list",
  "memory_query",
  "skill_read",
]);
const DESTRUCTIVE = new Set(["file_write", "file_edit", "exec", "snapshot_restore", "memory_delete"]);
const OPEN_WORLD = new Set(["web_fetch", "exec"]);
/** A call runs this long at most from the MCP side; the daemon's own timeouts end it first. */
export const CALL_TIMEOUT_MS = 24 * 3600 * 1000;
/** Progress heartbeat while a call runs. */
export const HEARTBEAT_MS = 1000;

export function annotationsOf(name: string): ToolAnnotations {
  const external = name.startsWith("mcp__");
  return {
    readOnlyHint: READ_ONLY.has(name),
    destructiveHint: DESTRUCTIVE.has(name) || external,
    idempotentHint: READ_ONLY.has(name),
    openWorldHint: OPEN_WORLD.has(name) || external,
  };
}

/** The typed actions of this session. */
export async function typedTools(client: AidoClient, session: SessionInfo): Promise<McpTool[]> {
  const allowed = new Set(session.tools);
  const { tools } = await client.call("tool.list", {});
  return tools
    .filter((t) => allowed.has(t.name) && !SPAWN_TOOLS.has(t.name))
    .map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: t.input_schema as Record<string, unknown>,
      annotations: annotationsOf(t.name),
      call: (input, ctx) => invokeGated(t.name, input, ctx),
    }));
}

/**
 * tool.invoke on a daemon connection of the call's own (call-connections.ts), closed when
 * the client cancels the call: the daemon ends a call whose connection closed (its command
 * is stopped). A request the call still waits for is denied first (withHuman), so it is
 * recorded as a denial. The call is among those that may own an approval request only
 * once it has its connection: one still waiting for a connection has asked nothing.
 */
async function invokeGated(tool: string, input: Record<string, unknown>, ctx: CallContext) {
  try {
    const r = await ctx.calls.run(ctx.signal, (own) =>
      withHuman(tool, ctx, (onStarted) =>
        own.call(
          "tool.invoke",
          { agent_id: ctx.session.agent_id, tool, input },
          { timeoutMs: CALL_TIMEOUT_MS, onStarted },
        ),
      ),
    );
    return textResult(r.output, r.is_error);
  } catch (e) {
    return errorResult(e);
  }
}

/**
 * Run a daemon call during which the session's agent may wait for a human: `fn` passes the
 * id the daemon gives the call to `started` (CallOptions.onStarted), and the requests naming
 * it are this call's (approvals-bridge.ts); `tool` is what it may ask about (`ANY_TOOL`:
 * any tool one after another, a plan's steps, an intent's check). Each
 * request is put to the client through elicitation, or announced as waiting for
 * `aido approvals`; a heartbeat of progress runs meanwhile; when the client cancels the
 * call, an approval it still waits for is denied, so nobody approves later a call whose
 * result no one will read.
 */
export async function withHuman<T>(
  tool: string,
  ctx: CallContext,
  fn: (started: Started) => Promise<T>,
): Promise<T> {
  const started = Date.now();
  /** Set while the call waits for a human at `aido approvals` (no elicitation). */
  let waiting: string | undefined;
  const beat = setInterval(() => {
    const s = Math.round((Date.now() - started) / 1000);
    ctx.progress(
      waiting ? `${waiting} (${s} s)` : `${tool === ANY_TOOL ? "the call" : tool} running for ${s} s`,
    );
  }, HEARTBEAT_MS);
  let pending: string | undefined;
  const cancelled = () => {
    // The call's connection closes once this denial is answered (call-connections.ts).
    if (pending !== undefined)
      ctx.calls.holdClose(ctx.signal, respond(ctx.link.client, pending, "deny", ctx.log));
  };
  ctx.signal.addEventListener("abort", cancelled, { once: true });
  try {
    return await ctx.bridge.during((ask) => {
      pending = ask.approval_id;
      if (ctx.signal.aborted) return cancelled();
      const withheld = ctx.elicit ? formWithheld(ask) : undefined;
      if (withheld !== undefined) ctx.log(`approval ${ask.approval_id} is not asked in a form: ${withheld}`);
      if (ctx.elicit && withheld === undefined) {
        const elicit = ctx.elicit;
        void elicit(approvalForm(ask)).then(
          (res) => respond(ctx.link.client, ask.approval_id, decisionOf(res), ctx.log),
          (e) =>
            ctx.log(
              `elicitation for approval ${ask.approval_id} failed: ${String(e)}; it waits for \`aido approvals\``,
            ),
        );
        return;
      }
      const carries = ask.carries_secrets.length > 0 ? `; it carries ${ask.carries_secrets.join("; ")}` : "";
      waiting = `${ask.tool} waits for a human: answer approval ${ask.approval_id} with \`aido approvals\` (${withheld ?? ask.summary}${carries})`;
      ctx.notice(waiting);
      ctx.progress(waiting);
    }, fn);
  } finally {
    clearInterval(beat);
    ctx.signal.removeEventListener("abort", cancelled);
  }
}
