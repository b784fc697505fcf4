// cluster/goal-view.ts — the socket's goal methods, answered for the whole cluster
// (daemon/cluster-methods.ts calls these): goal.submit enqueues the goal for any node
// (goal-submit.ts: its id fixed, its inputs packed in the job); goal.status, goal.list and
// goal.wait read the goal's mirrored hash (for a goal this node runs or ran, its own row when
// fresher); goal.cancel cancels a queued goal in Redis and routes a running one's cancel to
// its owner; approval.respond is answered on the node whose agent waits (approval.list:
// approval-view.ts). handleCommand() is what this node does with a command another node
// routed to it.

import type { Queue } from "bullmq";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { type GoalStatus, TERMINAL, UNSTARTED_CANCEL } from "../kernel/goal-store.js";
import type { AgentSummary } from "../kernel/registry.js";
import { goalOfClusterHold, type SessionAccount } from "../kernel/session-budget.js";
import type { ApprovalDecision } from "../security/approvals.js";
import type { AuditEntry } from "../security/audit-events.js";
import type { AuditQuery } from "../security/audit-query.js";
import { mirroredApproval } from "./approval-view.js";
import { auditRefusal, type Command } from "./commands.js";
import { handshakeRefusal } from "./connections.js";
import {
  type NodeContext,
  REDIS_ANSWER_MS,
  type RedisFailure,
  readFailure,
  readMirror,
  withTimeout,
} from "./context.js";
import { GoalEndWatch } from "./event-stream.js";
import { writtenEnd } from "./goal-ends.js";
import type { ClusterGoalStatus } from "./goal-mirror.js";
import type { GoalJob } from "./goal-runner.js";
import { type GoalSubmission, submitGoal } from "./goal-submit.js";
import type { KeptCancels } from "./kept-cancels.js";
import { RedisKeys } from "./redis-keys.js";
import { withoutRedisSecret } from "./redis-url.js";
import { answerRoutedRead, ROUTED_AUDIT_LIMIT } from "./routed-reads.js";
import { settleClusterShare } from "./share-returns.js";

/** goal.wait re-reads the goal this often while it has the goal-ends stream to wake it... */
const WAIT_RECHECK_MS = 2_000;
/** ...and this often when Redis did not answer the subscription. */
const WAIT_POLL_MS = 200;
/** goal.list's default limit, as a lone daemon's (kernel/goal-store.ts). */
const DEFAULT_LIST_LIMIT = 1000;
/** How long a routed command (cancel, approval answer) waits for the owner. */
const COMMAND_TIMEOUT_MS = 10_000;
/** The longest reason a routed cancel carries to the goal's error. */
const MAX_CANCEL_REASON = 500;
/** Control characters, which a reason read from Redis must not carry to a JSON or dashboard reader's terminal. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
/** How many times goal.cancel looks a goal up again when it changed hands meanwhile. */
const CANCEL_LOOKUPS = 3;
/** What a routed approval answer's decided_by may be: the node it came through (respond()). */
const ROUTED_VIA = /^(socket client|dashboard) via node [a-z0-9][a-z0-9-]{0,62}$/;

/**
 * goal.status's `cluster` field when the answer is this node's own record because Redis could
 * not be read: what went wrong with Redis, and when Redis last took this node's heartbeat (the
 * cluster's view of the goal as of then; past that lease another node may have taken it).
 */
export interface OwnRecordMark {
  redis: RedisFailure;
  reason: string;
  as_of: string | null;
}

/**
 * `e` (a read of the goal failed), its message naming the goal asked, the Redis URL's secret
 * out of Redis's text (a Redis 7.2 NOPERM names the user, which a URL without a password holds).
 */
function namingGoal(e: unknown, goalId: string, redisUrl: string): unknown {
  if (!(e instanceof AidoError)) return e;
  const text = withoutRedisSecret(e.message, redisUrl);
  return new AidoError(e.code, `goal ${goalId}: ${text}`, { ...e.details, goal_id: goalId });
}

