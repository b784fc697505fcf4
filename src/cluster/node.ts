// cluster/node.ts — one daemon as a node of a cluster (docs/scale-out.md). It holds the
// Redis connections and, over the node's Runtime:
//   - the goal queue: goal.submit here enqueues a BullMQ job (id fixed at submit, inputs
//     packed in it: job-inputs.ts); this node's Worker takes up to
//     limits.max_concurrent_goals jobs and runs each goal start to finish in its Runtime,
//     under the same id (the goal is the unit of placement);
//   - the mirror: each goal's status in a hash (goal-mirror.ts), its events in streams
//     (event-stream.ts), its pending approvals in one hash; only the owner writes them;
//   - routing: a cancel or an approval answer for another node's goal goes to that node
//     (commands.ts);
//   - liveness: a heartbeat key with a TTL of one lease, and BullMQ's job locks of the same
//     duration. When a node dies its jobs stall; BullMQ hands them to a survivor's Worker
//     (stalledInterval = heartbeat, maxStalledCount high: the decision is ours, not
//     BullMQ's), which ends the goal: re-queued for itself when no model call had started
//     (the owner marks the goal in Redis before its first one, beforeFirstModelCall),
//     failed with the reason otherwise. Never run twice: every change of owner is a
//     compare-and-set on the goal's hash.
// Redis down: submissions fail at once (cluster_unavailable), running goals carry on
// locally, and what the owner could not write is written when Redis answers again.

import type { Job } from "bullmq";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import type { Config } from "../config.js";
import { toWireEvent, type WireEvent } from "../daemon/events.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { workspaceKey } from "../intent/intents.js";
import { admitGoal } from "../kernel/goal-admission.js";
import type { GoalStatus } from "../kernel/goal-store.js";
import { TERMINAL } from "../kernel/goal-store.js";
import { newGoalId } from "../kernel/goals.js";
import type { Runtime } from "../kernel/runtime.js";
import type { ApprovalDecision, ApprovalRecord } from "../security/approvals.js";
import { type Command, sendCommand, serveCommands } from "./commands.js";
import { publishEvent } from "./event-stream.js";
import { type ClusterGoalStatus, GoalMirror } from "./goal-mirror.js";
import { type NodeIdentity, nodeIdentity } from "./identity.js";
import { type PackedInputs, packInputs, removeUnpacked, unpackInputs } from "./job-inputs.js";
import { GOAL_QUEUE, RedisKeys } from "./redis-keys.js";
import { redactRedisUrl } from "./redis-url.js";

declare module "../security/audit-events.js" {
  interface AuditPayloads {
    /** This daemon joined a cluster (cluster/node.ts): its node id and the key that signs its log. */
    "cluster.joined": { node_id: string; key_id: string; redis: string };
    /** goal.submit on this node put the goal in the cluster's queue (any node may run it). */
    "goal.enqueued": { goal: string; inputs?: string[] };
    /** This node ended a goal whose node stopped heartbeating: re-queued here, or failed. */
    "cluster.goal_taken_over": { from_node: string; outcome: "requeued" | "failed"; reason?: string };
  }
}

/** What a goal's job carries. */
export interface GoalJob {
  goal_id: string;
  goal: string;
  /** As the client gave it (YAML text or object); the owner admits it again. */
  manifest?: unknown;
  inputs: PackedInputs;
  /** The node whose socket took the submission. */
  via: string;
}

/** One node as `cluster.status` lists it. */
export interface NodeStatus {
  node_id: string;
  alive: boolean;
  last_heartbeat: string | null;
  key_id: string;
  host: string;
  pid: number;
  /** Goals running there, and how many it takes at once. */
  running: number;
  capacity: number;
  goals: string[];
}

/** BullMQ's stalled-job limit: high on purpose, a stalled job's fate is decided in process(). */
const MAX_STALLED = 1_000;
const WAIT_POLL_MS = 200;
/** How long a submit waits for Redis before it is refused. */
const SUBMIT_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 10_000;

