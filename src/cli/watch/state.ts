// cli/watch/state.ts — what `aido watch` knows, as a pure reducer: runtime events (the
// daemon's events.subscribe stream, kernel/events.ts) in, a view state out. No clock, no
// terminal, no socket here, so the whole view logic is tested with event sequences.
// The renderer (render.ts) turns a state into lines; the command (commands/watch.ts)
// owns the socket and the terminal.

import type { AgentState, RuntimeEvent } from "../../kernel/events.js";
import { carriesSecretsText, secretKinds } from "../../security/approval-shown.js";
import type { ClusterView } from "./cluster.js";
import { hostPort, kept, nodeOf, oneLine, secondsOf, sizeOf } from "./text.js";

export { oneLine };

export type GoalOutcome = "succeeded" | "failed" | "cancelled";
export type GoalViewState = "queued" | "running" | GoalOutcome;

export interface AgentView {
  id: string;
  goalId: string | null;
  manifest: string;
  description?: string;
  model: string;
  parentId: string | null;
  depth: number;
  state: AgentState;
  stopReason?: string;
  inputTokens: number;
  outputTokens: number;
  /** Tool calls started and not yet completed or denied, by call id. */
  toolsRunning: Record<string, string>;
  toolCalls: number;
  denials: number;
}

export interface GoalView {
  id: string;
  text?: string;
  state: GoalViewState;
  rootAgentId?: string;
  error?: string;
  inputTokens: number;
  outputTokens: number;
  /** Cluster mode: the node that runs (ran) it. */
  node?: string;
  /**
   * Cluster mode: its status is the node's own record, Redis could not be read (goal.status
   * `cluster`): another node may have ended or taken it since. Goes once Redis answers again.
   */
  ownRecord?: { redis: "unreachable" | "refused"; reason: string; asOf: string | null };
  /** The how-manyth end the view saw this one's is (the ended goals kept are those that ended last). */
  endedSeq?: number;
}

export interface PendingApproval {
  id: string;
  agentId: string;
  tool: string;
  summary: string;
  goalId: string | null;
  /** What Allow Session / Allow Always would cover (absent from an older daemon). */
  covers?: { allow_session: string; allow_always: string };
  /** The secrets the call carries, by kind (its summary shows them blanked); absent or empty: none. */
  carriesSecrets?: string[];
  /** Cluster mode: the node whose agent waits (an answer is routed there). */
  node?: string;
}

export interface ActivityLine {
  /** 1, 2, 3... over the whole watch, so a line printer knows what it has printed. */
  seq: number;
  time: string;
  goalId: string | null;
  agentId?: string;
  kind: "tool" | "denied" | "failed" | "approval" | "agent" | "goal" | "inference" | "egress";
  text: string;
}

export interface WatchState {
  /** The goal watched, or null for every goal. */
  goalId: string | null;
  /** The token budget shown against spending (the goal cap), when known. */
  budgetTokens?: number;
  goals: Record<string, GoalView>;
  agents: Record<string, AgentView>;
  /** Agent ids in spawn order (the tree is drawn from parentId). */
  agentOrder: string[];
  /** Inference queue by provider: agents whose call waits for a slot, and those in flight. */
  inference: Record<string, { waiting: string[]; inFlight: string[] }>;
  approvals: Record<string, PendingApproval>;
  /** The newest notable happenings, oldest first, at most `activityLimit`. */
  activity: ActivityLine[];
  activityLimit: number;
  /** seq of the newest activity line. */
  activitySeq: number;
  events: number;
  /** Set when the watched goal (goalId) has ended. */
  finished?: { state: GoalOutcome; error?: string };
  /** Cluster mode: the nodes, from cluster.status (cluster.ts). */
  cluster?: ClusterView;
  /** How many goal ends the view saw (GoalView.endedSeq). */
  endsSeen?: number;
  /** Ended goals dropped from an all-goals view, the last DROPPED_GOALS_REMEMBERED: a late event of one does not bring it back. */
  droppedGoals?: string[];
  /** Approvals the stream said were answered, the last DECIDED_REMEMBERED: a list read before does not bring one back. */
  decidedApprovals?: string[];
}

export const isOutcome = (s: string): s is GoalOutcome =>
  s === "succeeded" || s === "failed" || s === "cancelled";
