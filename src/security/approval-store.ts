// security/approval-store.ts — the approval requests as rows in SQLite (table
// `approvals`; the grants' table `approval_grants` is migrated here too and owned by
// approval-grants.ts). Rows are what survives the process: a request, its answer or how it
// was closed, and what it covers. The queue (approvals.ts) decides; this file stores.

import { type Db, migrate, prepared } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import { type ProjectBinding, parseProject, type SubmittedBy } from "./approval-project.js";
import { type Coverage, describeCoverage } from "./approval-scope.js";
import type { ShownCode } from "./approval-shown.js";
import type { ApprovalDecisionKind } from "./audit-events.js";

export type ApprovalDecision = ApprovalDecisionKind;
export type ApprovalStatus = "pending" | "decided" | "timed_out" | "expired";
export const APPROVAL_STATUSES: readonly ApprovalStatus[] = ["pending", "decided", "timed_out", "expired"];

/**
 * What made the gate ask a human: a `policy.confirm` rule (its id and text), the agent's
 * manifest listing the tool in `approval_required` (text: the tool), or the tool's own
 * default (an external MCP tool the operator did not mark read-only; text: why).
 */
export interface AskedBy {
  source: "policy.confirm" | "approval_required" | "tool_default";
  rule?: string;
  text: string;
}

const MIGRATIONS = [
  `CREATE TABLE approvals (
     id TEXT PRIMARY KEY,
     goal_id TEXT,
     agent_id TEXT NOT NULL,
     tool TEXT NOT NULL,
     scope_key TEXT NOT NULL,
     input TEXT NOT NULL,
     summary TEXT NOT NULL,
     status TEXT NOT NULL,
     decision TEXT,
     decided_by TEXT,
     grant_id TEXT,
     created_at INTEGER NOT NULL,
     deadline_at INTEGER NOT NULL,
     decided_at INTEGER
   );
   CREATE INDEX approvals_status ON approvals (status, deadline_at);
   CREATE TABLE approval_grants (
     id TEXT PRIMARY KEY,
     tool TEXT NOT NULL,
     scope_key TEXT NOT NULL,
     expires_at INTEGER NOT NULL,
     audit_seq INTEGER NOT NULL,
     key_id TEXT NOT NULL,
     sig TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX approval_grants_scope ON approval_grants (tool, scope_key);`,
  // Decisions bind to the agent's identity and say what they cover; a request can be closed
  // as expired (with why); grants are listed and revoked.
  `ALTER TABLE approvals ADD COLUMN identity TEXT;
   ALTER TABLE approvals ADD COLUMN target TEXT;
   ALTER TABLE approvals ADD COLUMN close_reason TEXT;
   CREATE INDEX approvals_agent ON approvals (agent_id) WHERE status = 'pending';
   ALTER TABLE approval_grants ADD COLUMN identity TEXT;
   ALTER TABLE approval_grants ADD COLUMN target TEXT;
   ALTER TABLE approval_grants ADD COLUMN approval_id TEXT;
   ALTER TABLE approval_grants ADD COLUMN decided_by TEXT;
   ALTER TABLE approval_grants ADD COLUMN revoked_at INTEGER;
   ALTER TABLE approval_grants ADD COLUMN revoked_by TEXT;`,
  // What made the gate ask (AskedBy, JSON); NULL on requests made before it was recorded.
  `ALTER TABLE approvals ADD COLUMN asked_by TEXT;
   CREATE INDEX approvals_created ON approvals (created_at);`,
  // The project of the call's goal (approval-project.ts, JSON) that an Allow Always answer
  // binds to; NULL on requests and grants made before (such grants are honoured nowhere).
  `ALTER TABLE approvals ADD COLUMN project TEXT;
   ALTER TABLE approval_grants ADD COLUMN project TEXT;
   ALTER TABLE approval_grants ADD COLUMN project_shown TEXT;`,
  // The socket request of the call that asked (approval-origin.ts): which of its client's
  // calls a request is of, for a client that reconnects and for `aido approvals`; NULL on
  // requests made before, and on those no socket call made (an agent's own turn, a process
  // a call left running).
  `ALTER TABLE approvals ADD COLUMN request_id TEXT;`,
  // The secrets the call carries, by kind (JSON list, gate/call-secrets.ts); NULL on requests
  // made before, read as none.
  `ALTER TABLE approvals ADD COLUMN carries_secrets TEXT;`,
  // The text of each file an exec runs as code, as the human is shown it (approval-shown.ts
  // ShownCode, JSON list); NULL on requests made before, read as none.
  `ALTER TABLE approvals ADD COLUMN code TEXT;`,
];

