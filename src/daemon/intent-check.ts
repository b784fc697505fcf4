// daemon/intent-check.ts — intent.check: run the active intent's `check` command as the
// agent the caller names, by the same path as tool.invoke (an `exec` with cwd /workspace
// through the gate: that agent's grants, the policy and approvals apply, and the call
// shows up on the event stream), and record what it found on the intent. The daemon never
// runs a check by itself: the caller names the agent, which must be the agent of a
// session bound to the intent's project folder (its /workspace is that folder), so that
// what the check found describes the folder the intent is about.
// A refusal by the gate is the check's result (`denied`: stage, code, reason; the gate has
// audited it as tool.denied), and so is a command that was allowed but could not run
// (`error`). A call that ended unanswered (its client left, or the approval it waited for
// was closed because its agent stopped) records nothing.

import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { GateDenied } from "../gate/invoke.js";
import type { ToolResult } from "../gate/types.js";
import type { Intent, IntentCheckResult } from "../intent/store.js";
import type { Runtime } from "../kernel/runtime.js";
import { invokeToolWithEvents } from "./tool-invoke.js";

/** Characters of the command's output kept with the result (its end: where failures show). */
const CHECK_OUTPUT_TAIL = 4000;

/** Failures of an allowed check that are its result, not the method's error. */
const RECORDED = new Set<string>([
  ErrorCode.toolFailed,
  ErrorCode.sandboxFailed,
  ErrorCode.sandboxUnavailable,
  ErrorCode.invalidInput,
  ErrorCode.quotaExceeded,
]);

interface ExecData {
  exit_code: number | null;
  timed_out?: boolean;
}

function tail(text: string): string {
  return text.length > CHECK_OUTPUT_TAIL ? `…${text.slice(-CHECK_OUTPUT_TAIL)}` : text;
}

/** Run the check of the workspace's active intent as `agentId`; the recorded result. */
export async function checkIntent(
  rt: Runtime,
  p: { workspace: string; agent_id: string },
  signal: AbortSignal,
  requestId?: string,
): Promise<{ intent: Intent; result: IntentCheckResult }> {
  const intent = rt.intents.requireActive(p.workspace);
  if (intent.check === null) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `intent ${intent.id} for workspace ${intent.workspace} has no check command (set one with intent.set check)`,
      { field: "workspace", intent_id: intent.id },
    );
  }
  const agent = rt.agentStatus(p.agent_id); // not_found before anything runs
  // The check describes the folder it ran in: only an agent whose /workspace is the
  // intent's project folder (a session bound to it) may record a result on the intent.
  const bound = rt.sessions.ofAgent(p.agent_id)?.workspace ?? null;
  if (bound !== intent.workspace) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `agent ${p.agent_id}'s /workspace is ${bound === null ? "not a project folder" : bound}, not ${intent.workspace}: an intent's check runs as the agent of a session bound to its folder (session.open workspace), or its result would describe another folder`,
      { field: "agent_id", intent_id: intent.id },
    );
  }
  const command = intent.check;
  const base = { command, agent_id: p.agent_id };
  let result: IntentCheckResult;
  try {
    const r: ToolResult = await invokeToolWithEvents(
      rt,
      p.agent_id,
      "exec",
      { command, cwd: "/workspace" },
      signal,
      requestId,
    );
    const data = (r.data ?? {}) as ExecData;
    const exit = typeof data.exit_code === "number" ? data.exit_code : null;
    result = {
      ...base,
      met: exit === 0 && data.timed_out !== true,
      exit_code: exit,
      output: tail(r.output),
      at: new Date().toISOString(),
      ...(data.timed_out === true ? { timed_out: true } : {}),
    };
  } catch (e) {
    const at = new Date().toISOString();
    // Ended, not answered: the client left, or the approval it waited for was closed
    // unanswered (its agent stopped, the daemon is closing). Nothing to record.
    if (signal.aborted || (e instanceof AidoError && e.code === ErrorCode.approvalExpired)) throw e;
    if (e instanceof GateDenied) {
      const denied = { stage: e.stage, code: e.code, reason: e.message };
      result = { ...base, met: false, exit_code: null, output: `refused: ${e.message}`, at, denied };
    } else if (e instanceof AidoError && RECORDED.has(e.code)) {
      result = { ...base, met: false, exit_code: null, output: errorMessage(e), at, error: errorMessage(e) };
    } else throw e;
  }
  return { intent: rt.intents.recordCheck(intent, result, agent.goal_id), result };
}
