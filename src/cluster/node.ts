// cluster/node.ts — one daemon as a node of a cluster (docs/scale-out.md): its Redis
// connections, its BullMQ Worker, its heartbeat timer and lease (what each beat does:
// heartbeat.ts), and the two halves that do the work — ClusterGoals (goal-view.ts: the
// socket's goal methods for the whole cluster) and the goals this node takes (job-intake.ts:
// what a job's hash says to do) and runs (goal-runner.ts; their ends written to Redis by
// goal-ends.ts).
//
// Leases: the node sets a key with a TTL of lease_ms every heartbeat_ms, and BullMQ holds
// a lock of lockDuration = lease_ms on each job it runs. When a node dies its locks lapse;
// BullMQ's stalled check (stalledInterval = heartbeat_ms) hands its jobs to a survivor's
// Worker, and maxStalledCount is high on purpose: what happens to the goal is decided from
// its hash by the runner (re-queued or failed), never by BullMQ. A node judges another dead
// only once its own connection has been up for a whole lease (after a Redis outage every
// heartbeat key has expired, and live nodes need a beat to renew theirs).
// Redis down (or this node cut off from it): submissions fail at once (cluster_unavailable);
// with cluster.on_redis_loss hold (the default) the node fences itself once it could not renew
// its lease for lease_ms less a margin (fence.ts): its goals wait until a heartbeat has looked
// which are still its own; with finish they carry on. What could not be written is written
// when Redis answers again; a node shut down meanwhile leaves all the same, within a bounded
// time (closeWorker), the ends Redis did not take left to its next process.

import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { Config } from "../config.js";
import { withoutConfigSecrets } from "../config-secrets.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { HoldRefused } from "../gate/hold.js";
import { isStandalone } from "../kernel/assemble.js";
import type { Runtime } from "../kernel/runtime.js";
import type { ApprovalListFilter } from "../security/approval-store.js";
import { type ClusterApproval, listApprovals } from "./approval-view.js";
import { verifyCluster } from "./audit-heads.js";
import { CommandSender } from "./command-sender.js";
import { auditRefusal, serveCommands } from "./commands.js";
import {
  nodeConnections,
  WORKER_DRAIN_DELAY_S,
  workerConnection as workerConnectionOf,
} from "./connections.js";
import { type NodeContext, REDIS_ANSWER_MS, readMirror, withTimeout } from "./context.js";
import type { FenceStatus } from "./fence.js";
import { GoalHold } from "./goal-hold.js";
import { GoalMirror } from "./goal-mirror.js";
import { ClusterGoalRunner, type GoalJob } from "./goal-runner.js";
import { ClusterGoals } from "./goal-view.js";
import { NodeHeartbeat } from "./heartbeat.js";
import { type NodeIdentity, nodeIdentity } from "./identity.js";
import { InferenceSlots } from "./inference-slots.js";
import { JobIntake, type Liveness } from "./job-intake.js";
import { KeptCancels } from "./kept-cancels.js";
import {
  diedWithin,
  isAlive,
  listNodes,
  type NodeStatus,
  ownStatus,
  redisPersistence,
} from "./node-status.js";
import { OwnedMirror } from "./owned-mirror.js";
import { GOAL_QUEUE, RedisKeys } from "./redis-keys.js";
import { type RedisPersistence, redactRedisUrl, UNPERSISTED_REDIS, withoutRedisSecret } from "./redis-url.js";
import { ShareReturns } from "./share-returns.js";

declare module "../security/audit-events.js" {
  interface AuditPayloads {
    /** This daemon joined a cluster (cluster/node.ts): its node id and the key that signs its log. */
    "cluster.joined": { node_id: string; key_id: string; redis: string };
    /**
     * goal.submit on this node put the goal in the cluster's queue (any node may run it).
     * `session_share`: what it was charged of its MCP session's budget (kernel/session-budget.ts).
     */
    "goal.enqueued": { goal: string; inputs?: string[]; session_share?: number };
    /** A goal this node took but had not started when it began to shut down: queued again for any node. */
    "cluster.goal_released": { reason: string };
    /** A goal this node had claimed but not started (or whose end by its shutdown was not given back yet) was cancelled. */
    "cluster.goal_cancelled": { reason: string };
  }
}

