// intent/store.ts — the `intents` and `intent_steps` tables: persistent intents as rows,
// and the SQL that reads and changes them, nothing else (who may change what, the audit
// and the workspace key are intents.ts's). At most one row per workspace is `active`
// (a partial unique index says so, whatever a caller does); a cleared or replaced row is
// kept as history. Tokens are integers, added in one UPDATE per charge.
// Budget accounts: a row that carries forward the budget of the row it replaced (a
// session's replacement, intents.ts) joins that row's `budget_account`, and a charge to
// a row is also a charge to every later row of its account. Goals still running under a
// replaced objective thus spend from the budget of the objective that replaced it, and
// a chain of replacements never holds more than the budget its first row was given.
// Rows are never deleted, so rowid orders an account's rows as they were set.

import { randomBytes } from "node:crypto";
import { type Db, migrate, prepared } from "../db/database.js";

const MIGRATIONS = [
  `CREATE TABLE intents (
     id TEXT PRIMARY KEY,
     workspace TEXT NOT NULL,
     objective TEXT NOT NULL,
     budget_tokens INTEGER,
     check_command TEXT,
     step_count INTEGER NOT NULL DEFAULT 0,
     tokens_spent INTEGER NOT NULL DEFAULT 0,
     last_check TEXT,
     state TEXT NOT NULL,
     set_by TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     ended_at INTEGER,
     ended_by TEXT,
     replaced_by TEXT
   );
   CREATE UNIQUE INDEX intents_active ON intents (workspace) WHERE state = 'active';
   CREATE INDEX intents_history ON intents (workspace, created_at);
   CREATE TABLE intent_steps (
     intent_id TEXT NOT NULL REFERENCES intents (id),
     step INTEGER NOT NULL,
     note TEXT NOT NULL,
     by TEXT,
     at INTEGER NOT NULL,
     PRIMARY KEY (intent_id, step)
   );`,
  // The MCP session that set it (daemon/principal.ts); NULL: the user. Rows from before
  // are the user's: no session may replace them.
  "ALTER TABLE intents ADD COLUMN set_by_session TEXT",
  // The budget account an intent charges (insert): its own id, or the account of the
  // objective it replaced when a session's replacement carries that budget forward.
  `ALTER TABLE intents ADD COLUMN budget_account TEXT;
   UPDATE intents SET budget_account = id;
   CREATE INDEX intents_budget_account ON intents (budget_account);`,
];

/** Notes kept per intent (the step count goes on); older ones are dropped. */
const NOTES_KEPT = 200;
/** Notes an intent shows (the latest, oldest first). */
const NOTES_SHOWN = 20;

export type IntentState = "active" | "cleared" | "replaced";

/** The result of an intent's check, as intent.check recorded it. */
export interface IntentCheckResult {
  /** The command exited 0. */
  met: boolean;
  /** null when the command did not run to an exit (refused, failed, timed out, killed). */
  exit_code: number | null;
  /** The tail of what it printed (stdout, then stderr), or why it did not run. */
  output: string;
  at: string;
  command: string;
  agent_id: string;
  /** The gate refused the command: where and why (also audited as tool.denied). */
  denied?: { stage: string; code: string; reason: string };
  /** It was allowed but could not run (sandbox or tool failure). */
  error?: string;
  timed_out?: boolean;
}

export interface IntentNote {
  step: number;
  note: string;
  at: string;
  by?: string;
}

/** An intent as every socket method returns it. */
export interface Intent {
  id: string;
  workspace: string;
  objective: string;
  state: IntentState;
  budget_tokens: number | null;
  tokens_spent: number;
  /** budget_tokens - tokens_spent, never below 0; null without a budget. */
  tokens_left: number | null;
  check: string | null;
  step_count: number;
  /** The latest NOTES_SHOWN notes, oldest first. */
  notes: IntentNote[];
  last_check: IntentCheckResult | null;
  set_by: string;
  /** The MCP session that set it, as the daemon knows it (not the `set_by` label); null: the user. */
  set_by_session: string | null;
  /**
   * The budget account it charges: its own id, or the first intent of a chain of a session's
   * replacements that carried one budget forward (goals under any of them spend from it).
   */
  budget_account: string;
  created_at: string;
  updated_at: string;
  ended_at?: string;
  ended_by?: string;
  /** The intent that replaced this one. */
  replaced_by?: string;
}

interface IntentRow {
  id: string;
  workspace: string;
  objective: string;
  budget_tokens: number | null;
  check_command: string | null;
  step_count: number;
  tokens_spent: number;
  last_check: string | null;
  state: IntentState;
  set_by: string;
  set_by_session: string | null;
  budget_account: string;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
  ended_by: string | null;
  replaced_by: string | null;
}

interface NewIntent {
  workspace: string;
  objective: string;
  budget_tokens?: number;
  check?: string;
  by: string;
  session?: string;
  /** Carry on the budget account of the intent it replaces (a session's replacement), not open its own. */
  shareBudget?: boolean;
}

