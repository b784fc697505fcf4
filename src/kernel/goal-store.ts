// kernel/goal-store.ts — the durable half of the goal queue: the `goals` table. A goal is
// a row from submit to its end (queued -> running -> succeeded | failed | cancelled), so a
// restarted daemon knows what was queued and what was running. This module owns the rows
// and their SQL, nothing else: what runs a goal, when and with what, is goals.ts's.

import { type Db, migrate, prepared } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { Usage } from "../llm/types.js";
import {
  type ProjectBinding,
  parseProject,
  parseSubmittedBy,
  type SubmittedBy,
} from "../security/approval-project.js";

const MIGRATIONS = [
  `CREATE TABLE goals (
     id TEXT PRIMARY KEY,
     text TEXT NOT NULL,
     manifest TEXT,
     inputs TEXT NOT NULL,
     state TEXT NOT NULL,
     result TEXT,
     error TEXT,
     input_tokens INTEGER NOT NULL DEFAULT 0,
     output_tokens INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     started_at INTEGER,
     finished_at INTEGER,
     output_dir TEXT NOT NULL,
     agent_id TEXT
   );
   CREATE INDEX goals_state ON goals (state, created_at);`,
  // The persistent intent of the folder the goal was submitted from (kernel/goal-intent.ts).
  `ALTER TABLE goals ADD COLUMN intent_id TEXT;`,
  // The project it was submitted from (security/approval-project.ts, JSON): what its agents'
  // Allow Always answers bind to. NULL: none named, the goal is its own project.
  `ALTER TABLE goals ADD COLUMN project TEXT;`,
  // The intent the goal carries (set at its start: intent_id, if still active then). The
  // ledger charges it with every charge of the goal's accounts, in the same transaction
  // (kernel/goal-intent.ts chargeGoal), also after the goal ended or the daemon died.
  `ALTER TABLE goals ADD COLUMN carried_intent TEXT;`,
  // Who submitted it when the user did not (security/approval-project.ts SubmittedBy, JSON): an
  // MCP session. Shown by goal.status and the approval prompts; its project is bound to it too.
  // NULL: the user (and every goal made before).
  `ALTER TABLE goals ADD COLUMN submitted_by TEXT;`,
];

export type GoalState = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export type GoalEnd = "succeeded" | "failed" | "cancelled";
/** A cancelled goal's error when it ended before it started and the cancel gave no reason. */
export const UNSTARTED_CANCEL = "cancelled before it started";
export const TERMINAL: ReadonlySet<GoalState> = new Set(["succeeded", "failed", "cancelled"]);

/** goal.status (DESIGN.md), plus when it happened and which agent ran it. */
export interface GoalStatus {
  goal_id: string;
  state: GoalState;
  result?: string;
  error?: string;
  usage: Usage;
  output_dir: string;
  goal: string;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  agent_id?: string;
  /** The persistent intent of the folder it was submitted from, when that folder had one. */
  intent_id?: string;
  /** Who submitted it when the user did not: an MCP session (absent: the user). */
  submitted_by?: SubmittedBy;
}

export interface GoalRow {
  id: string;
  text: string;
  /** The checked manifest, as JSON. */
  manifest: string | null;
  /** The checked inputs, as JSON. */
  inputs: string;
  state: GoalState;
  result: string | null;
  error: string | null;
  input_tokens: number;
  output_tokens: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  output_dir: string;
  agent_id: string | null;
  intent_id: string | null;
  /** SubmittedBy as JSON; null: the user. */
  submitted_by: string | null;
}

export class GoalStore {
  constructor(private readonly db: Db) {
    migrate(db, "goals", MIGRATIONS);
  }

  /** A new goal, queued. */
  insert(g: {
    id: string;
    text: string;
    manifest: string;
    inputs: string;
    outputDir: string;
    intentId?: string | undefined;
    project?: ProjectBinding | undefined;
    submittedBy?: SubmittedBy | undefined;
  }): void {
    prepared(
      this.db,
      "INSERT INTO goals (id, text, manifest, inputs, state, created_at, output_dir, intent_id, project, submitted_by) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
    ).run(
      g.id,
      g.text,
      g.manifest,
      g.inputs,
      Date.now(),
      g.outputDir,
      g.intentId ?? null,
      g.project ? JSON.stringify(g.project) : null,
      g.submittedBy ? JSON.stringify(g.submittedBy) : null,
    );
  }