export class ClusterNode {
  readonly identity: NodeIdentity;
  readonly mirror: GoalMirror;
  /** Goals this node runs (it publishes their events and approvals). */
  private readonly owned = new Set<string>();
  /** Goals that ended here while Redis could not be written: written when it answers again. */
  private readonly unflushed = new Set<string>();
  private readonly unsubscribers: (() => void)[] = [];
  private worker: Worker<GoalJob> | undefined;
  private commands: { stop(): void } | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  /** Every connection this node opened, closed by stop(). */
  private readonly connections: Redis[] = [];
  /** Since when the node's Redis connection has been up (undefined while it is down). */
  private readySince: number | undefined;
  private stopped = false;

  private constructor(
    private readonly config: Config & { cluster: NonNullable<Config["cluster"]> },
    private readonly rt: Runtime,
    /** Commands of the node (mirror, heartbeats, routing): fail at once while Redis is down. */
    readonly redis: Redis,
    private readonly queue: Queue<GoalJob>,
    private readonly log: (m: string) => void,
  ) {
    this.identity = nodeIdentity(config);
    this.mirror = new GoalMirror(redis);
  }

  /** Join the cluster `config.cluster` names, over an open Runtime. */
  static async start(config: Config, rt: Runtime, log: (m: string) => void): Promise<ClusterNode> {
    const c = config.cluster;
    if (!c)
      throw new AidoError(ErrorCode.configInvalid, "cluster mode needs cluster.redis_url or AIDO_REDIS_URL");
    const options = { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: reconnectDelay };
    const redis = new Redis(c.redisUrl, { ...options, lazyConnect: true });
    redis.on("error", () => {}); // reported through failed commands and the reconnect log below
    const queueConnection = new Redis(c.redisUrl, { ...options });
    queueConnection.on("error", () => {});
    const queue = new Queue<GoalJob>(GOAL_QUEUE, { connection: queueConnection });
    queue.on("error", () => {});
    const node = new ClusterNode({ ...config, cluster: c }, rt, redis, queue, log);
    node.connections.push(redis, queueConnection);
    try {
      await redis.connect();
    } catch (e) {
      log(
        `cluster: Redis at ${redactRedisUrl(c.redisUrl)} is not reachable yet (${errorMessage(e)}); retrying`,
      );
    }
    node.run();
    rt.audit.record("cluster.joined", {
      node_id: node.identity.nodeId,
      key_id: node.identity.keyId,
      redis: redactRedisUrl(c.redisUrl),
    });
    log(`cluster: node ${node.identity.nodeId} on ${redactRedisUrl(c.redisUrl)}`);
    return node;
  }

  private run(): void {
    const { rt, config } = this;
    const nodeId = this.identity.nodeId;
    // Events and approvals of this node's goals go to Redis for every other node.
    this.unsubscribers.push(
      rt.events.subscribe({}, (ev) => {
        if (ev.goalId === null || !this.owned.has(ev.goalId)) return;
        publishEvent(this.redis, { ...toWireEvent(ev), node: nodeId }, this.log);
      }),
      rt.approvals.on("requested", (r) => {
        if (r.goal_id !== null && this.owned.has(r.goal_id)) void this.mirrorApproval(r);
      }),
      rt.approvals.on("decided", (r) => {
        if (r.goal_id !== null && this.owned.has(r.goal_id))
          this.redis.hdel(RedisKeys.approvals, r.id).catch(() => {});
      }),
    );
    if (this.redis.status === "ready") {
      this.readySince = Date.now();
      void this.catchUp();
    }
    this.redis.on("ready", () => {
      this.readySince = Date.now();
      void this.catchUp();
    });
    this.redis.on("close", () => {
      this.readySince = undefined;
    });
    this.commands = serveCommands(this.redis, nodeId, (c) => this.handleCommand(c), this.log);
    const workerConnection = new Redis(config.cluster.redisUrl, {
      maxRetriesPerRequest: null,
      retryStrategy: reconnectDelay,
    });
    workerConnection.on("error", () => {});
    this.connections.push(workerConnection);
    const worker = new Worker<GoalJob>(GOAL_QUEUE, (job) => this.process(job), {
      connection: workerConnection,
      concurrency: config.limits.maxConcurrentGoals,
      lockDuration: config.cluster.leaseMs,
      stalledInterval: config.cluster.heartbeatMs,
      maxStalledCount: MAX_STALLED,
    });
    // The same error repeated (Redis away: every reconnect fails alike) is logged once.
    let lastError = "";
    worker.on("error", (e) => {
      const m = errorMessage(e);
      if (m !== lastError) this.log(`cluster worker: ${m}`);
      lastError = m;
    });
    this.redis.on("ready", () => {
      lastError = "";
    });
    this.worker = worker;
    void this.beat();
    this.heartbeat = setInterval(() => void this.beat(), config.cluster.heartbeatMs);
  }

