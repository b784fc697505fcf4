// gate/stage-failure.ts — the audit entry of a call that ended before tool.invoked because a
// stage of the gate failed rather than decided: the goal's container could not be started or
// a path not resolved in it, an external MCP server could not be listed, the approval store
// or the policy threw, a tool's needs or approval scope threw on an input it did not expect.
// Before, such a call ended with an error the caller saw and nothing in the log: a refusal is
// audited as tool.denied, a run as tool.invoked and its end, but a failure in between was
// neither. It is recorded as tool.errored (not tool.denied: nothing refused it, the runtime
// failed), once, with the stage the gate was at; the caller gets the same error as before.
// Watchers see it too: the caller publishes tool.errored on the event bus (stageFailureOf).
// The error's text comes from anywhere (an engine's message, a server's, a path a model chose):
// it is made inert and cut to AUDIT_TEXT_MAX characters before it reaches the log
// (security/audit-text.ts, as a refusal's reason and a run's failure are).

import { AidoError } from "../errors.js";
import type { AuditLog } from "../security/audit.js";
import type { GateStage } from "../security/audit-events.js";
import { auditErrorText, auditText } from "../security/audit-text.js";

/**
 * Errors the gate audited as tool.errored: for each call it ended (the ToolCall object its caller
 * handed to Gate.invoke), the stage.
 * Per call, because one error object can end several: a shared rejected promise (a goal's
 * container acquisition, an MCP server's connection) throws the same error to each call that
 * waited on it, one at its needs stage (not run), another in its run (tool.invoked, tool.failed).
 */
const failedAt = new WeakMap<object, WeakMap<object, GateStage>>();

/**
 * The stage at which the gate audited `error` as tool.errored for `call` (the object its caller
 * handed to Gate.invoke), if it did: the call did not run, and its caller publishes tool.errored
 * rather than tool.completed. The error itself is the stage's, unchanged (a thrown value that is not an object is not marked).
 */
export function stageFailureOf(error: unknown, call: object): GateStage | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  return failedAt.get(error)?.get(call);
}

/**
 * Audit the end of a call whose stage `stage` threw `error` before the call was decided. Throws
 * audit_failed if the entry cannot be written (fail closed, as a denial does).
 */
export function auditStageFailure(
  audit: AuditLog,
  ids: { goalId: string; agentId: string },
  call: { name: string; callId?: string },
  stage: GateStage,
  error: unknown,
  /** The call object the caller handed to Gate.invoke: what stageFailureOf is asked with. */
  asked: object = call,
): void {
  // The caller publishes tool.errored (kernel/events.ts) for watchers: it learns the stage here.
  if (typeof error === "object" && error !== null) {
    const calls = failedAt.get(error) ?? new WeakMap<object, GateStage>();
    calls.set(asked, stage);
    failedAt.set(error, calls);
  }
  audit.record(
    "tool.errored",
    {
      tool: auditText(call.name),
      stage,
      error: auditErrorText(error),
      ...(error instanceof AidoError ? { code: error.code } : {}),
      ...(call.callId ? { call_id: call.callId } : {}),
    },
    ids,
  );
}