export class IntentStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    migrate(db, "intents", MIGRATIONS);
  }

  /** The active intent's id for a workspace key. */
  activeId(workspace: string): string | undefined {
    return prepared(this.db, "SELECT id FROM intents WHERE workspace = ? AND state = 'active'")
      .pluck()
      .get(workspace) as string | undefined;
  }

  get(id: string): Intent | undefined {
    const row = prepared(this.db, "SELECT * FROM intents WHERE id = ?").get(id) as IntentRow | undefined;
    return row ? this.toIntent(row) : undefined;
  }

  /** Earlier intents of the workspace (cleared or replaced), newest first. */
  history(workspace: string, limit: number): Intent[] {
    const rows = prepared(
      this.db,
      "SELECT * FROM intents WHERE workspace = ? AND state != 'active' ORDER BY created_at DESC, rowid DESC LIMIT ?",
    ).all(workspace, limit) as IntentRow[];
    return rows.map((r) => this.toIntent(r));
  }

  /** A new active intent; the one it replaces (if any) ends `replaced`. One transaction. */
  insert(n: NewIntent): { intent: Intent; replaced?: string } {
    const id = `int_${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
    const at = this.now();
    const replaced = this.db
      .transaction(() => {
        const old = this.activeId(n.workspace);
        const account =
          n.shareBudget === true && old !== undefined
            ? (prepared(this.db, "SELECT budget_account FROM intents WHERE id = ?")
                .pluck()
                .get(old) as string)
            : id;
        if (old !== undefined) {
          prepared(
            this.db,
            "UPDATE intents SET state = 'replaced', ended_at = ?, ended_by = ?, replaced_by = ?, updated_at = ? WHERE id = ?",
          ).run(at, n.by, id, at, old);
        }
        prepared(
          this.db,
          `INSERT INTO intents (id, workspace, objective, budget_tokens, check_command, state, set_by, set_by_session, budget_account, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)`,
        ).run(
          id,
          n.workspace,
          n.objective,
          n.budget_tokens ?? null,
          n.check ?? null,
          n.by,
          n.session ?? null,
          account,
          at,
          at,
        );
        return old;
      })
      .immediate();
    return { intent: this.get(id) as Intent, ...(replaced !== undefined ? { replaced } : {}) };
  }

  /** One more step with its note; older notes beyond NOTES_KEPT are dropped. */
  addStep(id: string, note: string, by: string | undefined): Intent {
    const at = this.now();
    this.db
      .transaction(() => {
        prepared(this.db, "UPDATE intents SET step_count = step_count + 1, updated_at = ? WHERE id = ?").run(
          at,
          id,
        );
        const step = prepared(this.db, "SELECT step_count FROM intents WHERE id = ?")
          .pluck()
          .get(id) as number;
        prepared(
          this.db,
          "INSERT INTO intent_steps (intent_id, step, note, by, at) VALUES (?, ?, ?, ?, ?)",
        ).run(id, step, note, by ?? null, at);
        prepared(this.db, "DELETE FROM intent_steps WHERE intent_id = ? AND step <= ?").run(
          id,
          step - NOTES_KEPT,
        );
      })
      .immediate();
    return this.get(id) as Intent;
  }

  /** The active intent ends `cleared`, with when and by whom. */
  clear(id: string, by: string): Intent {
    const at = this.now();
    prepared(
      this.db,
      "UPDATE intents SET state = 'cleared', ended_at = ?, ended_by = ?, updated_at = ? WHERE id = ? AND state = 'active'",
    ).run(at, by, at, id);
    return this.get(id) as Intent;
  }

  recordCheck(id: string, result: IntentCheckResult): Intent {
    prepared(this.db, "UPDATE intents SET last_check = ?, updated_at = ? WHERE id = ?").run(
      JSON.stringify(result),
      this.now(),
      id,
    );
    return this.get(id) as Intent;
  }

  /**
   * Add tokens a goal carrying the intent spent (whatever its state now: they were spent under
   * it), to it and to every intent set after it on its budget account (the objectives that
   * replaced it carrying its budget forward): one budget, whichever of them the goal carries.
   */
  charge(id: string, tokens: number): void {
    prepared(
      this.db,
      `UPDATE intents SET tokens_spent = tokens_spent + ?
       WHERE budget_account = (SELECT budget_account FROM intents WHERE id = ?)
         AND rowid >= (SELECT rowid FROM intents WHERE id = ?)`,
    ).run(tokens, id, id);
  }

  private toIntent(r: IntentRow): Intent {
    const notes = (
      prepared(
        this.db,
        "SELECT step, note, by, at FROM intent_steps WHERE intent_id = ? ORDER BY step DESC LIMIT ?",
      ).all(r.id, NOTES_SHOWN) as { step: number; note: string; by: string | null; at: number }[]
    )
      .reverse()
      .map((n) => ({ step: n.step, note: n.note, at: iso(n.at), ...(n.by !== null ? { by: n.by } : {}) }));
    const i: Intent = {
      id: r.id,
      workspace: r.workspace,
      objective: r.objective,
      state: r.state,
      budget_tokens: r.budget_tokens,
      tokens_spent: r.tokens_spent,
      tokens_left: r.budget_tokens === null ? null : Math.max(0, r.budget_tokens - r.tokens_spent),
      check: r.check_command,
      step_count: r.step_count,
      notes,
      last_check: r.last_check === null ? null : (JSON.parse(r.last_check) as IntentCheckResult),
      set_by: r.set_by,
      set_by_session: r.set_by_session,
      budget_account: r.budget_account,
      created_at: iso(r.created_at),
      updated_at: iso(r.updated_at),
    };
    if (r.ended_at !== null) i.ended_at = iso(r.ended_at);
    if (r.ended_by !== null) i.ended_by = r.ended_by;
    if (r.replaced_by !== null) i.replaced_by = r.replaced_by;
    return i;
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