export class ClusterGoals {
  private readonly rt: NodeContext["rt"];
  private readonly redis: NodeContext["redis"];
  private readonly mirror: NodeContext["mirror"];
  private readonly sender: NodeContext["sender"];
  private readonly identity: NodeContext["identity"];
  private readonly log: NodeContext["log"];
  /** Wakes goal.wait callers when their goal's end is announced. */
  private readonly ends: GoalEndWatch;
  /** goal.cancel calls under way (cancelsAnswered()). */
  private readonly cancelling = new Set<Promise<unknown>>();
  /** The pass making the kept cancels, while one is under way (makeKeptCancels). */
  private makingKept: Promise<void> | undefined;

  constructor(
    private readonly ctx: NodeContext,
    private readonly queue: Queue<GoalJob>,
    /** The cancel of a goal whose hash says this node runs it (ClusterGoalRunner.cancel). */
    private readonly cancelOwn: (goalId: string, reason?: string) => Promise<"handled" | "elsewhere">,
    /** Announce an end this node wrote, retried while Redis refuses it (ClusterGoalRunner.announceEnd). */
    private readonly announceEnd: (goalId: string, end: GoalStatus) => Promise<void>,
    /** When Redis last took this node's heartbeat (NodeHeartbeat.lastBeat): its lease runs from there. */
    private readonly lastBeat: () => number | undefined,
    /** The cancels of ended sessions' goals Redis did not take, made when it answers (kept-cancels.ts). */
    private readonly kept: KeptCancels,
  ) {
    ({
      rt: this.rt,
      redis: this.redis,
      mirror: this.mirror,
      sender: this.sender,
      identity: this.identity,
      log: this.log,
    } = ctx);
    this.ends = new GoalEndWatch(this.redis, this.log);
  }

  /** Stop waking waiters (the node leaves). */
  close(): void {
    this.ends.close();
  }

  /** goal.submit: admitted here, enqueued for any node; answers with the id at once (goal-submit.ts). */
  submit(s: GoalSubmission): Promise<{ goal_id: string }> {
    return submitGoal(this.ctx, this.queue, s);
  }

  /** goal.status for any goal of the cluster (the local row of a goal from before cluster mode). */
  async status(
    goalId: string,
  ): Promise<ClusterGoalStatus | GoalStatus | (GoalStatus & { cluster: OwnRecordMark })> {
    let mirrored: ClusterGoalStatus | undefined;
    try {
      mirrored = await readMirror(() => this.mirror.status(goalId));
    } catch (e) {
      // Redis away: a goal this node runs, or that ended here, is answered from its own record,
      // marked so: past its lease another node may have ended or taken the goal over.
      const own = this.ownRecord(goalId);
      if (own === undefined) throw namingGoal(e, goalId, this.ctx.config.cluster.redisUrl);
      return { ...own, cluster: this.unreadMark(e) };
    }
    if (mirrored === undefined) return this.rt.goals.status(goalId);
    // Ours and running: the live usage is here.
    const ours = mirrored.node === this.identity.nodeId && !TERMINAL.has(mirrored.state);
    if (ours && this.rt.goals.isLive(goalId)) {
      return { ...mirrored, usage: this.rt.goals.status(goalId).usage };
    }
    return this.endedHere(mirrored) ?? mirrored;
  }

  /** Why a goal.status answered from this node's own record is not the cluster's (OwnRecordMark). */
  private unreadMark(e: unknown): OwnRecordMark {
    const { redis, reason } = readFailure(e, handshakeRefusal(this.redis));
    const beat = this.lastBeat();
    return {
      redis,
      reason: withoutRedisSecret(reason, this.ctx.config.cluster.redisUrl),
      as_of: beat === undefined ? null : new Date(beat).toISOString(),
    };
  }

  /**
   * A goal of this node that ended here while its hash still says otherwise (its end not in
   * Redis yet: refused, or Redis away; written again with each heartbeat), as this node's
   * own row says it ended. Not an end the shutdown gave it: the goal may go back to the queue.
   */
  private endedHere(s: ClusterGoalStatus): ClusterGoalStatus | undefined {
    const nodeId = this.identity.nodeId;
    if (s.node !== nodeId || TERMINAL.has(s.state) || this.rt.goals.isLive(s.goal_id)) return undefined;
    const local = this.ownEnd(s.goal_id);
    return local && { ...local, node: nodeId, submitted_via: s.submitted_via };
  }

