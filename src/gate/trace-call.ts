// gate/trace-call.ts — a gate call as an execute_tool span (telemetry/): opened before the
// first check, annotated by the stages as they decide (gate/invoke.ts sets the approval,
// the verdict, a refusal's stage and reason, the snapshot), and ended with how the call
// ended: the exit code of an exec, error.type for a denial or a failed tool. Tool
// arguments and results go on the span only with the content opt-in, and so does a tool
// name no known tool has (telemetry/attributes.ts tracedToolName).

import { AidoError, ErrorCode } from "../errors.js";
import { Attr, toolType, tracedId, tracedToolName } from "../telemetry/attributes.js";
import type { Tracer, TraceSpan } from "../telemetry/tracer.js";
import type { Principal, ToolCall } from "./invoke.js";
import type { ToolResult } from "./types.js";

export async function traceCall(
  tracer: Tracer,
  principal: Pick<Principal, "agentId" | "goalId">,
  call: ToolCall,
  known: boolean,
  run: (span: TraceSpan) => Promise<ToolResult>,
): Promise<ToolResult> {
  const name = tracedToolName(tracer.content, call.name, known);
  const span = tracer.startTool(call.trace, name, {
    [Attr.toolName]: name,
    [Attr.toolCallId]: call.callId === undefined ? undefined : tracedId(tracer.content, call.callId),
    [Attr.toolType]: toolType(name),
    [Attr.agentId]: principal.agentId,
    [Attr.conversationId]: principal.goalId,
    [Attr.toolArguments]: tracer.content?.arguments(call.input),
  });
  try {
    const r = await run(span);
    const exit = (r.data as { exit_code?: unknown } | undefined)?.exit_code;
    span.set({
      [Attr.exitCode]: typeof exit === "number" ? exit : undefined,
      [Attr.toolResult]: tracer.content?.text(r.output),
    });
    span.end(r.isError ? ErrorCode.toolFailed : undefined);
    return r;
  } catch (e) {
    span.end(e instanceof AidoError ? e.code : ErrorCode.internal);
    throw e;
  }
}
