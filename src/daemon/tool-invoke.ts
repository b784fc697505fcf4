// daemon/tool-invoke.ts — tool.invoke as watchers see it. Runtime.invokeTool runs the call
// through the gate (schema, capability, policy, budget, approval, audit) but, unlike the
// agent loop, announces nothing on the event bus; this adapter emits the same
// tool.called / tool.completed / tool.denied / tool.errored events the loop does, so a socket call shows
// up in `events.subscribe` and in the daemon's log like any other. (The kernel should
// emit these in Runtime.invokeTool itself; this file then goes away.)

import { randomBytes } from "node:crypto";
import { AidoError } from "../errors.js";
import { GateDenied, type ToolCall } from "../gate/invoke.js";
import { stageFailureOf } from "../gate/stage-failure.js";
import type { ToolResult } from "../gate/types.js";
import type { Runtime } from "../kernel/runtime.js";
import { auditErrorText } from "../security/audit-text.js";

export async function invokeToolWithEvents(
  rt: Runtime,
  agentId: string,
  tool: string,
  input: unknown,
  signal?: AbortSignal,
  requestId?: string,
  beforeRun?: ToolCall["beforeRun"],
): Promise<ToolResult> {
  const goalId = rt.registry.goalOf(agentId) ?? null;
  const ev = { agentId, tool, callId: `rpc_${randomBytes(6).toString("hex")}` };
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  if (goalId !== null) rt.events.emit("tool.called", goalId, ev);
  // The audit entries name the call as the events do, and the gate marks this very object
  // should a stage fail (stageFailureOf): another call's failure with the same error is not ours.
  const call: ToolCall = {
    name: tool,
    input,
    callId: ev.callId,
    ...(signal ? { signal } : {}),
    ...(requestId ? { requestId } : {}),
    ...(beforeRun ? { beforeRun } : {}),
  };
  try {
    const r = await rt.invokeToolCall(agentId, call);
    rt.events.emit("tool.completed", goalId, { ...ev, isError: r.isError === true, ms: ms() });
    return r;
  } catch (e) {
    if (goalId === null) throw e;
    const stage = stageFailureOf(e, call);
    if (e instanceof GateDenied) {
      rt.events.emit("tool.denied", goalId, { ...ev, code: e.code, stage: e.stage, reason: e.message });
    } else if (stage !== undefined) {
      rt.events.emit("tool.errored", goalId, {
        ...ev,
        stage,
        ...(e instanceof AidoError ? { code: e.code } : {}),
        error: auditErrorText(e),
      });
    } else {
      rt.events.emit("tool.completed", goalId, { ...ev, isError: true, ms: ms() });
    }
    throw e;
  }
}