export interface ApprovalRecord {
  id: string;
  goal_id: string | null;
  agent_id: string;
  /** The agent's identity: what an Allow Always answer binds to. */
  identity: string;
  /** The project of the call's goal, which an Allow Always answer binds to too; null on requests made before. */
  project: ProjectBinding | null;
  tool: string;
  scope_key: string;
  /** What the scope is, in words ("exec of `git push origin main` in /workspace"). */
  target: string;
  input: unknown;
  summary: string;
  /**
   * The secrets the call carries, by kind and never by value ("the API key of provider
   * anthropic"): what the blanks (`***`, `[hidden]`) in input, summary and target stand for.
   */
  carries_secrets: string[];
  /**
   * The files an exec runs as code, each with its text as the digest in the scope was taken
   * of (secrets blanked; cut when all of them pass CODE_SHOWN_MAX, and then no standing
   * answer covers the call): what the human approves running. Empty for other calls.
   */
  code: ShownCode[];
  status: ApprovalStatus;
  decision: ApprovalDecision | null;
  decided_by: string | null;
  grant_id: string | null;
  /** Why an expired request was closed unanswered. */
  close_reason: string | null;
  created_at: number;
  deadline_at: number;
  decided_at: number | null;
  /** What each answer would cover, as the prompts show it. */
  covers: Coverage;
  /** What made the gate ask; null for requests recorded before Aido kept it. */
  asked_by: AskedBy | null;
  /** The socket request of the call that asked (request.started); null when no socket call did. */
  request_id: string | null;
  /** Who submitted the call's goal when the user did not: an MCP session (its project names it); null: the user. */
  submitted_by: SubmittedBy | null;
}

type RawRecord = Omit<
  ApprovalRecord,
  | "input"
  | "identity"
  | "project"
  | "target"
  | "covers"
  | "asked_by"
  | "submitted_by"
  | "carries_secrets"
  | "code"
> & {
  carries_secrets: string | null;
  code: string | null;
  input: string;
  project: string | null;
  identity: string | null;
  target: string | null;
  asked_by: string | null;
};

/** Which requests approval.list gives: pending ones oldest first (a queue), others newest first (history). */
export interface ApprovalListFilter {
  status?: ApprovalStatus | "all";
  limit?: number;
  offset?: number;
}

export interface NewRequest {
  id: string;
  goalId: string | null;
  agentId: string;
  identity: string;
  project: ProjectBinding;
  tool: string;
  scopeKey: string;
  target: string;
  /** Canonical JSON of the call's input. */
  input: string;
  summary: string;
  /** The secrets the call carries, by kind (absent: none). */
  carriesSecrets?: string[];
  /** The files it runs as code, as shown (absent: none). */
  code?: readonly ShownCode[];
  askedBy: AskedBy;
  /** The socket request of the call that asks, if one does. */
  requestId?: string;
  createdAt: number;
  deadlineAt: number;
}

export class ApprovalStore {
  constructor(
    private readonly db: Db,
    /** Shown in each record's `covers.allow_always` (config.approvals.allowAlwaysTtlSeconds). */
    private readonly allowAlwaysTtlSeconds: number,
  ) {
    migrate(db, "approvals", MIGRATIONS);
  }

