// cluster/routed-reads.ts — the reads of one goal's records another node asks of the node
// that runs (ran) it (cluster/commands.ts): its agents and its audit entries live only in that
// node's database. A command comes through Redis, and whoever can write there can put one
// in a node's stream: the owner takes only a goal's records (never every goal's), each field
// only as what it must be, and a bounded number of entries (the reply travels through Redis).

import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { AuditQuery } from "../security/audit-query.js";
import { auditRefusal, type Command } from "./commands.js";
import type { NodeContext } from "./context.js";

/** The most audit entries one routed audit.query returns (the reply travels through Redis). */
export const ROUTED_AUDIT_LIMIT = 2_000;

export function routedGoal(goalId: unknown, type: string): string {
  if (typeof goalId !== "string" || goalId === "")
    throw new AidoError(ErrorCode.invalidInput, `a routed ${type} names no goal`, { field: "goal_id" });
  return goalId;
}

/** A routed audit.query as the owner runs it: one goal's entries, known fields of known types only. */
export function routedAuditQuery(raw: unknown): AuditQuery & { goal_id: string } {
  const q = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const out: AuditQuery & { goal_id: string } = { goal_id: routedGoal(q.goal_id, "audit.query") };
  if (typeof q.agent_id === "string") out.agent_id = q.agent_id;
  if (typeof q.kind === "string") out.kind = q.kind;
  const count = (v: unknown, min: number) =>
    Number.isSafeInteger(v) && (v as number) >= min ? (v as number) : undefined;
  out.limit = Math.min(count(q.limit, 1) ?? ROUTED_AUDIT_LIMIT, ROUTED_AUDIT_LIMIT);
  const after = count(q.after_seq, 0);
  const before = count(q.before_seq, 1);
  if (after !== undefined) out.after_seq = after;
  if (before !== undefined) out.before_seq = before;
  return out;
}

/** A routed read of one goal's records, as this node answers it; one naming no goal is refused, and the refusal audited. */
export function answerRoutedRead(
  ctx: Pick<NodeContext, "rt" | "config">,
  c: Extract<Command, { type: "agent.list" | "audit.query" }>,
): unknown {
  let goalId: string;
  try {
    goalId = routedGoal(
      c.type === "agent.list" ? c.goal_id : (c.query as { goal_id?: unknown })?.goal_id,
      c.type,
    );
  } catch (e) {
    auditRefusal(ctx, c.type, errorMessage(e));
    throw e;
  }
  const { rt } = ctx;
  if (c.type === "audit.query")
    return { entries: rt.audit.query({ ...routedAuditQuery(c.query), goal_id: goalId }) };
  return {
    agents: rt.listAgents({ goalId, ...(c.include_stopped === true ? { includeStopped: true } : {}) }),
  };
}
