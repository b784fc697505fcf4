// security/approvals.ts — where a tool call waits for a human: Allow Once, Allow Session,
// Allow Always or Deny. The gate hands every call that needs a human to authorize():
//   1. an earlier decision that covers it is reused, audited as approval.reused: Allow
//      Session for this agent, tool and scope (approval-scope.ts) until the agent stops;
//      Allow Always as a signed grant for the agent's identity, the project of its goal
//      (approval-project.ts), tool and scope (approval-grants.ts); never for a scope that is not reusable (an exec whose files
//      could not all be pinned down). Those standing decisions are approval-standing.ts's;
//   2. otherwise a request is stored in SQLite (audited) and waits for an answer given over
//      any connection, its deadline, or the end of the call it belongs to.
// A request whose call can no longer run is closed as expired, audited, and its waiter
// fails at once: its agent stopped (goal finished, cancelled, failed, agent.stop), the
// client that made the call left (the call's AbortSignal), or the daemon restarted (the
// waiting call died with the old process). A request never stays pending for nothing.

import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Db } from "../db/database.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { ApprovalGrants, type GrantRecord } from "./approval-grants.js";
import type { ProjectBinding } from "./approval-project.js";
import type { ApprovalScope } from "./approval-scope.js";
import { type StandingCall, type StandingDecision, StandingDecisions } from "./approval-standing.js";
import {
  type ApprovalDecision,
  type ApprovalListFilter,
  type ApprovalRecord,
  ApprovalStore,
  type AskedBy,
  refuseUnanswerable,
} from "./approval-store.js";
import type { AuditLog, Signer } from "./audit.js";
import { canonicalJson } from "./canonical-json.js";

export type { ApprovalDecision, ApprovalRecord, AskedBy };
export const APPROVAL_DECISIONS: readonly ApprovalDecision[] = [
  "allow_once",
  "allow_session",
  "allow_always",
  "deny",
];

/** How the approval stage ended for one call. */
export interface ApprovalOutcome {
  allowed: boolean;
  /** A human's answer to this call's request, or the standing decision reused for it. */
  via: "answer" | "allow_session" | "allow_always";
  decision: ApprovalDecision | "timed_out" | "expired";
  /** The request answered now, or (Allow Session) the earlier request whose answer was reused. */
  approvalId: string | null;
  grantId: string | null;
  by: string | null;
  /** Why the request expired. */
  reason: string | null;
}

export interface ApprovalRequest {
  goalId: string | null;
  agentId: string;
  identity: string;
  /** The project of the call's goal: what an Allow Always answer binds to with the identity. */
  project: ProjectBinding;
  tool: string;
  input: unknown;
  summary: string;
  /** The secrets the call carries, by kind, never by value (gate/call-secrets.ts); absent: none. */
  carriesSecrets?: string[];
  scope: ApprovalScope;
  /** What made the gate ask (a policy rule, the manifest, the tool's default). */
  askedBy: AskedBy;
  timeoutMs?: number;
  /** The model's tool_use id, recorded when a standing decision is reused. */
  callId?: string;
  /** Aborts when the call can no longer run (agent stopped, client left): the request expires. */
  signal?: AbortSignal;
  /** The socket request the call serves (approval-origin.ts), stamped on the request. */
  requestId?: string;
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
  resolve(rec: ApprovalRecord): void;
  timer: NodeJS.Timeout;
}

export class ApprovalQueue {
  private readonly db: Db;
  private readonly audit: AuditLog;
  private readonly opts: ApprovalQueueOptions;
  private readonly now: () => number;
  private readonly store: ApprovalStore;
  private readonly grantStore: ApprovalGrants;
  private readonly standing: StandingDecisions;
  private readonly events = new EventEmitter();
  private readonly waiters = new Map<string, Waiter[]>();
  /** Closed inside a caller's transaction: settled once it committed (syncSettled). */
  private readonly closedInTx = new Set<string>();
  private syncQueued = false;
  private poller: NodeJS.Timeout | undefined;

  constructor(opts: ApprovalQueueOptions) {
    this.opts = opts;
    this.db = opts.db;
    this.audit = opts.audit;
    this.now = opts.now ?? Date.now;
    this.store = new ApprovalStore(this.db, opts.allowAlwaysTtlSeconds);
    this.grantStore = new ApprovalGrants(this.db, this.audit, opts.signer, this.now);
    this.standing = new StandingDecisions(this.audit, this.grantStore);
  }

  /** `requestId`: of a "requested" record, the socket request that asked (approval-origin.ts). */
  on(
    event: "requested" | "decided",
    listener: (record: ApprovalRecord, requestId?: string) => void,
  ): () => void {
    this.events.on(event, listener);
    return () => this.events.off(event, listener);
  }

