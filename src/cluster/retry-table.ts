// cluster/retry-table.ts — a goal-keyed table in the node's SQLite that mirrors a retry set the
// node keeps in memory (an end to announce: kept-ends.ts; a goal_lost entry to write:
// lost-goals.ts; approvals to drop: approval-drops.ts), so that a restart in between does not
// forget what is still to be done. The table is a copy for the next process, never what the
// node acts on: a write it refuses (a full disk, a read-only file) is logged, and the node goes
// on with what it keeps in memory; a row the next process cannot read is logged and skipped,
// not the node's start to fail (nor every heartbeat's). Each module keeps its own table,
// columns and migrations (schema_migrations names them by module).

import { type Db, migrate, prepared } from "../db/database.js";
import { errorMessage } from "../errors.js";

/** A row's columns other than goal_id, as SQLite gives them back (TEXT or NULL). */
export type RetryRow = Record<string, string | null>;

/** Why a row read back is not one the module can use (logged with the table's `unreadable`). */
export class UnreadableRow {
  constructor(readonly why: string) {}
}

export interface RetryTableSpec<Row extends RetryRow> {
  /** The module name its migrations are recorded under in schema_migrations. */
  module: string;
  table: string;
  /** Its migrations, in order (version i+1 is migrations[i]); they create `table`. */
  migrations: readonly string[];
  /** The columns a row has besides its goal_id, as written and read back. */
  columns: readonly (keyof Row & string)[];
  /** A second write of a goal: `replace` its columns, or `keep` the row written first. */
  onConflict: "replace" | "keep";
  /** What the log says (before the error) when a row could not be written or dropped. */
  unwritten: (goalId: string) => string;
  undropped: (goalId: string) => string;
  /** What the log says of a row read back that is left where it is (`why` it is unreadable). */
  unreadable: (goalId: string, why: string) => string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** The rows of a goal-keyed retry set; writes log instead of throw. */
export class RetryTable<Row extends RetryRow> {
  private readonly upsert: string;
  private readonly remove: string;
  private readonly select: string;

  /** Migrates the table (a migration that fails throws: the node cannot start on that file). */
  constructor(
    private readonly db: Db,
    private readonly spec: RetryTableSpec<Row>,
    private readonly log: (m: string) => void,
  ) {
    for (const name of [spec.table, ...spec.columns])
      if (!IDENTIFIER.test(name)) throw new Error(`retry table: ${JSON.stringify(name)} is not a SQL name`);
    migrate(db, spec.module, spec.migrations);
    const columns = ["goal_id", ...spec.columns];
    const onConflict =
      spec.onConflict === "keep" || spec.columns.length === 0
        ? "DO NOTHING"
        : `DO UPDATE SET ${spec.columns.map((c) => `${c} = excluded.${c}`).join(", ")}`;
    this.upsert = `INSERT INTO ${spec.table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")}) ON CONFLICT (goal_id) ${onConflict}`;
    this.remove = `DELETE FROM ${spec.table} WHERE goal_id = ?`;
    this.select = `SELECT ${columns.join(", ")} FROM ${spec.table}`;
  }

  /**
   * The rows an earlier process left, each as `read` makes it. A row whose goal_id or columns
   * are not text, or that `read` finds unreadable, is logged and skipped (left in the table).
   * A read of the table that fails throws: the node would start without what it still owes.
   */
  readBack<T>(read: (row: Row, goalId: string) => T | UnreadableRow): Map<string, T> {
    const out = new Map<string, T>();
    const rows = prepared(this.db, this.select).all() as Record<string, unknown>[];
    for (const r of rows) {
      const goalId = r.goal_id;
      if (typeof goalId !== "string") {
        this.log(
          `cluster: a row of the node's database (${this.spec.table}) is left where it is: its goal_id is not text`,
        );
        continue;
      }
      const notText = this.spec.columns.find((c) => r[c] !== null && typeof r[c] !== "string");
      const row = Object.fromEntries(this.spec.columns.map((c) => [c, r[c]])) as Row;
      const v = notText !== undefined ? new UnreadableRow(`its ${notText} is not text`) : read(row, goalId);
      if (v instanceof UnreadableRow) {
        this.log(this.spec.unreadable(goalId, v.why));
        continue;
      }
      out.set(goalId, v);
    }
    return out;
  }

  /** Record the goal's row (per `onConflict`); false if the database refused it (logged). */
  put(goalId: string, row: Row): boolean {
    return this.run(this.upsert, [goalId, ...this.spec.columns.map((c) => row[c] ?? null)], () =>
      this.spec.unwritten(goalId),
    );
  }

  /** Drop the goal's row; false if the database refused it (logged). */
  delete(goalId: string): boolean {
    return this.run(this.remove, [goalId], () => this.spec.undropped(goalId));
  }

  private run(sql: string, params: (string | null)[], what: () => string): boolean {
    try {
      prepared(this.db, sql).run(...params);
      return true;
    } catch (e) {
      this.log(`${what()}: ${errorMessage(e)}`);
      return false;
    }
  }
}