/** BullMQ's stalled-job limit: high on purpose, a stalled job's fate is decided by the runner. */
const MAX_STALLED = 1_000;

/**
 * How long a leaving node waits for the cancels of its ended sessions' goals: one Redis read
 * and one cancel routed to the goal's owner (goal-view.ts COMMAND_TIMEOUT_MS) answered.
 */
const SESSION_CANCELS_MS = 15_000;

export class ClusterNode implements Liveness {
  readonly identity: NodeIdentity;
  /** The socket's goal methods, for the whole cluster. */
  readonly goals: ClusterGoals;
  private readonly runner: ClusterGoalRunner;
  private readonly intake: JobIntake;
  /** inference.cluster_max_concurrent, when set. */
  private readonly slots: InferenceSlots | undefined;
  /** What other nodes see of the goals this node runs (started by run()). */
  private owned: OwnedMirror | undefined;
  private worker: Worker<GoalJob> | undefined;
  private commands: { stop(): void } | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The lease renewed and the node's goals looked after, one beat at a time (heartbeat.ts). */
  private readonly beats: NodeHeartbeat;
  /** Every connection this node opened, closed by stop(). */
  private readonly connections: Redis[] = [];
  /** Since when the node's Redis connection has been up (undefined while it is down). */
  private readySince: number | undefined;
  private stopped = false;
  /** Stops cancelling the cluster goals of the MCP sessions that end on this node. */
  private unsubscribeSessions: () => void = () => {};
  /** The cancels of ended sessions' goals Redis did not take, made when it answers (kept-cancels.ts). */
  private readonly keptCancels: KeptCancels;
  /** Whether the node may take its goals as still its own, and what waits until it may (goal-hold.ts). */
  private readonly hold: GoalHold;

  private constructor(
    private readonly ctx: NodeContext,
    private readonly queue: Queue<GoalJob>,
  ) {
    this.identity = ctx.identity;
    // Not sure of its goals after a pause until stopLost ran; sure again once it left.
    this.keptCancels = new KeptCancels(ctx.rt.db, ctx.log);
    this.runner = new ClusterGoalRunner(ctx, () => this.hold.until({ orLeft: true }));
    this.goals = new ClusterGoals(
      ctx,
      queue,
      (goalId, reason) => this.runner.cancel(goalId, reason),
      (goalId, end) => this.runner.announceEnd(goalId, end),
      () => this.beats.lastBeat,
      this.keptCancels,
    );
    this.intake = new JobIntake(ctx, queue, this.runner, this, this.keptCancels);
    this.hold = new GoalHold(
      ctx,
      () => this.runner.running(),
      () => this.stopped,
      () => this.beats.beatNow(),
    );
    this.beats = new NodeHeartbeat({
      ctx,
      hold: this.hold,
      runner: this.runner,
      intake: this.intake,
      goals: this.goals,
      shares: new ShareReturns(ctx),
      owned: () => this.owned,
      stopped: () => this.stopped,
      startedAt: Date.now(),
    });
    const max = ctx.config.inference.clusterMaxConcurrent;
    this.slots = max === undefined ? undefined : new InferenceSlots(ctx, max);
  }

  /**
   * Before each model call: one cluster-wide inference slot (inference.cluster_max_concurrent;
   * none when unset), and not while the node is unsure of its goals (paused past its lease,
   * until its heartbeat has looked which are still its own): a call of a goal another node
   * ended or took over meanwhile would run after the cluster decided its fate. That look stops
   * such a goal, and its calls' signals end the wait.
   */
  async inferenceSlot(provider: string, signal?: AbortSignal): Promise<() => void> {
    await this.hold.until({ ...(signal ? { signal } : {}) });
    // The look just stopped the goal (another node's now): no call.
    if (signal?.aborted) throw new AidoError(ErrorCode.cancelled, `inference on ${provider} cancelled`, {});
    return this.slots ? this.slots.acquire(provider, signal) : () => {};
  }

