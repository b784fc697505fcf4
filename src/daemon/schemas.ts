// daemon/schemas.ts — the params of every socket method (DESIGN.md "Daemon socket"), as
// strict zod schemas: an unknown key is refused and every error names the field. This
// is the edge: once params pass here, handlers trust their types. The method list is
// this table's keys; a method not here is -32601.

import { z } from "zod";
import {
  budgetField,
  byField,
  checkField,
  noteField,
  objectiveField,
  workspaceField,
} from "../intent/fields.js";
import { APPROVAL_STATUSES, type ApprovalStatus } from "../security/approval-store.js";
import { APPROVAL_DECISIONS, type ApprovalDecision } from "../security/approvals.js";
import { parseAnchor } from "../security/audit-head.js";
import { RpcCode, RpcError } from "./errors.js";

const id = z.string().min(1).max(200);
const MAX_WAIT_MS = 24 * 3600 * 1000;

function isAnchor(text: string): boolean {
  try {
    parseAnchor(text);
    return true;
  } catch {
    return false;
  }
}

/** YAML text or an object of the manifest schema (the manifest loader validates it). */
const manifestValue = z.union([
  z
    .string()
    .min(1)
    .max(256 * 1024),
  z.record(z.string(), z.unknown()),
]);

/** Steps of a plan: each a tool and its input (checked against the tool's schema by kernel/plans.ts). */
const MAX_PLAN_STEPS = 50;
export const planSteps = z
  .array(z.strictObject({ tool: z.string().min(1).max(200), input: z.record(z.string(), z.unknown()) }))
  .min(1)
  .max(MAX_PLAN_STEPS);

