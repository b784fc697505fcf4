// cli/watch/seed.ts — what the watch is told before its stream starts, beyond goal.status and
// agent.list (state.ts): the approvals already waiting. The stream only carries news, so a
// request made before the watch began (the goal sitting on it) was not shown, and the one
// thing the person watching could do, answer it, went unsaid. Pure, as state.ts.

import type { PendingApproval, WatchState } from "./state.js";

/** The fields of approval.list's records the view uses (node: in a cluster, where the agent waits). */
export interface KnownApproval {
  id: string;
  goal_id: string | null;
  agent_id: string;
  tool: string;
  summary: string;
  status: string;
  covers?: { allow_session: string; allow_always: string };
  node?: string;
}

/** Folds approval.list's pending requests of what is watched (one goal, or all) into the view. */
export function withPendingApprovals(prev: WatchState, approvals: readonly KnownApproval[]): WatchState {
  const s = structuredClone(prev);
  for (const a of approvals) {
    if (a.status !== "pending") continue;
    if (s.goalId !== null && a.goal_id !== s.goalId) continue;
    const pending: PendingApproval = {
      id: a.id,
      agentId: a.agent_id,
      tool: a.tool,
      summary: a.summary,
      goalId: a.goal_id,
    };
    if (a.covers)
      pending.covers = { allow_session: a.covers.allow_session, allow_always: a.covers.allow_always };
    if (a.node !== undefined) pending.node = a.node;
    s.approvals[a.id] ??= pending;
  }
  return s;
}