  /**
   * Before each tool call of a goal runs (the gate, after its approval, before tool.invoked):
   * not while the node is unsure of its goals (fenced, or paused past its lease), for the same
   * reason as a model call. Standalone agents (agent.spawn) are this node's alone: not held.
   */
  async beforeToolCall(goalId: string, signal?: AbortSignal): Promise<void> {
    if (isStandalone(goalId)) return;
    await this.hold.until({ ...(signal ? { signal } : {}) });
    // A refusal (gate/hold.ts): tool.denied at stage hold. Anything else this throws is the
    // hold failing, audited as tool.errored.
    if (signal?.aborted)
      throw new HoldRefused(
        ErrorCode.cancelled,
        `the tool call of goal ${goalId} waited for this node to be sure of its goals, and its agent stopped meanwhile; it did not run`,
        { goal_id: goalId },
      );
  }

  /** Whether this node holds its goals because it could not renew its lease (cluster.status). */
  fenceStatus(): FenceStatus {
    return this.hold.fence.status();
  }

  /** approval.list for the whole cluster (approval-view.ts). */
  approvals(filter: ApprovalListFilter): Promise<ClusterApproval[]> {
    return listApprovals(this.ctx, filter);
  }

  /** The node's own Redis connection (event streams and routed commands duplicate it). */
  get redis(): Redis {
    return this.ctx.redis;
  }

  /** Join the cluster `config.cluster` names, over an open Runtime. */
  static async start(config: Config, rt: Runtime, logLine: (m: string) => void): Promise<ClusterNode> {
    const c = config.cluster;
    if (!c)
      throw new AidoError(ErrorCode.configInvalid, "cluster mode needs cluster.redis_url or AIDO_REDIS_URL");
    // Every line the node logs may carry Redis's text: never the URL's secret (withoutRedisSecret).
    const log = (m: string) => logLine(withoutRedisSecret(m, c.redisUrl));
    // Each with a socket timeout (connections.ts): a silent one is dropped and made again.
    const { redis, queue: queueConnection } = nodeConnections(c);
    const queue = new Queue<GoalJob>(GOAL_QUEUE, { connection: queueConnection });
    queue.on("error", () => {});
    const identity = nodeIdentity(config);
    const ctx: NodeContext = {
      config: { ...config, cluster: c },
      rt,
      redis,
      mirror: new GoalMirror(redis),
      sender: new CommandSender(redis, identity.nodeId, log, (text) => withoutRedisSecret(text, c.redisUrl)),
      identity,
      log,
    };
    const node = new ClusterNode(ctx, queue);
    node.connections.push(redis, queueConnection);
    try {
      await redis.connect();
    } catch (e) {
      log(
        `cluster: Redis at ${redactRedisUrl(c.redisUrl)} is not reachable yet (${errorMessage(e)}); retrying`,
      );
    }
    node.run();
    // A session's end fails its goals on a lone daemon; here they may be queued in Redis or
    // running on another node, so they are cancelled through the cluster (ClusterGoals).
    node.unsubscribeSessions = rt.sessions.whenEnded((s, reason) => node.goals.cancelSessionGoals(s, reason));
    rt.audit.record("cluster.joined", {
      node_id: node.identity.nodeId,
      key_id: node.identity.keyId,
      redis: redactRedisUrl(c.redisUrl),
    });
    log(`cluster: node ${node.identity.nodeId} on ${redactRedisUrl(c.redisUrl)}`);
    return node;
  }