  /** The project the goal was submitted from; undefined when it named none or is no goal of this table. */
  projectOf(id: string): ProjectBinding | undefined {
    return parseProject(
      prepared(this.db, "SELECT project FROM goals WHERE id = ?").pluck().get(id) as
        | string
        | null
        | undefined,
    );
  }

  /** The goal's row; not_found when there is none. */
  row(id: string): GoalRow {
    const row = prepared(this.db, "SELECT * FROM goals WHERE id = ?").get(id) as GoalRow | undefined;
    if (!row) throw new AidoError(ErrorCode.notFound, `no goal ${id}`, { goal_id: id });
    return row;
  }

  /**
   * The goal as goal.status shows it. Its usage is every charge of its budget accounts as the
   * ledger made it (chargeGoal), also those no call lived to report (the close of an account,
   * the recovery after a restart).
   */
  status(id: string): GoalStatus {
    const row = this.row(id);
    const s: GoalStatus = {
      goal_id: row.id,
      state: row.state,
      usage: { input_tokens: row.input_tokens, output_tokens: row.output_tokens },
      output_dir: row.output_dir,
      goal: row.text,
      created_at: iso(row.created_at),
    };
    if (row.result !== null) s.result = row.result;
    if (row.error !== null) s.error = row.error;
    if (row.started_at !== null) s.started_at = iso(row.started_at);
    if (row.finished_at !== null) s.finished_at = iso(row.finished_at);
    if (row.agent_id !== null) s.agent_id = row.agent_id;
    if (row.intent_id !== null) s.intent_id = row.intent_id;
    const by = parseSubmittedBy(row.submitted_by);
    if (by !== undefined) s.submitted_by = by;
    return s;
  }

  /** Goal ids, newest first, of one state or all. */
  ids(filter: { state?: GoalState; limit?: number } = {}): string[] {
    const limit = filter.limit ?? 1000;
    return (
      filter.state
        ? prepared(this.db, "SELECT id FROM goals WHERE state = ? ORDER BY created_at DESC LIMIT ?")
            .pluck()
            .all(filter.state, limit)
        : prepared(this.db, "SELECT id FROM goals ORDER BY created_at DESC LIMIT ?").pluck().all(limit)
    ) as string[];
  }

  /** Every goal in `state`, in no particular order (recovery after a restart). */
  allIn(state: GoalState): string[] {
    return prepared(this.db, "SELECT id FROM goals WHERE state = ?").pluck().all(state) as string[];
  }

  stateOf(id: string): GoalState | undefined {
    return prepared(this.db, "SELECT state FROM goals WHERE id = ?").pluck().get(id) as GoalState | undefined;
  }

  /** The oldest queued goal: the next to start. */
  nextQueued(): string | undefined {
    return prepared(this.db, "SELECT id FROM goals WHERE state = 'queued' ORDER BY created_at, rowid LIMIT 1")
      .pluck()
      .get() as string | undefined;
  }

  markRunning(id: string): void {
    prepared(this.db, "UPDATE goals SET state = 'running', started_at = ? WHERE id = ?").run(Date.now(), id);
  }

  /** The goal's root agent. */
  setAgent(id: string, agentId: string): void {
    prepared(this.db, "UPDATE goals SET agent_id = ? WHERE id = ?").run(agentId, id);
  }

  /** The goal carries `intentId` from its start on (kernel/goal-intent.ts). */
  setCarriedIntent(id: string, intentId: string): void {
    prepared(this.db, "UPDATE goals SET carried_intent = ? WHERE id = ?").run(intentId, id);
  }

  /**
   * Add a charge of the goal's budget accounts to its usage; returns the intent it carries
   * (undefined when none, or when `id` is no goal of this table). Called by the ledger inside
   * the charge's transaction (kernel/goal-intent.ts chargeGoal): one statement, where the
   * hot path read the carried intent before.
   */
  chargeGoal(id: string, charged: Usage): string | undefined {
    return (prepared(
      this.db,
      "UPDATE goals SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ? WHERE id = ? RETURNING carried_intent",
    )
      .pluck()
      .get(charged.input_tokens, charged.output_tokens, id) ?? undefined) as string | undefined;
  }

  /** The goal ended; its usage is not written here: the ledger keeps it (chargeGoal). */
  markFinished(id: string, state: GoalEnd, o: { result?: string; error?: string }): void {
    prepared(this.db, "UPDATE goals SET state = ?, result = ?, error = ?, finished_at = ? WHERE id = ?").run(
      state,
      o.result ?? null,
      o.error ?? null,
      Date.now(),
      id,
    );
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
