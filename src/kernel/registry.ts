// kernel/registry.ts — every live agent, its place in the tree and its state, and the ONE
// path that removes an agent: stopAgent. Removal stops the children first (depth first),
// aborts the agent's model call and tool calls in flight, revokes its capability token
// (which revokes every token issued under it), ends its Allow-Session approvals and closes
// its pending approval requests as expired (their waiting calls fail at once), drops
// what the gate kept for it (its turn's snapshot-before-mutation), closes its budget
// account (the unspent carve-out returns to the parent) and audits agent.stopped before
// announcing it; what it writes is one commit. Nothing else in the runtime may drop an agent, so
// none of these steps can be forgotten on some other path (the aaOS lesson).
//
// Admission limits (agents per goal, depth, children per agent): admission.ts.
//
// Memory: a record is held while its goal (or standalone agent's pseudo-goal) has an agent
// that is not stopped, so that a live goal's stopped children stay in their parent's tree
// for the cascade, the limits and the callers that look agents up by id. When a goal's last
// live agent stops (its root, whose stop took every other with it), the goal's records
// leave memory; what is answered about those agents from then on (status, lists with
// stopped agents, usage reported late, a second stop, a run refused) comes from their rows
// (agent-rows.ts), the same as before. Records are indexed by goal: admission and a goal's
// listing cost that goal's agents, not every agent the daemon ever ran.

import { randomBytes } from "node:crypto";
import type { Config } from "../config.js";
import { type Db, prepared } from "../db/database.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { Gate } from "../gate/invoke.js";
import type { ApprovalQueue } from "../security/approvals.js";
import type { AuditLog } from "../security/audit.js";
import type { BudgetLedger } from "../security/budget.js";
import type { TokenAuthority } from "../security/tokens.js";
import { type AdmissionGuard, Admissions } from "./admission.js";
import {
  type AgentRecord,
  type AgentSummary,
  type LineageLink,
  recordFromRow,
  type StoredAgent,
  storedAgent,
  summarizeAgent,
} from "./agent-record.js";
import { type AgentRow, AgentRows } from "./agent-rows.js";
import { AgentStats, type AgentTallies } from "./agent-stats.js";
import type { AgentState, EventBus } from "./events.js";

export type { AdmissionGuard } from "./admission.js";
export type { AgentRecord, AgentSummary, LineageLink, StoredAgent };

export interface RegistryDeps {
  db: Db;
  config: Config;
  tokens: TokenAuthority;
  approvals: ApprovalQueue;
  gate: Pick<Gate, "agentStopped">;
  budget: BudgetLedger;
  audit: AuditLog;
  events: EventBus;
}

/** A record held in memory, with its row's rowid (the registration order listings keep). */
interface Held {
  rec: AgentRecord;
  rowid: number;
}

/** A goal's held records (registration order) and how many of them are not stopped. */
interface GoalIndex {
  ids: Set<string>;
  live: number;
}

export class AgentRegistry {
  /** Records held: the agents of every goal that has an agent not stopped (see the header). */
  private readonly held = new Map<string, Held>();
  private readonly goals = new Map<string, GoalIndex>();
  private readonly rows: AgentRows;
  /** Usage and queue waits per agent not stopped, from the event bus (what the scheduler and loop report). */
  private readonly stats: AgentStats;
  private readonly admissions = new Admissions();
  /**
   * Agents whose stop failed (not on record), with the reason they were stopped for: "stopping",
   * and stopped again by the next stopAgent, which records that reason (the one their run saw).
   */
  private readonly unrecorded = new Map<string, string>();
  private readonly deps: RegistryDeps;

  constructor(deps: RegistryDeps) {
    this.deps = deps;
    this.rows = new AgentRows(deps.db, randomBytes(8).toString("hex"));
    this.stats = new AgentStats(deps.events, (id, apply) => this.rows.addToTallies(id, apply));
  }

  /**
   * Root first, down to the agent: ids and manifest names, from the agents table (so an
   * agent of an earlier daemon process is found too). Empty for an unknown agent.
   */
  lineage(agentId: string): LineageLink[] {
    const links: LineageLink[] = [];
    const seen = new Set<string>();
    let id: string | null = agentId;
    while (id !== null && !seen.has(id)) {
      seen.add(id);
      const row = prepared(this.deps.db, "SELECT parent_id, manifest FROM agents WHERE id = ?").get(id) as
        | { parent_id: string | null; manifest: string }
        | undefined;
      if (!row) break;
      links.unshift({ agent_id: id, manifest: (JSON.parse(row.manifest) as { name: string }).name });
      id = row.parent_id;
    }
    return links;
  }