export const outcome = (state: GoalOutcome, error?: string) =>
  error === undefined ? { state } : { state, error };

/**
 * How many ended goals an all-goals watch keeps (with their agents): beyond it those that
 * ended first go, so a watch left open for days does not grow (and copy at every event) a
 * goal and its agents for every goal the cluster ever ran. Those that ended first, not those
 * seen first: a long goal seen at the start of the watch was dropped the moment it ended,
 * its outcome never shown, and its agents' stops, read after its end, drew it again as running.
 */
export const ENDED_GOALS_KEPT = 100;
/**
 * How many dropped goals' ids an all-goals view remembers (their late events are ignored):
 * a late event comes within moments of its goal's end; the view is copied at every event.
 */
export const DROPPED_GOALS_REMEMBERED = 200;
/** How many answered approvals' ids a view remembers (approval.list answers read before their answer are not taken). */
export const DECIDED_REMEMBERED = 200;

/** Notes that `g` ended (when it had not): it is kept over the goals that ended before it. */
export function markEnded(s: WatchState, g: GoalView): void {
  if (g.endedSeq !== undefined) return;
  s.endsSeen = (s.endsSeen ?? 0) + 1;
  g.endedSeq = s.endsSeen;
}

/** Whether `goalId` is an ended goal this all-goals view dropped. */
export const wasDropped = (s: WatchState, goalId: string | null): boolean =>
  s.goalId === null && goalId !== null && s.droppedGoals?.includes(goalId) === true;

/** Drops the ended goals of an all-goals view beyond ENDED_GOALS_KEPT, those that ended first, and their agents. */
export function dropEndedGoals(s: WatchState): void {
  if (s.goalId !== null) return;
  const ended = Object.values(s.goals).filter((g) => isOutcome(g.state));
  if (ended.length <= ENDED_GOALS_KEPT) return;
  // Stable: ends of the same turn (none marked) in the order seen.
  ended.sort((a, b) => (a.endedSeq ?? 0) - (b.endedSeq ?? 0));
  const gone = new Set(ended.slice(0, ended.length - ENDED_GOALS_KEPT).map((g) => g.id));
  s.droppedGoals = [...(s.droppedGoals ?? []), ...gone].slice(-DROPPED_GOALS_REMEMBERED);
  for (const id of gone) delete s.goals[id];
  for (const [id, a] of Object.entries(s.agents))
    if (a.goalId !== null && gone.has(a.goalId)) delete s.agents[id];
  s.agentOrder = s.agentOrder.filter((id) => s.agents[id] !== undefined);
}

/** The exit code `aido watch ID` ends with: 0 when the goal succeeded, 1 otherwise. */
export function exitCodeOf(state: WatchState): number | undefined {
  if (!state.finished) return undefined;
  return state.finished.state === "succeeded" ? 0 : 1;
}

/** Total tokens spent in what is watched. */
export function tokensSpent(state: WatchState): { input: number; output: number } {
  let input = 0;
  let output = 0;
  for (const g of Object.values(state.goals)) {
    if (state.goalId !== null && g.id !== state.goalId) continue;
    input += g.inputTokens;
    output += g.outputTokens;
  }
  return { input, output };
}

