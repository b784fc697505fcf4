// cluster/kept-cancels.ts — the cancels of an ended MCP session's goals that Redis did not take.
// A session's end cancels its goals through the cluster (ClusterGoals.cancelSessionGoals); with
// Redis away at that moment the cancel of a queued goal was lost, and the goal was taken and
// run when Redis came back, for a session that no longer existed. Such a cancel is kept here,
// and in the node's SQLite (cluster_kept_cancels), so a restart of the node keeps it too. When
// Redis answers again the node's first heartbeat writes each kept cancel's session-ended mark
// (RedisKeys.sessionEnded, the goal's end reason) before it renews the node's lease; only then
// are the cancels made (goal.cancel's path), each dropped once it is answered. A node that
// takes a session's job reads that mark first (job-intake.ts), after it has been connected to
// Redis for a lease (a take right after Redis came back waits that long), so that a mark the
// session's node writes with its first heartbeat is read; a marked goal ends cancelled with the
// mark's reason and never starts.

import type { Redis } from "ioredis";
import type { Db } from "../db/database.js";
import { ENDED_TTL_SECONDS, RedisKeys } from "./redis-keys.js";
import { RetryTable, type RetryTableSpec } from "./retry-table.js";

type CancelRow = { session_id: string; reason: string };

const KEPT: RetryTableSpec<CancelRow> = {
  module: "cluster.cancels",
  table: "cluster_kept_cancels",
  migrations: [
    `CREATE TABLE cluster_kept_cancels (
     goal_id TEXT PRIMARY KEY,
     session_id TEXT NOT NULL,
     reason TEXT NOT NULL
   )`,
  ],
  columns: ["session_id", "reason"],
  onConflict: "keep",
  // Kept in memory all the same: made when Redis answers unless the node restarts first.
  unwritten: (goalId) =>
    `cluster: could not record in the node's database the cancel of goal ${goalId} its ended MCP session owes`,
  undropped: (goalId) => `cluster: could not drop the made cancel of goal ${goalId} from the node's database`,
  unreadable: (goalId, why) =>
    `cluster: the kept cancel of goal ${goalId} in the node's database (cluster_kept_cancels) is left unmade: ${why}`,
};

/** A cancel owed: the session that ended, and the goal's end reason. */
export interface KeptCancel {
  sessionId: string;
  reason: string;
}

export class KeptCancels {
  private readonly table: RetryTable<CancelRow>;
  private readonly kept: Map<string, KeptCancel>;

  constructor(db: Db, log: (m: string) => void) {
    this.table = new RetryTable(db, KEPT, log);
    this.kept = this.table.readBack((r) => ({ sessionId: r.session_id, reason: r.reason }));
  }

  /** The cancel owed for `goalId`, if any (a take of the goal on this node reads it). */
  get(goalId: string): KeptCancel | undefined {
    return this.kept.get(goalId);
  }

  entries(): [string, KeptCancel][] {
    return [...this.kept];
  }

  keep(goalId: string, c: KeptCancel): void {
    if (this.kept.has(goalId)) return;
    this.kept.set(goalId, c);
    this.table.put(goalId, { session_id: c.sessionId, reason: c.reason });
  }

  /** The cancel was made (or its goal is gone): forgotten. */
  drop(goalId: string): void {
    if (this.kept.delete(goalId)) this.table.delete(goalId);
  }

  /**
   * Each kept cancel's session-ended mark, written (first thing when Redis answers: before the
   * node's lease, which a taker of the goal waits for). Throws what Redis said.
   */
  async writeMarks(redis: Redis): Promise<void> {
    if (this.kept.size === 0) return;
    const marks = new Map([...this.kept.values()].map((c) => [c.sessionId, c.reason]));
    const m = redis.multi();
    for (const [sessionId, reason] of marks)
      m.set(RedisKeys.sessionEnded(sessionId), reason, "EX", ENDED_TTL_SECONDS);
    const replies = (await m.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
  }
}

/** The end reason of the session that submitted a goal, when its node marked it ended; else undefined. */
export async function sessionEndedMark(redis: Redis, sessionId: string): Promise<string | undefined> {
  return (await redis.get(RedisKeys.sessionEnded(sessionId))) ?? undefined;
}
