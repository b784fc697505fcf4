// security/approvals.ts — the durable queue where a tool call waits for a human: Allow
// Once, Allow Session, Allow Always or Deny. Requests live in SQLite, so they survive a
// restart and can be answered from another connection or process; a request nobody
// answers before its deadline is marked timed_out and audited, never silently dropped.
// Allow Always becomes a grant signed with the runtime key, scoped to (tool, scope key),
// expiring, and tied to the audit entry that approved it; it is re-verified on every use,
// so a grant row edited in SQLite stops being honoured.

import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { type Db, migrate, prepared } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import { approvalScopeKey } from "./approval-scope.js";
import type { AuditLog, Signer } from "./audit.js";
import type { ApprovalDecisionKind } from "./audit-events.js";
import { canonicalJson } from "./canonical-json.js";

export type ApprovalDecision = ApprovalDecisionKind;
export type ApprovalStatus = "pending" | "decided" | "timed_out";
export const APPROVAL_DECISIONS: readonly ApprovalDecision[] = [
  "allow_once",
  "allow_session",
  "allow_always",
  "deny",
];

const GRANT_FORMAT = "aido.approval.grant.v1";

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
];

export interface ApprovalRecord {
  id: string;
  goal_id: string | null;
  agent_id: string;
  tool: string;
  scope_key: string;
  input: unknown;
  summary: string;
  status: ApprovalStatus;
  decision: ApprovalDecision | null;
  decided_by: string | null;
  grant_id: string | null;
  created_at: number;
  deadline_at: number;
  decided_at: number | null;
}

/** How a request ended. Only the three allow_* decisions let the call proceed. */
export interface ApprovalOutcome {
  id: string;
  decision: ApprovalDecision | "timed_out";
  allowed: boolean;
  by: string | null;
  grantId: string | null;
}

export type ApprovalCheck =
  | { allowed: true; via: "allow_session" }
  | { allowed: true; via: "allow_always"; grantId: string }
  | { allowed: false };

export interface ApprovalRequest {
  goalId?: string | null;
  agentId: string;
  tool: string;
  input: unknown;
  summary: string;
  timeoutMs?: number;
  /** Defaults to approvalScopeKey(tool, input). */
  scopeKey?: string;
}

export interface ApprovalQueueOptions {
  db: Db;
  audit: AuditLog;
  signer: Signer;
  /** config.approvals.timeoutMs */
  timeoutMs: number;
  /** config.approvals.allowAlwaysTtlSeconds */
  allowAlwaysTtlSeconds: number;
  /** How often a waiter looks for answers given through another connection (default 200 ms). */
  pollMs?: number;
  now?: () => number;
}

interface Waiter {
  resolve(outcome: ApprovalOutcome): void;
  timer: NodeJS.Timeout;
}

type RawRecord = Omit<ApprovalRecord, "input"> & { input: string };

export class ApprovalQueue {
  private readonly db: Db;
  private readonly audit: AuditLog;
  private readonly signer: Signer;
  private readonly opts: ApprovalQueueOptions;
  private readonly now: () => number;
  private readonly events = new EventEmitter();
  private readonly waiters = new Map<string, Waiter>();
  private readonly sessions = new Set<string>();
  private readonly deadlines = new Map<string, NodeJS.Timeout>();
  private poller: NodeJS.Timeout | undefined;

  constructor(opts: ApprovalQueueOptions) {
    this.opts = opts;
    this.db = opts.db;
    this.audit = opts.audit;
    this.signer = opts.signer;
    this.now = opts.now ?? Date.now;
    migrate(this.db, "approvals", MIGRATIONS);
  }

  on(event: "requested" | "decided", listener: (record: ApprovalRecord) => void): () => void {
    this.events.on(event, listener);
    return () => this.events.off(event, listener);
  }

