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
// Admission limits (agents per goal, depth, children per agent) are held by an
// AdmissionGuard: spawn takes one before any work, and the slot is freed by release()
// unless commit() hands it to a registered agent, so a spawn that fails half-way (bad
// grants, no budget, provider misconfigured) never leaks a slot.
//
// Counting: "agents per goal" and "children per agent" count agents that are not
// stopped, plus admissions in progress. A finished on-demand child frees its slot.

import type { Config } from "../config.js";
import { type Db, migrate, prepared } from "../db/database.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { Gate } from "../gate/invoke.js";
import type { LoadedManifest } from "../manifest/load.js";
import type { ApprovalQueue } from "../security/approvals.js";
import type { AuditLog } from "../security/audit.js";
import type { BudgetLedger } from "../security/budget.js";
import type { CapabilityToken, TokenAuthority } from "../security/tokens.js";
import type { TraceSpan } from "../telemetry/tracer.js";
import { type AgentQueue, AgentStats, type AgentUsage } from "./agent-stats.js";
import type { AgentState, EventBus } from "./events.js";
import { childNamesByOperator, modelNamedLiterally } from "./narrow-manifest.js";

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
];

export interface AgentRecord {
  readonly id: string;
  readonly goalId: string;
  readonly parentId: string | null;
  readonly depth: number;
  readonly manifest: LoadedManifest;
  /**
   * Who the agent is across goals, in a form no model can choose: a root agent (its manifest
   * came from the operator: a manifest folder, goal.submit, agent.spawn) is its manifest's
   * name; a child, whose manifest a model wrote, is its parent's identity + "/" + its name
   * ("bootstrap/researcher"). Manifest names cannot hold "/", so a model-written child can
   * never take the identity of an operator's manifest. Memories and Allow Always grants
   * bind to it.
   */
  readonly identity: string;
  /** "provider/model" the agent calls. */
  readonly model: string;
  /**
   * The operator chose `model`: a root's, a child's that its parent's was and that the
   * operator chose, or one every models.allowed list names as itself (no glob). A model a
   * child's manifest names past a glob is a model's text: traces name it only with content
   * on (telemetry/attributes.ts tracedModel).
   */
  readonly modelNamedByOperator: boolean;
  /**
   * The operator chose the manifest's name: a root's, or a child's its parent's
   * childNamesByOperator has. Under `spawn_child: [*]` a child's name is a model's text:
   * traces name it only with content on (telemetry/attributes.ts tracedAgentName).
   */
  readonly nameByOperator: boolean;
  /** The child names this agent may spawn that the operator chose (narrow-manifest.ts childNamesByOperator). */
  readonly childNamesByOperator: ReadonlySet<string>;
  readonly token: CapabilityToken;
  readonly budgetAccount: string;
  /** False when the account is the goal's root, which the goal closes itself. */
  readonly ownsAccount: boolean;
  state: AgentState;
  readonly children: Set<string>;
  /**
   * The pseudo-goal whose folders and container the agent's tool calls act on, when it is
   * not its own goal's: a world's copy (kernel/worlds.ts). In memory only: a world does
   * not outlive the process, and on-demand children are stopped at a restart.
   */
  readonly sandboxGoal?: string;
  /**
   * Traces: the span the agent's runs nest under (the parent's execute_tool span of the
   * spawn); absent: its runs are trace roots (a goal's bootstrap, agent.spawn).
   */
  readonly traceParent?: TraceSpan;
  /** Traces: the invoke_agent span of the run in progress (agent/loop.ts sets and clears it). */
  span?: TraceSpan;
  /** Aborts the agent's model call and tool calls in flight. Replaced per run for persistent agents. */
  abort: AbortController;
  readonly createdAt: number;
  stopReason?: string;
}

export interface AgentSummary {
  agent_id: string;
  goal_id: string;
  parent_id: string | null;
  manifest: string;
  /** The manifest's description, when it has one. */
  description?: string;
  model: string;
  lifecycle: string;
  state: AgentState;
  depth: number;
  children: string[];
  created_at: string;
  stop_reason?: string;
  /**
   * The budget account it draws on: tokens spent by it and its subtree (lifetime) of the
   * account's limit; shared: the goal's root account (a root agent's), not one of its own.
   */
  budget?: { spent: number; limit: number; shared: boolean };
  /** Tokens its own model calls used, as reported (since the daemon started). */
  usage: AgentUsage;
  /** Its model calls in the inference queue (since the daemon started): waiting now, and how long they waited. */
  queue: AgentQueue;
}

/** One link of an agent's lineage (root first). */
export interface LineageLink {
  agent_id: string;
  manifest: string;
}

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

/** A held admission slot. Exactly one of commit/release takes effect; both are idempotent. */
export class AdmissionGuard {
  private done = false;
  constructor(
    readonly goalId: string,
    readonly parentId: string | null,
    readonly depth: number,
    private readonly free: () => void,
  ) {}

  /** The slot now belongs to a registered agent (the registry counts it from here on). */
  commit(): void {
    if (this.done) return;
    this.done = true;
    this.free();
  }

  /** Spawning failed: give the slot back. */
  release(): void {
    this.commit();
  }
}

