// client/types.ts — the params and results of the daemon's methods, as a client sees
// them (docs/daemon.md is the prose of this file). Params come from the daemon's own
// zod schemas, so the client and the server cannot disagree about a field's name.

import type { NodeAuditResult } from "../cluster/audit-heads.js";
import type { FenceStatus } from "../cluster/fence.js";
import type { NodeStatus } from "../cluster/node-status.js";
import type { RedisPersistence } from "../cluster/redis-url.js";
import type { WireEvent } from "../daemon/events.js";
import type { MethodName as DaemonMethodName, ParamsInput } from "../daemon/schemas.js";
import type { Intent, IntentCheckResult } from "../intent/store.js";
import type { SnapshotEntry } from "../kernel/goal-snapshots.js";
import type { GoalStatus } from "../kernel/goal-store.js";
import type { PlanExecution, PlanSummary, Simulation } from "../kernel/plans.js";
import type { AgentSummary, LineageLink } from "../kernel/registry.js";
import type { AgentRunResult } from "../kernel/runtime.js";
import type { SessionInfo } from "../kernel/sessions.js";
import type { ToolSpec } from "../llm/types.js";
import type { GrantRecord } from "../security/approval-grants.js";
import type { ApprovalRecord } from "../security/approvals.js";
import type { AuditEntry } from "../security/audit-events.js";
import type { McpServerStatus } from "../tools/mcp/server-status.js";

export type MethodName = DaemonMethodName;
export type MethodParams<M extends MethodName> = ParamsInput<M>;
export type RuntimeEventParams = WireEvent;

export interface ToolInvokeResult {
  output: string;
  is_error: boolean;
  data?: unknown;
}

export interface AuditVerifyResult {
  ok: boolean;
  entries: number;
  first_bad_seq?: number;
  reason?: string;
  /** The seq the signed head file vouched for, when it was checked and held. */
  head_seq?: number;
}

/**
 * goal.status in cluster mode adds the node that runs (ran) the goal and the one that took it;
 * `cluster` when the node answered from its own record because Redis could not be read
 * (it did not answer, or refused the read): the cluster's view as of `as_of` (the last
 * heartbeat Redis took), and another node may have ended or taken the goal since.
 */
export type ClusterGoalFields = {
  node?: string;
  submitted_via?: string;
  cluster?: { redis: "unreachable" | "refused"; reason: string; as_of: string | null };
};

/** audit.verify {cluster: true}: each node's chain against the signed head it published. */
export type ClusterAuditResult = { ok: boolean; nodes: NodeAuditResult[] };

/** cluster.status: `enabled` false on a daemon that is not a node of a cluster. */
export type ClusterStatusResult =
  | { enabled: false; nodes: [] }
  | {
      enabled: true;
      node_id: string;
      /** Whether this node holds its goals because it could not renew its lease (cluster/fence.ts). */
      fence: FenceStatus;
      /** This node alone, from its memory, when it cannot read Redis (`redis.unreachable` or `redis.refused` says why). */
      nodes: NodeStatus[];
      /** How Redis keeps the cluster's state: "none" means a Redis restart loses queued goals. */
      redis: { persistence: RedisPersistence; unreachable?: string; refused?: string };
    };

interface Results {
  "goal.submit": { goal_id: string };
  "goal.status": GoalStatus & ClusterGoalFields;
  "goal.wait": GoalStatus & ClusterGoalFields;
  "goal.list": { goals: (GoalStatus & ClusterGoalFields)[] };
  "goal.cancel": GoalStatus & ClusterGoalFields;
  "cluster.status": ClusterStatusResult;
  "agent.spawn": AgentSummary;
  "agent.list": { agents: AgentSummary[] };
  "agent.status": AgentSummary;
  "agent.stop": AgentSummary;
  "agent.run": AgentRunResult;
  "agent.spawn_and_run": AgentRunResult;
  "tool.list": { tools: ToolSpec[] };
  "tool.invoke": ToolInvokeResult;
  "approval.list": { approvals: (ApprovalRecord & { lineage: LineageLink[]; node?: string })[] };
  "approval.respond": ApprovalRecord;
  "approval.grants": { grants: GrantRecord[] };
  "approval.revoke": GrantRecord;
  "mcp.list": { servers: McpServerStatus[] };
  "mcp.approve": McpServerStatus;
  "audit.verify": AuditVerifyResult;
  "cluster.audit_verify": ClusterAuditResult;
  "audit.query": { entries: AuditEntry[] };
  "events.subscribe": { subscribed: true; goal_id: string | null };
  "intent.set": Intent;
  "intent.step": Intent;
  "intent.status": { intent: Intent | null; history?: Intent[] };
  "intent.clear": Intent;
  "intent.check": IntentCheckResult & { intent_id: string };
  "plan.simulate": Simulation;
  "plan.create": { plan_id: string; hash: string; simulation: Simulation };
  "plan.execute": PlanExecution;
  "plan.list": { plans: PlanSummary[] };
  /** max_line_bytes: the daemon's daemon.max_line_bytes (a longer request line is dropped). */
  "session.open": SessionInfo & { max_line_bytes?: number };
  "session.close": SessionInfo;
  "session.refused": { seq: number };
  "ui.open": { url: string; port: number; token_file: string };
  "snapshot.list": { snapshots: SnapshotEntry[] };
  "snapshot.restore": {
    goal_id: string;
    snapshot_id: string;
    agent_id: string;
    as: "root_agent" | "operator";
    files_restored: number;
    files_failed: { path: string; reason: string }[];
  };
}

export type MethodResult<M extends MethodName> = Results[M];
export type {
  AgentRunResult,
  AgentSummary,
  ApprovalRecord,
  AuditEntry,
  GoalStatus,
  GrantRecord,
  Intent,
  IntentCheckResult,
  PlanExecution,
  PlanSummary,
  SessionInfo,
  Simulation,
  WireEvent,
};
