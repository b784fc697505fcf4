// gate/cancel.ts — a call whose caller has gone does not run. Its signal aborts when the agent
// stops (agent.stop, its goal cancelled or lost to another node), when the socket client that
// made a tool.invoke leaves, or when an MCP client cancels: nobody is there to take the result.
// Before, only the approval wait and the cluster hold looked at the signal: a call that needed
// no approval (or whose stage did not notice the abort) was audited as tool.invoked and ran
// (a file_write landed after its agent had stopped). The gate now looks after each of its
// awaits, and last with nothing awaited between the look and tool.invoked, so an abort cannot
// slip in between: a call cancelled before tool.invoked is refused as tool.denied, code
// cancelled, with the stage it was at, once; so is a call whose stage failed after its caller
// left (its agent stopped, its goal's sandbox removed under the stage): the caller's leaving
// is why it did not run, and the stage's error is kept in the reason. Once tool.invoked is written the run is the
// tool's: it honours the signal where it waits (tools/files.ts, tools/exec.ts) and its end is
// tool.completed or tool.failed. The gate's snapshot before a mutation and the call's beforeRun
// hook (a plan's frame) come after tool.invoked and may take seconds: a caller gone by their end
// is looked at once more right before the tool starts (failedIfCancelled), and the call ends as
// tool.failed, code cancelled, the tool not run (before, a host-side tool — adopt_world,
// spawn_* — ran after its caller had left).

import { AidoError, ErrorCode, errorMessage, isAidoError } from "../errors.js";
import type { DenyStage } from "../security/audit-events.js";
import { auditErrorText } from "../security/audit-text.js";
import type { Deny } from "./judge.js";

/**
 * Refuse the call (through `deny`: audited, thrown) if its caller has gone. `failure`: what the
 * stage threw meanwhile (the goal's sandbox removed as its agent stopped), kept in the reason.
 */
export function refuseIfCancelled(
  signal: AbortSignal | undefined,
  stage: DenyStage,
  deny: Deny,
  failure?: unknown,
): void {
  if (!signal?.aborted) return;
  const then =
    failure === undefined || isAidoError(failure, ErrorCode.cancelled)
      ? ""
      : `; the ${stage} stage failed meanwhile: ${auditErrorText(failure)}`;
  deny(
    ErrorCode.cancelled,
    stage,
    `the call was cancelled before it ran (${whyAborted(signal)}); it did not run${then}`,
  );
}

/**
 * Thrown (inside the run, after tool.invoked: audited as tool.failed) when the caller left while
 * the gate's snapshot or the call's beforeRun hook ran, before the tool started.
 */
export function failedIfCancelled(signal: AbortSignal | undefined, tool: string): void {
  if (!signal?.aborted) return;
  throw new AidoError(
    ErrorCode.cancelled,
    `${tool} was cancelled before it ran (${whyAborted(signal)}), once allowed and invoked; it did not run`,
    { tool },
  );
}

function whyAborted(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r === undefined) return "aborted";
  try {
    return String(errorMessage(r));
  } catch {
    return "aborted";
  }
}
