// cluster/goal-mirror.ts — the one view of every goal in the cluster: a Redis hash per goal
// (state, owner node, timestamps, usage, result or error) and a sorted set of goal ids by
// submit time. The submitter writes the hash (queued) before the job exists; every later
// change is a compare-and-set in a Lua script, so two nodes can never both believe they
// own a goal:
//   claim      queued -> running, owner = this node (a Worker took the job);
//   takeover   running on a dead owner with no model call started -> owner = this node
//              (the goal is re-queued: nothing of it was spent yet);
//   failDead   running on a dead owner after a model call started -> failed, with why;
//              both only while the owner's lease key is absent, read in the same script: a
//              survivor's death check is a few round trips before its take, and an owner that
//              renewed and looked meanwhile keeps the goal ("alive": nothing taken);
//   release    running on this node, no model call started -> queued (the node is leaving);
//              a goal this node released that is still queued says so;
//   finish     only the owner ends its goal (a node back from the dead whose goal was
//              ended elsewhere changes nothing);
//   modelStarted  the owner marks the goal before its first model call;
//   cancelUnstarted  the owner ends cancelled a goal it claimed but never started (or that
//              its shutdown ended before its first model call, released or not).
// goal.status/list/wait on any node read from here (cluster/node.ts decides when the local
// row is fresher).

import type { Redis } from "ioredis";
import { type GoalState, type GoalStatus, UNSTARTED_CANCEL } from "../kernel/goal-store.js";
import type { Usage } from "../llm/types.js";
import { parseSubmittedBy, type SubmittedBy } from "../security/approval-project.js";
import { ENDED_TTL_SECONDS, RedisKeys } from "./redis-keys.js";

/** A goal as goal.status shows it, plus the node that owns it (or owned it last). */
export interface ClusterGoalStatus extends GoalStatus {
  /** The node running or that ran it; absent while queued. */
  node?: string;
  /** The node whose socket took the submission. */
  submitted_via: string;
}

export type ClaimResult =
  | { kind: "claimed" }
  | { kind: "missing" }
  | { kind: "ended"; state: GoalState }
  | { kind: "running"; owner: string; modelStarted: boolean };

const CLAIM = `
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing'} end
if st == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1], 'started_at', ARGV[2])
  return {'claimed'}
end
if st == 'running' then
  return {'running', redis.call('HGET', KEYS[1], 'owner') or '', redis.call('HGET', KEYS[1], 'model_started') or ''}
end
return {'ended', st}`;

// The owner's lease key goes as an argument, not a declared key: Redis holds a script's declared
// keys to write permission, and a node whose ACL lets it write its own keys only (not other
// nodes' lease keys) could then take nothing; reading it needs read permission alone.
const TAKEOVER = `
if redis.call('EXISTS', ARGV[4]) == 1 then return -1 end
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'model_started') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'started_at', ARGV[3], 'requeued_from', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return 1`;

const RELEASE = `
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'queued' and redis.call('HGET', KEYS[1], 'released_by') == ARGV[1] then return 2 end
if st ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'model_started') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'released_by', ARGV[1])
redis.call('HDEL', KEYS[1], 'owner', 'started_at')
return 1`;

const FAIL_DEAD = `
if redis.call('EXISTS', ARGV[6]) == 1 then return -1 end
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[2], 'finished_at', ARGV[3], 'ended_by', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1`;

const FINISH = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'running' and st ~= 'queued' then return 0 end
redis.call('HDEL', KEYS[1], 'result', 'error')
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1`;

const UPDATE_OWNED = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1`;

const CANCEL_QUEUED = `
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing'} end
if st == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'error', ARGV[3], 'finished_at', ARGV[1], 'spent', '0')
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {'cancelled'}
end
if st == 'running' then return {'running', redis.call('HGET', KEYS[1], 'owner') or ''} end
return {'ended', st}`;

