// kernel/session-budget.ts — the goals an MCP session submits (aido_submit -> goal.submit
// with session_id) spend the session's budget. Before, each such goal got its own root
// account of limits.goal_max_tokens, however many the client's model submitted: eight
// goals spent eight times what the session itself was allowed.
//
// At submit, the goal's share is carved from the session's account (the account of the
// session's agent, kernel/sessions.ts) as a hold account `hold:<goal id>` under it, in the
// ledger's transaction that reads what is left, so two submits can never take the same
// tokens. The share is the goal's requested budget.max_tokens (its manifest's) when it asks
// for one, else half of what the session has left but at least MIN_DEFAULT_SHARE (or
// limits.goal_max_tokens when that is lower); never more than limits.goal_max_tokens. A
// share larger than what is left is refused (budget_exceeded), audited as goal.refused
// with the session's id.
//
// At start the goal's root account opens inside the hold (its cap lowered to the share):
// every charge of the goal reaches the session's account. At the goal's end, whatever it
// ends as (succeeded, failed, cancelled, queued and never started, recovered after a
// restart), the hold is closed and its unspent part returns to the session. When the
// session ends, its account closes and every hold under it with it: its queued and running
// goals fail saying the session ended (failSessionGoals), and one that would start after it
// (a queued goal after a restart) fails at start.
//
// In cluster mode (cluster/goal-submit.ts) the goal may run on another node, and a remote
// node cannot hold this node's ledger: the share is carved the same way at submit
// (clusterHoldOf) and it caps the job's manifest budget.max_tokens, which lowers the goal's
// cap on the node that runs it. Once the goal ended, wherever it ran, its end says what it
// spent: this node charges the share that and returns the rest (cluster/share-returns.ts). A
// goal whose end does not say (a dead node's goal, failed by a survivor) stays charged its
// share in full until the session ends.

import { AidoError, ErrorCode } from "../errors.js";
import type { AuditLog } from "../security/audit.js";
import type { BudgetLedger } from "../security/budget.js";

/** A default share below this could not pay one model call (the answer alone reserves 4096). */
export const MIN_DEFAULT_SHARE = 4096;

/** The account a session's account keeps for one goal it submitted. */
export function holdAccountOf(goalId: string): string {
  return `hold:${goalId}`;
}

/**
 * In cluster mode, the account that holds a session's goal's share: the goal may run on
 * another node, whose ledger this one cannot hold, so the share stays taken from the session
 * until the goal's end says what it spent (cluster/share-returns.ts); the share caps the
 * goal's manifest budget instead (cluster/goal-submit.ts).
 */
export function clusterHoldOf(goalId: string): string {
  return `job:${goalId}`;
}

/** The goal whose cluster share `accountId` is (clusterHoldOf), or undefined for any other account. */
export function goalOfClusterHold(accountId: string): string | undefined {
  return accountId.startsWith("job:") ? accountId.slice("job:".length) : undefined;
}

/** An open session's budget, as goal.submit needs it. */
export interface SessionAccount {
  session_id: string;
  /** Its agent's budget account. */
  account: string;
}

export interface SessionShareDeps {
  budget: BudgetLedger;
  audit: AuditLog;
  /** limits.goal_max_tokens: no share is larger, since no goal may spend more. */
  goalMaxTokens: number;
}

/**
 * Carve a goal's share from the session's account (see the header) as the account `holdId`
 * (holdAccountOf, or clusterHoldOf). Returns the share; refused as budget_exceeded, audited
 * as goal.refused, when the session cannot cover it.
 */