export const MethodSchemas = {
  "goal.submit": z.strictObject({
    goal: z.string().min(1).max(100_000),
    manifest: manifestValue.optional(),
    inputs: z.array(z.string().min(1).max(4096)).max(256).optional(),
    workspace: workspaceField.optional(),
    inputs_within: workspaceField.optional(),
    /** An open MCP session submitting the goal: the goal reaches no further than it (kernel/goal-reach.ts). */
    session_id: id.optional(),
    inputs_as: id.optional(),
  }),
  "goal.status": z.strictObject({ goal_id: id }),
  "goal.wait": z.strictObject({ goal_id: id, timeout_ms: z.number().int().min(0).max(MAX_WAIT_MS) }),
  "goal.list": z.strictObject({
    state: z.enum(["queued", "running", "succeeded", "failed", "cancelled"]).optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
  }),
  "goal.cancel": z.strictObject({ goal_id: id }),
  "agent.spawn": z
    .strictObject({
      manifest: manifestValue.optional(),
      manifest_path: z.string().min(1).max(4096).optional(),
    })
    .refine((p) => (p.manifest === undefined) !== (p.manifest_path === undefined), {
      message: "give exactly one of manifest or manifest_path",
      path: ["manifest"],
    }),
  "agent.list": z.strictObject({ goal_id: id.optional(), include_stopped: z.boolean().optional() }),
  "agent.status": z.strictObject({ agent_id: id }),
  "agent.stop": z.strictObject({ agent_id: id }),
  "agent.run": z.strictObject({ agent_id: id, message: z.string().min(1).max(100_000) }),
  "agent.spawn_and_run": z.strictObject({ manifest: manifestValue, message: z.string().min(1).max(100_000) }),
  "tool.list": z.strictObject({}),
  "tool.invoke": z.strictObject({
    agent_id: id,
    tool: z.string().min(1).max(200),
    input: z.record(z.string(), z.unknown()),
  }),
  "approval.list": z.strictObject({
    status: z.enum(["all", ...APPROVAL_STATUSES] as ["all", ...ApprovalStatus[]]).optional(),
    limit: z.number().int().min(1).max(1000).optional(),
    offset: z.number().int().min(0).optional(),
  }),
  "approval.respond": z.strictObject({
    id,
    decision: z.enum(APPROVAL_DECISIONS as [ApprovalDecision, ...ApprovalDecision[]]),
  }),
  "approval.grants": z.strictObject({ all: z.boolean().optional() }),
  "mcp.list": z.strictObject({
    server: z.string().min(1).max(64).optional(),
    /** Contact a remote server whose headers no approval covers (the operator saw them). */
    send_headers: z.boolean().optional(),
  }),
  "mcp.approve": z.strictObject({
    server: z.string().min(1).max(64),
    /** Tool name -> hash the operator reviewed; refused when the live tools differ. */
    expect: z
      .record(z.string().min(1).max(64), z.string().regex(/^[0-9a-f]{64}$/, "a SHA-256 in hex"))
      .optional(),
  }),
  "approval.revoke": z.strictObject({ grant_id: id }),
  "audit.verify": z.strictObject({
    anchor: z
      .string()
      .max(300)
      .refine(isAnchor, "must be SEQ:HASH (a seq and a 64-digit hex hash, as `aido audit anchor` prints)")
      .optional(),
  }),
  "audit.query": z.strictObject({
    goal_id: id.optional(),
    agent_id: id.optional(),
    kind: z.string().min(1).max(100).optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
    after_seq: z.number().int().min(0).optional(),
    before_seq: z.number().int().min(1).optional(),
  }),
  "events.subscribe": z.strictObject({ goal_id: id.optional() }),
  "intent.set": z.strictObject({
    workspace: workspaceField,
    objective: objectiveField,
    budget_tokens: budgetField.optional(),
    check: checkField.optional(),
    by: byField.optional(),
  }),
  "intent.step": z.strictObject({ workspace: workspaceField, note: noteField, by: byField.optional() }),
  "intent.status": z
    .strictObject({
      workspace: workspaceField.optional(),
      intent_id: id.optional(),
      history: z.boolean().optional(),
    })
    .refine((p) => (p.workspace === undefined) !== (p.intent_id === undefined), {
      message: "give exactly one of workspace or intent_id",
      path: ["workspace"],
    }),
  "intent.clear": z.strictObject({ workspace: workspaceField, by: byField.optional() }),
  "intent.check": z.strictObject({ workspace: workspaceField, agent_id: id }),
  "plan.simulate": z.strictObject({ agent_id: id, steps: planSteps, shadow: z.boolean().optional() }),
  "plan.create": z.strictObject({ agent_id: id, title: z.string().min(1).max(200), steps: planSteps }),
  "plan.execute": z.strictObject({
    plan_id: id,
    agent_id: id.optional(),
    on_failure: z.enum(["stop", "restore"]).optional(),
  }),
  "plan.list": z.strictObject({ agent_id: id.optional(), goal_id: id.optional() }),
  "session.open": z
    .strictObject({
      manifest: manifestValue.optional(),
      manifest_path: z.string().min(1).max(4096).optional(),
      workspace: z.string().min(1).max(4096).optional(),
      client: z.string().min(1).max(200).optional(),
    })
    .refine((p) => p.manifest === undefined || p.manifest_path === undefined, {
      message: "give at most one of manifest or manifest_path",
      path: ["manifest"],
    }),
  "session.close": z.strictObject({ session_id: id }),
  "session.refused": z.strictObject({
    session_id: id,
    tool: z.string().min(1).max(200),
    reason: z.string().min(1).max(4000),
  }),
  "ui.open": z.strictObject({ rotate: z.boolean().optional() }),
  "snapshot.list": z.strictObject({ goal_id: id }),
  "snapshot.restore": z.strictObject({
    goal_id: id,
    snapshot_id: z.string().min(1).max(64),
  }),
  "cluster.status": z.strictObject({}),
  /** Every node's audit chain against the signed head it published (cluster/audit-heads.ts). */
  "cluster.audit_verify": z.strictObject({}),
} as const;

export type MethodName = keyof typeof MethodSchemas;
export type ParamsOf<M extends MethodName> = z.output<(typeof MethodSchemas)[M]>;
export type ParamsInput<M extends MethodName> = z.input<(typeof MethodSchemas)[M]>;

export const METHOD_NAMES = Object.keys(MethodSchemas) as MethodName[];

export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(MethodSchemas, name);
}

/** Validate params for `method`, or throw -32602 whose message names the field. */
export function parseParams<M extends MethodName>(method: M, params: unknown): ParamsOf<M> {
  const r = MethodSchemas[method].safeParse(params);
  if (r.success) return r.data as ParamsOf<M>;
  const first = r.error.issues[0];
  const problems = r.error.issues.map((i) => {
    if (i.code === "unrecognized_keys") {
      const at = i.path.length > 0 ? `${i.path.join(".")}: ` : "";
      return `${at}unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}`;
    }
    const field = i.path.length > 0 ? i.path.join(".") : "params";
    return `${field}: ${i.message}`;
  });
  const field =
    first?.code === "unrecognized_keys"
      ? [...first.path, first.keys[0]].join(".")
      : first && first.path.length > 0
        ? first.path.join(".")
        : "params";
  throw new RpcError(RpcCode.invalidParams, `invalid params for ${method}: ${problems.join("; ")}`, {
    code: "invalid_input",
    details: { field },
  });
}