  /**
   * The approval stage of one call: reuse a standing decision that covers it (audited), or
   * ask and wait for the answer, the deadline, or the end of the call (`signal`).
   */
  async authorize(req: ApprovalRequest): Promise<ApprovalOutcome> {
    const standing = req.scope.reusable === false ? undefined : this.standing.reuse(req);
    if (standing) return { allowed: true, decision: standing.via, reason: null, ...standing };
    const rec = this.enqueue(req);
    const { signal } = req;
    const onAbort = () => this.expire(rec.id, reasonOf(signal));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return outcomeOf(await this.wait(rec.id));
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * The standing decision that would let the call pass without asking (authorize()'s first
   * step), without using it: nothing is audited or stored. Never one for a scope that is
   * not reusable.
   */
  covering(call: Omit<StandingCall, "goalId" | "callId">): StandingDecision | undefined {
    return call.scope.reusable === false ? undefined : this.standing.find(call);
  }

  /** Answer a pending request; audited, and an Allow Always becomes a signed grant. */
  respond(id: string, decision: ApprovalDecision, by?: string): ApprovalRecord {
    if (!APPROVAL_DECISIONS.includes(decision)) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `decision must be one of ${APPROVAL_DECISIONS.join(", ")}, got "${decision}"`,
        { field: "decision" },
      );
    }
    const now = this.now();
    const rec = this.db
      .transaction(() => {
        const current = this.get(id);
        refuseUnanswerable(current, decision);
        if (current.deadline_at <= now) return undefined;
        const project = current.project;
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
            ...(grantId
              ? {
                  identity: current.identity,
                  project: project!.key,
                  grant_id: grantId,
                  grant_expires_at: new Date(expiresAt).toISOString(),
                }
              : {}),
          },
          { goalId: current.goal_id, agentId: current.agent_id },
        );
        if (grantId) {
          this.grantStore.mint({
            id: grantId,
            identity: current.identity,
            project: project!,
            tool: current.tool,
            scopeKey: current.scope_key,
            target: current.target,
            expiresAt,
            auditSeq: entry.seq,
            approvalId: id,
            by: by ?? null,
            now,
          });
        }
        this.store.markDecided(id, decision, by ?? null, grantId, now);
        return this.get(id);
      })
      .immediate();
    if (!rec) {
      this.timeOut(id);
      throw new AidoError(
        ErrorCode.approvalTimeout,
        `approval ${id} passed its deadline before it was answered`,
        { id },
      );
    }
    this.settled(rec);
    return rec;
  }

  list(filter: ApprovalListFilter = {}): ApprovalRecord[] {
    return this.store.list(filter);
  }

  get(id: string): ApprovalRecord {
    return this.store.get(id);
  }

  /** Allow Always grants: those honoured now, or with `all` every one with its status. */
  grants(all = false): GrantRecord[] {
    return this.grantStore.list(all);
  }

  /** Revoke an Allow Always grant (audited); the next matching call asks a human again. */
  revoke(grantId: string, by?: string): GrantRecord {
    return this.grantStore.revoke(grantId, by ?? null);
  }

  /**
   * The agent stopped: its Allow Session answers end, and its pending requests are closed
   * as expired (their waiting calls fail at once).
   */
  closeAgent(agentId: string, reason: string): void {
    this.standing.agentStopped(agentId);
    for (const id of this.store.pendingIds(agentId)) this.expire(id, `agent ${agentId} stopped: ${reason}`);
  }

  /**
   * At start-up: every request still pending belonged to a call of the previous process,
   * which is gone with it. Close them all as expired (audited). Returns their ids.
   */
  closeOrphans(reason: string): string[] {
    const ids = this.store.pendingIds();
    for (const id of ids) this.expire(id, reason);
    return ids;
  }

  /** Stop timers. */
  close(): void {
    for (const list of this.waiters.values()) for (const w of list) clearTimeout(w.timer);
    this.waiters.clear();
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }

  /** Persist a pending request and audit it. */
  private enqueue(req: ApprovalRequest): ApprovalRecord {
    const timeoutMs = req.timeoutMs ?? this.opts.timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `approval timeoutMs must be a positive integer, got ${timeoutMs}`,
      );
    }
    const now = this.now();
    const id = `apr_${randomUUID()}`;
    const requestId = req.requestId;
    const deadline = now + timeoutMs;
    const carries = req.carriesSecrets ?? [];
    this.db
      .transaction(() => {
        this.store.insert({
          id,
          goalId: req.goalId,
          agentId: req.agentId,
          identity: req.identity,
          project: req.project,
          tool: req.tool,
          scopeKey: req.scope.key,
          target: req.scope.target,
          input: canonicalJson(req.input),
          summary: req.summary,
          carriesSecrets: carries,
          ...(req.scope.code !== undefined ? { code: req.scope.code } : {}),
          askedBy: req.askedBy,
          ...(requestId !== undefined ? { requestId } : {}),
          createdAt: now,
          deadlineAt: deadline,
        });
        this.audit.record(
          "approval.requested",
          {
            approval_id: id,
            tool: req.tool,
            scope_key: req.scope.key,
            summary: req.summary,
            deadline: new Date(deadline).toISOString(),
            asked_by: { ...req.askedBy },
            ...(carries.length > 0 ? { carries_secrets: [...carries] } : {}),
            ...(requestId !== undefined ? { request_id: requestId } : {}),
            ...(req.project.submitted_by ? { submitted_by: { ...req.project.submitted_by } } : {}),
          },
          { goalId: req.goalId, agentId: req.agentId },
        );
      })
      .immediate();
    const rec = this.get(id);
    this.events.emit("requested", rec, requestId);
    return rec;
  }

  /** Wait for the request to leave "pending" (answered, timed out or expired). */
  private wait(id: string): Promise<ApprovalRecord> {
    const rec = this.get(id);
    if (rec.status !== "pending") return Promise.resolve(rec);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.timeOut(id), Math.max(0, rec.deadline_at - this.now()));
      const list = this.waiters.get(id) ?? [];
      list.push({ resolve, timer });
      this.waiters.set(id, list);
      this.startPolling();
    });
  }

  /** Nobody answered in time: timed_out, audited, waiter woken. */
  private timeOut(id: string): void {
    this.finish(id, "timed_out", null, (current) =>
      this.audit.record(
        "approval.timed_out",
        {
          approval_id: id,
          tool: current.tool,
          scope_key: current.scope_key,
          deadline: new Date(current.deadline_at).toISOString(),
        },
        { goalId: current.goal_id, agentId: current.agent_id },
      ),
    );
  }

  /** Its call can no longer run: expired with `reason`, audited, waiter woken. */
  private expire(id: string, reason: string): void {
    this.finish(id, "expired", reason, (current) =>
      this.audit.record(
        "approval.expired",
        { approval_id: id, tool: current.tool, scope_key: current.scope_key, reason },
        { goalId: current.goal_id, agentId: current.agent_id },
      ),
    );
  }

  /**
   * Close a request that is still pending as `status`, audit it in the same commit, wake its
   * waiters (once a caller's transaction it is nested in commits).
   */
  private finish(
    id: string,
    status: "timed_out" | "expired",
    reason: string | null,
    audit: (current: ApprovalRecord) => void,
  ): void {
    const nested = this.db.inTransaction;
    const rec = this.db
      .transaction(() => {
        const changed = this.store.markClosed(id, status, reason, this.now());
        const current = this.get(id);
        if (changed) audit(current);
        return current;
      })
      .immediate();
    if (!nested) {
      this.settled(rec);
      return;
    }
    // Nested in a caller's transaction (an agent's stop) nothing is committed yet: waking the
    // waiters now would tell them an outcome a rollback takes back, and leave the request
    // pending with nobody waiting. They are woken once that transaction is over, from what
    // the database then holds.
    this.closedInTx.add(id);
    if (this.syncQueued) return;
    this.syncQueued = true;
    queueMicrotask(() => this.syncSettled());
  }

  private syncSettled(): void {
    this.syncQueued = false;
    if (this.db.inTransaction) {
      this.syncQueued = true;
      setImmediate(() => this.syncSettled());
      return;
    }
    for (const id of [...this.closedInTx]) {
      this.closedInTx.delete(id);
      try {
        const rec = this.get(id);
        // Still pending: rolled back, and its call still waits.
        if (rec.status !== "pending") this.settled(rec);
      } catch {
        // The database is closed: nobody waits any more.
      }
    }
  }

  private settled(rec: ApprovalRecord): void {
    this.closedInTx.delete(rec.id);
    this.standing.settled(rec);
    const list = this.waiters.get(rec.id);
    this.waiters.delete(rec.id);
    for (const w of list ?? []) {
      clearTimeout(w.timer);
      w.resolve(rec);
    }
    if (this.waiters.size === 0 && this.poller) {
      clearInterval(this.poller);
      this.poller = undefined;
    }
    this.events.emit("decided", rec);
  }

  /** Answers given through another connection only show up in the database. */
  private startPolling(): void {
    if (this.poller) return;
    this.poller = setInterval(() => {
      for (const id of [...this.waiters.keys()]) {
        const rec = this.get(id);
        if (rec.status !== "pending") this.settled(rec);
        else if (rec.deadline_at <= this.now()) this.timeOut(id);
      }
    }, this.opts.pollMs ?? 200);
    this.poller.unref();
  }
}

function reasonOf(signal: AbortSignal | undefined): string {
  const r: unknown = signal?.reason;
  return r === undefined ? "aborted" : errorMessage(r);
}

function outcomeOf(rec: ApprovalRecord): ApprovalOutcome {
  const decision: ApprovalOutcome["decision"] =
    rec.status === "timed_out" || rec.status === "expired" ? rec.status : (rec.decision ?? "deny");
  return {
    allowed: decision === "allow_once" || decision === "allow_session" || decision === "allow_always",
    via: "answer",
    decision,
    approvalId: rec.id,
    grantId: rec.grant_id,
    by: rec.decided_by,
    reason: rec.close_reason,
  };
}
