// security/approval-standing.ts — the decisions a human already made that cover later
// calls, so the gate does not ask again: Allow Session (this agent, tool and scope, until
// the agent stops; kept in memory, since the session ends with the process anyway) and
// Allow Always (a signed grant for the agent's identity, the project of its goal, tool and
// scope, until it expires or is revoked: approval-grants.ts). A reuse is audited as approval.reused with the
// decision it used. Asking, waiting and answering are approvals.ts's.

import type { ApprovalGrants } from "./approval-grants.js";
import type { ProjectBinding } from "./approval-project.js";
import type { ApprovalScope } from "./approval-scope.js";
import type { ApprovalRecord } from "./approval-store.js";
import type { AuditLog } from "./audit.js";

/** The call a standing decision may cover. */
export interface StandingCall {
  goalId: string | null;
  agentId: string;
  identity: string;
  /** The project of the call's goal (approval-project.ts): an Allow Always grant covers only its own. */
  project: ProjectBinding;
  tool: string;
  scope: ApprovalScope;
  /** The model's tool_use id, recorded with the reuse. */
  callId?: string;
}

/** The decision reused for a call: an earlier request's Allow Session, or an Allow Always grant. */
export interface StandingDecision {
  via: "allow_session" | "allow_always";
  /** The request whose answer is reused (Allow Session), or that made the grant. */
  approvalId: string | null;
  grantId: string | null;
  /** Who made the grant (Allow Always). */
  by: string | null;
}

export class StandingDecisions {
  /** agent \0 tool \0 scope -> the request whose Allow Session answer covers it. */
  private readonly sessions = new Map<string, string>();

  constructor(
    private readonly audit: AuditLog,
    private readonly grants: ApprovalGrants,
  ) {}

  /** A standing decision covering the call, audited as approval.reused; undefined when none. */
  reuse(call: StandingCall): StandingDecision | undefined {
    const found = this.find(call);
    if (found === undefined) return undefined;
    const base = {
      tool: call.tool,
      scope_key: call.scope.key,
      ...(call.callId ? { call_id: call.callId } : {}),
    };
    const ids = { goalId: call.goalId, agentId: call.agentId };
    if (found.via === "allow_session")
      this.audit.record(
        "approval.reused",
        { ...base, via: "allow_session", approval_id: found.approvalId! },
        ids,
      );
    else
      this.audit.record("approval.reused", { ...base, via: "allow_always", grant_id: found.grantId! }, ids);
    return found;
  }

  /**
   * The standing decision that would cover the call, without using it (nothing audited): what
   * reuse() would take. A simulation asks this (gate/simulate.ts).
   */
  find(call: Omit<StandingCall, "goalId" | "callId">): StandingDecision | undefined {
    const session = this.sessions.get(sessionKey(call.agentId, call.tool, call.scope.key));
    if (session !== undefined) return { via: "allow_session", approvalId: session, grantId: null, by: null };
    const grant = this.grants.find(call.identity, call.project, call.tool, call.scope.key);
    if (grant === undefined) return undefined;
    return { via: "allow_always", approvalId: grant.approval_id, grantId: grant.id, by: grant.decided_by };
  }

  /** A request was settled: an Allow Session answer covers its agent, tool and scope from now on. */
  settled(rec: ApprovalRecord): void {
    if (rec.decision === "allow_session")
      this.sessions.set(sessionKey(rec.agent_id, rec.tool, rec.scope_key), rec.id);
  }

  /** The agent stopped: its Allow Session answers end. */
  agentStopped(agentId: string): void {
    for (const key of this.sessions.keys()) if (key.startsWith(`${agentId}\u0000`)) this.sessions.delete(key);
  }
}

function sessionKey(agentId: string, tool: string, scopeKey: string): string {
  return `${agentId}\u0000${tool}\u0000${scopeKey}`;
}