const CANCEL_UNSTARTED = `
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'running' then
  if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 'elsewhere' end
  if redis.call('HEXISTS', KEYS[1], 'model_started') == 1 then return 'started' end
elseif st ~= 'queued' then
  return 'ended'
end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'error', ARGV[2], 'finished_at', ARGV[3], 'spent', '0')
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 'cancelled'`;

const TERMINAL_STATES: ReadonlySet<string> = new Set(["succeeded", "failed", "cancelled"]);

export class GoalMirror {
  constructor(private readonly redis: Redis) {}

  /** A submitted goal, queued: written before its job exists. */
  async create(g: {
    goalId: string;
    goal: string;
    via: string;
    now: number;
    submittedBy?: SubmittedBy | undefined;
  }): Promise<void> {
    await this.redis
      .multi()
      .hset(RedisKeys.goal(g.goalId), {
        goal_id: g.goalId,
        state: "queued",
        goal: g.goal.slice(0, 2000),
        submitted_via: g.via,
        ...(g.submittedBy !== undefined ? { submitted_by: JSON.stringify(g.submittedBy) } : {}),
        created_at: String(g.now),
        input_tokens: "0",
        output_tokens: "0",
      })
      .zadd(RedisKeys.goals, g.now, g.goalId)
      .exec();
  }

  /** Forget a goal whose job could not be queued (the submit failed). */
  async drop(goalId: string): Promise<void> {
    await this.redis.multi().del(RedisKeys.goal(goalId)).zrem(RedisKeys.goals, goalId).exec();
  }

  async claim(goalId: string, node: string, now = Date.now()): Promise<ClaimResult> {
    const r = (await this.redis.eval(CLAIM, 1, RedisKeys.goal(goalId), node, String(now))) as string[];
    if (r[0] === "claimed") return { kind: "claimed" };
    if (r[0] === "missing") return { kind: "missing" };
    if (r[0] === "running") return { kind: "running", owner: r[1] ?? "", modelStarted: (r[2] ?? "") !== "" };
    return { kind: "ended", state: r[1] as GoalState };
  }

  /**
   * The dead `owner`'s goal becomes `node`'s, if no model call of it had started ("taken").
   * "alive": the owner's lease key is there (it renewed since it was judged dead), nothing
   * taken; "kept": the goal is not running on `owner` any more, or a model call of it started.
   */
  async takeover(goalId: string, owner: string, node: string, now = Date.now()): Promise<TakeResult> {
    const r = await this.redis.eval(
      TAKEOVER,
      1,
      RedisKeys.goal(goalId),
      owner,
      node,
      String(now),
      RedisKeys.alive(owner),
    );
    return takeResult(r);
  }

  /**
   * `node` gives its goal back to the queue (it is shutting down before the goal started): only
   * while it still owns the goal and no model call of it started ("released"). "queued": `node`
   * gave it back already and it is still queued (the goal's job came back to the node and
   * both of its takes give it back); "kept": neither.
   */
  async release(goalId: string, node: string): Promise<"released" | "queued" | "kept"> {
    const r = await this.redis.eval(RELEASE, 1, RedisKeys.goal(goalId), node);
    return r === 1 ? "released" : r === 2 ? "queued" : "kept";
  }

  /**
   * The dead `owner`'s goal ends failed with `reason` (decided by `node`): "taken". "alive": the
   * owner's lease key is there, nothing changed; "kept": the goal is not running on `owner` any more.
   */
  async failDead(
    goalId: string,
    owner: string,
    node: string,
    reason: string,
    now = Date.now(),
  ): Promise<TakeResult> {
    const r = await this.redis.eval(
      FAIL_DEAD,
      1,
      RedisKeys.goal(goalId),
      owner,
      reason,
      String(now),
      node,
      String(ENDED_TTL_SECONDS),
      RedisKeys.alive(owner),
    );
    return takeResult(r);
  }