export class AgentRegistry {
  private readonly agents = new Map<string, AgentRecord>();
  /** Usage and queue waits per agent, from the event bus (what the scheduler and loop report). */
  private readonly stats: AgentStats;
  private readonly pendingByGoal = new Map<string, number>();
  private readonly pendingByParent = new Map<string, number>();
  private readonly deps: RegistryDeps;

  constructor(deps: RegistryDeps) {
    this.deps = deps;
    migrate(deps.db, "agents", MIGRATIONS);
    this.stats = new AgentStats(deps.events);
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

  get(id: string): AgentRecord | undefined {
    return this.agents.get(id);
  }

  require(id: string): AgentRecord {
    const a = this.agents.get(id);
    if (!a) throw new AidoError(ErrorCode.notFound, `no agent ${id}`, { agent_id: id });
    return a;
  }

  list(filter: { goalId?: string; includeStopped?: boolean } = {}): AgentRecord[] {
    return [...this.agents.values()].filter(
      (a) =>
        (filter.goalId === undefined || a.goalId === filter.goalId) &&
        (filter.includeStopped || a.state !== "stopped"),
    );
  }

  /**
   * Take an admission slot for a new agent under `parent` (null: a goal's root agent) or
   * refuse with limit_exceeded naming the limit. Limits: the config's, tightened by the
   * parent manifest's `limits.max_children` / `limits.max_depth`.
   */
  admit(goalId: string, parent: AgentRecord | null): AdmissionGuard {
    const { limits } = this.deps.config;
    const depth = parent ? parent.depth + 1 : 0;
    const live = this.list({ goalId }).length + (this.pendingByGoal.get(goalId) ?? 0);
    if (live >= limits.maxAgentsPerGoal) {
      throw limit(
        `goal ${goalId} already has ${live} agents (limits.max_agents_per_goal ${limits.maxAgentsPerGoal})`,
        {
          limit: "max_agents_per_goal",
        },
      );
    }
    if (parent) {
      const maxDepth = Math.min(
        limits.maxDepth,
        parent.manifest.limits?.max_depth ?? Number.POSITIVE_INFINITY,
      );
      if (depth > maxDepth) {
        throw limit(
          `agent ${parent.id} (depth ${parent.depth}) may not spawn: depth ${depth} exceeds max_depth ${maxDepth}`,
          {
            limit: "max_depth",
          },
        );
      }
      const maxChildren = Math.min(
        limits.maxChildren,
        parent.manifest.limits?.max_children ?? Number.POSITIVE_INFINITY,
      );
      const kids =
        [...parent.children].filter((c) => this.agents.get(c)?.state !== "stopped").length +
        (this.pendingByParent.get(parent.id) ?? 0);
      if (kids >= maxChildren) {
        throw limit(`agent ${parent.id} already has ${kids} live children (max_children ${maxChildren})`, {
          limit: "max_children",
        });
      }
    }
    bump(this.pendingByGoal, goalId, 1);
    if (parent) bump(this.pendingByParent, parent.id, 1);
    return new AdmissionGuard(goalId, parent?.id ?? null, depth, () => {
      bump(this.pendingByGoal, goalId, -1);
      if (parent) bump(this.pendingByParent, parent.id, -1);
    });
  }

  /** Add a spawned agent (state "starting") under its admission slot and persist it. */
  register(rec: AgentRecord, guard: AdmissionGuard): void {
    // Row first: an insert that fails leaves nothing registered in memory either.
    prepared(
      this.deps.db,
      `INSERT INTO agents (id, goal_id, parent_id, depth, manifest, model, token, budget_account, owns_account,
           lifecycle, state, created_at, identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      rec.id,
      rec.goalId,
      rec.parentId,
      rec.depth,
      JSON.stringify(rec.manifest),
      rec.model,
      JSON.stringify(rec.token),
      rec.budgetAccount,
      rec.ownsAccount ? 1 : 0,
      rec.manifest.lifecycle,
      rec.state,
      rec.createdAt,
      rec.identity,
    );
    this.agents.set(rec.id, rec);
    if (rec.parentId) this.agents.get(rec.parentId)?.children.add(rec.id);
    guard.commit();
  }

  setState(id: string, state: AgentState): void {
    const a = this.agents.get(id);
    if (!a || a.state === "stopped" || a.state === "stopping" || a.state === state) return;
    a.state = state;
    prepared(this.deps.db, "UPDATE agents SET state = ? WHERE id = ?").run(state, id);
    this.deps.events.emit("agent.state", a.goalId, { agentId: id, state });
  }

  /**
   * The one removal path (see the module header). Idempotent: stopping a stopped agent
   * does nothing. Never throws for an agent it knows, except when the audit write fails
   * (fail closed: the caller must learn that the stop is not on record).
   */
  stopAgent(id: string, reason: string): void {
    const a = this.agents.get(id);
    if (!a) throw new AidoError(ErrorCode.notFound, `no agent ${id}`, { agent_id: id });
    if (a.state === "stopped" || a.state === "stopping") return;
    a.state = "stopping";
    const { tokens, approvals, gate, budget, audit, events, db } = this.deps;
    for (const child of a.children) {
      if (this.agents.get(child)) this.stopAgent(child, `parent ${id} stopped: ${reason}`);
    }
    a.abort.abort(new AidoError(ErrorCode.cancelled, `agent ${id} stopped: ${reason}`, { agent_id: id }));
    // One commit for the revocation, its approvals closed, its budget account closed and its
    // two audit entries (token.revoked, agent.stopped) with the agent's row: the stop is on
    // record whole or not at all. Should it fail (the audit cannot be written), nothing of
    // it is, and the token is still revoked on its own before the failure surfaces: an agent
    // whose stop is not on record must not keep a valid token.
    try {
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
        audit.record("agent.stopped", { reason }, { goalId: a.goalId, agentId: id });
        prepared(db, "UPDATE agents SET state = 'stopped', stopped_at = ?, stop_reason = ? WHERE id = ?").run(
          Date.now(),
          reason,
          id,
        );
      }).immediate();
    } catch (e) {
      try {
        tokens.revoke(a.token.id);
      } catch {
        // The failure above is the one to report.
      }
      throw e;
    }
    gate.agentStopped(id);
    a.state = "stopped";
    a.stopReason = reason;
    events.emit("agent.stopped", a.goalId, { agentId: id, reason, state: "stopped" });
  }

  /** Stop every agent of a goal (roots first, which takes their subtrees with them). */
  stopGoal(goalId: string, reason: string): void {
    for (const a of this.list({ goalId }).filter(
      (x) => x.parentId === null || !this.agents.has(x.parentId),
    )) {
      this.stopAgent(a.id, reason);
    }
    for (const a of this.list({ goalId })) this.stopAgent(a.id, reason);
  }

  summary(a: AgentRecord): AgentSummary {
    const s: AgentSummary = {
      agent_id: a.id,
      goal_id: a.goalId,
      parent_id: a.parentId,
      manifest: a.manifest.name,
      model: a.model,
      lifecycle: a.manifest.lifecycle,
      state: a.state,
      depth: a.depth,
      children: [...a.children],
      created_at: new Date(a.createdAt).toISOString(),
      ...this.stats.of(a.id),
    };
    if (a.manifest.description !== undefined) s.description = a.manifest.description;
    if (a.stopReason !== undefined) s.stop_reason = a.stopReason;
    const account = this.deps.budget.find(a.budgetAccount);
    if (account)
      s.budget = { spent: account.total_spent, limit: account.limit_tokens, shared: !a.ownsAccount };
    return s;
  }

  /**
   * After a restart: persistent agents that were not stopped come back (paused, waiting
   * for a message), with the token they were issued if it still verifies. Every other
   * agent that was live when the process died is stopped through the one removal path.
   */
  recover(reason: string): { resumed: string[]; stopped: string[] } {
    const rows = prepared(
      this.deps.db,
      "SELECT * FROM agents WHERE state != 'stopped' ORDER BY depth, created_at",
    ).all() as AgentRow[];
    const resumed: string[] = [];
    const stopped: string[] = [];
    for (const r of rows) {
      const parent = r.parent_id === null ? undefined : this.agents.get(r.parent_id);
      const manifest = JSON.parse(r.manifest) as LoadedManifest;
      const rec: AgentRecord = {
        id: r.id,
        goalId: r.goal_id,
        parentId: r.parent_id,
        depth: r.depth,
        manifest,
        identity: r.identity,
        model: r.model,
        modelNamedByOperator:
          r.parent_id === null ||
          (parent !== undefined && r.model === parent.model && parent.modelNamedByOperator) ||
          modelNamedLiterally(this.deps.config, r.model),
        // A child whose parent is not here (stopped) is taken as the model's naming.
        nameByOperator: r.parent_id === null || (parent?.childNamesByOperator.has(manifest.name) ?? false),
        childNamesByOperator: childNamesByOperator(
          manifest,
          r.parent_id === null ? undefined : (parent ?? { childNamesByOperator: new Set() }),
        ),
        token: JSON.parse(r.token) as CapabilityToken,
        budgetAccount: r.budget_account,
        ownsAccount: r.owns_account === 1,
        state: "paused",
        children: new Set(),
        abort: new AbortController(),
        createdAt: r.created_at,
      };
      this.agents.set(rec.id, rec);
      if (rec.parentId) this.agents.get(rec.parentId)?.children.add(rec.id);
    }
    for (const r of rows) {
      const rec = this.agents.get(r.id);
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
        prepared(this.deps.db, "UPDATE agents SET state = 'paused' WHERE id = ?").run(rec.id);
        resumed.push(rec.id);
      } else {
        this.stopAgent(rec.id, why);
        stopped.push(rec.id);
      }
    }
    return { resumed, stopped };
  }
}

interface AgentRow {
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
}

function bump(m: Map<string, number>, key: string, d: number): void {
  const n = (m.get(key) ?? 0) + d;
  if (n <= 0) m.delete(key);
  else m.set(key, n);
}

function limit(message: string, details: Record<string, unknown>): AidoError {
  return new AidoError(ErrorCode.limitExceeded, message, details);
}
