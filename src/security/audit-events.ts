// security/audit-events.ts — the typed vocabulary of the audit log. Every entry has a
// kind from this list and a payload of that kind's shape, so a reader (aido audit query,
// a test, an auditor's script) can rely on the fields. The list is documented in
// docs/audit.md; a module that needs a new kind adds it to AuditPayloads (here, or by
// declaration merging from its own module) and to that document.

import type { JsonValue } from "./canonical-json.js";

/** Where in the gate a tool call was refused. */
/**
 * Where the gate refused a call. "hold": allowed, it waited for its node to be sure of its goal
 * (cluster mode: fenced, or paused past its lease) and was let go without running (its agent
 * stopped meanwhile: the goal is another node's now, or was cancelled). "needs" (stage 5: the
 * call's needs worked out in the goal's container, which may start it, or against an external
 * MCP server): only a call cancelled while they were (code cancelled, gate/cancel.ts).
 */
export type DenyStage = "schema" | "capability" | "policy" | "budget" | "approval" | "hold" | "needs";

/** Where the gate was when one of its stages failed instead of deciding (tool.errored). */
export type GateStage = DenyStage;

export type ApprovalDecisionKind = "allow_once" | "allow_session" | "allow_always" | "deny";

export type GoalEndState = "succeeded" | "failed" | "cancelled";