  /** The agent's record while it is held (its goal has a live agent); undefined after. */
  get(id: string): AgentRecord | undefined {
    return this.held.get(id)?.rec;
  }

  /**
   * The agent's record while it is held. not_found otherwise: "agent … is stopped" for one
   * this process stopped (what every caller answers for a stopped agent), "no agent …" else.
   */
  require(id: string): AgentRecord {
    const a = this.held.get(id)?.rec;
    if (a) return a;
    if (this.rows.stoppedHere(id)) {
      throw new AidoError(ErrorCode.notFound, `agent ${id} is stopped`, { agent_id: id });
    }
    throw new AidoError(ErrorCode.notFound, `no agent ${id}`, { agent_id: id });
  }

  /** What is known of the agent: its record while held, else its row if this process stopped it. */
  find(id: string): StoredAgent | undefined {
    const a = this.held.get(id)?.rec;
    if (a) return a;
    const row = this.rows.stoppedHere(id);
    return row ? storedAgent(row) : undefined;
  }

  /** The agent's goal, as find() knows it (without parsing the row). */
  goalOf(id: string): string | undefined {
    return this.held.get(id)?.rec.goalId ?? this.rows.stoppedHere(id)?.goal_id;
  }

  /**
   * Records held (in memory): of one goal, costing the goal's agents, or of every goal
   * with a live agent. A stopped agent whose goal ended is not here: summaries() has it.
   */
  list(filter: { goalId?: string; includeStopped?: boolean } = {}): AgentRecord[] {
    const ids = filter.goalId === undefined ? this.held.keys() : (this.goals.get(filter.goalId)?.ids ?? []);
    const out: AgentRecord[] = [];
    for (const id of ids) {
      const a = this.held.get(id)?.rec;
      if (a && (filter.includeStopped || a.state !== "stopped")) out.push(a);
    }
    return out;
  }

  /** agent.status: the agent's summary, from its record or its row; not_found for an id this process does not know. */
  status(id: string): AgentSummary {
    const a = this.held.get(id)?.rec;
    if (a) return this.summary(a);
    const row = this.rows.stoppedHere(id);
    if (!row) throw new AidoError(ErrorCode.notFound, `no agent ${id}`, { agent_id: id });
    return this.rowSummary(row);
  }

  /**
   * agent.list: summaries of the agents not stopped, or with includeStopped of every agent
   * this process knew, held or not, in registration order.
   */
  summaries(filter: { goalId?: string; includeStopped?: boolean } = {}): AgentSummary[] {
    const held = this.list(filter);
    if (!filter.includeStopped) return held.map((a) => this.summary(a));
    const out: { rowid: number; summary: () => AgentSummary }[] = held.map((a) => ({
      rowid: (this.held.get(a.id) as Held).rowid,
      summary: () => this.summary(a),
    }));
    for (const row of this.rows.allStoppedHere(filter.goalId)) {
      if (!this.held.has(row.id)) out.push({ rowid: row.rowid, summary: () => this.rowSummary(row) });
    }
    return out.sort((x, y) => x.rowid - y.rowid).map((x) => x.summary());
  }

  /**
   * Take an admission slot for a new agent under `parent` (null: a goal's root agent) or
   * refuse with limit_exceeded naming the limit (admission.ts).
   */
  admit(goalId: string, parent: AgentRecord | null): AdmissionGuard {
    let liveChildren = 0;
    for (const c of parent?.children ?? []) {
      const child = this.held.get(c)?.rec;
      if (child && child.state !== "stopped") liveChildren++;
    }
    return this.admissions.admit(this.deps.config.limits, goalId, parent, {
      liveInGoal: this.goals.get(goalId)?.live ?? 0,
      liveChildren,
    });
  }

  /**
   * The spawned agent's row, written in the spawn's transaction (its rowid returned);
   * register() adds the agent once that transaction committed.
   */
  persist(rec: AgentRecord): number {
    return this.rows.insert(rec);
  }