  /**
   * This node's own record of a goal it runs or that ended here (not by the shutdown: it may
   * have gone back to the queue), as goal.status answers it while Redis cannot be read.
   */
  private ownRecord(goalId: string): (GoalStatus & { node: string }) | undefined {
    const node = this.identity.nodeId;
    if (this.rt.goals.isLive(goalId)) return { ...this.rt.goals.status(goalId), node };
    const ended = this.ownEnd(goalId);
    return ended && { ...ended, node };
  }

  /** The goal's end in this node's own database, if it ended here (and not by the shutdown). */
  private ownEnd(goalId: string): GoalStatus | undefined {
    let local: GoalStatus;
    try {
      local = this.rt.goals.status(goalId);
    } catch (e) {
      if (e instanceof AidoError && e.code === ErrorCode.notFound) return undefined;
      throw e;
    }
    return TERMINAL.has(local.state) && !this.rt.goals.endedByClose(goalId) ? local : undefined;
  }

  /**
   * goal.list: the cluster's goals from the mirror, and with them this node's own goals the
   * mirror does not hold — those it ran before it joined the cluster (or whose hash expired)
   * — from its own database, with `node` and `submitted_via` this node. Newest first.
   */
  async list(filter: { state?: GoalStatus["state"]; limit?: number }): Promise<ClusterGoalStatus[]> {
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
    const nodeId = this.identity.nodeId;
    // Listed as status() answers them: a goal that ended here as it ended (endedHere).
    const fits = (s: ClusterGoalStatus) => filter.state === undefined || s.state === filter.state;
    const mirrored = (await readMirror(() => this.mirror.list({ ...filter, limit })))
      .map((s) => this.endedHere(s) ?? s)
      .filter(fits);
    const listed = new Set(mirrored.map((s) => s.goal_id));
    const candidates = this.rt.goals.list({ ...filter, limit }).filter((s) => !listed.has(s.goal_id));
    if (candidates.length === 0) return mirrored;
    // A goal of the mirror past the limit is not this node's own to add; one whose hash the
    // state filter passed over only because its end is not in Redis yet is.
    const pipe = this.redis.pipeline();
    for (const s of candidates) pipe.hmget(RedisKeys.goal(s.goal_id), "state", "owner", "submitted_via");
    const held = (await readMirror(() => pipe.exec())) ?? [];
    const own: ClusterGoalStatus[] = [];
    for (const [i, s] of candidates.entries()) {
      const [state, owner, via] = (held[i]?.[1] ?? []) as (string | null)[];
      if (!state) own.push({ ...s, node: nodeId, submitted_via: nodeId });
      else if (filter.state !== undefined && owner) {
        const f = this.endedHere({
          ...s,
          node: owner,
          state: state as GoalStatus["state"],
          submitted_via: via ?? "",
        });
        if (f && fits(f)) own.push(f);
      }
    }
    return [...mirrored, ...own]
      .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0))
      .slice(0, limit);
  }

  /** goal.wait: the status once the goal ended, or as it is at the timeout / when the client left. */
  async wait(
    goalId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ClusterGoalStatus | GoalStatus> {
    const deadline = Date.now() + timeoutMs;
    // A wake (end announced, client gone) while no pause is waiting — during a read, whose
    // answer may predate the end — is kept, and the next pause is skipped.
    let woke = false;
    const keep = () => {
      woke = true;
    };
    let wake: () => void = keep;
    // Subscribed before the first read: an end announced after it wakes this wait, one
    // announced before it is in the status read next.
    const sub = this.ends.subscribe(goalId, () => wake());
    const woken = await withTimeout(sub.ready, REDIS_ANSWER_MS).then(
      () => true,
      () => false,
    );
    const onAbort = () => wake();
    signal?.addEventListener("abort", onAbort);
    try {
      for (;;) {
        let s: ClusterGoalStatus | GoalStatus | undefined;
        woke = false;
        try {
          s = await this.status(goalId);
        } catch (e) {
          // Redis away for a moment: keep waiting, up to the caller's timeout.
          if (!(e instanceof AidoError && e.code === ErrorCode.clusterUnavailable) || Date.now() >= deadline)
            throw e;
        }
        if (s && (TERMINAL.has(s.state) || signal?.aborted || Date.now() >= deadline)) return s;
        const pause = Math.min(woken ? WAIT_RECHECK_MS : WAIT_POLL_MS, Math.max(0, deadline - Date.now()));
        if (woke) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => wake(), pause);
          wake = () => {
            clearTimeout(timer);
            wake = keep;
            resolve();
          };
        });
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      sub.unsubscribe();
    }
  }

  /**
   * goal.cancel (and a cancel another node routed here): a queued goal ends here; a running
   * one is cancelled by its owner, whatever stage it is at there (ClusterGoalRunner.cancel).
   * A goal that changed hands meanwhile (given back and taken by another node) is looked up
   * again, a few times at most. `reason`, when given, is the goal's error wherever it ends.
   */
  async cancel(goalId: string, reason?: string): Promise<ClusterGoalStatus | GoalStatus> {
    const p = this.cancelOnce(goalId, reason);
    this.cancelling.add(p);
    try {
      return await p;
    } finally {
      this.cancelling.delete(p);
    }
  }

  /**
   * The MCP session `session` (open on this node) ended with `reason`: each goal it submitted
   * here (its share's account `job:<goal>` under the session's, closed with it) is cancelled
   * through the cluster's cancel path, the reason naming the session: a queued one ends in
   * Redis, a running one is ended by the node that runs it. One that ended already is left as
   * it ended (the cancel finds it ended), and one whose record expired is not looked for. A
   * cancel Redis did not take (it was away) is kept and made when it answers (kept-cancels.ts).
   */
  cancelSessionGoals(session: SessionAccount, reason: string): void {
    const sessionId = session.session_id;
    const why = `the MCP session ${sessionId} that submitted it ended (${reason})`;
    for (const share of this.rt.budget.childrenOf(session.account, true)) {
      const goalId = goalOfClusterHold(share.id);
      if (goalId === undefined) continue;
      this.cancel(goalId, why).catch((e) => {
        if (e instanceof AidoError && e.code === ErrorCode.notFound) return;
        const keep = e instanceof AidoError && e.code === ErrorCode.clusterUnavailable;
        if (keep) this.kept.keep(goalId, { sessionId, reason: why });
        this.log(
          `cluster: cancelling goal ${goalId} of ended session ${sessionId} failed: ${errorMessage(e)}${keep ? "; kept, and made when Redis answers" : ""}`,
        );
      });
    }
  }

  /**
   * Redis answers: the session-ended marks of the cancels kept, written before the node's
   * lease is renewed (heartbeat.ts), for a node about to take one of their goals. False when
   * Redis did not take them (the heartbeat goes on: the next one writes them again).
   */
  async markEndedSessions(): Promise<boolean> {
    try {
      await withTimeout(this.kept.writeMarks(this.redis), REDIS_ANSWER_MS);
      return true;
    } catch (e) {
      this.log(
        `cluster: writing the ended sessions' marks failed (again with the next heartbeat): ${errorMessage(e)}`,
      );
      return false;
    }
  }

  /**
   * Then the kept cancels are made, each forgotten once answered (or its goal is gone); one that
   * Redis did not take stays for the next heartbeat. One pass at a time; never throws.
   */
  makeKeptCancels(): void {
    if (this.makingKept || this.kept.entries().length === 0) return;
    this.makingKept = (async () => {
      for (const [goalId, c] of this.kept.entries()) {
        try {
          await this.cancel(goalId, c.reason);
          this.kept.drop(goalId);
          this.log(
            `cluster: goal ${goalId} of ended session ${c.sessionId} cancelled now that Redis answers`,
          );
        } catch (e) {
          if (e instanceof AidoError && e.code === ErrorCode.notFound) this.kept.drop(goalId);
          else if (!(e instanceof AidoError && e.code === ErrorCode.clusterUnavailable)) {
            this.kept.drop(goalId);
            this.log(
              `cluster: cancelling goal ${goalId} of ended session ${c.sessionId} failed: ${errorMessage(e)}`,
            );
          }
        }
      }
    })().finally(() => {
      this.makingKept = undefined;
    });
  }

  /** Resolves once the cancels under way have their answer (a leaving node waits for them). */
  async cancelsAnswered(): Promise<void> {
    await Promise.allSettled([...this.cancelling]);
  }

  private async cancelOnce(goalId: string, reason?: string): Promise<ClusterGoalStatus | GoalStatus> {
    const unstarted = reason ?? UNSTARTED_CANCEL;
    for (let attempt = 0; ; attempt++) {
      let r: Awaited<ReturnType<typeof this.mirror.cancelQueued>>;
      try {
        r = await readMirror(() => this.mirror.cancelQueued(goalId, unstarted));
      } catch (e) {
        // Redis away, and the goal runs in this Runtime: the person's cancel is not refused for
        // that while this node's lease runs (no other node may take the goal over before it
        // ends). It ends here as any cancel does; its end reaches Redis with the next heartbeat
        // that is answered (endedHere meanwhile). Past the lease another node may have taken the
        // goal (a partition that left Redis to the others): a cancel made here could be lost, so
        // it is refused, saying why. Any other goal: the error stands.
        if (!(e instanceof AidoError && e.code === ErrorCode.clusterUnavailable)) throw e;
        if (!this.rt.goals.isLive(goalId)) throw e;
        const beat = this.lastBeat();
        if (beat === undefined || Date.now() - beat >= this.ctx.config.cluster.leaseMs) {
          // What Redis said is kept: a refusal (its handshake's too) is told from silence.
          const { redis, reason } = readFailure(e, handshakeRefusal(this.redis));
          const said = redis === "refused" ? "refused this node" : "cannot be reached";
          throw new AidoError(
            ErrorCode.clusterUnavailable,
            `goal ${goalId} runs on this node, but the cluster's Redis ${said} and this node's lease ran out (${beat === undefined ? "Redis never took its heartbeat" : `last heartbeat taken ${new Date(beat).toISOString()}`}): another node may have taken the goal over, so a cancel made here could be lost; nothing was cancelled, try again when Redis answers (${withoutRedisSecret(reason, this.ctx.config.cluster.redisUrl)})`,
            { redis },
          );
        }
        return { ...this.rt.goals.cancel(goalId, reason), node: this.identity.nodeId };
      }
      if (r.kind === "missing") return this.rt.goals.cancel(goalId, reason);
      if (r.kind === "cancelled") {
        await this.queue.remove(goalId).catch(() => 0);
        // Announced before the status is read: a read Redis does not answer loses nothing.
        await this.announceEnd(goalId, writtenEnd(goalId, "cancelled", unstarted));
        // It never started: it spent nothing of the share its session was charged, if here
        // (after the announcement: a refused audit entry must not keep the end from followers).
        settleClusterShare(this.rt.budget, this.rt.audit, goalId, 0);
        return this.status(goalId);
      }
      if (r.kind !== "running") return this.status(goalId);
      if (r.owner !== this.identity.nodeId) {
        try {
          return (await this.sender.send(
            r.owner,
            { type: "goal.cancel", goal_id: goalId, ...(reason !== undefined ? { reason } : {}) },
            COMMAND_TIMEOUT_MS,
          )) as ClusterGoalStatus;
        } catch (e) {
          // The owner did not take it: it left (giving the goal back) or died, or is slow. A
          // goal that changed hands meanwhile is looked up again; otherwise the error stands.
          if (
            !(e instanceof AidoError && e.code === ErrorCode.clusterUnavailable) ||
            attempt >= CANCEL_LOOKUPS
          )
            throw e;
          const now = await readMirror(() => this.mirror.status(goalId));
          if (now?.state === "running" && now.node === r.owner) throw e;
          continue;
        }
      }
      if ((await this.cancelOwn(goalId, reason)) === "handled" || attempt >= CANCEL_LOOKUPS)
        return this.status(goalId);
    }
  }

  /**
   * agent.list of one goal: a goal another node runs or ran is asked of that node (its agents
   * live in its database only), so a watcher on any node sees the goal's whole agent tree.
   * A goal unknown to the cluster is this node's question, as on a lone daemon.
   */
  agents(goalId: string, includeStopped: boolean): Promise<{ agents: AgentSummary[] }> {
    return this.askOwner(
      goalId,
      { type: "agent.list", goal_id: goalId, include_stopped: includeStopped },
      () => ({ agents: this.rt.listAgents({ goalId, ...(includeStopped ? { includeStopped: true } : {}) }) }),
    );
  }

  /**
   * audit.query of one goal, from the node whose log holds it (a goal's entries are written
   * where it runs): the dashboard's goal page shows another node's goal's calls. A routed
   * query returns at most ROUTED_AUDIT_LIMIT entries (its cursors page through the rest).
   */
  auditOf(query: AuditQuery & { goal_id: string }): Promise<{ entries: AuditEntry[] }> {
    const limited = { ...query, limit: Math.min(query.limit ?? ROUTED_AUDIT_LIMIT, ROUTED_AUDIT_LIMIT) };
    return this.askOwner(query.goal_id, { type: "audit.query", query: limited }, () => ({
      entries: this.rt.audit.query(query),
    }));
  }

  /** `local()` when this node runs (ran) the goal or the cluster does not know it; else its node's answer to `command`. */
  private async askOwner<T>(goalId: string, command: Command, local: () => T): Promise<T> {
    let s: ClusterGoalStatus | undefined;
    try {
      s = await readMirror(() => this.mirror.status(goalId));
    } catch (e) {
      // Redis away: a goal this node runs, or that ended here, is answered here all the same.
      if (this.ownRecord(goalId) === undefined) throw e;
      return local();
    }
    if (s?.node === undefined || s.node === this.identity.nodeId) return local();
    return (await this.sender.send(s.node, command, COMMAND_TIMEOUT_MS)) as T;
  }

  /** approval.respond: answered where the agent waits; decided_by names the node it came through. */
  async respond(id: string, decision: ApprovalDecision, by: string): Promise<unknown> {
    const via = `${by} via node ${this.identity.nodeId}`;
    if (this.hasLocalApproval(id)) return this.rt.approvals.respond(id, decision, via);
    const raw = await readMirror(() => this.redis.hget(RedisKeys.approvals, id));
    if (raw === null)
      throw new AidoError(ErrorCode.notFound, `no pending approval ${id} in the cluster`, { id });
    const owner = mirroredApproval(raw)?.node;
    if (owner === undefined)
      throw new AidoError(
        ErrorCode.notFound,
        `no pending approval ${id} in the cluster (its entry in ${RedisKeys.approvals} is not an approval record)`,
        { id },
      );
    return this.sender.send(owner, { type: "approval.respond", id, decision, via }, COMMAND_TIMEOUT_MS);
  }

  private hasLocalApproval(id: string): boolean {
    try {
      this.rt.approvals.get(id);
      return true;
    } catch {
      return false;
    }
  }

  async handleCommand(c: Command): Promise<unknown> {
    // Looked up again here: the goal may not be in this Runtime yet, or may have moved on.
    // Whoever writes to Redis can put a command here: a reason is taken only as bounded text.
    if (c.type === "goal.cancel")
      return this.cancel(
        c.goal_id,
        typeof c.reason === "string" ? c.reason.replace(CONTROL, " ").slice(0, MAX_CANCEL_REASON) : undefined,
      );
    if (c.type === "audit.verify") return this.rt.audit.verify({ anchor: c.anchor });
    // Reads of one goal's records. Whoever writes to Redis can put a command here: the goal is
    // required (never every goal's), the fields taken only as what they must be.
    if (c.type === "agent.list" || c.type === "audit.query") return answerRoutedRead(this.ctx, c);
    // Whoever writes to Redis can put a command here: decided_by names a node, never free text.
    if (typeof c.via !== "string" || !ROUTED_VIA.test(c.via)) {
      const reason = `a routed approval answer must come "socket client via node <node id>" or "dashboard via node <node id>"; refused ${JSON.stringify(String(c.via).slice(0, 80))}`;
      auditRefusal(this.ctx, c.type, reason);
      throw new AidoError(ErrorCode.invalidInput, reason, { field: "via" });
    }
    return this.rt.approvals.respond(c.id, c.decision, c.via);
  }
}