/** Payload shape per kind. Interface (not type) so other modules can extend it. */
export interface AuditPayloads {
  /** `submitted_by`: the MCP session that submitted it (absent: the user; security/approval-project.ts). */
  "goal.submitted": {
    goal: string;
    manifest?: string;
    inputs?: string[];
    intent_id?: string;
    submitted_by?: { kind: string; session_id: string };
    /** The tokens carved for it from its MCP session's budget (kernel/session-budget.ts). */
    session_share?: number;
  };
  /**
   * goal.submit refused before the goal existed (an input outside the rules); names the field.
   * `session_id`: the MCP session whose budget could not cover it (field `budget`).
   */
  "goal.refused": { field: string; reason: string; intent_id?: string; session_id?: string };
  /** `intent_id`: the persistent intent the goal carries; `token_cap`: its root account's limit. */
  "goal.started": { agent_id?: string; intent_id?: string; token_cap?: number };
  "goal.finished": {
    state: GoalEndState;
    error?: string;
    usage?: { input_tokens: number; output_tokens: number };
  };
  "agent.spawned": { manifest: string; parent_agent_id?: string; grants: string[]; token_id?: string };
  /** `recorded_by`: the reason of the later stop that recorded it, when its first stop could not be. */
  "agent.stopped": { reason: string; recorded_by?: string };
  "agent.spawn_denied": { manifest: string; reason: string; offending?: string[]; keys?: string[] };
  /** An MCP session opened (kernel/sessions.ts): its agent, manifest and bound host workspace. */
  "session.opened": { session_id: string; manifest: string; workspace: string | null; client?: string };
  "session.closed": { session_id: string; reason: string; workspace: string | null };
  /** session.open refused before any agent existed (a workspace or manifest that does not fit). */
  "session.refused": { reason: string; workspace?: string; manifest?: string };
  /** The MCP server refused one of the session's calls before it reached the daemon (session.refused method). */
  "session.call_refused": { session_id: string; tool: string; reason: string };
  "token.issued": { token_id: string; parent_token_id?: string; grants: string[]; expires_at: string };
  "token.revoked": { token_id: string; revoked: string[]; reason?: string };
  "tool.invoked": { tool: string; input: JsonValue; call_id?: string };
  /** `repeat_guard`: refused by the agent loop's repeat guard, before the gate. */
  "tool.denied": {
    tool: string;
    stage: DenyStage | "repeat_guard";
    reason: string;
    code?: string;
    call_id?: string;
  };
  /**
   * A call that did not run because a stage of the gate failed before it was decided (the goal's
   * container could not be started, a path not resolved in it, the approval store failed): not a
   * refusal, and no tool.invoked. `error`: the failure, inert and bounded (gate/stage-failure.ts).
   */
  "tool.errored": { tool: string; stage: GateStage; error: string; code?: string; call_id?: string };
  "tool.completed": { tool: string; invoked_seq: number; is_error?: boolean; output_bytes?: number };
  "tool.failed": { tool: string; invoked_seq: number; error: string; code?: string };
  "approval.requested": {
    approval_id: string;
    tool: string;
    scope_key: string;
    summary: string;
    deadline: string;
    /** What made the gate ask (security/approval-store.ts AskedBy). */
    asked_by?: { source: string; rule?: string; text: string };
    /** The secrets the call carries, by kind (gate/call-secrets.ts); absent: none. */
    carries_secrets?: string[];
    /** The socket request that asked (tool.invoke, plan.execute, …: security/approval-origin.ts). */
    request_id?: string;
    /** The MCP session that submitted the call's goal (absent: the user's goal). */
    submitted_by?: { kind: string; session_id: string };
  };
  "approval.decided": {
    approval_id: string;
    tool: string;
    scope_key: string;
    decision: ApprovalDecisionKind;
    by?: string;
    /** The agent identity an Allow Always grant is bound to. */
    identity?: string;
    /** The project (ProjectBinding key, approval-project.ts) an Allow Always grant is bound to. */
    project?: string;
    grant_id?: string;
    grant_expires_at?: string;
  };
  "approval.timed_out": { approval_id: string; tool: string; scope_key: string; deadline: string };
  /** Closed unanswered because its call can no longer run (agent stopped, goal ended, restart, client left). */
  "approval.expired": { approval_id: string; tool: string; scope_key: string; reason: string };
  /** A call passed the approval stage on an earlier decision instead of asking. */
  "approval.reused": {
    tool: string;
    scope_key: string;
    via: "allow_session" | "allow_always";
    approval_id?: string;
    grant_id?: string;
    call_id?: string;
  };
  "approval.grant_revoked": {
    grant_id: string;
    identity: string;
    project?: string;
    tool: string;
    scope_key: string;
    by?: string;
  };
  "budget.reserved": { account: string; reservation_id: number; amount: number };
  "budget.exceeded": { account: string; limit: number; spent: number; reserved: number; requested: number };
  /** A provider reported more than a call's bound; charged anyway, and the goal is stopped. */
  "budget.overspent": { account: string; reserved: number; actual: number; overspent: number };
  /** A provider reported no input tokens (or no usage): the call's bound was charged instead. */
  "budget.usage_unreported": {
    account: string;
    reported_input: number;
    reported_output: number;
    charged: number;
  };
  /** A call given up after its request was sent (its agent stopped): its reservation was charged. */
  "budget.charged_aborted": { account: string; reservation_id: number; charged: number };
  /**
   * A call that failed after its request was sent, the provider maybe having worked on it
   * (the connection or the stream lost, a timeout): its reservation was charged.
   */
  "budget.charged_failed": {
    account: string;
    reservation_id: number;
    charged: number;
    failure: string;
    /** The call was retried: the retry was sent on a reservation of its own. */
    retried?: true;
  };
  "snapshot.created": { snapshot_id: string; label?: string; files?: number };
  "snapshot.restored": { snapshot_id: string; files_restored: number; files_failed: number };
  /** The oldest snapshots removed (and their packs compacted) to keep a goal's store under sandbox.snapshots_max_mb. */
  "snapshot.pruned": {
    snapshot_ids: string[];
    before_bytes: number;
    after_bytes: number;
    limit_bytes: number;
  };
  /**
   * A plan's steps judged by the gate without running them (plan.simulate, plan.create). A
   * simulated denial is recorded here, never as tool.denied: nothing was attempted.
   */
  "plan.simulated": {
    plan_id?: string;
    ok: boolean;
    steps: {
      index: number;
      tool: string;
      verdict: "allow" | "deny" | "confirm";
      stage?: DenyStage;
      reason?: string;
    }[];
    /** A shadow run: the pseudo-goal its calls are audited under, and what it changed in the copy. */
    shadow?: { goal_id: string; steps_run: number; added: number; changed: number; deleted: number };
  };
  /** A plan stored in the ledger, with the hash an execute is checked against. */
  "plan.created": {
    plan_id: string;
    title: string;
    steps: number;
    hash: string;
    steps_digest: string;
    grants_digest: string;
    policy_digest: string;
  };
  /** A plan's execution began (a plan executes once: this entry is what says it did). */
  "plan.started": { plan_id: string; agent_id: string; snapshot_id?: string };
  /** How an execution ended: succeeded, failed (at `failed_step`) or restored. */
  "plan.executed": {
    plan_id: string;
    status: "succeeded" | "failed" | "restored";
    steps_run: number;
    failed_step?: number;
    error?: string;
    /** The snapshot before the plan; absent once pruned, its id then in snapshot_pruned. */
    snapshot_id?: string;
    snapshot_pruned?: string;
  };
  /**
   * What the plan's steps changed, put back (kernel/plan-undo.ts); `conflicts`: paths someone
   * changed after the plan's step, left as they are (the first 100 in conflict_paths).
   */
  "plan.restored": {
    plan_id: string;
    /** The snapshot before the plan; absent once pruned, its id then in snapshot_pruned. */
    snapshot_id?: string;
    snapshot_pruned?: string;
    paths_changed: number;
    files_restored: number;
    files_failed: number;
    conflicts: number;
    conflict_paths?: string[];
  };
  /**
   * plan.execute refused before any step ran (what changed since the simulation, or a
   * replay); or a shadow plan.simulate refused while another runs for the goal (no plan_id).
   */
  "plan.refused": { plan_id?: string; reason: string; changed?: string[] };
  /** A world (kernel/worlds.ts): a copy of the spawner's folders, made from `snapshot_id`. */
  "world.spawned": { world_id: string; snapshot_id: string; manifest: string };
  /** The world's child ended; what it changed in its copy. */
  "world.finished": {
    world_id: string;
    agent_id?: string;
    stop_reason: string;
    added: number;
    changed: number;
    deleted: number;
  };
  /** A world's diff applied to the real folders through the gate by the agent that spawned it. */
  "world.adopted": { world_id: string; paths_applied: number; paths_failed: number };
  /** adopt_world refused (another agent's world, adopted already, unknown, or paths the caller may not write). */
  "world.refused": { world_id: string; reason: string; paths?: string[] };
  /** A world's container and folders removed (another world was adopted, or its spawner's turn ended). */
  "world.discarded": { world_id: string; reason: string };
  /** An egress connection about to carry its first byte upstream (egress/gate-policy.ts). */
  "egress.open": { host: string; port: number; method: string; address: string; connection?: number };
  /** It ended: bytes each way, how long, and why when it ended early (idle, upstream error). */
  "egress.close": {
    host: string;
    port: number;
    method: string;
    address: string;
    bytes_up: number;
    bytes_down: number;
    duration_ms: number;
    connection?: number;
    reason?: string;
  };
  /**
   * Refused, at `stage`; host and port are absent when the request never parsed. Stage
   * "relay": `connections` streams on `relay_port` (on `relay_ports`, ascending, when they
   * named several), which no caller holds, were closed unread.
   */
  "egress.denied": {
    host?: string;
    port?: number;
    method?: string;
    stage: string;
    reason: string;
    relay_port?: number;
    relay_ports?: number[];
    connections?: number;
    /** This many identical refusals (same caller, target and reason) since the last entry. */
    repeats?: number;
    /**
     * Stage "flood": a caller's refusals within a second past the 20 entries written
     * (egress/denial-throttle.ts): how many, how many distinct, how many per stage, the
     * first few of them.
     */
    refusals?: number;
    distinct?: number;
    stages?: Record<string, number>;
    sample?: { host?: string; port?: number; method?: string; stage: string; reason: string }[];
  };
  "sandbox.created": { container_id: string; image: string };
  "sandbox.destroyed": {
    container_id: string;
    reason?: string;
    /** It was an external MCP server's container (sandbox/mcp-container.ts). */
    mcp_server?: string;
  };
  /** At start-up, when the operator's config says `sandbox.landlock: off`. */
  "sandbox.landlock_off": { reason: string };
  /** setuid/setgid bits found and cleared under a goal's folder once its container was gone. */
  "sandbox.setid_cleared": { paths: string[]; count: number };
  "config.loaded": { home: string; files: string[] };
  /** A new active objective for a workspace (intent/intents.ts); `replaced` names the intent it ended. */
  "intent.set": {
    intent_id: string;
    workspace: string;
    objective: string;
    budget_tokens?: number;
    check?: string;
    by: string;
    replaced?: string;
  };
  "intent.step": { intent_id: string; workspace: string; step: number; note: string; by?: string };
  "intent.cleared": { intent_id: string; workspace: string; by: string };
  /** An MCP session's intent.set or intent.clear refused: the objective is not its own, or it would raise the budget. */
  "intent.refused": {
    intent_id: string;
    workspace: string;
    action: "set" | "clear";
    session_id: string;
    reason: string;
  };
  /** intent.check ran the intent's check through the gate as the entry's agent, or the gate refused it. */
  "intent.checked": {
    intent_id: string;
    workspace: string;
    command: string;
    met: boolean;
    exit_code: number | null;
    denied?: { stage: string; code: string; reason: string };
    error?: string;
  };
  /** Written by the log itself right after a signed checkpoint, tying the checkpoint into the chain. */
  "audit.checkpoint": { seq: number; head_hash: string; key_id: string };
  /** Written by a head-keeping runtime the first time it keeps a signed head for this log. */
  "audit.head_started": { log_seq: number };
  /** Written when the log no longer held what the signed head (or the running runtime) vouched for. */
  "audit.head_broken": { reason: string; head_seq?: number; head_hash?: string; log_seq: number };
}