  /** Only the owner ends its goal; false when it is not (or no longer) the owner. */
  async finish(goalId: string, node: string, s: GoalStatus, now = Date.now()): Promise<boolean> {
    const fields: string[] = [
      "state",
      s.state,
      "finished_at",
      String(s.finished_at ? Date.parse(s.finished_at) : now),
      "input_tokens",
      String(s.usage.input_tokens),
      "output_tokens",
      String(s.usage.output_tokens),
      // What the owner's ledger charged the goal, for the node holding its session's share
      // (cluster/share-returns.ts). A dead owner's goal failed by a survivor has none: unknown.
      "spent",
      String(s.usage.input_tokens + s.usage.output_tokens),
    ];
    if (s.result !== undefined) fields.push("result", s.result);
    if (s.error !== undefined) fields.push("error", s.error);
    const r = await this.redis.eval(
      FINISH,
      1,
      RedisKeys.goal(goalId),
      node,
      String(ENDED_TTL_SECONDS),
      ...fields,
    );
    return r === 1;
  }

  /** The owner's running details (agent, output folder, usage); nothing if it is not the owner. */
  async update(goalId: string, node: string, fields: Record<string, string>): Promise<boolean> {
    const args = Object.entries(fields).flat();
    return (await this.redis.eval(UPDATE_OWNED, 1, RedisKeys.goal(goalId), node, ...args)) === 1;
  }

  /**
   * Before the goal's first model call: from here on, a node that dies with it running has
   * spent something, and the goal is failed rather than re-queued. False: not ours any more.
   */
  async modelStarted(goalId: string, node: string, now = Date.now()): Promise<boolean> {
    return this.update(goalId, node, { model_started: String(now) });
  }

  async cancelQueued(
    goalId: string,
    reason = UNSTARTED_CANCEL,
    now = Date.now(),
  ): Promise<
    { kind: "cancelled" } | { kind: "missing" } | { kind: "running"; owner: string } | { kind: "ended" }
  > {
    const r = (await this.redis.eval(
      CANCEL_QUEUED,
      1,
      RedisKeys.goal(goalId),
      String(now),
      String(ENDED_TTL_SECONDS),
      reason,
    )) as string[];
    if (r[0] === "cancelled") return { kind: "cancelled" };
    if (r[0] === "missing") return { kind: "missing" };
    if (r[0] === "running") return { kind: "running", owner: r[1] ?? "" };
    return { kind: "ended" };
  }

  /**
   * `node` ends cancelled a goal it claimed but whose model calls never started, or one it
   * gave back that is still queued. "elsewhere": another node runs it now; "started": a
   * model call of it started; "ended": it ended (or is gone).
   */
  async cancelUnstarted(
    goalId: string,
    node: string,
    reason: string,
    now = Date.now(),
  ): Promise<"cancelled" | "elsewhere" | "started" | "ended"> {
    return (await this.redis.eval(
      CANCEL_UNSTARTED,
      1,
      RedisKeys.goal(goalId),
      node,
      reason,
      String(now),
      String(ENDED_TTL_SECONDS),
    )) as "cancelled" | "elsewhere" | "started" | "ended";
  }

  async status(goalId: string): Promise<ClusterGoalStatus | undefined> {
    const h = await this.redis.hgetall(RedisKeys.goal(goalId));
    return statusOf(h);
  }

  /**
   * How each goal ended, for the node holding its session's share (share-returns.ts): its
   * state, and `spent` when its end says what the goal spent (an owner's end, a cancel
   * before it started); `gone` when its record is not there (expired, or never written).
   */
  async endsOf(goalIds: readonly string[]): Promise<Map<string, EndSpent | "gone">> {
    const out = new Map<string, EndSpent | "gone">();
    if (goalIds.length === 0) return out;
    const pipe = this.redis.pipeline();
    for (const id of goalIds) pipe.hmget(RedisKeys.goal(id), "state", "spent");
    const rows = (await pipe.exec()) ?? [];
    for (const [i, [err, v]] of rows.entries()) {
      if (err) throw err;
      const id = goalIds[i] as string;
      const [state, spent] = v as [string | null, string | null];
      if (state === null) out.set(id, "gone");
      else
        out.set(id, {
          state: state as GoalState,
          ...(spent !== null && /^\d+$/.test(spent) ? { spent: Number(spent) } : {}),
        });
    }
    return out;
  }

