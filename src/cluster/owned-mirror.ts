// cluster/owned-mirror.ts — what other nodes see of the goals this node runs, as it happens:
// their events (on the goal's stream and the cluster's), their pending approvals (in
// aido:approvals, with the node the agent waits on) and, once settled, each approval's
// outcome (read by approval-view.ts). A pending approval or an outcome Redis did not take (it
// was away, or refused the write while connected) is kept and written again with each of the
// node's heartbeats (retry), until it is: otherwise no other node would list (nor could
// answer) the pending one, and a settled one would stay pending in aido:approvals on every
// node until its goal ended. A pending one is kept only while it is pending and its goal runs
// here: once it settles, its outcome is what is written, never the request again. The end
// the node's shutdown gave a goal is held back: the goal may go back to the queue and run
// elsewhere (the runner publishes that end itself when it does not), and a follower told it
// ended would stop following a goal that then runs. And from a pause past the node's lease
// (a long GC pause, a frozen VM) until its next heartbeat has looked which goals are still its
// own, the events of its goals are held: another node may have taken a goal over meanwhile,
// and what the resumed node did with it in between (a model answer read, a tool call) must
// not reach the stream that now follows the goal elsewhere.

import { toWireEvent } from "../daemon/events.js";
import { errorMessage } from "../errors.js";
import type { ApprovalRecord } from "../security/approvals.js";
import { mirroredApproval } from "./approval-view.js";
import type { NodeContext } from "./context.js";
import { type ClusterEvent, publishEvent } from "./event-stream.js";
import { ENDED_TTL_SECONDS, RedisKeys, SETTLED_APPROVALS_KEPT } from "./redis-keys.js";

/** The most events held while the node is unsure of its goals (what comes after is dropped). */
const HELD_MAX = 10_000;

export class OwnedMirror {
  /** Pending approvals Redis did not take yet, by id (dropped as each settles). */
  private readonly unmirrored = new Map<string, ApprovalRecord>();
  /** Settled approvals whose outcome Redis did not take yet, by id (the newest record of each). */
  private readonly unsettled = new Map<string, ApprovalRecord>();
  /**
   * Why Redis last refused each of those writes ("pending <id>", "outcome <id>"): a refusal
   * is logged when it starts or its reason changes, not with every heartbeat.
   */
  private readonly refusedWhy = new Map<string, string>();
  private readonly unsubscribers: (() => void)[];
  /**
   * Events held while the node's claim to its goals is unconfirmed (`confirmed()` says no:
   * it was paused past its lease, and has not yet looked which goals are still its own),
   * published by publishHeld() for the goals it still owns then. At most HELD_MAX.
   */
  private held: ClusterEvent[] = [];
  private droppedHeld = 0;

  /**
   * Mirror the events and approvals of the goals `owns` says run here. `confirmed`: whether
   * the node may take its goals as still its own (false from a pause past its lease until it
   * looked again: its events are held until then).
   */
  constructor(
    private readonly ctx: NodeContext,
    private readonly owns: (goalId: string) => boolean,
    private readonly confirmed: () => boolean = () => true,
  ) {
    const { rt, redis, log } = ctx;
    const nodeId = ctx.identity.nodeId;
    this.unsubscribers = [
      rt.events.subscribe({}, (ev) => {
        if (ev.goalId === null || !owns(ev.goalId)) return;
        if (ev.type === "goal.finished" && ev.state === "failed" && rt.goals.endedByClose(ev.goalId)) return;
        const out = { ...toWireEvent(ev), node: nodeId };
        if (this.confirmed()) publishEvent(redis, out, log);
        else this.hold(out);
      }),
      rt.approvals.on("requested", (r) => {
        if (r.goal_id !== null && owns(r.goal_id)) void this.mirrorPending(r);
      }),
      // Settled: no longer pending, and its outcome kept for every node's approval.list. Not
      // only while the goal runs here: its last approvals expire as it ends. The request is
      // not written again from here on: the settle's write is sent after any of it already
      // sent (one connection keeps the order), so nothing puts it back in aido:approvals.
      rt.approvals.on("decided", (r) => {
        this.unmirrored.delete(r.id);
        this.refusedWhy.delete(`pending ${r.id}`);
        if (r.goal_id !== null) void this.settle(r);
      }),
    ];
  }

  /** Write again what Redis did not take (each heartbeat, and when Redis is back). */
  async retry(): Promise<void> {
    for (const r of [...this.unmirrored.values()]) {
      // Its goal went to another node or ended here meanwhile: its approvals were dropped.
      if (r.goal_id === null || !this.owns(r.goal_id)) {
        this.unmirrored.delete(r.id);
        this.refusedWhy.delete(`pending ${r.id}`);
      } else if (this.unmirrored.get(r.id) === r) await this.mirrorPending(r);
    }
    for (const r of [...this.unsettled.values()]) await this.settle(r);
  }

