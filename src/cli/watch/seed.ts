// cli/watch/seed.ts — what the watch is told outside its stream, which only carries news:
// goal.status and agent.list before it starts (the goal, the agents already alive), the
// approvals already waiting (a request made before the watch began, the goal sitting on it,
// was not shown, and the one thing the person watching could do, answer it, went unsaid),
// and goal.status again when the stream missed the goal's end. Pure, as state.ts.

import type { AgentState } from "../../kernel/events.js";
import { secretKinds } from "../../security/approval-shown.js";
import {
  type AgentView,
  dropEndedGoals,
  type GoalView,
  type GoalViewState,
  isOutcome,
  markEnded,
  outcome,
  type PendingApproval,
  type WatchState,
  wasDropped,
} from "./state.js";
import { kept } from "./text.js";

export interface InitialWatch {
  goalId?: string | null;
  budgetTokens?: number;
  activityLimit?: number;
  /** What goal.status said before the stream started (the stream only carries news). */
  goal?: {
    goal_id: string;
    state: GoalViewState;
    goal?: string;
    error?: string;
    usage?: InputOutput;
    node?: string;
    /** Answered from the node's own record, Redis unread (goal.status in a cluster). */
    cluster?: { redis: "unreachable" | "refused"; reason: string; as_of: string | null };
  };
  /** What agent.list said: the agents already alive (or stopped) when the watch began. */
  agents?: readonly KnownAgent[];
}

/** The fields of agent.list's AgentSummary the view uses. */
export interface KnownAgent {
  agent_id: string;
  goal_id: string;
  parent_id: string | null;
  manifest: string;
  description?: string;
  model: string;
  state: AgentState;
  depth: number;
  stop_reason?: string;
}

interface InputOutput {
  input_tokens: number;
  output_tokens: number;
}

export function initialWatchState(init: InitialWatch = {}): WatchState {
  const s: WatchState = {
    goalId: init.goalId ?? null,
    goals: {},
    agents: {},
    agentOrder: [],
    inference: {},
    approvals: {},
    activity: [],
    activityLimit: init.activityLimit ?? 12,
    activitySeq: 0,
    events: 0,
  };
  if (init.budgetTokens !== undefined) s.budgetTokens = init.budgetTokens;
  if (init.goal) {
    const g: GoalView = {
      id: init.goal.goal_id,
      state: init.goal.state,
      inputTokens: init.goal.usage?.input_tokens ?? 0,
      outputTokens: init.goal.usage?.output_tokens ?? 0,
    };
    if (init.goal.goal !== undefined) g.text = kept(init.goal.goal);
    if (init.goal.error !== undefined) g.error = kept(init.goal.error);
    if (init.goal.node !== undefined) g.node = init.goal.node;
    if (init.goal.cluster !== undefined) g.ownRecord = ownRecordOf(init.goal.cluster);
    s.goals[g.id] = g;
    if (s.goalId === g.id && isOutcome(g.state)) s.finished = outcome(g.state, g.error);
  }
  for (const a of init.agents ?? []) {
    const view: AgentView = {
      id: a.agent_id,
      goalId: a.goal_id,
      manifest: a.manifest,
      model: a.model,
      parentId: a.parent_id,
      depth: a.depth,
      state: a.state,
      inputTokens: 0,
      outputTokens: 0,
      toolsRunning: {},
      toolCalls: 0,
      denials: 0,
    };
    if (a.description !== undefined) view.description = a.description;
    if (a.stop_reason !== undefined) view.stopReason = a.stop_reason;
    s.agents[a.agent_id] = view;
    s.agentOrder.push(a.agent_id);
  }
  return s;
}

/** Folds a goal.status answer into the view (used when the stream missed the goal's end). */
export function withGoalStatus(prev: WatchState, goal: NonNullable<InitialWatch["goal"]>): WatchState {
  return withGoalStatuses(prev, [goal]);
}

/** withGoalStatus of each of `goals` (goal.list's), the view copied once. */
export function withGoalStatuses(
  prev: WatchState,
  goals: readonly NonNullable<InitialWatch["goal"]>[],
): WatchState {
  const s = structuredClone(prev);
  for (const goal of goals) foldGoal(s, goal);
  dropEndedGoals(s);
  return s;
}

/** goal.status's own-record mark as the view keeps it. */
function ownRecordOf(c: NonNullable<NonNullable<InitialWatch["goal"]>["cluster"]>): GoalView["ownRecord"] {
  return { redis: c.redis, reason: kept(c.reason), asOf: c.as_of };
}

