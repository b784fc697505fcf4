// ui/web/live.ts — what the page knows live, folded from /api/events: goals and their
// states, each agent (state, model, tokens, inference queue wait) and each of its tool
// calls with the gate's verdict (allowed, denied with stage and reason, waiting for an
// approval). Lists the daemon answers (goal.list, agent.list, the audit entries of a
// goal) seed it; events then fill it in. Pages that show answers of other methods
// (approvals, grants, audit) reload when `revisions` says their topic changed.

import type { Agent, AuditEntry, Goal, WireEvent } from "./wire.js";

export type CallStatus = "running" | "waiting" | "done" | "failed" | "denied";

export interface CallView {
  /** call id when known, else a key made from the audit entry or the event that made it. */
  key: string;
  agentId: string;
  tool: string;
  status: CallStatus;
  time: string;
  stage?: string;
  reason?: string;
  ms?: number;
  approvalId?: string;
  approvalDecision?: string;
}

export interface AgentView extends Agent {
  inputTokens: number;
  outputTokens: number;
  queueWaitMs: number;
  /** A model call of its waits for an inference slot now. */
  queueWaiting: boolean;
  calls: CallView[];
}

/** "stream": the event stream (re)connected, so whatever was seeded from lists is stale. */
export type Topic = "goals" | "agents" | "approvals" | "grants" | "snapshots" | "stream";

export interface LiveState {
  goals: Record<string, Goal>;
  agents: Record<string, AgentView>;
  /** Bumped when something of a topic changed, so the pages showing it reload. */
  revisions: Record<Topic, number>;
  /** Approval ids requested and not decided yet, newest last (for the inbox's live notice). */
  pending: string[];
  events: number;
}