  /**
   * When Redis answers (at start, and again after an outage): this node's approvals that
   * aido:approvals still holds pending, though this node's own record of them is settled, are
   * settled there too. A restarted node closed its previous process's pending approvals as
   * expired before it listened for outcomes, and a node back within its lease ends their goal
   * itself: without this they stayed pending in every other node's approval.list for good,
   * and an answer routed here was refused. One this node has no record of is dropped, and
   * so is an entry that is no approval record at all (whoever can write to Redis put it there).
   */
  async settleStale(): Promise<void> {
    const { rt, redis, identity, log } = this.ctx;
    const stale: string[] = [];
    const all = Object.entries(await redis.hgetall(RedisKeys.approvals));
    // Indexed for a limited approval.list (those a node from before the index wrote, too).
    const index: (string | number)[] = [];
    for (const [id, v] of all) {
      const a = mirroredApproval(v);
      if (a !== undefined) index.push(a.created_at, id);
    }
    if (index.length > 0) await redis.zadd(RedisKeys.approvalsPending, "NX", ...index);
    for (const [id, v] of all) {
      const mirrored = mirroredApproval(v);
      if (mirrored === undefined) {
        // No node wrote it, and none can answer it: dropped, so it is not read again.
        log(
          `cluster: dropped ${RedisKeys.approvals} entry ${JSON.stringify(id.slice(0, 80))}: not an approval record`,
        );
        stale.push(id);
        continue;
      }
      if (mirrored.node !== identity.nodeId) continue;
      let own: ApprovalRecord;
      try {
        own = rt.approvals.get(id);
      } catch {
        stale.push(id);
        continue;
      }
      if (own.status !== "pending") await this.settle(own);
    }
    if (stale.length > 0)
      await redis
        .multi()
        .hdel(RedisKeys.approvals, ...stale)
        .zrem(RedisKeys.approvalsPending, ...stale)
        .exec();
  }

  stop(): void {
    for (const off of this.unsubscribers) off();
  }

  /**
   * The node looked which goals are still its own (after a pause past its lease): the events
   * it held meanwhile go out for those it still owns; those of goals another node ended or
   * took over (stopped here as lost) never do, nor does anything the goal did here after
   * another node decided its fate.
   */
  publishHeld(): void {
    const held = this.held;
    this.held = [];
    if (this.droppedHeld > 0)
      this.ctx.log(
        `cluster: ${this.droppedHeld} events held while this node was not sure of its goals were dropped`,
      );
    this.droppedHeld = 0;
    for (const ev of held)
      if (ev.goal_id !== null && this.owns(ev.goal_id)) publishEvent(this.ctx.redis, ev, this.ctx.log);
  }

  private hold(ev: ClusterEvent): void {
    if (this.held.length < HELD_MAX) this.held.push(ev);
    else this.droppedHeld++;
  }

  /** A pending approval, for every node's approval.list (and answer, routed here). */
  private async mirrorPending(r: ApprovalRecord): Promise<void> {
    this.unmirrored.set(r.id, r);
    const ctx = this.ctx;
    try {
      const sent = await ctx.redis
        .multi()
        .hset(RedisKeys.approvals, r.id, JSON.stringify({ ...r, node: ctx.identity.nodeId }))
        .zadd(RedisKeys.approvalsPending, r.created_at, r.id)
        .exec();
      const refused = (sent ?? []).find(([e]) => e !== null)?.[0];
      if (!sent || refused) throw refused ?? new Error("Redis did not take the approval");
      this.refusedWhy.delete(`pending ${r.id}`);
      if (this.unmirrored.get(r.id) === r) this.unmirrored.delete(r.id);
    } catch (e) {
      // Settled meanwhile: its outcome is written instead (settle).
      if (!this.unmirrored.has(r.id)) return;
      this.refused(`pending ${r.id}`, `cluster: mirroring approval ${r.id} failed`, e);
    }
  }

  private async settle(r: ApprovalRecord): Promise<void> {
    this.unsettled.set(r.id, r);
    const ctx = this.ctx;
    const keptMs = ENDED_TTL_SECONDS * 1000;
    try {
      await ctx.redis
        .multi()
        .hdel(RedisKeys.approvals, r.id)
        .zrem(RedisKeys.approvalsPending, r.id)
        .set(
          RedisKeys.approvalSettled(r.id),
          JSON.stringify({ ...r, node: ctx.identity.nodeId }),
          "EX",
          ENDED_TTL_SECONDS,
        )
        .zadd(RedisKeys.approvalsSettled, r.created_at, r.id)
        .zremrangebyscore(RedisKeys.approvalsSettled, "-inf", Date.now() - keptMs)
        .zremrangebyrank(RedisKeys.approvalsSettled, 0, -SETTLED_APPROVALS_KEPT - 1)
        .exec();
      if (this.unsettled.get(r.id) === r) {
        this.unsettled.delete(r.id);
        this.refusedWhy.delete(`outcome ${r.id}`);
      }
    } catch (e) {
      this.refused(`outcome ${r.id}`, `cluster: mirroring approval ${r.id}'s outcome failed`, e);
    }
  }

  /** Log a write Redis refused when it starts refusing it or its reason changes. */
  private refused(key: string, what: string, e: unknown): void {
    const why = errorMessage(e);
    if (this.refusedWhy.get(key) !== why)
      this.ctx.log(`${what} (written again with each heartbeat until it is): ${why}`);
    this.refusedWhy.set(key, why);
  }
}

/**
 * The goal's mirrored approvals are dropped (it ended, or another node took it); with `node`,
 * only those that node mirrored (a goal taken over from a dead node runs again, and the
 * approvals its new run asks are not the dead node's).
 */
export async function dropApprovalsOf(ctx: NodeContext, goalId: string, node?: string): Promise<void> {
  const all = await ctx.redis.hgetall(RedisKeys.approvals);
  const ids = Object.entries(all)
    .filter(([, v]) => {
      const a = mirroredApproval(v);
      return a?.goal_id === goalId && (node === undefined || a.node === node);
    })
    .map(([k]) => k);
  if (ids.length > 0)
    await ctx.redis
      .multi()
      .hdel(RedisKeys.approvals, ...ids)
      .zrem(RedisKeys.approvalsPending, ...ids)
      .exec();
}