  private run(): void {
    const { config, redis, log } = this.ctx;
    // From a pause past the lease until stopLost has run, events are held (owned-mirror.ts).
    this.owned = new OwnedMirror(
      this.ctx,
      (goalId) => this.runner.owns(goalId),
      () => this.hold.sure(),
    );
    const connected = () => {
      this.readySince = Date.now();
      // Recovery and the ends Redis did not take go with the heartbeat, one at a time.
      this.runner.recoveryNeeded();
      this.beats.tick();
      // Approvals an earlier process of this node left pending in the cluster's list.
      void this.owned
        ?.settleStale()
        .catch((e: unknown) =>
          log(`cluster: settling this node's stale approvals in Redis failed: ${errorMessage(e)}`),
        );
      void this.redisPersistence().then((p) => {
        if (p === "none") log(`cluster: ${UNPERSISTED_REDIS}`);
      });
    };
    if (redis.status === "ready") connected();
    redis.on("ready", connected);
    redis.on("close", () => {
      this.readySince = undefined;
    });
    this.commands = serveCommands(
      redis,
      this.identity.nodeId,
      (c) => this.goals.handleCommand(c),
      (type, reason) => auditRefusal(this.ctx, type, reason),
      log,
      (text) => withoutConfigSecrets(text, this.ctx.config),
    );
    const workerConnection = workerConnectionOf(config.cluster);
    this.connections.push(workerConnection);
    const worker = new Worker<GoalJob>(GOAL_QUEUE, (job, token) => this.intake.process(job, token), {
      connection: workerConnection,
      concurrency: config.limits.maxConcurrentGoals,
      lockDuration: config.cluster.leaseMs,
      stalledInterval: config.cluster.heartbeatMs,
      maxStalledCount: MAX_STALLED,
      drainDelay: WORKER_DRAIN_DELAY_S, // its fetch's block, within its socket timeout
    });
    // The same error repeated (Redis away: every reconnect fails alike) is logged once.
    let lastError = "";
    worker.on("error", (e) => {
      const m = errorMessage(e);
      if (m !== lastError) log(`cluster worker: ${m}`);
      lastError = m;
    });
    redis.on("ready", () => {
      lastError = "";
    });
    this.worker = worker;
    this.heartbeat = setInterval(() => this.beats.tick(), config.cluster.heartbeatMs);
  }

  /** audit.verify {cluster: true}: every node's chain against the head it published. */
  verifyAudit(): ReturnType<typeof verifyCluster> {
    return readMirror(() => verifyCluster(this.ctx), 120_000);
  }

  /** The Runtime's beforeFirstModelCall (goal-runner.ts). */
  beforeFirstModelCall(goalId: string): Promise<void> {
    return this.runner.beforeFirstModelCall(goalId);
  }

  /** How Redis keeps the cluster's state (node-status.ts). */
  redisPersistence(): Promise<RedisPersistence> {
    return redisPersistence(this.ctx.redis);
  }

  /** cluster.status: every node that ever joined (node-status.ts). */
  nodes(): Promise<NodeStatus[]> {
    return listNodes(this.ctx);
  }

  /** A Redis error's text as this node may show it: the Redis URL's password never in it. */
  redisText(text: string): string {
    return withoutRedisSecret(text, this.ctx.config.cluster.redisUrl);
  }

  /** This node as cluster.status lists it, from memory (when Redis cannot be read). */
  self(): NodeStatus {
    return ownStatus(this.ctx, this.runner.running(), this.beats.lastBeat);
  }

  /** Resolves once this node's connection to Redis has been up for one lease. */
  async connectedForALease(): Promise<void> {
    for (;;) {
      const since = this.readySince;
      const left =
        since === undefined
          ? this.ctx.config.cluster.heartbeatMs
          : since + this.ctx.config.cluster.leaseMs - Date.now();
      if (since !== undefined && left <= 0) return;
      await new Promise((r) => setTimeout(r, Math.max(50, left)));
    }
  }

  /** Whether `node` is dead now or within one lease (node-status.ts). */
  diedWithin(node: string): Promise<boolean> {
    return diedWithin(this.ctx, node);
  }

  isAlive(node: string): Promise<boolean> {
    return isAlive(this.ctx, node);
  }

