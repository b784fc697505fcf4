// cluster/share-returns.ts — the unspent rest of an MCP session's cluster goal share, back to
// the session once the goal ended, wherever it ran. The share is carved at submit on the node
// that took it (goal-submit.ts, an account `job:<goal id>` under the session's) and caps the
// goal's budget on the node that runs it; that node's ledger charges the goal, and its end
// (goal-mirror.ts finish) writes what the goal spent into the goal's hash (`spent`), as do the
// cancels of a goal that never started (0). Before, the share came back only for such a cancel
// made on the submitting node: a goal that ran was charged its whole share until the session
// ended, and a session of a few goals could submit no more.
//
// settle() runs with each heartbeat (heartbeat.ts): the node reads the ends of the goals whose
// shares it holds open and, for each that ended saying what it spent, charges the share that
// and closes it, the rest back in the session's account (BudgetLedger.closeSpent: one
// transaction reads and closes the share, so it is settled once). Learning late is learning all
// the same: an end written while this node could not read Redis, or written by the owner after
// its restart, is read by the first heartbeat that reads it. A share whose goal ended without
// saying what it spent (a dead owner's goal, failed by a survivor: the dead node's ledger is
// gone) is kept charged in full until the session ends, as is one whose record expired
// (ENDED_TTL_SECONDS) unread. Each settled share is audited as goal.share_returned.

import { errorMessage } from "../errors.js";
import { clusterHoldOf, goalOfClusterHold } from "../kernel/session-budget.js";
import type { AuditLog } from "../security/audit.js";
import type { BudgetLedger } from "../security/budget.js";
import type { NodeContext } from "./context.js";
import { isTerminal } from "./goal-mirror.js";

declare module "../security/audit-events.js" {
  interface AuditPayloads {
    /**
     * A cluster goal's session share settled on the node that carved it: `spent` charged to the
     * session (what the goal's node said it spent), `returned` back in the session's account.
     */
    "goal.share_returned": { share: number; spent: number; returned: number; session_account: string };
  }
}

/**
 * Settle the share of `goalId` (if this node holds it open): charged `spent`, the rest back to
 * the session, audited. Returns what came back, or undefined when there was no open share.
 */
export function settleClusterShare(
  budget: BudgetLedger,
  audit: AuditLog,
  goalId: string,
  spent: number,
): number | undefined {
  const id = clusterHoldOf(goalId);
  const parent = budget.find(id)?.parent_id;
  const settled = budget.closeSpent(id, spent);
  if (settled === undefined) return undefined;
  audit.record(
    "goal.share_returned",
    { share: settled.limit, spent, returned: settled.returned, session_account: parent ?? "" },
    { goalId },
  );
  return settled.returned;
}

export class ShareReturns {
  /** Why the last settle failed (logged when it changes, not with every heartbeat). */
  private failing: string | undefined;

  constructor(private readonly ctx: NodeContext) {}

  /** Each heartbeat: the open shares whose goals ended saying what they spent are settled. */
  async settle(): Promise<void> {
    const { rt, mirror, log } = this.ctx;
    const goals = rt.budget
      .openNamed(clusterHoldOf(""))
      .map((a) => goalOfClusterHold(a.id))
      .filter((g): g is string => g !== undefined);
    if (goals.length === 0) return;
    try {
      for (const [goalId, end] of await mirror.endsOf(goals)) {
        if (end === "gone" || !isTerminal(end.state) || end.spent === undefined) continue;
        settleClusterShare(rt.budget, rt.audit, goalId, end.spent);
      }
      this.failing = undefined;
    } catch (e) {
      const why = errorMessage(e);
      if (why !== this.failing)
        log(
          `cluster: returning the unspent shares of ended session goals failed (again with each heartbeat): ${why}`,
        );
      this.failing = why;
    }
  }
}
