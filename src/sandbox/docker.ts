// sandbox/docker.ts — DockerBackend: one container per goal on a local Docker engine.
// Which container a goal has: made on first acquire (or taken from the warm pool, or
// re-attached after a restart), replaced when it died, removed for good when the goal is
// retired, and swept by gc() when it is an orphan, expired (stopped or not: its goal ends) or
// stopped. Containers (names, labels, engine calls) are docker-containers.ts's; where a goal's
// first container comes from, goal-container.ts's; the warm pool's slots, pool-slots.ts's; what
// the sweep removes, docker-sweep.ts's; the freeze of a goal's containers (its node's fence) and
// what waits for its thaw, frozen-goals.ts's; what each goal's containers were made with and
// whether it was retired, goal-records.ts's; the options and their defaults,
// docker-options.ts's. A goal's external MCP servers (mcp-container.ts) are started here too,
// so that they go with the goal and gc() can tell the ones this process speaks to from
// leftovers nobody can reach.

import type Docker from "dockerode";
import type { Config } from "../config.js";
import { parseMcpEgressId } from "../egress/mcp-callers.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { AcquireOptions, GcOptions, GcReport, SandboxBackend } from "./backend.js";
import { defaultLimits } from "./container-spec.js";
import { LABEL, RuntimeContainers } from "./docker-containers.js";
import { type DockerBackendOptions, defaultUser } from "./docker-options.js";
import { DockerSandbox, type SandboxOwner } from "./docker-sandbox.js";
import { sweepRuntime } from "./docker-sweep.js";
import { type EgressEndpoint, EgressNetworks } from "./egress-network.js";
import { connectDocker } from "./engine.js";
import { cancelledError } from "./executor-session.js";
import { assertGoalId, goalFolders, parseUser, removeTreeNoFollow } from "./folders.js";
import { FrozenGoals } from "./frozen-goals.js";
import { openGoalContainer } from "./goal-container.js";
import { GoalRecords } from "./goal-records.js";
import { ensureImage } from "./image.js";
import { checkInputs, copyInputs, inputRules } from "./inputs.js";
import type { McpServerContainer, McpServerSpec } from "./mcp-container.js";
import { LiveMcpServers } from "./mcp-servers.js";
import { WarmPool } from "./pool.js";
import { PoolSlots } from "./pool-slots.js";

export type { DockerBackendOptions } from "./docker-options.js";

export class DockerBackend implements SandboxBackend, SandboxOwner {
  readonly runtimeId: string;
  readonly docker: Docker;
  readonly execTimeoutMs: number;
  readonly maxOutputBytes: number;
  readonly landlock: "on" | "off";
  private readonly containers: RuntimeContainers;
  private readonly handles = new Map<string, DockerSandbox>();
  private readonly acquiring = new Map<string, Promise<DockerSandbox>>();
  /** What each goal's containers were made with, whether it was retired or touched (goal-records.ts). */
  private readonly goals: GoalRecords;
  private readonly networks: EgressNetworks;
  /** Goals whose containers are frozen (pause), their engine calls, and what waits for them to thaw. */
  private readonly frozen: FrozenGoals;
  /** The warm pool's slot containers, and which of them this process owns (the sweep leaves those). */
  private readonly slots: PoolSlots;
  /** Goal folders a sweep found expired but could not remove: the next sweep tries them again. */
  private readonly failedGoalFolders = new Set<string>();
  /** The MCP server containers this process started and still speaks to. */
  private readonly mcpServers: LiveMcpServers;
  private readonly pool: WarmPool;
  private imageReady: Promise<unknown> | undefined;
  private saidNoTcpRule = false;

