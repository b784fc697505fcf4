// kernel/agent-record.ts — what the registry (registry.ts) holds of an agent and what it
// answers about one: the in-memory record (AgentRecord), the part of it the agents table
// keeps (StoredAgent, agent-rows.ts), the summary agent.status and agent.list return, and a
// record rebuilt from its row after a restart.

import type { Config } from "../config.js";
import type { LoadedManifest } from "../manifest/load.js";
import type { BudgetAccount } from "../security/budget.js";
import type { CapabilityToken } from "../security/tokens.js";
import type { TraceSpan } from "../telemetry/tracer.js";
import type { AgentRow } from "./agent-rows.js";
import type { AgentQueue, AgentTallies, AgentUsage } from "./agent-stats.js";
import type { AgentState } from "./events.js";
import { childNamesByOperator, modelNamedLiterally } from "./narrow-manifest.js";

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
   * not its own goal's: a world's copy (kernel/worlds.ts). Its row keeps it for what is
   * answered once the record left memory (egress judges a stopped world child as of its
   * world); a record rebuilt at a restart has none: a world does not outlive the process,
   * and on-demand children are stopped at a restart.
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

/** What the agents table keeps of an agent: an agent whose record left memory is answered from it. */
export type StoredAgent = Pick<
  AgentRecord,
  | "id"
  | "goalId"
  | "parentId"
  | "depth"
  | "manifest"
  | "identity"
  | "model"
  | "token"
  | "budgetAccount"
  | "ownsAccount"
  | "state"
  | "createdAt"
  | "stopReason"
  | "sandboxGoal"
>;

/** A row as a StoredAgent (its JSON columns parsed). */
export function storedAgent(r: AgentRow): StoredAgent {
  const a: StoredAgent = {
    id: r.id,
    goalId: r.goal_id,
    parentId: r.parent_id,
    depth: r.depth,
    manifest: JSON.parse(r.manifest) as LoadedManifest,
    identity: r.identity,
    model: r.model,
    token: JSON.parse(r.token) as CapabilityToken,
    budgetAccount: r.budget_account,
    ownsAccount: r.owns_account === 1,
    state: r.state,
    createdAt: r.created_at,
  };
  if (r.stop_reason !== null) a.stopReason = r.stop_reason;
  if (r.sandbox_goal !== null) return { ...a, sandboxGoal: r.sandbox_goal };
  return a;
}

/** agent.status's answer: the agent as held or as its row keeps it, its children, tallies and account. */
export function summarizeAgent(
  a: StoredAgent,
  children: string[],
  tallies: AgentTallies,
  account: Pick<BudgetAccount, "total_spent" | "limit_tokens"> | undefined,
): AgentSummary {
  const s: AgentSummary = {
    agent_id: a.id,
    goal_id: a.goalId,
    parent_id: a.parentId,
    manifest: a.manifest.name,
    model: a.model,
    lifecycle: a.manifest.lifecycle,
    state: a.state,
    depth: a.depth,
    children,
    created_at: new Date(a.createdAt).toISOString(),
    ...tallies,
  };
  if (a.manifest.description !== undefined) s.description = a.manifest.description;
  if (a.stopReason !== undefined) s.stop_reason = a.stopReason;
  if (account) s.budget = { spent: account.total_spent, limit: account.limit_tokens, shared: !a.ownsAccount };
  return s;
}

/**
 * The record of an agent a previous process left live (state paused until recovery decides),
 * under its parent's record when that is held.
 */
export function recordFromRow(r: AgentRow, parent: AgentRecord | undefined, config: Config): AgentRecord {
  const manifest = JSON.parse(r.manifest) as LoadedManifest;
  return {
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
      modelNamedLiterally(config, r.model),
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
}
