// security/audit-events.ts — the typed vocabulary of the audit log. Every entry has a
// kind from this list and a payload of that kind's shape, so a reader (aido audit query,
// a test, an auditor's script) can rely on the fields. The list is documented in
// docs/audit.md; a module that needs a new kind adds it to AuditPayloads (here, or by
// declaration merging from its own module) and to that document.

import type { JsonValue } from "./canonical-json.js";

/** Where in the gate a tool call was refused. */
export type DenyStage = "schema" | "capability" | "policy" | "budget" | "approval";

export type ApprovalDecisionKind = "allow_once" | "allow_session" | "allow_always" | "deny";

export type GoalEndState = "succeeded" | "failed" | "cancelled";

/** Payload shape per kind. Interface (not type) so other modules can extend it. */
export interface AuditPayloads {
  "goal.submitted": { goal: string; manifest?: string; inputs?: string[] };
  /** goal.submit refused before the goal existed (an input outside the rules); names the field. */
  "goal.refused": { field: string; reason: string };
  "goal.started": { agent_id?: string };
  "goal.finished": {
    state: GoalEndState;
    error?: string;
    usage?: { input_tokens: number; output_tokens: number };
  };
  "agent.spawned": { manifest: string; parent_agent_id?: string; grants: string[]; token_id?: string };
  "agent.stopped": { reason: string };
  "agent.spawn_denied": { manifest: string; reason: string; offending?: string[]; keys?: string[] };
  /** An MCP session opened (kernel/sessions.ts): its agent, manifest and bound host workspace. */
  "session.opened": { session_id: string; manifest: string; workspace: string | null; client?: string };
  "session.closed": { session_id: string; reason: string; workspace: string | null };
  /** session.open refused before any agent existed (a workspace or manifest that does not fit). */
  "session.refused": { reason: string; workspace?: string; manifest?: string };
  "token.issued": { token_id: string; parent_token_id?: string; grants: string[]; expires_at: string };
  "token.revoked": { token_id: string; revoked: string[]; reason?: string };
  "tool.invoked": { tool: string; input: JsonValue; call_id?: string };
  "tool.denied": { tool: string; stage: DenyStage; reason: string; code?: string; call_id?: string };
  "tool.completed": { tool: string; invoked_seq: number; is_error?: boolean; output_bytes?: number };
  "tool.failed": { tool: string; invoked_seq: number; error: string; code?: string };
  "approval.requested": {
    approval_id: string;
    tool: string;
    scope_key: string;
    summary: string;
    deadline: string;
  };
  "approval.decided": {
    approval_id: string;
    tool: string;
    scope_key: string;
    decision: ApprovalDecisionKind;
    by?: string;
    /** The agent identity an Allow Always grant is bound to. */
    identity?: string;
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
    tool: string;
    scope_key: string;
    by?: string;
  };
  "budget.reserved": { account: string; reservation_id: number; amount: number };
  "budget.exceeded": { account: string; limit: number; spent: number; reserved: number; requested: number };
  /** A provider reported more than a call's bound; charged anyway, and the goal is stopped. */
  "budget.overspent": { account: string; reserved: number; actual: number; overspent: number };
  "snapshot.created": { snapshot_id: string; label?: string; files?: number };
  "snapshot.restored": { snapshot_id: string; files_restored: number; files_failed: number };
  /** The oldest snapshots removed (and their packs compacted) to keep a goal's store under sandbox.snapshots_max_mb. */
  "snapshot.pruned": {
    snapshot_ids: string[];
    before_bytes: number;
    after_bytes: number;
    limit_bytes: number;
  };
  "sandbox.created": { container_id: string; image: string };
  "sandbox.destroyed": { container_id: string; reason?: string };
  /** At start-up, when the operator's config says `sandbox.landlock: off`. */
  "sandbox.landlock_off": { reason: string };
  /** setuid/setgid bits found and cleared under a goal's folder once its container was gone. */
  "sandbox.setid_cleared": { paths: string[]; count: number };
  "config.loaded": { home: string; files: string[] };
  /** Written by the log itself right after a signed checkpoint, tying the checkpoint into the chain. */
  "audit.checkpoint": { seq: number; head_hash: string; key_id: string };
  /** Written by a head-keeping runtime the first time it keeps a signed head for this log. */
  "audit.head_started": { log_seq: number };
  /** Written when the log no longer held what the signed head (or the running runtime) vouched for. */
  "audit.head_broken": { reason: string; head_seq?: number; head_hash?: string; log_seq: number };
}

export type AuditKind = keyof AuditPayloads;

/** The kinds this module defines, for docs and for validating `--kind` filters. */
export const AUDIT_KINDS: readonly AuditKind[] = [
  "goal.submitted",
  "goal.refused",
  "goal.started",
  "goal.finished",
  "agent.spawned",
  "agent.stopped",
  "agent.spawn_denied",
  "session.opened",
  "session.closed",
  "session.refused",
  "token.issued",
  "token.revoked",
  "tool.invoked",
  "tool.denied",
  "tool.completed",
  "tool.failed",
  "approval.requested",
  "approval.decided",
  "approval.timed_out",
  "approval.expired",
  "approval.reused",
  "approval.grant_revoked",
  "budget.reserved",
  "budget.exceeded",
  "budget.overspent",
  "snapshot.created",
  "snapshot.restored",
  "snapshot.pruned",
  "sandbox.created",
  "sandbox.destroyed",
  "sandbox.landlock_off",
  "sandbox.setid_cleared",
  "config.loaded",
  "audit.checkpoint",
  "audit.head_started",
  "audit.head_broken",
];

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