/** Applies one event. Returns a new state; the old one is not changed. */
export function reduceWatch(prev: WatchState, event: RuntimeEvent): WatchState {
  if (prev.goalId !== null && event.goalId !== prev.goalId) return prev;
  // A late event of an ended goal this view dropped (an agent's stop read after its end).
  if (wasDropped(prev, event.goalId)) return { ...prev, events: prev.events + 1 };
  const s: WatchState = structuredClone(prev);
  s.events++;
  const goal = (): GoalView | undefined => {
    if (event.goalId === null) return undefined;
    s.goals[event.goalId] ??= { id: event.goalId, state: "running", inputTokens: 0, outputTokens: 0 };
    return s.goals[event.goalId];
  };
  const note = (kind: ActivityLine["kind"], text: string, agentId?: string) => {
    s.activitySeq++;
    const line: ActivityLine = { seq: s.activitySeq, time: event.time, goalId: event.goalId, kind, text };
    if (agentId !== undefined) line.agentId = agentId;
    s.activity.push(line);
    if (s.activity.length > s.activityLimit) s.activity.splice(0, s.activity.length - s.activityLimit);
  };
  const agent = (id: string): AgentView => {
    let a = s.agents[id];
    if (!a) {
      // An agent spawned before we attached: known only by id until it says more.
      a = {
        id,
        goalId: event.goalId,
        manifest: "?",
        model: "?",
        parentId: null,
        depth: 0,
        state: "running",
        inputTokens: 0,
        outputTokens: 0,
        toolsRunning: {},
        toolCalls: 0,
        denials: 0,
      };
      s.agents[id] = a;
      s.agentOrder.push(id);
    }
    return a;
  };
  const queue = (provider: string) => {
    s.inference[provider] ??= { waiting: [], inFlight: [] };
    return s.inference[provider];
  };
  const without = (list: string[], id: string) => {
    const i = list.indexOf(id);
    if (i >= 0) list.splice(i, 1);
  };

  // Every goal seen gets a line in the all-goals view; in a cluster each event names its node.
  const seen = goal();
  const node = nodeOf(event);
  if (seen && node !== undefined && event.type !== "goal.queued") seen.node = node;
  switch (event.type) {
    case "goal.queued": {
      const g = goal();
      if (g) {
        g.state = "queued";
        g.text = kept(event.goal);
      }
      note("goal", `goal queued: ${oneLine(event.goal, 80)}`);
      break;
    }
    case "goal.started": {
      const g = goal();
      if (g) {
        g.state = "running";
        g.rootAgentId = event.agentId;
      }
      note("goal", "goal started", event.agentId);
      break;
    }
    case "goal.finished": {
      const g = goal();
      if (g) {
        g.state = event.state;
        g.inputTokens = Math.max(g.inputTokens, event.usage.input_tokens);
        g.outputTokens = Math.max(g.outputTokens, event.usage.output_tokens);
        if (event.error !== undefined) g.error = kept(event.error);
        markEnded(s, g);
      }
      if (s.goalId !== null)
        s.finished = outcome(event.state, event.error === undefined ? undefined : kept(event.error));
      // An ended goal waits for nothing (a request seeded before the stream began may have been
      // answered before it did).
      for (const [id, a] of Object.entries(s.approvals))
        if (a.goalId === event.goalId) delete s.approvals[id];
      note("goal", `goal ${event.state}${event.error ? `: ${oneLine(event.error, 120)}` : ""}`);
      dropEndedGoals(s);
      break;
    }
    case "agent.spawned": {
      const a = agent(event.agentId);
      a.manifest = event.manifest;
      if (event.description !== undefined) a.description = event.description;
      a.model = event.model;
      a.parentId = event.parentId ?? null;
      a.depth = event.depth;
      a.state = "starting";
      const what = event.description ? `: ${oneLine(event.description, 80)}` : "";
      note("agent", `spawned ${event.manifest} (${event.model})${what}`, event.agentId);
      break;
    }
    case "agent.state":
      agent(event.agentId).state = event.state;
      break;
    case "agent.stopped": {
      const a = agent(event.agentId);
      a.state = "stopped";
      a.stopReason = event.reason;
      a.toolsRunning = {};
      for (const q of Object.values(s.inference)) {
        without(q.waiting, event.agentId);
        without(q.inFlight, event.agentId);
      }
      note("agent", `stopped ${a.manifest}: ${oneLine(event.reason, 80)}`, event.agentId);
      break;
    }
    // The tool's name is the model's (these events come before the gate knows it): inert.
    case "tool.called": {
      const a = agent(event.agentId);
      a.toolsRunning[event.callId] = oneLine(event.tool, 80);
      a.toolCalls++;
      note("tool", `${a.manifest} → ${oneLine(event.tool, 80)}`, event.agentId);
      break;
    }
    case "tool.completed": {
      const a = agent(event.agentId);
      delete a.toolsRunning[event.callId];
      if (event.isError)
        note("failed", `${a.manifest} ✗ ${oneLine(event.tool, 80)} failed (${event.ms} ms)`, event.agentId);
      break;
    }
    case "tool.denied": {
      const a = agent(event.agentId);
      delete a.toolsRunning[event.callId];
      a.denials++;
      const stage = event.stage ? `${event.stage}: ` : "";
      note(
        "denied",
        `${a.manifest} ✗ ${oneLine(event.tool, 80)} DENIED (${stage}${oneLine(event.reason, 100)})`,
        event.agentId,
      );
      break;
    }
    // Not run and not refused: a stage of the gate failed (the dashboard's "failed at <stage>,
    // did not run"). The stage, code and error come from the daemon; all inert here.
    case "tool.errored": {
      const a = agent(event.agentId);
      delete a.toolsRunning[event.callId];
      const code = event.code ? `${oneLine(event.code, 40)}: ` : "";
      note(
        "failed",
        `${a.manifest} ✗ ${oneLine(event.tool, 80)} failed at ${oneLine(event.stage, 20)}, did not run (${code}${oneLine(event.error, 100)})`,
        event.agentId,
      );
      break;
    }
    case "approval.requested": {
      const pending: PendingApproval = {
        id: event.approvalId,
        agentId: event.agentId,
        tool: event.tool,
        summary: kept(event.summary),
        goalId: event.goalId,
      };
      if (node !== undefined) pending.node = node;
      if (event.covers)
        pending.covers = {
          allow_session: event.covers.allow_session,
          allow_always: event.covers.allow_always,
        };
      const carries = secretKinds(event.carriesSecrets).map(kept);
      if (carries.length > 0) pending.carriesSecrets = carries;
      s.approvals[event.approvalId] = pending;
      // Said in the line a log reader sees too (no frame is drawn off a terminal), as `aido approvals` says it.
      const secrets = carriesSecretsText(carries);
      note(
        "approval",
        `approval needed: ${event.tool} — ${oneLine(event.summary, 80)}${secrets === undefined ? "" : ` — ${oneLine(secrets, 200)}`}`,
        event.agentId,
      );
      break;
    }
    case "approval.decided": {
      delete s.approvals[event.approvalId];
      s.decidedApprovals = [...(s.decidedApprovals ?? []), event.approvalId].slice(-DECIDED_REMEMBERED);
      const why = event.reason ? `: ${oneLine(event.reason, 80)}` : "";
      note(
        "approval",
        `approval ${event.approvalId}: ${event.decision}${why} (${event.tool})`,
        event.agentId,
      );
      break;
    }
    case "inference.queued": {
      const q = queue(event.provider);
      without(q.inFlight, event.agentId);
      if (!q.waiting.includes(event.agentId)) q.waiting.push(event.agentId);
      break;
    }
    case "inference.started": {
      const q = queue(event.provider);
      without(q.waiting, event.agentId);
      if (!q.inFlight.includes(event.agentId)) q.inFlight.push(event.agentId);
      break;
    }
    case "inference.finished": {
      const q = queue(event.provider);
      without(q.waiting, event.agentId);
      without(q.inFlight, event.agentId);
      if (!event.ok)
        note("inference", `model call failed: ${oneLine(event.error ?? "error", 100)}`, event.agentId);
      break;
    }
    case "usage": {
      const a = agent(event.agentId);
      a.inputTokens += event.input_tokens;
      a.outputTokens += event.output_tokens;
      const g = goal();
      if (g) {
        g.inputTokens += event.input_tokens;
        g.outputTokens += event.output_tokens;
      }
      break;
    }
    // Egress: one line per connection, when it ends (bytes, time) or is refused.
    case "egress.close": {
      const a = agent(event.agentId);
      const why = event.reason ? `, ${oneLine(event.reason, 60)}` : "";
      note(
        "egress",
        `${a.manifest} ⇄ ${hostPort(event.host, event.port)} ${sizeOf(event.bytesUp)} up, ${sizeOf(event.bytesDown)} down, ${secondsOf(event.durationMs)}${why}`,
        event.agentId,
      );
      break;
    }
    case "egress.denied": {
      const a = agent(event.agentId);
      a.denials++;
      const where = event.host === "" ? "a request" : hostPort(event.host, event.port);
      note(
        "denied",
        `${a.manifest} ✗ egress ${where} DENIED (${event.stage}: ${oneLine(event.reason, 100)})`,
        event.agentId,
      );
      break;
    }
    default:
      // A newer daemon may send kinds this CLI does not know: counted, otherwise ignored.
      break;
  }
  return s;
}