  // --- the socket's goal methods, cluster-wide -----------------------------------------

  /** goal.submit: admitted here, enqueued for any node; answers with the id at once. */
  async submit(s: {
    goal: string;
    manifest?: unknown;
    inputs?: string[];
    workspace?: string;
  }): Promise<{ goal_id: string }> {
    const { rt, config } = this;
    if (s.workspace !== undefined) refuseIntent(rt, s.workspace);
    // Checked here, as a local submit is (manifest, ceiling, models.allowed, inputs): a
    // refusal fails the submit, audited. The owner checks again against its own config.
    const checked = admitGoal(
      { config, audit: rt.audit },
      {
        goal: s.goal,
        ...(s.manifest !== undefined ? { manifest: s.manifest } : {}),
        ...(s.inputs ? { inputs: s.inputs } : {}),
      },
    ).inputs;
    const goalId = newGoalId();
    if (this.redis.status !== "ready")
      this.refuseUnavailable(`Redis is not connected (${this.redis.status})`);
    const inputs = await packInputs(config, checked);
    const job: GoalJob = {
      goal_id: goalId,
      goal: s.goal,
      ...(s.manifest !== undefined ? { manifest: s.manifest } : {}),
      inputs,
      via: this.identity.nodeId,
    };
    try {
      await withTimeout(
        this.mirror.create({ goalId, goal: s.goal, via: this.identity.nodeId, now: Date.now() }),
        SUBMIT_TIMEOUT_MS,
      );
      await withTimeout(
        this.queue.add("goal", job, {
          jobId: goalId,
          removeOnComplete: true,
          removeOnFail: { age: 24 * 3600 },
          attempts: 1,
        }),
        SUBMIT_TIMEOUT_MS,
      );
    } catch (e) {
      // No job: the goal must not show as queued. (A job without its hash is skipped by process().)
      await this.mirror.drop(goalId).catch(() => {});
      this.refuseUnavailable(errorMessage(e));
    }
    rt.audit.record(
      "goal.enqueued",
      { goal: s.goal.slice(0, 2000), ...(checked.length > 0 ? { inputs: checked.map((i) => i.path) } : {}) },
      { goalId },
    );
    return { goal_id: goalId };
  }

  private refuseUnavailable(why: string): never {
    const reason = `the goal was not queued: the cluster's Redis cannot be reached (${why}); nothing was submitted, try again when it is back`;
    this.rt.audit.record("goal.refused", { field: "cluster", reason });
    throw new AidoError(ErrorCode.clusterUnavailable, reason, {});
  }

