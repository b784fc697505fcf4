// cluster/kept-ends.ts — the ends goal-ends.ts keeps for a retry because Redis did not take
// them, and what of them outlives the node's process. An end Redis did not write is found
// again by a restarted node (GoalEnds.recover: the goal's hash still says it runs here). One
// whose write landed but whose announcement Redis refused (out of memory, an ACL on the
// streams) is not: the hash says it ended, and nothing else says its goal.finished and its
// goal-ends entry never went out, so followers on other nodes would never see it end. Those
// are recorded in the node's SQLite as they are kept (cluster_unannounced_ends), dropped once
// announced, and read back when the node starts: the new process announces them with its
// heartbeats. Read back, an announcement's goal.finished goes out only when the goal's stream
// lacks this node's (the process may have died after Redis took it, before its row went).
// Each row names the node that wrote the end: read back under another id (cluster.node_id
// changed, a copy of the home started as another node), it is announced as that node's, else
// the stream's check looked for the new id's goal.finished and sent the goal's a second time.

import type { Db } from "../db/database.js";
import { errorMessage } from "../errors.js";
import type { GoalStatus } from "../kernel/goal-store.js";
import { RetryTable, type RetryTableSpec, UnreadableRow } from "./retry-table.js";

/** A row of cluster_unannounced_ends: the end as JSON, and the node that wrote it. */
type EndRow = { end_status: string; node_id: string | null };

/** The written ends whose announcement is pending, for the node's next process. */
const UNANNOUNCED: RetryTableSpec<EndRow> = {
  module: "cluster.ends",
  table: "cluster_unannounced_ends",
  migrations: [
    `CREATE TABLE cluster_unannounced_ends (
     goal_id TEXT PRIMARY KEY,
     end_status TEXT NOT NULL
   )`,
    // Rows from before it: this node's.
    "ALTER TABLE cluster_unannounced_ends ADD COLUMN node_id TEXT",
  ],
  columns: ["end_status", "node_id"],
  onConflict: "replace",
  // Kept in memory all the same: announced with the heartbeats unless the node restarts first.
  unwritten: (goalId) =>
    `cluster: could not record in the node's database that goal ${goalId}'s end awaits its announcement`,
  undropped: (goalId) => `cluster: could not drop goal ${goalId}'s announced end from the node's database`,
  unreadable: (goalId, why) =>
    `cluster: the unannounced end of goal ${goalId} in the node's database (cluster_unannounced_ends) is left unannounced: ${why}`,
};

/** An end Redis did not take yet. */
export interface KeptEnd {
  /** Why Redis did not take it the last time (logged when it changes). */
  why: string;
  /** How a retry announces it: `held` stays so, `sent` may have been refused with the end. */
  event: "held" | "unsure";
  /** The end itself, when this Runtime has no record of the goal (or it is written already). */
  end?: GoalStatus;
  /** Written already: Redis refused its announcement (the goal's events, goal-ends), retried alone. */
  written?: true;
  /** The node that wrote it, when not this one (read back under another node id): announced as that node's. */
  node?: string;
}

export class KeptEnds {
  private readonly kept: Map<string, KeptEnd>;
  private readonly table: RetryTable<EndRow>;

  constructor(
    db: Db,
    log: (m: string) => void,
    /** This node's id. */
    private readonly nodeId: string,
  ) {
    this.table = new RetryTable(db, UNANNOUNCED, log);
    this.kept = this.table.readBack((r): KeptEnd | UnreadableRow => {
      const end = readEnd(r.end_status);
      if (typeof end === "string") return new UnreadableRow(end);
      // Whether its goal.finished went out before the process died is the stream's to say.
      return {
        why: "the node restarted before announcing it",
        event: "unsure",
        end,
        written: true,
        ...(r.node_id !== null && r.node_id !== nodeId ? { node: r.node_id } : {}),
      };
    });
  }

  get(goalId: string): KeptEnd | undefined {
    return this.kept.get(goalId);
  }

  has(goalId: string): boolean {
    return this.kept.has(goalId);
  }

  entries(): [string, KeptEnd][] {
    return [...this.kept];
  }

  /** Keep an end; a written one (its announcement pending) is recorded in SQLite too. */
  set(goalId: string, e: KeptEnd): void {
    const before = this.kept.get(goalId);
    this.kept.set(goalId, e);
    if (e.written && e.end)
      this.table.put(goalId, { end_status: JSON.stringify(e.end), node_id: e.node ?? this.nodeId });
    else if (before?.written) this.table.delete(goalId);
  }

  /** Forget an end (written and announced, or not this node's to write); false if none was kept. */
  delete(goalId: string): boolean {
    const before = this.kept.get(goalId);
    if (!this.kept.delete(goalId)) return false;
    if (before?.written) this.table.delete(goalId);
    return true;
  }
}

/** A row's end, or why it is not one. */
function readEnd(text: string): GoalStatus | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return `its end_status is not JSON (${errorMessage(e)})`;
  }
  const s = v as Partial<GoalStatus> | null;
  if (typeof s !== "object" || s === null || typeof s.state !== "string" || typeof s.goal_id !== "string")
    return "its end_status is not a goal's status (goal_id and state)";
  return s as GoalStatus;
}