  /**
   * Add a spawned agent (state "starting") under its admission slot, once its row (persist)
   * committed: a spawn whose commit failed (a full disk fails at the commit) leaves no agent
   * here either, holding a slot with a token that was never stored.
   */
  register(rec: AgentRecord, rowid: number, guard: AdmissionGuard): void {
    this.hold(rec, rowid);
    guard.commit();
  }

  setState(id: string, state: AgentState): void {
    const a = this.held.get(id)?.rec;
    if (!a || a.state === "stopped" || a.state === "stopping" || a.state === state) return;
    a.state = state;
    this.rows.setState(id, state);
    this.deps.events.emit("agent.state", a.goalId, { agentId: id, state });
  }

  /**
   * The one removal path (see the module header). Idempotent: stopping a stopped agent
   * does nothing, whether its record is held or has left memory. Never throws for an
   * agent it knows, except when the audit write fails (fail closed: the caller must learn
   * that the stop is not on record); the agent is then aborted and its token revoked all
   * the same, and a later call records the stop, with the reason it was first stopped for
   * (its own `asked` noted as recorded_by).
   */
  stopAgent(id: string, asked: string): void {
    const a = this.held.get(id)?.rec;
    if (!a) {
      if (this.rows.stoppedHere(id)) return;
      throw new AidoError(ErrorCode.notFound, `no agent ${id}`, { agent_id: id });
    }
    const first = this.unrecorded.get(id);
    if (a.state === "stopped" || (a.state === "stopping" && first === undefined)) return;
    this.unrecorded.delete(id);
    const reason = first ?? asked;
    a.state = "stopping";
    const { tokens, approvals, gate, budget, audit, events, db } = this.deps;
    const aborted = () =>
      a.abort.abort(new AidoError(ErrorCode.cancelled, `agent ${id} stopped: ${reason}`, { agent_id: id }));
    try {
      // Each child is stopped even when one before it could not be: the first failure is
      // thrown once they all were.
      stopEach(a.children, (child) => {
        if (this.held.has(child)) this.stopAgent(child, `parent ${id} stopped: ${asked}`);
      });
      aborted();
      // One commit for the revocation, its approvals closed, its budget account closed and its
      // two audit entries (token.revoked, agent.stopped) with the agent's row: the stop is on
      // record whole or not at all. Should it fail (the audit cannot be written), nothing of
      // it is, and the token is still revoked on its own before the failure surfaces: an agent
      // whose stop is not on record must not keep a valid token.
      db.transaction(() => {
        try {
          const revoked = tokens.revoke(a.token.id);
          audit.record(
            "token.revoked",
            { token_id: a.token.id, revoked, reason },
            { goalId: a.goalId, agentId: id },
          );
        } catch (e) {
          // Already revoked through an ancestor's cascade: nothing left to revoke.
          if (!(e instanceof AidoError && e.code === ErrorCode.notFound)) throw e;
        }
        approvals.closeAgent(id, reason);
        if (a.ownsAccount) {
          try {
            budget.close(a.budgetAccount);
          } catch (e) {
            if (!(e instanceof AidoError && e.code === ErrorCode.notFound)) throw e;
          }
        }
        audit.record("agent.stopped", first === undefined ? { reason } : { reason, recorded_by: asked }, {
          goalId: a.goalId,
          agentId: id,
        });
        this.rows.markStopped(id, reason, this.stats.of(id));
      }).immediate();
    } catch (e) {
      // Its stop (or a child's, before it) is not on record, yet the agent is stopped in
      // effect: aborted, its token revoked on its own (every token issued under it with it),
      // its pending requests closed on their own, each committed by itself when it can be.
      // It stays "stopping" (it runs no more), and the next stopAgent records the stop.
      this.unrecorded.set(id, reason);
      aborted();
      try {
        tokens.revoke(a.token.id);
      } catch {
        // The failure above is the one to report.
      }
      try {
        approvals.closeAgent(id, reason);
      } catch {
        // Likewise.
      }
      throw e;
    }
    // Its tallies are on its row now; a report that comes later is added there.
    this.stats.forget(id);
    gate.agentStopped(id);
    a.state = "stopped";
    a.stopReason = reason;
    const goal = this.goals.get(a.goalId);
    if (goal) goal.live--;
    events.emit("agent.stopped", a.goalId, { agentId: id, reason, state: "stopped" });
    // The goal's last live agent (its root, whose stop took every other with it): nothing
    // needs the goal's records any more, and its agents are answered from their rows.
    if (goal && goal.live === 0) this.release(a.goalId);
  }

