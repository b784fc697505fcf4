// kernel/bus-forwarding.ts — the records of parts that do not know the event bus, put on it
// (watch, events.subscribe): an approval asked for and decided, an egress connection opened,
// closed or refused. assemble.ts wires them once.

import type { EgressRecord } from "../egress/types.js";
import type { ApprovalQueue } from "../security/approvals.js";
import type { EventBus } from "./events.js";

/** approval.requested / approval.decided on the event bus (watch, events.subscribe). */
export function forwardApprovalEvents(approvals: ApprovalQueue, events: EventBus): void {
  approvals.on("requested", (r, requestId) =>
    events.emit("approval.requested", r.goal_id, {
      ...(requestId !== undefined ? { requestId } : {}),
      approvalId: r.id,
      agentId: r.agent_id,
      tool: r.tool,
      summary: r.summary,
      target: r.target,
      covers: r.covers,
      askedBy: r.asked_by,
      carriesSecrets: r.carries_secrets,
      ...(r.submitted_by !== null ? { submittedBy: r.submitted_by } : {}),
    }),
  );
  approvals.on("decided", (r) =>
    events.emit("approval.decided", r.goal_id, {
      approvalId: r.id,
      agentId: r.agent_id,
      tool: r.tool,
      decision: r.decision ?? r.status,
      ...(r.close_reason !== null ? { reason: r.close_reason } : {}),
    }),
  );
}

/** An egress record on the event bus (watch, events.subscribe): one line per connection. */
export function emitEgress(events: EventBus, e: EgressRecord): void {
  const base = { agentId: e.caller.agentId, host: e.host, port: e.port, method: e.method };
  const connection = e.connection === undefined ? {} : { connection: e.connection };
  if (e.phase === "open")
    events.emit("egress.open", e.caller.goalId, { ...base, address: e.address ?? "", ...connection });
  else if (e.phase === "close")
    events.emit("egress.close", e.caller.goalId, {
      ...base,
      address: e.address ?? "",
      bytesUp: e.bytesUp ?? 0,
      bytesDown: e.bytesDown ?? 0,
      durationMs: e.durationMs ?? 0,
      ...connection,
      ...(e.reason ? { reason: e.reason } : {}),
    });
  else
    events.emit("egress.denied", e.caller.goalId, {
      ...base,
      stage: e.stage ?? "request",
      reason: e.reason ?? "refused",
    });
}
