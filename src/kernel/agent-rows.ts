// kernel/agent-rows.ts — the agents table: one row per agent ever registered, written
// with its spawn and its stop. The registry (registry.ts) holds records in memory only
// while their goal has a live agent; once a goal's last agent stops its records leave
// memory, and what the runtime answers about those agents (agent.status, agent.list with
// stopped agents, a usage report that comes late) is read here instead.
//
// "Stopped here": each registry marks the rows it stops with its run (one per process,
// stopped_in), so that a stopped agent is answered for exactly as long as it was when the
// registry held every record for the life of the process: by the process that knew it,
// never by a later one (which answers not_found, as it always did).

import { type Db, migrate, prepared } from "../db/database.js";
import type { StoredAgent } from "./agent-record.js";
import { type AgentTallies, noTallies } from "./agent-stats.js";
import type { AgentState } from "./events.js";

const MIGRATIONS = [
  `CREATE TABLE agents (
     id TEXT PRIMARY KEY,
     goal_id TEXT NOT NULL,
     parent_id TEXT,
     depth INTEGER NOT NULL,
     manifest TEXT NOT NULL,
     model TEXT NOT NULL,
     token TEXT NOT NULL,
     budget_account TEXT NOT NULL,
     owns_account INTEGER NOT NULL,
     lifecycle TEXT NOT NULL,
     state TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     stopped_at INTEGER,
     stop_reason TEXT
   );
   CREATE INDEX agents_goal ON agents (goal_id);
   CREATE INDEX agents_live ON agents (state) WHERE state != 'stopped';`,
  // Who an agent is across goals (memories and Allow Always grants bind to it); rows from
  // before it existed were all named by their manifest, which is what a root's identity is.
  `ALTER TABLE agents ADD COLUMN identity TEXT;
   UPDATE agents SET identity = json_extract(manifest, '$.name') WHERE identity IS NULL;`,
  // Answers about stopped agents whose records left memory: the run that stopped the agent,
  // its usage and queue tallies as of its stop (agent-stats.ts), and its children.
  `ALTER TABLE agents ADD COLUMN stopped_in TEXT;
   ALTER TABLE agents ADD COLUMN tallies TEXT;
   CREATE INDEX agents_parent ON agents (parent_id);
   CREATE INDEX agents_stopped_in ON agents (stopped_in, goal_id);`,
  // The world (kernel/worlds.ts) a child acted in: egress still judges a stopped world child
  // as an agent of that world once its record left memory.
  "ALTER TABLE agents ADD COLUMN sandbox_goal TEXT;",
];

/** An agents row as stored (JSON columns unparsed), with its rowid: the registration order. */
export interface AgentRow {
  rowid: number;
  id: string;
  goal_id: string;
  parent_id: string | null;
  depth: number;
  manifest: string;
  identity: string;
  model: string;
  token: string;
  budget_account: string;
  owns_account: number;
  lifecycle: string;
  state: AgentState;
  created_at: number;
  stop_reason: string | null;
  tallies: string | null;
  sandbox_goal: string | null;
}

export class AgentRows {
  constructor(
    private readonly db: Db,
    /** This registry's run: the rows it stops carry it (stopped_in). */
    readonly run: string,
  ) {
    migrate(db, "agents", MIGRATIONS);
  }

  /** The row of a new agent; returns its rowid. */
  insert(a: StoredAgent): number {
    return Number(
      prepared(
        this.db,
        `INSERT INTO agents (id, goal_id, parent_id, depth, manifest, model, token, budget_account, owns_account,
             lifecycle, state, created_at, identity, sandbox_goal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        a.id,
        a.goalId,
        a.parentId,
        a.depth,
        JSON.stringify(a.manifest),
        a.model,
        JSON.stringify(a.token),
        a.budgetAccount,
        a.ownsAccount ? 1 : 0,
        a.manifest.lifecycle,
        a.state,
        a.createdAt,
        a.identity,
        a.sandboxGoal ?? null,
      ).lastInsertRowid,
    );
  }

  setState(id: string, state: AgentState): void {
    prepared(this.db, "UPDATE agents SET state = ? WHERE id = ?").run(state, id);
  }

  /** The agent stopped (inside the stop's commit): its reason, this run, its tallies so far. */
  markStopped(id: string, reason: string, tallies: AgentTallies): void {
    prepared(
      this.db,
      `UPDATE agents SET state = 'stopped', stopped_at = ?, stop_reason = ?, stopped_in = ?, tallies = ?
         WHERE id = ?`,
    ).run(Date.now(), reason, this.run, JSON.stringify(tallies), id);
  }

  /** Rows a previous process left live, parents before children. */
  unstopped(): AgentRow[] {
    return prepared(
      this.db,
      "SELECT rowid, * FROM agents WHERE state != 'stopped' ORDER BY depth, created_at",
    ).all() as AgentRow[];
  }

  /** The agent's row when this run stopped it; undefined for any other id. */
  stoppedHere(id: string): AgentRow | undefined {
    return prepared(this.db, "SELECT rowid, * FROM agents WHERE id = ? AND stopped_in = ?").get(
      id,
      this.run,
    ) as AgentRow | undefined;
  }

  /** Rows this run stopped (of one goal), in registration order. */
  allStoppedHere(goalId?: string): AgentRow[] {
    return (
      goalId === undefined
        ? prepared(this.db, "SELECT rowid, * FROM agents WHERE stopped_in = ? ORDER BY rowid").all(this.run)
        : prepared(
            this.db,
            "SELECT rowid, * FROM agents WHERE stopped_in = ? AND goal_id = ? ORDER BY rowid",
          ).all(this.run, goalId)
    ) as AgentRow[];
  }

  /**
   * The children of an agent this run stopped, in registration order: those this run
   * stopped, which are all it registered or recovered (a stopped parent's children are).
   */
  childrenStoppedHere(parentId: string): string[] {
    return prepared(this.db, "SELECT id FROM agents WHERE parent_id = ? AND stopped_in = ? ORDER BY rowid")
      .pluck()
      .all(parentId, this.run) as string[];
  }

  /** A stopped agent's tallies as its row keeps them. */
  tallies(row: Pick<AgentRow, "tallies">): AgentTallies {
    return row.tallies === null ? noTallies() : (JSON.parse(row.tallies) as AgentTallies);
  }

  /** A report that came after the agent stopped, added to its row (nothing for an agent this run did not stop). */
  addToTallies(id: string, apply: (t: AgentTallies) => void): void {
    const row = prepared(this.db, "SELECT tallies FROM agents WHERE id = ? AND stopped_in = ?").get(
      id,
      this.run,
    ) as Pick<AgentRow, "tallies"> | undefined;
    if (!row) return;
    const t = this.tallies(row);
    apply(t);
    prepared(this.db, "UPDATE agents SET tallies = ? WHERE id = ?").run(JSON.stringify(t), id);
  }
}