export function carveSessionShare(
  deps: SessionShareDeps,
  session: SessionAccount,
  holdId: string,
  asked: number | undefined,
): number {
  const { budget } = deps;
  const account = budget.get(session.account);
  // An operator's goal_max_tokens below MIN_DEFAULT_SHARE is the least a default share is:
  // else every goal naming no budget was refused, its share never reaching the minimum.
  const floor = Math.min(MIN_DEFAULT_SHARE, deps.goalMaxTokens);
  const shareOf = (left: number) =>
    Math.min(asked ?? Math.max(Math.floor(left / 2), floor), deps.goalMaxTokens);
  // One transaction: what is left is read where the hold takes it (open() checks the room again).
  const carved = budget.atomically(() => {
    const left = budget.available(session.account);
    const share = shareOf(left);
    if (share > left || share <= 0) return { left };
    budget.open(holdId, { goalId: account.goal_id, limit: share, parentId: session.account });
    return { left, share };
  });
  if (carved.share !== undefined) return carved.share;
  const want =
    asked !== undefined
      ? `the goal asks for ${asked} (its manifest's budget.max_tokens)`
      : `a goal that names no budget.max_tokens asks for half of what is left, at least ${floor}`;
  const reason = `MCP session ${session.session_id} cannot cover this goal: its budget is ${account.limit_tokens} tokens, ${carved.left} left; ${want}. What its goals leave unspent comes back when they end; wait for one, or ask for less`;
  deps.audit.record("goal.refused", { field: "budget", reason, session_id: session.session_id });
  throw new AidoError(ErrorCode.budgetExceeded, reason, {
    session_id: session.session_id,
    limit: account.limit_tokens,
    left: carved.left,
    requested: asked ?? shareOf(carved.left),
  });
}

/**
 * goal.submit: a session's goal has its share carved (carveSessionShare), then `submit` runs
 * with it (the goal's row and goal.submitted); should that fail, the share goes back. Without
 * a session, `submit` just runs.
 */
export function withSessionShare<T>(
  deps: SessionShareDeps,
  session: SessionAccount | undefined,
  goalId: string,
  asked: number | undefined,
  submit: (share?: number) => T,
): T {
  if (session === undefined) return submit();
  const share = carveSessionShare(deps, session, holdAccountOf(goalId), asked);
  try {
    return submit(share);
  } catch (e) {
    releaseSessionShare(deps.budget, goalId);
    throw e;
  }
}

/**
 * At the goal's start: the hold its root account opens under, or undefined when no session
 * submitted it. A hold already closed means the session (`sessionId`, from the goal's
 * submitted_by) ended before the goal started: a queued goal after a restart, whose
 * session's agent the restart stopped (its account closed, and the hold with it).
 */
export function sessionHoldAtStart(
  budget: BudgetLedger,
  goalId: string,
  sessionId: string | undefined,
): { account: string; share: number } | undefined {
  const hold = budget.find(holdAccountOf(goalId));
  if (hold === undefined) return undefined;
  if (hold.closed) {
    const session = sessionId === undefined ? "the MCP session" : `the MCP session ${sessionId}`;
    throw new AidoError(ErrorCode.cancelled, `${session} that submitted it ended before it started`, {
      account: hold.id,
      ...(sessionId !== undefined ? { session_id: sessionId } : {}),
    });
  }
  return { account: hold.id, share: hold.limit_tokens };
}

/** At the goal's end (after its root account closed): its unspent share returns to the session. */
export function releaseSessionShare(budget: BudgetLedger, goalId: string): void {
  const hold = budget.find(holdAccountOf(goalId));
  if (hold !== undefined && !hold.closed) budget.close(hold.id);
}

/**
 * The session ended with `reason`: each goal it submitted that
 * has not ended fails, saying so. Its holds closed with its account already.
 */
export function failSessionGoals(
  budget: BudgetLedger,
  goals: { isLive(id: string): boolean; fail(id: string, reason: string): boolean },
  session: SessionAccount,
  reason: string,
): string[] {
  const failed: string[] = [];
  const sessionId = session.session_id;
  for (const hold of budget.childrenOf(session.account, true)) {
    if (!hold.id.startsWith("hold:")) continue;
    const goalId = hold.id.slice("hold:".length);
    if (!goals.isLive(goalId)) continue;
    if (goals.fail(goalId, `the MCP session ${sessionId} that submitted it ended (${reason})`))
      failed.push(goalId);
  }
  return failed;
}
