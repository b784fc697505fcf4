// security/audit-query.ts — reading entries back out of the audit log: by filter (newest
// first), by seq, and by kind after a seq. Rows come back exactly as they were chained
// (the payload parsed from its canonical JSON); nothing here writes or verifies, which is
// audit.ts's and audit-verify.ts's.

import { type Db, prepared } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { AuditEntry, AuditKind } from "./audit-events.js";
import type { AuditRow } from "./audit-verify.js";

export interface AuditQuery {
  goal_id?: string;
  agent_id?: string;
  kind?: string;
  limit?: number;
  /** A cursor: only entries after this seq, oldest first (without it: newest first). */
  after_seq?: number;
  /** A cursor backwards: only entries before this seq (newest first: the next older page). */
  before_seq?: number;
}

const COLUMNS = "seq, time, goal_id, agent_id, kind, payload, prev_hash, hash";

/** Entries matching every given filter, newest first, or oldest first after a cursor (default limit 100). */
export function queryEntries(db: Db, q: AuditQuery = {}): AuditEntry[] {
  const filters = [
    ["goal_id", q.goal_id],
    ["agent_id", q.agent_id],
    ["kind", q.kind],
  ].filter((f): f is [string, string] => f[1] !== undefined);
  const where = filters.map(([column]) => `${column} = ?`);
  const args: (string | number)[] = filters.map(([, value]) => value);
  if (q.after_seq !== undefined) {
    where.push("seq > ?");
    args.push(q.after_seq);
  }
  if (q.before_seq !== undefined) {
    where.push("seq < ?");
    args.push(q.before_seq);
  }
  const order = q.after_seq !== undefined ? "ASC" : "DESC";
  const limit = q.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `audit query limit must be a positive integer, got ${q.limit}`,
    );
  }
  const sql = `SELECT ${COLUMNS} FROM audit${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY seq ${order} LIMIT ?`;
  return (
    db
      .prepare(sql)
      .raw()
      .all(...args, limit) as AuditRow[]
  ).map(toEntry);
}

/** One entry by seq, or undefined. */
export function entryAt(db: Db, seq: number): AuditEntry | undefined {
  const row = prepared(db, `SELECT ${COLUMNS} FROM audit WHERE seq = ?`).raw().get(seq) as
    | AuditRow
    | undefined;
  return row ? toEntry(row) : undefined;
}

/** Entries of `kind` after `seq`, oldest first. */
export function entriesSince<K extends AuditKind>(db: Db, seq: number, kind: K): AuditEntry<K>[] {
  const rows = prepared(db, `SELECT ${COLUMNS} FROM audit WHERE seq > ? AND kind = ? ORDER BY seq`)
    .raw()
    .all(seq, kind) as AuditRow[];
  return rows.map(toEntry) as AuditEntry<K>[];
}

function toEntry(row: AuditRow): AuditEntry {
  const [seq, time, goal_id, agent_id, kind, payload, prev_hash, hash] = row;
  return {
    seq,
    time,
    goal_id,
    agent_id,
    kind: kind as AuditKind,
    payload: JSON.parse(payload),
    prev_hash,
    hash,
  };
}