  /** Goal ids newest first, with their status (`state` filters). */
  async list(filter: { state?: GoalState; limit?: number } = {}): Promise<ClusterGoalStatus[]> {
    const limit = filter.limit ?? 1000;
    const out: ClusterGoalStatus[] = [];
    let start = 0;
    const page = Math.max(limit, 100);
    while (out.length < limit) {
      const ids = await this.redis.zrevrange(RedisKeys.goals, start, start + page - 1);
      if (ids.length === 0) break;
      start += ids.length;
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hgetall(RedisKeys.goal(id));
      const rows = (await pipe.exec()) ?? [];
      for (const [i, [err, h]] of rows.entries()) {
        const s = err ? undefined : statusOf(h as Record<string, string>);
        // A hash that expired: its id leaves the index too. A read all the same: when Redis
        // refuses the removal (an ACL, a read-only replica), the id is only skipped; failing
        // here failed every goal.list, and a restarted node's recovery, until it was removed.
        if (!s) {
          const gone = ids[i];
          if (gone !== undefined) await this.redis.zrem(RedisKeys.goals, gone).catch(() => 0);
          continue;
        }
        if (filter.state === undefined || s.state === filter.state) out.push(s);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /** Goals of `node` that the mirror says are running (a node's recovery). */
  async runningOn(node: string): Promise<string[]> {
    return (await this.list({ state: "running", limit: 10_000 }))
      .filter((s) => s.node === node)
      .map((s) => s.goal_id);
  }
}

/**
 * A survivor's take of a dead owner's goal (takeover, failDead): "taken"; "alive", the owner's
 * lease key is there (nothing taken: the owner runs it); "kept", the hash no longer allows it.
 */
/** A goal's state, and what it spent when its end says so (endsOf). */
export interface EndSpent {
  state: GoalState;
  spent?: number;
}

export type TakeResult = "taken" | "alive" | "kept";

function takeResult(r: unknown): TakeResult {
  return r === 1 ? "taken" : r === -1 ? "alive" : "kept";
}

export function isTerminal(state: string): boolean {
  return TERMINAL_STATES.has(state);
}

function iso(ms: string | undefined): string | undefined {
  if (ms === undefined || ms === "") return undefined;
  return new Date(Number(ms)).toISOString();
}

function statusOf(h: Record<string, string>): ClusterGoalStatus | undefined {
  if (!h.goal_id || !h.state) return undefined;
  const usage: Usage = {
    input_tokens: Number(h.input_tokens ?? 0),
    output_tokens: Number(h.output_tokens ?? 0),
  };
  const s: ClusterGoalStatus = {
    goal_id: h.goal_id,
    state: h.state as GoalState,
    usage,
    output_dir: h.output_dir ?? "",
    goal: h.goal ?? "",
    created_at: iso(h.created_at) ?? new Date(0).toISOString(),
    submitted_via: h.submitted_via ?? "",
  };
  if (h.owner) s.node = h.owner;
  if (h.result !== undefined) s.result = h.result;
  if (h.error !== undefined) s.error = h.error;
  const started = iso(h.started_at);
  if (started) s.started_at = started;
  const finished = iso(h.finished_at);
  if (finished) s.finished_at = finished;
  if (h.agent_id) s.agent_id = h.agent_id;
  const by = parseSubmittedBy(h.submitted_by);
  if (by !== undefined) s.submitted_by = by;
  return s;
}
