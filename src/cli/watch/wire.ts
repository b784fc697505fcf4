// cli/watch/wire.ts — events as they arrive from the socket (daemon/events.ts: top-level
// keys in snake_case) back into the kernel's RuntimeEvent shape the reducer reads. Only
// the keys the kernel spells in camelCase are renamed (token counts stay input_tokens);
// anything that is not an event object is dropped here, at the edge.

import type { RuntimeEvent } from "../../kernel/events.js";

const CAMEL: Record<string, string> = {
  goal_id: "goalId",
  agent_id: "agentId",
  parent_id: "parentId",
  call_id: "callId",
  is_error: "isError",
  approval_id: "approvalId",
  carries_secrets: "carriesSecrets",
  wait_ms: "waitMs",
  run_ms: "runMs",
  in_flight: "inFlight",
  bytes_up: "bytesUp",
  bytes_down: "bytesDown",
  duration_ms: "durationMs",
};

export function fromWireEvent(wire: unknown): RuntimeEvent | undefined {
  if (typeof wire !== "object" || wire === null || Array.isArray(wire)) return undefined;
  const w = wire as Record<string, unknown>;
  if (typeof w.type !== "string" || typeof w.time !== "string") return undefined;
  if (w.goal_id !== null && typeof w.goal_id !== "string") return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(w)) out[CAMEL[k] ?? k] = v;
  return out as unknown as RuntimeEvent;
}