  /** goal.status for any goal of the cluster (the local row of a goal from before cluster mode). */
  async status(goalId: string): Promise<ClusterGoalStatus | GoalStatus> {
    const mirrored = await this.readMirror(() => this.mirror.status(goalId));
    if (mirrored === undefined) return this.rt.goals.status(goalId);
    if (mirrored.node === this.identity.nodeId && this.rt.goals.isLive(goalId)) {
      // Ours and running: the live usage is here.
      return { ...mirrored, usage: this.rt.goals.status(goalId).usage };
    }
    return mirrored;
  }

  async list(filter: { state?: GoalStatus["state"]; limit?: number }): Promise<ClusterGoalStatus[]> {
    return this.readMirror(() => this.mirror.list(filter));
  }

  /** goal.wait: the status once the goal ended, or as it is at the timeout / when the client left. */
  async wait(
    goalId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ClusterGoalStatus | GoalStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let s: ClusterGoalStatus | GoalStatus | undefined;
      try {
        s = await this.status(goalId);
      } catch (e) {
        // Redis away for a moment: keep waiting, up to the caller's timeout.
        if (!(e instanceof AidoError && e.code === ErrorCode.clusterUnavailable) || Date.now() >= deadline)
          throw e;
      }
      if (s && (TERMINAL.has(s.state) || signal?.aborted || Date.now() >= deadline)) return s;
      await new Promise((r) => setTimeout(r, Math.min(WAIT_POLL_MS, Math.max(0, deadline - Date.now()))));
    }
  }

  /** goal.cancel: a queued goal ends here; a running one is cancelled by its owner. */
  async cancel(goalId: string): Promise<ClusterGoalStatus | GoalStatus> {
    const r = await this.readMirror(() => this.mirror.cancelQueued(goalId));
    if (r.kind === "missing") return this.rt.goals.cancel(goalId);
    if (r.kind === "cancelled") {
      await this.queue.remove(goalId).catch(() => 0);
      const s = await this.status(goalId);
      publishEvent(this.redis, { ...goalEnd(s), node: this.identity.nodeId }, this.log);
      return s;
    }
    if (r.kind === "running") {
      if (r.owner === this.identity.nodeId) {
        this.rt.goals.cancel(goalId);
        return this.status(goalId);
      }
      return (await sendCommand(
        this.redis,
        r.owner,
        { type: "goal.cancel", goal_id: goalId },
        COMMAND_TIMEOUT_MS,
      )) as ClusterGoalStatus;
    }
    return this.status(goalId);
  }

  // --- approvals ----------------------------------------------------------------------

  /** The cluster's pending approvals, each with the node its agent runs on. */
  async pendingApprovals(): Promise<(ApprovalRecord & { node: string })[]> {
    const all = await this.readMirror(() => this.redis.hvals(RedisKeys.approvals));
    const local = this.rt.approvals.list({ status: "pending" });
    const seen = new Set(local.map((a) => a.id));
    const remote = all
      .map((v) => JSON.parse(v) as ApprovalRecord & { node: string })
      .filter((a) => !seen.has(a.id));
    return [...local.map((a) => ({ ...a, node: this.identity.nodeId })), ...remote].sort(
      (a, b) => a.created_at - b.created_at,
    );
  }

  /** approval.respond: answered where the agent waits; decided_by names the node it came through. */
  async respond(id: string, decision: ApprovalDecision, by: string): Promise<unknown> {
    const via = `${by} via node ${this.identity.nodeId}`;
    if (this.hasLocalApproval(id)) return this.rt.approvals.respond(id, decision, via);
    const raw = await this.readMirror(() => this.redis.hget(RedisKeys.approvals, id));
    if (raw === null)
      throw new AidoError(ErrorCode.notFound, `no pending approval ${id} in the cluster`, { id });
    const owner = (JSON.parse(raw) as { node: string }).node;
    return sendCommand(
      this.redis,
      owner,
      { type: "approval.respond", id, decision, via },
      COMMAND_TIMEOUT_MS,
    );
  }

  private hasLocalApproval(id: string): boolean {
    try {
      this.rt.approvals.get(id);
      return true;
    } catch {
      return false;
    }
  }

  private async mirrorApproval(r: ApprovalRecord): Promise<void> {
    try {
      await this.redis.hset(RedisKeys.approvals, r.id, JSON.stringify({ ...r, node: this.identity.nodeId }));
    } catch (e) {
      this.log(`cluster: mirroring approval ${r.id} failed: ${errorMessage(e)}`);
    }
  }

  private async handleCommand(c: Command): Promise<unknown> {
    if (c.type === "goal.cancel") {
      this.rt.goals.cancel(c.goal_id);
      return this.status(c.goal_id);
    }
    return this.rt.approvals.respond(c.id, c.decision, c.via);
  }

  // --- nodes ----------------------------------------------------------------------------

  /** cluster.status: every node that ever joined, whether it heartbeats, its load and goals. */
  async nodes(): Promise<NodeStatus[]> {
    const ids = (await this.readMirror(() => this.redis.smembers(RedisKeys.nodes))).sort();
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(RedisKeys.node(id)).exists(RedisKeys.alive(id));
    const rows = (await this.readMirror(() => pipe.exec())) ?? [];
    return ids.map((id, i) => {
      const h = (rows[2 * i]?.[1] ?? {}) as Record<string, string>;
      const beat = h.last_heartbeat ? Number(h.last_heartbeat) : undefined;
      return {
        node_id: id,
        alive: rows[2 * i + 1]?.[1] === 1,
        last_heartbeat: beat === undefined ? null : new Date(beat).toISOString(),
        key_id: h.key_id ?? "",
        host: h.host ?? "",
        pid: Number(h.pid ?? 0),
        running: Number(h.running ?? 0),
        capacity: Number(h.capacity ?? 0),
        goals: h.goals ? (JSON.parse(h.goals) as string[]) : [],
      };
    });
  }

  private async beat(): Promise<void> {
    if (this.stopped || this.redis.status !== "ready") return;
    const { nodeId, keyId, publicKeyPem, host } = this.identity;
    const running = [...this.owned].filter((id) => this.rt.goals.isLive(id));
    const now = Date.now();
    try {
      const pipe = this.redis
        .multi()
        .set(RedisKeys.alive(nodeId), String(now), "PX", this.config.cluster.leaseMs)
        .sadd(RedisKeys.nodes, nodeId)
        .hset(RedisKeys.node(nodeId), {
          node_id: nodeId,
          key_id: keyId,
          public_key: publicKeyPem,
          host,
          pid: String(process.pid),
          started_at: String(this.startedAt),
          last_heartbeat: String(now),
          running: String(running.length),
          capacity: String(this.config.limits.maxConcurrentGoals),
          goals: JSON.stringify(running),
        });
      await pipe.exec();
      // The running goals' usage, for goal.status on other nodes.
      for (const id of running) {
        const u = this.rt.goals.status(id).usage;
        await this.mirror.update(id, nodeId, {
          input_tokens: String(u.input_tokens),
          output_tokens: String(u.output_tokens),
        });
      }
    } catch (e) {
      this.log(`cluster: heartbeat failed: ${errorMessage(e)}`);
    }
  }

  /** Resolves once this node's connection to Redis has been up for one lease. */
  private async connectedForALease(): Promise<void> {
    for (;;) {
      const since = this.readySince;
      const left =
        since === undefined
          ? this.config.cluster.heartbeatMs
          : since + this.config.cluster.leaseMs - Date.now();
      if (since !== undefined && left <= 0) return;
      await new Promise((r) => setTimeout(r, Math.max(50, left)));
    }
  }

  /**
   * Whether `node` is dead: its heartbeat key is gone now or within one lease (a job's lock
   * can lapse up to half a lease before the last heartbeat's key does). A node still
   * heartbeating after a whole lease is alive.
   */
  private async diedWithin(node: string): Promise<boolean> {
    const deadline = Date.now() + this.config.cluster.leaseMs + this.config.cluster.heartbeatMs;
    while (Date.now() < deadline) {
      if (!(await this.isAlive(node))) return true;
      await new Promise((r) => setTimeout(r, this.config.cluster.heartbeatMs));
    }
    return false;
  }

  private async isAlive(node: string): Promise<boolean> {
    return (await this.redis.exists(RedisKeys.alive(node))) === 1;
  }

  // --- running goals ----------------------------------------------------------------------

  /**
   * The Worker's processor: one goal's job, from take to end. What the hash says decides;
   * BullMQ's job is only how the goal reaches a node.
   */
  private async process(job: Job<GoalJob>): Promise<string> {
    const { goal_id: goalId } = job.data;
    const nodeId = this.identity.nodeId;
    let c = await this.mirror.claim(goalId, nodeId);
    if (c.kind === "running" && c.owner !== nodeId && !(await this.isAlive(c.owner))) {
      // Judge another node dead only after being connected for a whole lease: after a Redis
      // outage every heartbeat key has expired, and live nodes need a beat to renew theirs.
      await this.connectedForALease();
      c = await this.mirror.claim(goalId, nodeId);
    }
    if (c.kind === "missing" || c.kind === "ended") return c.kind; // cancelled, or never queued
    if (c.kind === "running") {
      // Our own job came back (its lock lapsed while Redis was away): wait for it here.
      if (c.owner === nodeId) return this.awaitLocalEnd(goalId);
      if (!(await this.diedWithin(c.owner))) {
        // Its owner lives (only its lock lapsed): it ends the goal and writes the hash itself.
        throw new Error(`goal ${goalId} still runs on node ${c.owner}`);
      }
      c = await this.mirror.claim(goalId, nodeId);
      if (c.kind !== "running" || c.owner === nodeId) return this.process(job);
      if (c.modelStarted) {
        const reason = `node ${c.owner} stopped heartbeating during the goal (its model calls had started, so it is not run again)`;
        if (await this.mirror.failDead(goalId, c.owner, nodeId, reason)) {
          this.rt.audit.record(
            "cluster.goal_taken_over",
            { from_node: c.owner, outcome: "failed", reason },
            { goalId },
          );
          await this.dropApprovalsOf(goalId);
          const s = await this.mirror.status(goalId);
          if (s) publishEvent(this.redis, { ...goalEnd(s), node: nodeId }, this.log);
          this.log(`cluster: goal ${goalId} of node ${c.owner} failed: ${reason}`);
        }
        return "failed";
      }
      if (!(await this.mirror.takeover(goalId, c.owner, nodeId))) return "skipped";
      this.rt.audit.record(
        "cluster.goal_taken_over",
        { from_node: c.owner, outcome: "requeued" },
        { goalId },
      );
      await this.dropApprovalsOf(goalId);
      this.log(`cluster: goal ${goalId} of node ${c.owner} re-queued here (no model call had started)`);
    }
    return this.runHere(job.data);
  }

  private async runHere(data: GoalJob): Promise<string> {
    const { goal_id: goalId } = data;
    this.owned.add(goalId);
    try {
      const inputs = await unpackInputs(this.config, goalId, data.inputs);
      this.rt.goals.submit(
        {
          goal: data.goal,
          ...(data.manifest !== undefined ? { manifest: data.manifest } : {}),
          ...(inputs.length > 0 ? { inputs } : {}),
        },
        { goalId },
      );
    } catch (e) {
      // Refused here (this node's ceiling, a manifest its config does not allow): the goal fails.
      const now = new Date().toISOString();
      const failed: GoalStatus = {
        goal_id: goalId,
        state: "failed",
        error: `refused by node ${this.identity.nodeId}: ${errorMessage(e)}`,
        usage: { input_tokens: 0, output_tokens: 0 },
        output_dir: "",
        goal: data.goal,
        created_at: now,
        finished_at: now,
      };
      await this.mirror.finish(goalId, this.identity.nodeId, failed);
      publishEvent(this.redis, { ...goalEnd(failed), node: this.identity.nodeId }, this.log);
      removeUnpacked(this.config, goalId);
      return "failed";
    }
    await this.mirror
      .update(goalId, this.identity.nodeId, { output_dir: this.rt.goals.status(goalId).output_dir })
      .catch(() => false);
    return this.awaitLocalEnd(goalId);
  }

  /** Wait for the goal to end in this Runtime, then write its end to the mirror. */
  private async awaitLocalEnd(goalId: string): Promise<string> {
    let s: GoalStatus;
    try {
      s = this.rt.goals.status(goalId);
    } catch (e) {
      if (!(e instanceof AidoError && e.code === ErrorCode.notFound)) throw e;
      return this.failUnstarted(goalId);
    }
    while (!TERMINAL.has(s.state)) s = await this.rt.goals.wait(goalId, 3_600_000);
    await this.flush(goalId);
    removeUnpacked(this.config, goalId);
    return s.state;
  }

  /** Write a goal's end to the mirror; remembered for later if Redis cannot be written now. */
  private async flush(goalId: string): Promise<void> {
    try {
      const s = this.rt.goals.status(goalId);
      await this.mirror.finish(goalId, this.identity.nodeId, s);
      await this.dropApprovalsOf(goalId);
      this.unflushed.delete(goalId);
      this.owned.delete(goalId);
    } catch (e) {
      this.unflushed.add(goalId);
      this.log(
        `cluster: could not write the end of goal ${goalId} to Redis (kept for when it is back): ${errorMessage(e)}`,
      );
    }
  }

  /**
   * A goal this node took but never recorded (it died between the take and the local row):
   * nothing of it ran here; it ends failed rather than stay running.
   */
  private async failUnstarted(goalId: string): Promise<string> {
    const now = new Date().toISOString();
    const failed: GoalStatus = {
      goal_id: goalId,
      state: "failed",
      error: `node ${this.identity.nodeId} restarted after taking the goal, before it started`,
      usage: { input_tokens: 0, output_tokens: 0 },
      output_dir: "",
      goal: "",
      created_at: now,
      finished_at: now,
    };
    await this.mirror.finish(goalId, this.identity.nodeId, failed);
    publishEvent(this.redis, { ...goalEnd(failed), node: this.identity.nodeId }, this.log);
    return "failed";
  }

  /**
   * Recovery against Redis: goals the mirror says run here but this process does not run
   * (the node restarted) end as the local record says (failed: the daemon restarted). A goal
   * another node already ended or took over is not ours any more and stays as it is (the
   * write is a compare-and-set on the owner).
   */
  private async recoverOwn(): Promise<void> {
    for (const goalId of await this.mirror.runningOn(this.identity.nodeId)) {
      if (this.owned.has(goalId) || this.rt.goals.isLive(goalId)) continue;
      let s: GoalStatus | undefined;
      try {
        s = this.rt.goals.status(goalId);
      } catch {
        s = undefined;
      }
      if (s === undefined) await this.failUnstarted(goalId);
      else if (TERMINAL.has(s.state) && (await this.mirror.finish(goalId, this.identity.nodeId, s))) {
        publishEvent(this.redis, { ...goalEnd(s), node: this.identity.nodeId }, this.log);
      }
    }
  }

  /** Redis answers again: write what could not be written, and say so to remote watchers. */
  private async catchUp(): Promise<void> {
    await this.recoverOwn().catch((e: unknown) =>
      this.log(`cluster: recovery against Redis failed: ${errorMessage(e)}`),
    );
    for (const goalId of [...this.unflushed]) {
      await this.flush(goalId);
      if (!this.unflushed.has(goalId)) {
        publishEvent(
          this.redis,
          { ...goalEnd(this.rt.goals.status(goalId)), node: this.identity.nodeId },
          this.log,
        );
      }
    }
    await this.beat();
  }

  private async dropApprovalsOf(goalId: string): Promise<void> {
    const all = await this.redis.hgetall(RedisKeys.approvals);
    const ids = Object.entries(all)
      .filter(([, v]) => (JSON.parse(v) as { goal_id: string | null }).goal_id === goalId)
      .map(([k]) => k);
    if (ids.length > 0) await this.redis.hdel(RedisKeys.approvals, ...ids);
  }

  /**
   * The Runtime's beforeFirstModelCall: mark the goal in Redis before anything is spent, so
   * a survivor knows not to run it again. Waits out a short Redis outage (up to one lease);
   * past it, or when the goal is no longer this node's, the call (and the goal) fails.
   */
  async beforeFirstModelCall(goalId: string): Promise<void> {
    if (!this.owned.has(goalId)) return;
    const deadline = Date.now() + this.config.cluster.leaseMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        if (await this.mirror.modelStarted(goalId, this.identity.nodeId)) return;
        throw new AidoError(
          ErrorCode.clusterUnavailable,
          `goal ${goalId} is no longer this node's (another node ended or took it over); not calling the model`,
          { goal_id: goalId },
        );
      } catch (e) {
        if (e instanceof AidoError) throw e;
        last = e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    throw new AidoError(
      ErrorCode.clusterUnavailable,
      `could not record in Redis that goal ${goalId} started (${errorMessage(last)}); not calling the model, so that the goal can never run twice`,
      { goal_id: goalId },
    );
  }

  /** Read from Redis for a client: a clear error when it cannot be reached. */
  private async readMirror<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(fn(), SUBMIT_TIMEOUT_MS);
    } catch (e) {
      if (e instanceof AidoError) throw e;
      throw new AidoError(
        ErrorCode.clusterUnavailable,
        `the cluster's Redis cannot be reached: ${errorMessage(e)}`,
        {},
      );
    }
  }

  /** Stop taking goals (the Runtime then ends those running, as a lone daemon does). */
  async stopTaking(): Promise<void> {
    await this.worker?.pause(true).catch(() => {});
  }

  /** Leave: no more heartbeats (the lease runs out), commands or jobs; connections closed. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.heartbeat);
    for (const off of this.unsubscribers) off();
    this.commands?.stop();
    await this.worker?.close().catch(() => {});
    await this.queue.close().catch(() => {});
    // A clean exit: the node says it is gone rather than letting its lease run out.
    await this.redis.del(RedisKeys.alive(this.identity.nodeId)).catch(() => 0);
    for (const c of this.connections) c.disconnect();
  }
}

/** A goal's end as the event stream shows it (goal.finished). */
function goalEnd(s: GoalStatus): WireEvent {
  return {
    type: "goal.finished",
    time: s.finished_at ?? new Date().toISOString(),
    goal_id: s.goal_id,
    state: s.state,
    usage: s.usage,
    ...(s.error !== undefined ? { error: s.error } : {}),
  };
}

/**
 * A persistent intent lives in one node's database: a goal submitted from a folder with one
 * cannot carry it to another node, and is refused rather than run without it.
 */
function refuseIntent(rt: Runtime, workspace: string): void {
  let active: { id: string } | undefined;
  try {
    active = rt.intents.active(workspaceKey(workspace));
  } catch {
    return; // not a folder with an intent
  }
  if (active === undefined) return;
  const reason = `workspace: ${workspace} has a persistent intent (${active.id}); in cluster mode a goal cannot carry one to the node that runs it. Clear it (aido intent clear) or submit to a daemon outside the cluster`;
  rt.audit.record("goal.refused", { field: "workspace", reason, intent_id: active.id });
  throw new AidoError(ErrorCode.invalidInput, reason, { field: "workspace" });
}

function reconnectDelay(times: number): number {
  return Math.min(100 * times, 2_000);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
