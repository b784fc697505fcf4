// daemon/events.ts — runtime events as they travel over the socket and to the daemon's
// stdout: the kernel's event (events.ts in kernel/) with its top-level keys in the
// snake_case every other socket field uses (goalId -> goal_id, agentId -> agent_id, ...).
// One function, so the stream and the log can never disagree.

import type { RuntimeEvent } from "../kernel/events.js";
import type { Usage } from "../llm/types.js";

/** An event on the wire: `type`, `time`, `goal_id` and the event's own fields. */
export interface WireEvent {
  type: string;
  time: string;
  goal_id: string | null;
  [field: string]: unknown;
}

export interface GoalEndEvent extends WireEvent {
  type: "goal.finished";
  goal_id: string;
  state: "succeeded" | "failed" | "cancelled";
  error?: string;
  usage: Usage;
}

const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function toWireEvent(ev: RuntimeEvent): WireEvent {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ev)) out[snake(k)] = v;
  return out as WireEvent;
}