  /**
   * Stop every agent of a goal (roots first, which takes their subtrees with them). One stop
   * that fails does not spare the others: the first failure is thrown once all were tried.
   */
  stopGoal(goalId: string, reason: string): void {
    const tried = new Set<string>();
    const stop = (id: string) => {
      if (tried.has(id)) return;
      tried.add(id);
      this.stopAgent(id, reason);
    };
    const roots = this.list({ goalId }).filter((x) => x.parentId === null || !this.held.has(x.parentId));
    try {
      stopEach(
        roots.map((a) => a.id),
        stop,
      );
    } finally {
      // Then the rest (a root's stop takes its subtree; a root whose stop failed is not tried twice).
      stopEach(
        this.list({ goalId }).map((a) => a.id),
        stop,
      );
    }
  }

  /** A held agent's summary; a stopped one's tallies are its row's. */
  private summary(a: AgentRecord): AgentSummary {
    const row = a.state === "stopped" ? this.rows.stoppedHere(a.id) : undefined;
    return this.summarize(a, [...a.children], row ? this.rows.tallies(row) : this.stats.of(a.id));
  }

  /** A summary from the row of an agent whose record left memory. */
  private rowSummary(row: AgentRow): AgentSummary {
    return this.summarize(storedAgent(row), this.rows.childrenStoppedHere(row.id), this.rows.tallies(row));
  }

  private summarize(a: StoredAgent, children: string[], tallies: AgentTallies): AgentSummary {
    return summarizeAgent(a, children, tallies, this.deps.budget.find(a.budgetAccount));
  }

  private hold(rec: AgentRecord, rowid: number): void {
    this.held.set(rec.id, { rec, rowid });
    let goal = this.goals.get(rec.goalId);
    if (!goal) {
      goal = { ids: new Set(), live: 0 };
      this.goals.set(rec.goalId, goal);
    }
    goal.ids.add(rec.id);
    if (rec.state !== "stopped") {
      goal.live++;
      this.stats.track(rec.id);
    }
    if (rec.parentId) this.held.get(rec.parentId)?.rec.children.add(rec.id);
  }

  /** The goal's records leave memory (every one of them is stopped). */
  private release(goalId: string): void {
    for (const id of this.goals.get(goalId)?.ids ?? []) this.held.delete(id);
    this.goals.delete(goalId);
  }

  /**
   * After a restart: persistent agents that were not stopped come back (paused, waiting
   * for a message), with the token they were issued if it still verifies. Every other
   * agent that was live when the process died is stopped through the one removal path.
   */
  recover(reason: string): { resumed: string[]; stopped: string[] } {
    const rows = this.rows.unstopped();
    const resumed: string[] = [];
    const stopped: string[] = [];
    for (const r of rows) {
      const parent = r.parent_id === null ? undefined : this.get(r.parent_id);
      const rec = recordFromRow(r, parent, this.deps.config);
      this.hold(rec, r.rowid);
    }
    for (const r of rows) {
      const rec = this.get(r.id);
      if (!rec || rec.state === "stopped") continue;
      let usable = r.lifecycle === "persistent";
      let why = reason;
      if (usable) {
        try {
          this.deps.tokens.verify(rec.token);
        } catch (e) {
          usable = false;
          why = `${reason}; its token no longer verifies: ${errorMessage(e)}`;
        }
      }
      if (usable) {
        this.rows.setState(rec.id, "paused");
        resumed.push(rec.id);
      } else {
        this.stopAgent(rec.id, why);
        stopped.push(rec.id);
      }
    }
    return { resumed, stopped };
  }
}

/** `stop` each id in turn, whatever the ones before did; then throw the first failure. */
function stopEach(ids: Iterable<string>, stop: (id: string) => void): void {
  let failed: { e: unknown } | undefined;
  for (const id of [...ids]) {
    try {
      stop(id);
    } catch (e) {
      failed ??= { e };
    }
  }
  if (failed) throw failed.e;
}