export type AuditKind = keyof AuditPayloads;

/**
 * Every kind, those other modules add to AuditPayloads included (daemon/ui, tools/mcp,
 * cluster): a Record over AuditKind, so a kind added anywhere and missing here does not
 * compile, and `--kind` filters accept exactly what the log can hold.
 */
const KINDS: Record<AuditKind, true> = {
  "goal.submitted": true,
  "goal.refused": true,
  "goal.started": true,
  "goal.finished": true,
  "agent.spawned": true,
  "agent.stopped": true,
  "agent.spawn_denied": true,
  "session.opened": true,
  "session.closed": true,
  "session.refused": true,
  "session.call_refused": true,
  "token.issued": true,
  "token.revoked": true,
  "tool.invoked": true,
  "tool.denied": true,
  "tool.errored": true,
  "tool.completed": true,
  "tool.failed": true,
  "approval.requested": true,
  "approval.decided": true,
  "approval.timed_out": true,
  "approval.expired": true,
  "approval.reused": true,
  "approval.grant_revoked": true,
  "budget.reserved": true,
  "budget.exceeded": true,
  "budget.overspent": true,
  "budget.usage_unreported": true,
  "budget.charged_aborted": true,
  "budget.charged_failed": true,
  "snapshot.created": true,
  "snapshot.restored": true,
  "snapshot.pruned": true,
  "plan.simulated": true,
  "plan.created": true,
  "plan.started": true,
  "plan.executed": true,
  "plan.restored": true,
  "plan.refused": true,
  "world.spawned": true,
  "world.finished": true,
  "world.adopted": true,
  "world.refused": true,
  "world.discarded": true,
  "egress.open": true,
  "egress.close": true,
  "egress.denied": true,
  "sandbox.created": true,
  "sandbox.destroyed": true,
  "sandbox.landlock_off": true,
  "sandbox.setid_cleared": true,
  "config.loaded": true,
  "intent.set": true,
  "intent.step": true,
  "intent.cleared": true,
  "intent.refused": true,
  "intent.checked": true,
  "audit.checkpoint": true,
  "audit.head_started": true,
  "audit.head_broken": true,
  "ui.denied": true,
  "mcp.approved": true,
  "mcp.unreachable": true,
  "mcp.disconnected": true,
  "mcp.tool_too_large": true,
  "cluster.joined": true,
  "goal.enqueued": true,
  "cluster.goal_taken_over": true,
  "cluster.audit_head_diverged": true,
  "cluster.goal_lost": true,
  "cluster.goal_released": true,
  "cluster.goal_cancelled": true,
  "cluster.goal_requeued": true,
  "goal.share_returned": true,
  "cluster.command_refused": true,
  "cluster.fenced": true,
  "cluster.unfenced": true,
  "cluster.unfreeze_given_up": true,
};
export const AUDIT_KINDS: readonly AuditKind[] = Object.keys(KINDS) as AuditKind[];

/** What a caller hands to AuditLog.append: a discriminated union on `kind`. */
export type AuditEvent = {
  [K in AuditKind]: { kind: K; goalId?: string | null; agentId?: string | null; payload: AuditPayloads[K] };
}[AuditKind];

/** One stored entry, as `aido audit query` and the socket return it. */
export interface AuditEntry<K extends AuditKind = AuditKind> {
  seq: number;
  /** ISO 8601, UTC, millisecond precision. */
  time: string;
  goal_id: string | null;
  agent_id: string | null;
  kind: K;
  payload: AuditPayloads[K];
  /** SHA-256 (hex) of the previous entry; 64 zeros for seq 1. */
  prev_hash: string;
  hash: string;
}