  constructor(
    private readonly config: Config,
    private readonly opts: DockerBackendOptions = {},
  ) {
    this.docker = opts.docker ?? connectDocker();
    this.goals = new GoalRecords(config.goalsDir);
    const user = opts.user ?? defaultUser();
    parseUser(user);
    this.containers = new RuntimeContainers(this.docker, config, {
      user,
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.securityOpt ? { securityOpt: opts.securityOpt } : {}),
    });
    this.runtimeId = this.containers.runtimeId;
    this.mcpServers = new LiveMcpServers({
      docker: this.docker,
      config,
      runtimeId: this.runtimeId,
      user,
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.securityOpt ? { securityOpt: opts.securityOpt } : {}),
      folders: (goalId) => opts.folders?.(goalId) ?? this.goals.folders(goalId),
    });
    this.frozen = new FrozenGoals(
      this.containers,
      (goalId) => [this.containerName(goalId), ...this.mcpServers.ofGoal(goalId)],
      (goalId) => this.goals.isRetired(goalId),
      // An unfreeze given up: its containers go (a forced removal kills a paused one), and its
      // servers' (their connections end: the next call starts them again).
      async (goalId) => {
        await this.containers.remove(this.containerName(goalId)).catch(() => {});
        this.handles.get(goalId)?.containerGone();
        await this.mcpServers.removeOfGoal(goalId).catch(() => {});
      },
      (line) => this.opts.log?.(line),
    );
    const daemonUser = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    this.networks = new EgressNetworks(this.docker, config, this.containers, daemonUser, opts.labels);
    this.execTimeoutMs = config.sandbox.execTimeoutMs;
    this.maxOutputBytes = config.limits.toolOutputMaxBytes;
    this.landlock = config.sandbox.landlock;
    this.slots = new PoolSlots(config, this.containers, () => this.imageOnce());
    this.pool = new WarmPool(
      config.sandbox.warmPool,
      () => this.slots.make(),
      (s) => this.slots.destroy(s),
    );
  }

  containerName(goalId: string): string {
    return this.containers.goalName(goalId);
  }

  /** Build the image if needed and fill the warm pool; acquire does both on first need. */
  async start(): Promise<void> {
    await this.imageOnce();
    await this.pool.refill();
  }

  get warmSlots(): number {
    return this.pool.readyCount;
  }

  async acquire(goalId: string, opts: AcquireOptions = {}): Promise<DockerSandbox> {
    assertGoalId(goalId);
    // Frozen (its node is fenced): no container is made for it, nor handed out, until unpause; or
    // until every call that waited for it has gone (opts.signal).
    if (!opts.signal) await this.frozen.thawed(goalId);
    else if (!(await this.frozen.untilThawed(goalId, opts.signal))) throw cancelledError("acquire");
    this.goals.refuseRetired(goalId);
    this.goals.touch(goalId);
    let handle = this.handles.get(goalId);
    if (!handle) {
      let p = this.acquiring.get(goalId);
      if (!p) {
        p = this.open(goalId, opts).finally(() => this.acquiring.delete(goalId));
        this.acquiring.set(goalId, p);
      }
      handle = await p;
    }
    // Frozen while it was being made: frozen too before anything runs in it. One the engine
    // would not freeze is removed: it ran on through the fence (only the calls on it waited).
    // The handle's first call, sent once the goal is unfrozen, makes a fresh one.
    try {
      await this.frozen.freezeLate(goalId, this.containerName(goalId));
    } catch (e) {
      await this.containers.remove(this.containerName(goalId));
      handle.containerGone();
      this.opts.log?.(
        `the container of goal ${goalId}, made as its node was fenced, could not be frozen (${errorMessage(e)}): it was removed; its next call makes a fresh one once the goal is unfrozen`,
      );
    }
    if (this.goals.isRetired(goalId)) {
      // The goal ended while its container was being made: it goes at once.
      this.dropHandle(goalId);
      await this.containers.remove(this.containerName(goalId));
      this.goals.refuseRetired(goalId);
    }
    if (opts.inputs && opts.inputs.length > 0) {
      const rules = inputRules(this.config);
      await copyInputs(
        checkInputs(opts.inputs, rules),
        goalFolders(this.config.goalsDir, goalId).inputs,
        rules,
      );
    }
    return handle;
  }

  noTcpRule(abi: number): void {
    if (this.saidNoTcpRule) return;
    this.saidNoTcpRule = true;
    this.opts.log?.(
      `this kernel offers Landlock ABI ${abi}: TCP rules need ABI 4 (Linux 6.7), so an exec on an egress network may connect to any port of its relay; the proxy credentials alone tell its agents apart`,
    );
  }

  onEgressNetwork(goalId: string): boolean {
    return this.goals.egressShareOf.has(goalId);
  }

  async egress(goalId: string, share: string): Promise<EgressEndpoint> {
    assertGoalId(goalId);
    this.goals.refuseRetired(goalId);
    // An MCP server's network (egress/mcp-callers.ts) is made only while its goal is not retired.
    const server = parseMcpEgressId(goalId);
    if (server) this.goals.refuseRetired(server.goalId);
    this.goals.touch(server?.goalId ?? goalId);
    await this.imageOnce();
    return this.networks.ensure(goalId, share);
  }

  async removeEgress(goalId: string): Promise<void> {
    assertGoalId(goalId);
    await this.networks.remove(goalId);
  }

  /** The goal's egress network, made (with its relay) if the goal has one. */
  private async networkOf(goalId: string): Promise<string | undefined> {
    const share = this.goals.egressShareOf.get(goalId);
    return share === undefined ? undefined : (await this.egress(goalId, share)).network;
  }

  private async open(goalId: string, opts: AcquireOptions): Promise<DockerSandbox> {
    const handle = await openGoalContainer(
      {
        expiries: this.goals.expiries,
        limitsOf: this.goals.limitsOf,
        skillsOf: this.goals.skillsOf,
        workspaceOf: this.goals.workspaceOf,
        egressShareOf: this.goals.egressShareOf,
        config: this.config,
        docker: this.docker,
        containers: this.containers,
        pool: this.pool,
        slots: this.slots,
        foldersOf: (g, w) => this.goals.foldersOf(g, w),
        networkOf: (g) => this.networkOf(g),
        imageOnce: () => this.imageOnce(),
        handle: (g, c, session) => new DockerSandbox(g, c, this, session),
      },
      goalId,
      opts,
    );
    this.handles.set(goalId, handle);
    return handle;
  }

  async replaceContainer(goalId: string): Promise<Docker.Container> {
    const name = this.containerName(goalId);
    const old = await this.containers.inspect(name);
    if (old) {
      this.goals.expiries.adopt(goalId, old.Config.Labels);
      await this.containers.remove(old.Id);
    }
    const limits = this.goals.limitsOf.get(goalId) ?? defaultLimits(this.config);
    const network = await this.networkOf(goalId);
    const fresh = await this.goals.expiries.start(goalId, limits.ttlSeconds, (expiry) =>
      this.containers.createStarted(
        name,
        this.goals.folders(goalId),
        limits,
        { [LABEL.goal]: goalId, ...expiry },
        this.goals.skillsOf.get(goalId) ?? [],
        network,
      ),
    );
    // Frozen while it was being made (its node fenced): frozen too, as acquire's. Before, it ran
    // through the fence. One the engine would not freeze goes: the next call makes another.
    try {
      await this.frozen.freezeLate(goalId, name);
    } catch (e) {
      await this.containers.remove(fresh.id).catch(() => {});
      throw e;
    }
    return fresh;
  }

  async stop(goalId: string): Promise<void> {
    assertGoalId(goalId);
    this.dropHandle(goalId);
    await this.containers.stop(this.containerName(goalId), `the container of goal ${goalId}`);
  }

  async pause(goalId: string): Promise<"paused"> {
    assertGoalId(goalId);
    // Its MCP servers' containers too: one mid-way through a call went on acting (writing to
    // a remote system, say) while a survivor may already run the goal.
    await this.frozen.pause(goalId);
    return "paused";
  }

  /** Settles once the goal is not frozen (its unpause answered, or it was removed), or as `signal` aborts (false). */
  untilThawed(goalId: string, signal?: AbortSignal): Promise<boolean> {
    return this.frozen.untilThawed(goalId, signal);
  }

  freezes(goalId: string): number | null {
    return this.frozen.has(goalId) ? null : this.frozen.freezeCount(goalId);
  }

  async unpause(goalId: string, opts: { last?: boolean; answerMs?: number } = {}): Promise<void> {
    assertGoalId(goalId);
    await this.frozen.unpause(goalId, opts);
  }

  async remove(goalId: string, opts: { deleteFolders?: boolean } = {}): Promise<void> {
    assertGoalId(goalId);
    // A container being made for the goal right now is removed by acquire once it exists.
    this.goals.retire(goalId);
    // A frozen one goes as it is (a forced removal kills it); its waiting acquire is refused.
    this.frozen.drop(goalId);
    this.dropHandle(goalId);
    const { hadEgress, touched } = this.goals.forget(goalId);
    if (!touched) {
      if (opts.deleteFolders) removeTreeNoFollow(goalFolders(this.config.goalsDir, goalId).root);
      return;
    }
    await this.containers.remove(this.containerName(goalId));
    await this.mcpServers.removeOfGoal(goalId);
    // The relay and network go after the container (a network in use cannot be removed).
    if (hadEgress) await this.networks.remove(goalId);
    await this.networks.removeServers(goalId);
    if (opts.deleteFolders) removeTreeNoFollow(goalFolders(this.config.goalsDir, goalId).root);
  }

  async startMcpServer(spec: McpServerSpec, signal?: AbortSignal): Promise<McpServerContainer> {
    assertGoalId(spec.goalId);
    // Frozen (its node is fenced): no server is started for it until unpause, as acquire; nor
    // at all once the start is no longer wanted (`signal`: every call waiting for it cancelled).
    if (!(await this.frozen.untilThawed(spec.goalId, signal)))
      throw new AidoError(
        ErrorCode.cancelled,
        `the start of MCP server ${spec.server} for goal ${spec.goalId} was cancelled while the goal was frozen`,
        { goalId: spec.goalId, server: spec.server },
      );
    this.goals.refuseRetired(spec.goalId);
    this.goals.touch(spec.goalId);
    const server = await this.mcpServers.start(
      spec,
      () => (spec.image === undefined ? this.imageOnce() : Promise.resolve()),
      (goalId) => this.goals.refuseRetired(goalId),
    );
    // Frozen while it was being started: frozen too before it answers anything. One the engine
    // would not freeze is stopped: it ran on through the fence held by no client, and the goal
    // could not start it again (running already).
    try {
      await this.frozen.freezeLate(spec.goalId, server.containerId);
    } catch (e) {
      await server.stop().catch(() => {});
      throw e;
    }
    // Its calls wait for the goal's thaw, their timeouts not running while it is frozen.
    return { ...server, freezes: this.frozen.clock(spec.goalId) };
  }

  async reattach(): Promise<string[]> {
    const list = await this.containers.list(false);
    const goals: string[] = [];
    for (const c of list) {
      const goalId = this.containers.goalOfName(c.Names[0] ?? "");
      if (goalId) this.goals.touch(goalId);
      // A container on an egress network is not adopted: its relay's other end (the daemon's
      // listener, the callers' credentials) died with the process that made it. The sweep
      // removes it unless the goal is live; a live one gets a new container on next need.
      if (!goalId || c.State !== "running" || c.HostConfig.NetworkMode !== "none") continue;
      if (!this.handles.has(goalId)) {
        const limits = this.containers.limitsFromLabels(c.Labels);
        if (limits) this.goals.limitsOf.set(goalId, limits);
        this.goals.expiries.adopt(goalId, c.Labels);
        this.handles.set(goalId, new DockerSandbox(goalId, this.docker.getContainer(c.Id), this));
      }
      goals.push(goalId);
    }
    return goals.sort();
  }

  gc(opts: GcOptions): Promise<GcReport> {
    return sweepRuntime(
      {
        config: this.config,
        containers: this.containers,
        mcpServers: this.mcpServers,
        networks: this.networks,
        slots: this.slots,
        failedGoalFolders: this.failedGoalFolders,
        frozen: (g) => this.frozen.has(g),
        onEgressNetwork: (g) => this.goals.egressShareOf.has(g),
        hasHandle: (g) => this.handles.has(g),
        starting: (g, since) => this.goals.expiries.starting(g, since),
        expiresOf: (g) => this.goals.expiries.of(g),
        swept: (g, reason, labels) => {
          this.dropHandle(g);
          if (reason === "expired") this.goals.expiries.forget(g);
          else if (labels) this.goals.expiries.adopt(g, labels);
        },
        touch: (g) => this.goals.touch(g),
      },
      opts,
    );
  }

  /** Remove every container of this runtime (and idle pool slots): the test suites' cleanup. */
  async removeAll(): Promise<number> {
    await this.pool.close();
    for (const goalId of [...this.handles.keys()]) this.dropHandle(goalId);
    this.goals.egressShareOf.clear();
    const list = await this.containers.list(true);
    for (const c of list) await this.containers.remove(c.Id);
    await this.networks.removeAll();
    return list.length;
  }

  async close(): Promise<void> {
    await this.pool.close();
    for (const goalId of [...this.handles.keys()]) this.dropHandle(goalId);
    await this.mcpServers.closeAll();
  }

  // ------------------------------------------------------------------ internals

  private imageOnce(): Promise<unknown> {
    if (this.opts.ensureImage === false) return Promise.resolve();
    this.imageReady ??= ensureImage(this.config, {
      docker: this.docker,
      ...(this.opts.onProgress ? { onProgress: this.opts.onProgress } : {}),
    }).catch((e) => {
      this.imageReady = undefined;
      throw e;
    });
    return this.imageReady;
  }

  private dropHandle(goalId: string): void {
    this.handles.get(goalId)?.close();
    this.handles.delete(goalId);
  }
}
