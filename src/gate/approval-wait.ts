// gate/approval-wait.ts — stage 6 of a real call (gate/invoke.ts): the wait for a human. The
// approval decision itself (does the call need one, what would an answer cover) is judged with
// the other deciding stages (gate/judge.ts), shared with simulations; waiting is only a real
// call's. A standing decision (Allow Session, Allow Always) covers the call without asking.
// Every way the wait ends without an allow is a refusal at stage approval, through `deny`.

import { ErrorCode } from "../errors.js";
import { goalOnlyProject, type ProjectBinding } from "../security/approval-project.js";
import { Attr } from "../telemetry/attributes.js";
import type { TraceSpan } from "../telemetry/tracer.js";
import type { GateDeps, Principal, ToolCall } from "./invoke.js";
import type { Deny, Judged } from "./judge.js";

/** What a human's allow (or a standing decision) lets the call do beyond its grants. */
export interface ApprovalPassed {
  /** The confirm rules a human allows this call past: only their paths open to its Landlock domain and grep's view. */
  confirmed: Set<string>;
  /** Hosts a human approved for this call: a redirect hop elsewhere is not what they saw. */
  approvedHosts?: ReadonlySet<string>;
}

/** Stage 6: wait for a human unless nothing needs one or a standing decision covers the call. */
export async function awaitApproval(
  deps: GateDeps,
  principal: Principal,
  call: ToolCall,
  judged: Judged,
  span: TraceSpan | undefined,
  deny: Deny,
): Promise<ApprovalPassed> {
  const { tool, needs, confirmRule, approval } = judged;
  const confirmed = new Set<string>(confirmRule?.rules ?? []);
  if (!approval) return { confirmed };
  const approvedHosts = new Set(
    needs.flatMap((n) => (n.kind === "network" ? [`${n.host.toLowerCase()}:${n.port}`] : [])),
  );
  const { scope } = approval;
  // A rehearsal asks nobody (kernel/shadow.ts judges a step allowed before it runs it;
  // should it need a human by now, a link swapped by a process an earlier step left
  // behind, it is refused rather than put to one). A standing decision still covers it.
  const project = projectOfCall(principal);
  const who = { agentId: principal.agentId, identity: principal.identity, project, tool: tool.name, scope };
  if (principal.scratch && !deps.approvals.covering(who)) {
    return deny(
      ErrorCode.approvalDenied,
      "approval",
      "a shadow simulation asks no human: this step needs an approval that no standing decision covers",
    );
  }
  const outcome = await deps.approvals.authorize({
    goalId: principal.goalId,
    agentId: principal.agentId,
    identity: principal.identity,
    project,
    tool: tool.name,
    // What the human reads: the call with the goal's secrets blanked (judge.ts); it runs with its own.
    input: approval.input,
    summary: approval.summary,
    carriesSecrets: approval.carriesSecrets,
    scope,
    askedBy: approval.askedBy,
    timeoutMs: deps.approvalTimeoutMs,
    ...(call.callId ? { callId: call.callId } : {}),
    ...(call.signal ? { signal: call.signal } : {}),
    ...(call.requestId ? { requestId: call.requestId } : {}),
  });
  span?.set({
    [Attr.approvalDecision]: outcome.decision,
    [Attr.approvalVia]: outcome.via,
    [Attr.approvalId]: outcome.approvalId ?? undefined,
  });
  if (!outcome.allowed) {
    const refusal = APPROVAL_REFUSALS[outcome.decision as keyof typeof APPROVAL_REFUSALS];
    const why = outcome.reason ? `${refusal.why}: ${outcome.reason}` : refusal.why;
    return deny(refusal.code, "approval", `${why} (approval ${outcome.approvalId})`, {
      approval_id: outcome.approvalId,
    });
  }
  // The human answered about what the call's words led to when it asked. Should a word
  // lead elsewhere now (a link swapped in while the request waited), the answer was
  // about other files: refused, and the next call asks (or matches) afresh.
  if (outcome.via === "answer" && tool.approvalScope && (await approval.scopeOf()).key !== scope.key) {
    return deny(
      ErrorCode.approvalDenied,
      "approval",
      `the files the call names changed while it waited for approval ${outcome.approvalId}; the answer was about the files as they were, so the call did not run`,
      { approval_id: outcome.approvalId },
    );
  }
  return { confirmed, approvedHosts };
}

/** The project a call's standing answers bind to: the principal's, else its goal alone. */
export function projectOfCall(principal: Pick<Principal, "goalId" | "project">): ProjectBinding {
  return principal.project ?? goalOnlyProject(principal.goalId);
}

/** Why a call that was not allowed at the approval stage is refused. */
const APPROVAL_REFUSALS = {
  deny: { code: ErrorCode.approvalDenied, why: "a human denied the call" },
  timed_out: { code: ErrorCode.approvalTimeout, why: "approval timed out" },
  expired: { code: ErrorCode.approvalExpired, why: "the approval was closed unanswered" },
} as const;