export function emptyState(): LiveState {
  return {
    goals: {},
    agents: {},
    revisions: { goals: 0, agents: 0, approvals: 0, grants: 0, snapshots: 0, stream: 0 },
    pending: [],
    events: 0,
  };
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

function agentOf(s: LiveState, id: string, goalId: string | null): AgentView {
  let a = s.agents[id];
  if (!a) {
    a = {
      agent_id: id,
      goal_id: goalId ?? "",
      parent_id: null,
      manifest: "?",
      model: "?",
      state: "running",
      depth: 0,
      children: [],
      created_at: "",
      inputTokens: 0,
      outputTokens: 0,
      queueWaitMs: 0,
      queueWaiting: false,
      calls: [],
    };
    s.agents[id] = a;
  }
  return a;
}

/** The call `key` of an agent, created when this is the first news of it. */
function callOf(a: AgentView, key: string, tool: string, time: string): CallView {
  let c = a.calls.find((x) => x.key === key);
  if (!c) {
    c = { key, agentId: a.agent_id, tool, status: "running", time };
    a.calls.push(c);
  }
  return c;
}

/** Agents an agent.list answer names, merged in (live counters are kept). */
export function withAgents(s: LiveState, agents: readonly Agent[]): void {
  for (const x of agents) {
    const a = agentOf(s, x.agent_id, x.goal_id);
    Object.assign(a, x);
    // The daemon counts from its start, the page from its opening: the larger is the truer.
    if (x.usage) {
      a.inputTokens = Math.max(a.inputTokens, x.usage.input_tokens);
      a.outputTokens = Math.max(a.outputTokens, x.usage.output_tokens);
    }
    if (x.queue) {
      a.queueWaitMs = Math.max(a.queueWaitMs, x.queue.wait_ms_total);
      a.queueWaiting = x.queue.waiting;
    }
  }
}

export function withGoals(s: LiveState, goals: readonly Goal[]): void {
  for (const g of goals) s.goals[g.goal_id] = { ...s.goals[g.goal_id], ...g };
}

/**
 * A goal's tool calls as its audit entries tell them (oldest first): what happened before
 * the page was opened. Calls the live stream already knows (same call id) are kept.
 */
export function withAuditCalls(s: LiveState, entries: readonly AuditEntry[]): void {
  const bySeq = new Map<number, CallView>();
  for (const e of entries) {
    if (e.agent_id === null) continue;
    const p = e.payload;
    const tool = str(p.tool) ?? "?";
    const a = agentOf(s, e.agent_id, e.goal_id);
    const key = str(p.call_id) ?? `audit-${e.seq}`;
    if (e.kind === "tool.invoked") {
      const c = callOf(a, key, tool, e.time);
      bySeq.set(e.seq, c);
    } else if (e.kind === "tool.denied") {
      const c = callOf(a, key, tool, e.time);
      c.status = "denied";
      c.stage = str(p.stage);
      c.reason = str(p.reason);
    } else if (e.kind === "tool.errored") {
      // Not run and not refused: a stage of the gate failed (its stage and error, as a denial's).
      const c = callOf(a, key, tool, e.time);
      c.status = "failed";
      c.stage = str(p.stage);
      c.reason = str(p.error);
    } else if (e.kind === "tool.completed" || e.kind === "tool.failed") {
      const c = bySeq.get(num(p.invoked_seq));
      if (c && (c.status === "running" || c.status === "waiting")) {
        c.status = e.kind === "tool.failed" || p.is_error === true ? "failed" : "done";
        if (e.kind === "tool.failed") c.reason = str(p.error);
      }
    }
  }
}

/** Applies one event (in place; the caller re-renders). */
export function applyEvent(s: LiveState, ev: WireEvent): void {
  s.events++;
  const goalId = ev.goal_id;
  const agentId = str(ev.agent_id);
  const goal = (): Goal | undefined => {
    if (goalId === null) return undefined;
    s.goals[goalId] ??= {
      goal_id: goalId,
      state: "running",
      goal: "",
      usage: { input_tokens: 0, output_tokens: 0 },
      created_at: ev.time,
    };
    return s.goals[goalId];
  };
  /** The call a tool.* event names (by its call id), made when first seen. */
  const eventCall = (agentId: string): CallView =>
    callOf(agentOf(s, agentId, goalId), str(ev.call_id) ?? `ev-${s.events}`, str(ev.tool) ?? "?", ev.time);
  switch (ev.type) {
    case "goal.queued": {
      const g = goal();
      if (g) {
        g.state = "queued";
        g.goal = str(ev.goal) ?? g.goal;
      }
      s.revisions.goals++;
      break;
    }
    case "goal.started": {
      const g = goal();
      if (g) {
        g.state = "running";
        if (agentId) g.agent_id = agentId;
        // Cluster mode: the node an event comes from is the one that runs the goal.
        const node = str(ev.node);
        if (node !== undefined) g.node = node;
      }
      s.revisions.goals++;
      break;
    }
    case "goal.finished": {
      const g = goal();
      if (g) {
        g.state = (str(ev.state) ?? "failed") as Goal["state"];
        const e = str(ev.error);
        if (e !== undefined) g.error = e;
        const u = ev.usage as Goal["usage"] | undefined;
        if (u) g.usage = u;
      }
      s.revisions.goals++;
      s.revisions.snapshots++;
      break;
    }
    case "agent.spawned": {
      if (!agentId) break;
      const a = agentOf(s, agentId, goalId);
      a.manifest = str(ev.manifest) ?? a.manifest;
      a.model = str(ev.model) ?? a.model;
      a.parent_id = str(ev.parent_id) ?? null;
      a.depth = num(ev.depth);
      a.state = "starting";
      a.created_at = ev.time;
      const d = str(ev.description);
      if (d !== undefined) a.description = d;
      if (a.parent_id) {
        const parent = agentOf(s, a.parent_id, goalId);
        if (!parent.children.includes(agentId)) parent.children.push(agentId);
      }
      s.revisions.agents++;
      break;
    }
    case "agent.state":
      if (agentId) agentOf(s, agentId, goalId).state = str(ev.state) ?? "running";
      break;
    case "agent.stopped": {
      if (!agentId) break;
      const a = agentOf(s, agentId, goalId);
      a.state = "stopped";
      a.stop_reason = str(ev.reason);
      a.queueWaiting = false;
      s.revisions.agents++;
      break;
    }
    case "usage": {
      if (!agentId) break;
      const a = agentOf(s, agentId, goalId);
      a.inputTokens += num(ev.input_tokens);
      a.outputTokens += num(ev.output_tokens);
      // Budgets (spent of limit, per account) are the daemon's to say: read them again.
      s.revisions.agents++;
      const g = goal();
      if (g) {
        g.usage = {
          input_tokens: g.usage.input_tokens + num(ev.input_tokens),
          output_tokens: g.usage.output_tokens + num(ev.output_tokens),
        };
      }
      break;
    }
    case "inference.queued":
      if (agentId) agentOf(s, agentId, goalId).queueWaiting = true;
      break;
    case "inference.started":
      if (agentId) {
        const a = agentOf(s, agentId, goalId);
        a.queueWaitMs += num(ev.wait_ms);
        a.queueWaiting = false;
      }
      break;
    case "tool.called":
      if (agentId) eventCall(agentId);
      break;
    case "tool.denied": {
      if (!agentId) break;
      const c = eventCall(agentId);
      c.status = "denied";
      c.stage = str(ev.stage);
      c.reason = str(ev.reason);
      break;
    }
    case "tool.errored": {
      // Not run and not refused: a stage of the gate failed (as withAuditCalls reads tool.errored).
      if (!agentId) break;
      const c = eventCall(agentId);
      c.status = "failed";
      c.stage = str(ev.stage);
      c.reason = str(ev.error);
      break;
    }
    case "tool.completed": {
      if (!agentId) break;
      const c = eventCall(agentId);
      if (c.status !== "denied") c.status = ev.is_error === true ? "failed" : "done";
      c.ms = num(ev.ms);
      // The runtime snapshots a workspace before the turns that change it: read them again.
      s.revisions.snapshots++;
      break;
    }
    case "approval.requested": {
      const id = str(ev.approval_id);
      if (!id) break;
      if (!s.pending.includes(id)) s.pending.push(id);
      if (agentId) {
        const a = agentOf(s, agentId, goalId);
        const c = [...a.calls].reverse().find((x) => x.tool === ev.tool && x.status === "running");
        if (c) {
          c.status = "waiting";
          c.approvalId = id;
        }
      }
      s.revisions.approvals++;
      break;
    }
    case "approval.decided": {
      const id = str(ev.approval_id);
      s.pending = s.pending.filter((x) => x !== id);
      const decision = str(ev.decision);
      if (agentId) {
        for (const c of agentOf(s, agentId, goalId).calls) {
          if (c.approvalId !== id) continue;
          c.approvalDecision = decision;
          if (c.status === "waiting") c.status = "running";
        }
      }
      s.revisions.approvals++;
      if (decision === "allow_always") s.revisions.grants++;
      break;
    }
    default:
      // Kinds this page does not draw (egress, inference.finished...) are counted only.
      break;
  }
}

export interface TreeNode {
  agent: AgentView;
  children: TreeNode[];
}

/** A goal's agents as a tree: roots (no parent among them) first, children in spawn order. */
export function agentTree(s: LiveState, goalId: string): TreeNode[] {
  const mine = Object.values(s.agents)
    .filter((a) => a.goal_id === goalId)
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
  const ids = new Set(mine.map((a) => a.agent_id));
  const seen = new Set<string>();
  const node = (a: AgentView): TreeNode => {
    seen.add(a.agent_id);
    const children = mine.filter((c) => c.parent_id === a.agent_id && !seen.has(c.agent_id));
    return { agent: a, children: children.map(node) };
  };
  return mine.filter((a) => a.parent_id === null || !ids.has(a.parent_id)).map(node);
}

export type Listener = () => void;

/** The one live state of the page and who re-renders when it changes. */
export class LiveStore {
  state: LiveState = emptyState();
  private readonly listeners = new Set<Listener>();

  update(fn: (s: LiveState) => void): void {
    fn(this.state);
    this.state = { ...this.state };
    for (const l of this.listeners) l();
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }
}