  insert(r: NewRequest): void {
    prepared(
      this.db,
      `INSERT INTO approvals (id, goal_id, agent_id, identity, project, tool, scope_key, target, input, summary,
         carries_secrets, code, asked_by, request_id, status, created_at, deadline_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
    ).run(
      r.id,
      r.goalId,
      r.agentId,
      r.identity,
      JSON.stringify(r.project),
      r.tool,
      r.scopeKey,
      r.target,
      r.input,
      r.summary,
      JSON.stringify(r.carriesSecrets ?? []),
      JSON.stringify(r.code ?? []),
      JSON.stringify(r.askedBy),
      r.requestId ?? null,
      r.createdAt,
      r.deadlineAt,
    );
  }

  get(id: string): ApprovalRecord {
    const row = prepared(this.db, "SELECT * FROM approvals WHERE id = ?").get(id) as RawRecord | undefined;
    if (!row) throw new AidoError(ErrorCode.notFound, `no approval request with id ${id}`, { id });
    return this.parse(row);
  }

  list(f: ApprovalListFilter = {}): ApprovalRecord[] {
    const status = f.status ?? "pending";
    const where = status === "all" ? "" : "WHERE status = ?";
    const order = status === "pending" ? "created_at, rowid" : "created_at DESC, rowid DESC";
    const args: (string | number)[] = status === "all" ? [] : [status];
    const rows = prepared(this.db, `SELECT * FROM approvals ${where} ORDER BY ${order} LIMIT ? OFFSET ?`).all(
      ...args,
      f.limit ?? -1,
      f.offset ?? 0,
    ) as RawRecord[];
    return rows.map((r) => this.parse(r));
  }

  /** Ids of pending requests, of one agent or of all. */
  pendingIds(agentId?: string): string[] {
    return (
      agentId === undefined
        ? prepared(this.db, "SELECT id FROM approvals WHERE status = 'pending'").pluck().all()
        : prepared(this.db, "SELECT id FROM approvals WHERE agent_id = ? AND status = 'pending'")
            .pluck()
            .all(agentId)
    ) as string[];
  }

  markDecided(
    id: string,
    decision: ApprovalDecision,
    by: string | null,
    grantId: string | null,
    at: number,
  ): void {
    prepared(
      this.db,
      "UPDATE approvals SET status = 'decided', decision = ?, decided_by = ?, grant_id = ?, decided_at = ? WHERE id = ?",
    ).run(decision, by, grantId, at, id);
  }

  /** Close a request that is still pending; false when it no longer was. */
  markClosed(id: string, status: "timed_out" | "expired", reason: string | null, at: number): boolean {
    return (
      prepared(
        this.db,
        "UPDATE approvals SET status = ?, close_reason = ?, decided_at = ? WHERE id = ? AND status = 'pending'",
      ).run(status, reason, at, id).changes === 1
    );
  }

  private parse(row: RawRecord): ApprovalRecord {
    const identity = row.identity ?? "";
    const target = row.target ?? row.summary;
    const project = parseProject(row.project) ?? null;
    const covers = describeCoverage(
      { target, agent_id: row.agent_id, identity, project },
      this.allowAlwaysTtlSeconds,
    );
    const asked_by = row.asked_by === null ? null : (JSON.parse(row.asked_by) as AskedBy);
    const submitted_by = project?.submitted_by ?? null;
    return {
      ...row,
      identity,
      project,
      target,
      input: JSON.parse(row.input),
      covers,
      asked_by,
      carries_secrets: row.carries_secrets === null ? [] : (JSON.parse(row.carries_secrets) as string[]),
      code: row.code === null ? [] : (JSON.parse(row.code) as ShownCode[]),
      submitted_by,
    };
  }
}

/**
 * An answer `rec` cannot take: it is no longer pending (saying who answered it first: a node
 * that had not yet written the outcome to the cluster still lists it pending, and routes
 * answers here), or Allow Always for a request recorded before requests named their project
 * (the grant could not say which project it covers).
 */
export function refuseUnanswerable(rec: ApprovalRecord, decision: ApprovalDecision): void {
  if (rec.status !== "pending") {
    const answered =
      rec.decision === null ? "" : ` (${rec.decision} by ${rec.decided_by ?? "an unnamed caller"})`;
    const why = rec.close_reason ? ` (${rec.close_reason})` : answered;
    throw new AidoError(ErrorCode.invalidInput, `approval ${rec.id} is already ${rec.status}${why}`, {
      id: rec.id,
      status: rec.status,
    });
  }
  if (decision === "allow_always" && rec.project === null) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `approval ${rec.id} was asked before requests recorded their project, so an Allow Always answer could not say which project it covers; answer allow_once, allow_session or deny`,
      { id: rec.id, field: "decision" },
    );
  }
}