  /** Stop taking goals (the Runtime then ends those running, as a lone daemon does). */
  async stopTaking(): Promise<void> {
    await this.worker?.pause(true).catch(() => {});
  }

  /**
   * Shutting down, after stopTaking and before the Runtime ends the goals it runs: the MCP
   * sessions open here end now, with `reason`, while the node is still a member, so the
   * goals they submitted are cancelled through the cluster (whenEnded -> cancelSessionGoals):
   * queued in Redis or running on any node, this one included. Before, they ended only in
   * Runtime.close, after stop() had unsubscribed, and ran on elsewhere for a session that was
   * gone. The cancels' answers are waited for a bounded time (Redis down: each cancel gives
   * up on its own within REDIS_ANSWER_MS), then the node leaves regardless, saying so.
   */
  async endSessions(reason: string): Promise<void> {
    const ended = this.ctx.rt.sessions.endAll(reason);
    if (ended === 0) return;
    await withTimeout(this.goals.cancelsAnswered(), SESSION_CANCELS_MS).catch(() =>
      this.ctx.log(
        `cluster: the cancels of the goals of ${ended} MCP session(s) ended by the shutdown were not all answered within ${SESSION_CANCELS_MS} ms; leaving without their answers`,
      ),
    );
  }

  /** Leave: no more heartbeats (the lease runs out), commands or jobs; connections closed. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribeSessions();
    clearInterval(this.heartbeat);
    this.hold.stop();
    this.owned?.stop();
    this.goals.close();
    // Commands are read until the worker is done: a cancel routed here while a goal is
    // being given back must reach it (ClusterGoalRunner.cancel), not time out unread. And
    // the cancels under way get their answer before the connections close under them.
    await this.closeWorker();
    await withTimeout(this.goals.cancelsAnswered(), REDIS_ANSWER_MS).catch(() => {});
    await this.runner.leave();
    this.commands?.stop();
    this.ctx.sender.close();
    await this.queue.close().catch(() => {});
    // A clean exit: the node says it is gone rather than letting its lease run out.
    await this.ctx.redis.del(RedisKeys.alive(this.identity.nodeId)).catch(() => 0);
    for (const c of this.connections) c.disconnect();
  }

  /**
   * Close the Worker once the goals it took are done here: each take returns when its goal
   * ended in this Runtime (the shutdown ended those running) and its end is written to Redis
   * or kept (goal-ends.ts). BullMQ then settles their jobs in Redis over its connection, which
   * waits for Redis forever: with Redis away the node never left, and a supervisor's one
   * SIGTERM ended in its SIGKILL. So BullMQ gets REDIS_ANSWER_MS past the takes, and the node
   * leaves without it after that. A job left active has its lock lapse; whichever worker takes
   * it next reads the goal's hash (job-intake.ts): an end written, it is skipped; this node's
   * own next process writes the kept end (recover) or finds it written.
   */
  private async closeWorker(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    const closed = worker.close().then(
      () => true,
      () => true,
    );
    let timer: NodeJS.Timeout | undefined;
    // Closed before the takes were done: no wait is started after the race (it held the leave 5 s).
    let raced = false;
    const past = this.intake.takesDone().then(
      () =>
        new Promise<false>((r) => {
          if (raced) return r(false);
          timer = setTimeout(() => r(false), REDIS_ANSWER_MS);
        }),
    );
    const done = await Promise.race([closed, past]);
    raced = true;
    clearTimeout(timer);
    if (done) return;
    this.ctx.log(
      `cluster: Redis did not settle the jobs of this node's goals within ${REDIS_ANSWER_MS} ms of their end (${this.redisState()}); leaving without it`,
    );
    // Its connection dropped: nothing of it retries against Redis in this process any more.
    // Not waited for: a connection waiting to reconnect never says it ended.
    void worker.disconnect().catch(() => {});
  }

  /** What the node's own connection says of Redis, for a log line. */
  private redisState(): string {
    return this.ctx.redis.status === "ready" ? "it is connected" : "it cannot be reached";
  }
}