  /** Does an earlier Allow Session / Allow Always cover this call? */
  check(agentId: string, tool: string, scopeKey: string): ApprovalCheck {
    if (this.sessions.has(sessionKey(agentId, tool, scopeKey)))
      return { allowed: true, via: "allow_session" };
    const now = this.now();
    const grants = prepared(
      this.db,
      "SELECT * FROM approval_grants WHERE tool = ? AND scope_key = ? AND expires_at > ?",
    ).all(tool, scopeKey, now) as GrantRow[];
    for (const g of grants)
      if (this.grantHolds(g, now)) return { allowed: true, via: "allow_always", grantId: g.id };
    return { allowed: false };
  }

  /** Queue a request (durable, audited) and wait for its answer or its deadline. */
  async request(req: ApprovalRequest): Promise<ApprovalOutcome> {
    return this.wait(this.enqueue(req).id);
  }

  /** Persist a pending request and audit it; returns at once. */
  enqueue(req: ApprovalRequest): ApprovalRecord {
    const timeoutMs = req.timeoutMs ?? this.opts.timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `approval timeoutMs must be a positive integer, got ${timeoutMs}`,
      );
    }
    const now = this.now();
    const rec: ApprovalRecord = {
      id: `apr_${randomUUID()}`,
      goal_id: req.goalId ?? null,
      agent_id: req.agentId,
      tool: req.tool,
      scope_key: req.scopeKey ?? approvalScopeKey(req.tool, req.input),
      input: req.input,
      summary: req.summary,
      status: "pending",
      decision: null,
      decided_by: null,
      grant_id: null,
      created_at: now,
      deadline_at: now + timeoutMs,
      decided_at: null,
    };
    this.db
      .transaction(() => {
        prepared(
          this.db,
          `INSERT INTO approvals (id, goal_id, agent_id, tool, scope_key, input, summary, status, created_at, deadline_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
        ).run(
          rec.id,
          rec.goal_id,
          rec.agent_id,
          rec.tool,
          rec.scope_key,
          canonicalJson(req.input),
          rec.summary,
          now,
          rec.deadline_at,
        );
        this.audit.record(
          "approval.requested",
          {
            approval_id: rec.id,
            tool: rec.tool,
            scope_key: rec.scope_key,
            summary: rec.summary,
            deadline: new Date(rec.deadline_at).toISOString(),
          },
          { goalId: rec.goal_id, agentId: rec.agent_id },
        );
      })
      .immediate();
    this.events.emit("requested", rec);
    return rec;
  }

  /** Wait for a request's answer (also one queued before a restart). */
  wait(id: string): Promise<ApprovalOutcome> {
    const rec = this.get(id);
    if (rec.status !== "pending") return Promise.resolve(outcomeOf(rec));
    const existing = this.waiters.get(id);
    if (existing) return new Promise((resolve) => this.chainWaiter(id, resolve));
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.expire(id), Math.max(0, rec.deadline_at - this.now()));
      this.waiters.set(id, { resolve, timer });
      this.startPolling();
    });
  }

  /** Answer a pending request; audited, and an Allow Always becomes a signed grant. */
  respond(id: string, decision: ApprovalDecision, by?: string): ApprovalRecord {
    if (!APPROVAL_DECISIONS.includes(decision)) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `decision must be one of ${APPROVAL_DECISIONS.join(", ")}, got "${decision}"`,
        {
          field: "decision",
        },
      );
    }
    const now = this.now();
    const rec = this.db
      .transaction(() => {
        const current = this.get(id);
        if (current.status !== "pending") {
          throw new AidoError(ErrorCode.invalidInput, `approval ${id} is already ${current.status}`, {
            id,
            status: current.status,
          });
        }
        if (current.deadline_at <= now) return undefined;
        const grantId = decision === "allow_always" ? `grt_${randomUUID()}` : null;
        const expiresAt = now + this.opts.allowAlwaysTtlSeconds * 1000;
        const entry = this.audit.record(
          "approval.decided",
          {
            approval_id: id,
            tool: current.tool,
            scope_key: current.scope_key,
            decision,
            by,
            grant_id: grantId ?? undefined,
            grant_expires_at: grantId ? new Date(expiresAt).toISOString() : undefined,
          },
          { goalId: current.goal_id, agentId: current.agent_id },
        );
        if (grantId) this.storeGrant(grantId, current.tool, current.scope_key, expiresAt, entry.seq, now);
        prepared(
          this.db,
          "UPDATE approvals SET status = 'decided', decision = ?, decided_by = ?, grant_id = ?, decided_at = ? WHERE id = ?",
        ).run(decision, by ?? null, grantId, now, id);
        return this.get(id);
      })
      .immediate();
    if (!rec) {
      this.expire(id);
      throw new AidoError(
        ErrorCode.approvalTimeout,
        `approval ${id} passed its deadline before it was answered`,
        { id },
      );
    }
    this.settled(rec);
    return rec;
  }

  list(filter: { status?: ApprovalStatus } = {}): ApprovalRecord[] {
    const rows = (
      filter.status
        ? prepared(this.db, "SELECT * FROM approvals WHERE status = ? ORDER BY created_at, id").all(
            filter.status,
          )
        : prepared(this.db, "SELECT * FROM approvals ORDER BY created_at, id").all()
    ) as RawRecord[];
    return rows.map(parseRecord);
  }

  get(id: string): ApprovalRecord {
    const row = prepared(this.db, "SELECT * FROM approvals WHERE id = ?").get(id) as RawRecord | undefined;
    if (!row) throw new AidoError(ErrorCode.notFound, `no approval request with id ${id}`, { id });
    return parseRecord(row);
  }

  /** Mark every pending request past its deadline timed_out (audited). Returns their ids. */
  expireOverdue(): string[] {
    const ids = prepared(this.db, "SELECT id FROM approvals WHERE status = 'pending' AND deadline_at <= ?")
      .pluck()
      .all(this.now()) as string[];
    for (const id of ids) this.expire(id);
    return ids;
  }

  /**
   * After a restart: time out what is overdue, and arm a deadline for every request still
   * pending so it times out while this process runs even if nobody waits on it.
   */
  resumePending(): ApprovalRecord[] {
    this.expireOverdue();
    const pending = this.list({ status: "pending" });
    for (const rec of pending) {
      if (this.waiters.has(rec.id) || this.deadlines.has(rec.id)) continue;
      const t = setTimeout(() => this.expire(rec.id), Math.max(0, rec.deadline_at - this.now()));
      t.unref();
      this.deadlines.set(rec.id, t);
    }
    return pending;
  }

  /** Forget an agent's Allow Session answers (the agent stopped). */
  endSession(agentId: string): void {
    for (const key of this.sessions) if (key.startsWith(`${agentId}\u0000`)) this.sessions.delete(key);
  }

  /** Stop timers. Pending requests stay pending in the database. */
  close(): void {
    for (const w of this.waiters.values()) clearTimeout(w.timer);
    for (const t of this.deadlines.values()) clearTimeout(t);
    this.waiters.clear();
    this.deadlines.clear();
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }

  /** Time a request out if it is still pending, audit it, and wake its waiter. */
  private expire(id: string): void {
    const rec = this.db
      .transaction(() => {
        const changed = prepared(
          this.db,
          "UPDATE approvals SET status = 'timed_out', decided_at = ? WHERE id = ? AND status = 'pending'",
        ).run(this.now(), id).changes;
        const current = this.get(id);
        if (changed === 1) {
          this.audit.record(
            "approval.timed_out",
            {
              approval_id: id,
              tool: current.tool,
              scope_key: current.scope_key,
              deadline: new Date(current.deadline_at).toISOString(),
            },
            { goalId: current.goal_id, agentId: current.agent_id },
          );
        }
        return current;
      })
      .immediate();
    this.settled(rec);
  }

  private settled(rec: ApprovalRecord): void {
    if (rec.decision === "allow_session")
      this.sessions.add(sessionKey(rec.agent_id, rec.tool, rec.scope_key));
    const deadline = this.deadlines.get(rec.id);
    if (deadline) clearTimeout(deadline);
    this.deadlines.delete(rec.id);
    const waiter = this.waiters.get(rec.id);
    if (waiter) {
      clearTimeout(waiter.timer);
      this.waiters.delete(rec.id);
      waiter.resolve(outcomeOf(rec));
    }
    if (this.waiters.size === 0 && this.poller) {
      clearInterval(this.poller);
      this.poller = undefined;
    }
    this.events.emit("decided", rec);
  }

  private chainWaiter(id: string, resolve: (o: ApprovalOutcome) => void): void {
    const w = this.waiters.get(id)!;
    const first = w.resolve;
    w.resolve = (o) => {
      first(o);
      resolve(o);
    };
  }

  /** Answers given through another connection only show up in the database. */
  private startPolling(): void {
    if (this.poller) return;
    this.poller = setInterval(() => {
      for (const id of [...this.waiters.keys()]) {
        const rec = this.get(id);
        if (rec.status !== "pending") this.settled(rec);
        else if (rec.deadline_at <= this.now()) this.expire(id);
      }
    }, this.opts.pollMs ?? 200);
    this.poller.unref();
  }

  private storeGrant(
    id: string,
    tool: string,
    scopeKey: string,
    expiresAt: number,
    auditSeq: number,
    now: number,
  ): void {
    const keyId = this.signer.keyId;
    const sig = this.signer
      .sign(grantMessage(id, tool, scopeKey, expiresAt, auditSeq, keyId))
      .toString("base64");
    prepared(
      this.db,
      "INSERT INTO approval_grants (id, tool, scope_key, expires_at, audit_seq, key_id, sig, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(id, tool, scopeKey, expiresAt, auditSeq, keyId, sig, now);
  }

  /** Signature by the runtime key, not expired, and the audit entry it cites approved exactly it. */
  private grantHolds(g: GrantRow, now: number): boolean {
    if (g.expires_at <= now || g.key_id !== this.signer.keyId) return false;
    let signed = false;
    try {
      signed = this.signer.verify(
        grantMessage(g.id, g.tool, g.scope_key, g.expires_at, g.audit_seq, g.key_id),
        Buffer.from(g.sig, "base64"),
      );
    } catch {
      signed = false;
    }
    if (!signed) return false;
    const entry = this.audit.entry(g.audit_seq);
    if (entry?.kind !== "approval.decided") return false;
    const p = entry.payload as { grant_id?: string; decision?: string; tool?: string; scope_key?: string };
    return (
      p.grant_id === g.id && p.decision === "allow_always" && p.tool === g.tool && p.scope_key === g.scope_key
    );
  }
}

interface GrantRow {
  id: string;
  tool: string;
  scope_key: string;
  expires_at: number;
  audit_seq: number;
  key_id: string;
  sig: string;
}

function grantMessage(
  id: string,
  tool: string,
  scopeKey: string,
  expiresAt: number,
  auditSeq: number,
  keyId: string,
) {
  return Buffer.from(JSON.stringify([GRANT_FORMAT, id, tool, scopeKey, expiresAt, auditSeq, keyId]), "utf8");
}

function sessionKey(agentId: string, tool: string, scopeKey: string): string {
  return `${agentId}\u0000${tool}\u0000${scopeKey}`;
}

function parseRecord(row: RawRecord): ApprovalRecord {
  return { ...row, input: JSON.parse(row.input) };
}

function outcomeOf(rec: ApprovalRecord): ApprovalOutcome {
  const decision = rec.status === "timed_out" ? "timed_out" : (rec.decision ?? "deny");
  return {
    id: rec.id,
    decision,
    allowed: decision === "allow_once" || decision === "allow_session" || decision === "allow_always",
    by: rec.decided_by,
    grantId: rec.grant_id,
  };
}
