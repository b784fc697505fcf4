// kernel/events.ts — the runtime's event stream. Everything a watcher may want to see
// (goals queued and finished, agents spawned and stopped, tool calls, approvals, the
// inference queue, token usage) is published here as one typed union. The daemon
// streams these to `events.subscribe` clients as JSON lines; tests subscribe to assert
// on order. A listener's exception never reaches the publisher: observing must not be
// able to break an agent.

import type { Usage } from "../llm/types.js";
import type { SubmittedBy } from "../security/approval-project.js";
import type { Coverage } from "../security/approval-scope.js";
import type { AskedBy } from "../security/approval-store.js";

export type AgentState = "starting" | "running" | "paused" | "stopping" | "stopped";

/** Each event's own fields, by type. */
export interface EventPayloads {
  "goal.queued": { goal: string };
  "goal.started": { agentId: string };
  "goal.finished": { state: "succeeded" | "failed" | "cancelled"; error?: string; usage: Usage };
  "agent.spawned": {
    agentId: string;
    manifest: string;
    description?: string;
    parentId?: string;
    depth: number;
    model: string;
  };
  "agent.stopped": { agentId: string; reason: string; state: AgentState };
  "agent.state": { agentId: string; state: AgentState };
  "tool.called": { agentId: string; tool: string; callId: string };
  "tool.denied": {
    agentId: string;
    tool: string;
    callId: string;
    code: string;
    stage?: string;
    reason: string;
  };
  /**
   * A call that did not run because a stage of the gate failed rather than decided (audited as
   * tool.errored, gate/stage-failure.ts): `stage` where, `error` the failure's message.
   */
  "tool.errored": {
    agentId: string;
    tool: string;
    callId: string;
    stage: string;
    code?: string;
    error: string;
  };
  "tool.completed": { agentId: string; tool: string; callId: string; isError: boolean; ms: number };
  "approval.requested": {
    approvalId: string;
    agentId: string;
    tool: string;
    summary: string;
    /** What the request's scope is, in words. */
    target: string;
    /** What each answer would cover. */
    covers: Coverage;
    /** What made the gate ask (a policy.confirm rule, the manifest's approval_required, the tool's default). */
    askedBy: AskedBy | null;
    /** The secrets the call carries, by kind, never by value (gate/call-secrets.ts); empty or absent: none. */
    carriesSecrets?: string[];
    /** The socket request whose call asked (security/approval-origin.ts); absent for an agent's own call. */
    requestId?: string;
    /** Who submitted the call's goal when the user did not: an MCP session; absent: the user's goal. */
    submittedBy?: SubmittedBy;
  };
  /** `decision` is the answer, or "timed_out" / "expired" (then `reason` says why). */
  "approval.decided": {
    approvalId: string;
    agentId: string;
    tool: string;
    decision: string;
    reason?: string;
  };
  "inference.queued": { agentId: string; provider: string; model: string; queued: number };
  "inference.started": { agentId: string; provider: string; model: string; waitMs: number; inFlight: number };
  "inference.finished": {
    agentId: string;
    provider: string;
    model: string;
    waitMs: number;
    runMs: number;
    ok: boolean;
    error?: string;
  };
  usage: { agentId: string; input_tokens: number; output_tokens: number };
  /** An egress connection opened (its first byte goes upstream now). */
  "egress.open": {
    agentId: string;
    host: string;
    port: number;
    method: string;
    address: string;
    connection?: number;
  };
  "egress.close": {
    agentId: string;
    host: string;
    port: number;
    method: string;
    address: string;
    bytesUp: number;
    bytesDown: number;
    durationMs: number;
    connection?: number;
    reason?: string;
  };
  /** `host` is "" and `port` 0 when the request never parsed. */
  "egress.denied": {
    agentId: string;
    host: string;
    port: number;
    method: string;
    stage: string;
    reason: string;
  };
}

export type EventType = keyof EventPayloads;

export type RuntimeEvent = {
  [T in EventType]: { type: T; time: string; goalId: string | null } & EventPayloads[T];
}[EventType];

export interface EventFilter {
  goalId?: string;
  types?: readonly EventType[];
}

export type EventListener = (event: RuntimeEvent) => void;

export class EventBus {
  private readonly listeners = new Set<{ filter: EventFilter; fn: EventListener }>();

  /** Listen to events (of one goal, when filter.goalId is set); returns the unsubscribe. */
  subscribe(filter: EventFilter, listener: EventListener): () => void {
    const entry = { filter, fn: listener };
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  emit<T extends EventType>(type: T, goalId: string | null, payload: EventPayloads[T]): void {
    // Built for the first listener that wants it: most events of a busy runtime (tool
    // calls, inference, usage) have no watcher but the kernel's own filtered ones.
    let event: RuntimeEvent | undefined;
    for (const { filter, fn } of this.listeners) {
      if (filter.goalId !== undefined && filter.goalId !== goalId) continue;
      if (filter.types && !filter.types.includes(type)) continue;
      event ??= { type, time: new Date().toISOString(), goalId, ...payload } as RuntimeEvent;
      try {
        fn(event);
      } catch {
        // A watcher's bug must not fail the runtime.
      }
    }
  }

  /** Whether any listener takes events of this type (of some goal): nothing to emit otherwise. */
  wants(type: EventType): boolean {
    for (const { filter } of this.listeners) if (!filter.types || filter.types.includes(type)) return true;
    return false;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}