function foldGoal(s: WatchState, goal: NonNullable<InitialWatch["goal"]>): void {
  if (wasDropped(s, goal.goal_id)) return;
  const g: GoalView = s.goals[goal.goal_id] ?? {
    id: goal.goal_id,
    state: goal.state,
    inputTokens: 0,
    outputTokens: 0,
  };
  // An end is final: a goal.list read before the stream told it (the seed once Redis is back,
  // read while the stream runs) does not draw an ended goal as running again.
  if (!isOutcome(g.state)) g.state = goal.state;
  g.inputTokens = Math.max(g.inputTokens, goal.usage?.input_tokens ?? 0);
  g.outputTokens = Math.max(g.outputTokens, goal.usage?.output_tokens ?? 0);
  if (goal.goal !== undefined) g.text = kept(goal.goal);
  if (goal.error !== undefined) g.error = kept(goal.error);
  if (goal.node !== undefined) g.node = goal.node;
  if (goal.cluster !== undefined) g.ownRecord = ownRecordOf(goal.cluster);
  else delete g.ownRecord;
  if (isOutcome(g.state)) markEnded(s, g);
  s.goals[g.id] = g;
  if (s.goalId === g.id && isOutcome(g.state)) s.finished = outcome(g.state, g.error);
}

/**
 * The goals of the live agents in the view, as running on `node`, those not in it yet: an
 * all-goals watch on a node whose Redis is away starts with this node's own goals (its
 * agents are its own; the cluster's goals are read once Redis answers).
 */
export function withAgentsGoals(prev: WatchState, node: string | undefined): WatchState {
  const ids = new Set<string>();
  for (const a of Object.values(prev.agents))
    if (a.goalId !== null && a.state !== "stopped" && prev.goals[a.goalId] === undefined) ids.add(a.goalId);
  if (ids.size === 0) return prev;
  const s = structuredClone(prev);
  for (const id of ids) {
    const g: GoalView = { id, state: "running", inputTokens: 0, outputTokens: 0 };
    if (node) g.node = node;
    s.goals[id] = g;
  }
  return s;
}

/** The fields of approval.list's records the view uses (node: in a cluster, where the agent waits). */
export interface KnownApproval {
  id: string;
  goal_id: string | null;
  agent_id: string;
  tool: string;
  summary: string;
  status: string;
  covers?: { allow_session: string; allow_always: string };
  carries_secrets?: unknown;
  node?: string;
}

/** Folds approval.list's pending requests of what is watched (one goal, or all) into the view. */
export function withPendingApprovals(prev: WatchState, approvals: readonly KnownApproval[]): WatchState {
  const s = structuredClone(prev);
  for (const a of approvals) {
    if (a.status !== "pending" || !readableApproval(a)) continue;
    if (s.goalId !== null && a.goal_id !== s.goalId) continue;
    // Answered, or its goal ended, as the stream told after the list was read: it waits no more.
    if (s.decidedApprovals?.includes(a.id)) continue;
    const goal = a.goal_id === null ? undefined : s.goals[a.goal_id];
    if ((goal !== undefined && isOutcome(goal.state)) || wasDropped(s, a.goal_id)) continue;
    const pending: PendingApproval = {
      id: a.id,
      agentId: a.agent_id,
      tool: a.tool,
      summary: kept(a.summary),
      goalId: a.goal_id,
    };
    if (a.covers)
      pending.covers = { allow_session: a.covers.allow_session, allow_always: a.covers.allow_always };
    const carries = secretKinds(a.carries_secrets).map(kept);
    if (carries.length > 0) pending.carriesSecrets = carries;
    if (a.node !== undefined) pending.node = a.node;
    s.approvals[a.id] ??= pending;
  }
  return s;
}

/**
 * In a cluster approval.list reads the records from Redis, whose writer chose every field:
 * one whose drawn fields are not text is skipped (drawing it would fail every frame).
 */
function readableApproval(a: KnownApproval): boolean {
  const text = (v: unknown) => typeof v === "string";
  return (
    text(a.id) &&
    text(a.agent_id) &&
    text(a.tool) &&
    text(a.summary) &&
    (a.goal_id === null || text(a.goal_id)) &&
    (a.node === undefined || text(a.node)) &&
    (a.covers === undefined || (text(a.covers?.allow_session) && text(a.covers?.allow_always)))
  );
}
