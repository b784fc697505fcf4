// kernel/goal-snapshots.ts — a goal's snapshots as its operator sees them (socket
// snapshot.list / snapshot.restore, the dashboard's timeline). Listing reads the goal's
// snapshot store. A restore is never a side door: it is the snapshot_restore tool,
// through the gate (capability, policy, approval, audit, the snapshot before the
// mutation, the workspace quota), as one of two principals:
//   - the goal's root agent while it runs (the daemon calls it through tool.invoke's
//     path): its grants, its approvals, its budget;
//   - once the root agent has stopped (a finished goal), an operator principal minted for
//     this one call: a token for the goal granting `tool: snapshot_restore` and reads and
//     writes on /workspace and /output only, identity `operator:<who>`, revoked as soon as the call
//     ends. The operator's policy rules still apply (deny refuses a path, confirm asks).

import { randomBytes } from "node:crypto";
import { AidoError, ErrorCode } from "../errors.js";
import type { Gate } from "../gate/invoke.js";
import type { ToolResult } from "../gate/types.js";
import type { SnapshotStore } from "../sandbox/snapshots.js";
import type { AuditLog } from "../security/audit.js";
import { parseGrant } from "../security/grants.js";
import type { TokenAuthority } from "../security/tokens.js";
import type { GoalRunner } from "./goals.js";
import type { AgentRegistry } from "./registry.js";

/**
 * What the operator principal holds: the restore, writes where a snapshot restores, and
 * reads there (so the paths the policy kept from it are named in files_failed).
 */
const OPERATOR_GRANTS = [
  "tool: snapshot_restore",
  "file_write: /workspace/**",
  "file_write: /output/**",
  "file_read: /workspace/**",
  "file_read: /output/**",
];
const OPERATOR_TOKEN_TTL_SECONDS = 600;

export interface GoalSnapshotsDeps {
  store: SnapshotStore;
  gate: Gate;
  audit: AuditLog;
  tokens: TokenAuthority;
  goals: Pick<GoalRunner, "status">;
  registry: Pick<AgentRegistry, "get">;
}

export interface SnapshotEntry {
  id: string;
  label?: string;
  created_at: string;
  files: number;
  bytes: number;
}

export class GoalSnapshots {
  constructor(private readonly deps: GoalSnapshotsDeps) {}

  /** The goal's snapshots, oldest first; not_found for an unknown goal. */
  async list(goalId: string): Promise<SnapshotEntry[]> {
    this.deps.goals.status(goalId);
    return this.deps.store.list(goalId);
  }

  /** The goal's root agent when it is still running (a restore then goes as it), else undefined. */
  liveRoot(goalId: string): string | undefined {
    const rootId = this.deps.goals.status(goalId).agent_id;
    const root = rootId === undefined ? undefined : this.deps.registry.get(rootId);
    return root && root.state !== "stopped" ? root.id : undefined;
  }

  /** Refuses (not_found) a snapshot the goal does not have, before anything is judged. */
  async requireSnapshot(goalId: string, snapshotId: string): Promise<void> {
    if (!(await this.list(goalId)).some((s) => s.id === snapshotId)) {
      throw new AidoError(ErrorCode.notFound, `goal ${goalId} has no snapshot ${snapshotId}`, {
        goal_id: goalId,
        snapshot_id: snapshotId,
      });
    }
  }

  /**
   * snapshot_restore through the gate as an operator principal of the goal (see the
   * header). `by` names the operator (who asked: "dashboard", "socket client").
   */
  async restoreAsOperator(
    goalId: string,
    snapshotId: string,
    by: string,
    signal?: AbortSignal,
  ): Promise<{ agent_id: string; result: ToolResult }> {
    const agentId = `op_${randomBytes(8).toString("hex")}`;
    const token = this.deps.tokens.issue({
      agentId,
      goalId,
      grants: OPERATOR_GRANTS.map((g) => parseGrant(g)),
      ttlSeconds: OPERATOR_TOKEN_TTL_SECONDS,
    });
    const where = { goalId, agentId };
    this.deps.audit.record(
      "token.issued",
      { token_id: token.id, grants: OPERATOR_GRANTS, expires_at: new Date(token.expiresAt).toISOString() },
      where,
    );
    try {
      const result = await this.deps.gate.invoke(
        { agentId, goalId, identity: `operator:${by}`, token, approvalRequired: new Set() },
        { name: "snapshot_restore", input: { id: snapshotId }, ...(signal ? { signal } : {}) },
      );
      return { agent_id: agentId, result };
    } finally {
      const revoked = this.deps.tokens.revoke(token.id);
      this.deps.audit.record(
        "token.revoked",
        { token_id: token.id, revoked, reason: "operator restore done" },
        where,
      );
      this.deps.gate.agentStopped(agentId);
    }
  }
}
