// cluster/approval-drops.ts — the mirrored approvals of goals that ended (or left their node)
// dropped from the cluster's list (aido:approvals), and again with each heartbeat while Redis
// refuses the drop. A goal this node ended or failed for a dead owner had its approvals
// listed as pending on every node until a drop went through: before, a refused drop was
// logged and never tried again, and a dead owner that never came back left them listed for
// good (its own restart settles only its own: owned-mirror.ts settleStale). A refused drop is
// recorded in the node's database (cluster_undropped_approvals) as the announcements of ends
// are (kept-ends.ts), so a restart in between does not forget it.
// A goal taken over from a dead node (re-queued: it runs again, here or elsewhere) has only
// the dead node's approvals dropped: a drop done again later, once the goal's new run asked
// approvals of its own, dropped those too, and no other node listed them nor could decide them.
// A goal this node gives back (give-back.ts) has this node's approvals dropped, retried by
// this process only: its next process settles them anyway (owned-mirror.ts settleStale), and
// could be running the goal again by then.

import { errorMessage } from "../errors.js";
import type { NodeContext } from "./context.js";
import { dropApprovalsOf } from "./owned-mirror.js";
import { RetryTable, type RetryTableSpec } from "./retry-table.js";

/** The drops still to be made, for the node's next process. */
const UNDROPPED: RetryTableSpec<{ node: string | null }> = {
  module: "cluster.approval_drops",
  table: "cluster_undropped_approvals",
  migrations: [
    `CREATE TABLE cluster_undropped_approvals (
     goal_id TEXT PRIMARY KEY
   )`,
    // The node whose approvals are dropped; NULL: every node's (the goal ended).
    "ALTER TABLE cluster_undropped_approvals ADD COLUMN node TEXT",
  ],
  columns: ["node"],
  onConflict: "replace",
  unwritten: (goalId) =>
    `cluster: could not record in the node's database that goal ${goalId}'s approvals are still to be dropped (forgotten if the node restarts first)`,
  // Dropped again by the node's next process: a drop of nothing.
  undropped: (goalId) =>
    `cluster: could not forget in the node's database that goal ${goalId}'s approvals were to be dropped`,
  unreadable: (goalId, why) =>
    `cluster: the drop of goal ${goalId}'s approvals in the node's database (cluster_undropped_approvals) is left undone: ${why}`,
};

/** A drop still to be made: why Redis refused it, and whose approvals (undefined: all). */
interface Undropped {
  why: string;
  node: string | undefined;
}

export class ApprovalDrops {
  /** Goals whose approvals Redis did not drop yet, with why (logged when it changes). */
  private readonly undropped: Map<string, Undropped>;
  private readonly table: RetryTable<{ node: string | null }>;

  constructor(private readonly ctx: NodeContext) {
    this.table = new RetryTable(ctx.rt.db, UNDROPPED, (m) => ctx.log(m));
    this.undropped = this.table.readBack((r) => ({
      why: "the node restarted before dropping them",
      node: r.node ?? undefined,
    }));
  }

  /**
   * Drop the goal's mirrored approvals (with `node`, only those that node mirrored: the dead
   * node of a goal taken over); kept for retry() if Redis refuses. Never throws.
   */
  async drop(goalId: string, node?: string): Promise<void> {
    // A drop of every node's approvals kept before (the goal ended) stays one.
    const kept = this.undropped.get(goalId);
    const whose = kept !== undefined && kept.node === undefined ? undefined : node;
    try {
      await dropApprovalsOf(this.ctx, goalId, whose);
    } catch (e) {
      this.refused(goalId, whose, e);
      return;
    }
    this.dropped(goalId);
  }

  /** Drop again what Redis refused (each heartbeat). */
  async retry(): Promise<void> {
    for (const [goalId, u] of [...this.undropped.entries()]) await this.drop(goalId, u.node);
  }

  private refused(goalId: string, node: string | undefined, e: unknown): void {
    const why = errorMessage(e);
    const before = this.undropped.get(goalId);
    if (before?.why !== why)
      this.ctx.log(
        `cluster: could not drop the mirrored approvals of goal ${goalId} (dropped again with each heartbeat until they are): ${why}`,
      );
    this.undropped.set(goalId, { why, node });
    if (before !== undefined && before.node === node) return;
    // This node's own (a goal it gave back: give-back.ts) are retried by this process only:
    // its next process settles what it left listed (owned-mirror.ts settleStale), and a drop
    // read back there would take the approvals of the goal's next run here too.
    if (node === this.ctx.identity.nodeId) return;
    this.table.put(goalId, { node: node ?? null });
  }

  private dropped(goalId: string): void {
    if (!this.undropped.delete(goalId)) return;
    this.ctx.log(`cluster: the mirrored approvals of goal ${goalId} are dropped now`);
    this.table.delete(goalId);
  }
}
