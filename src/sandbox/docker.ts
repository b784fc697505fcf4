// sandbox/docker.ts — DockerBackend: one container per goal on a local Docker engine.
// Which container a goal has: made on first acquire (or taken from the warm pool, or
// re-attached after a restart), replaced when it died, removed for good when the goal is
// retired, and swept by gc() when it is an orphan, expired (stopped or not: its goal ends) or
// stopped. Containers (names, labels, engine calls) are docker-containers.ts's. A goal's external
// MCP servers (mcp-container.ts) are started here too, so that they go with the goal and
// gc() can tell the ones this process speaks to from leftovers nobody can reach.

import { existsSync, renameSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { parseMcpEgressId } from "../egress/mcp-callers.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { ensurePrivateDir } from "../security/private-home.js";
import { type SkillMount, skillMounts } from "../skills/registry.js";
import type { AcquireOptions, GcOptions, GcReport, SandboxBackend } from "./backend.js";
import { defaultLimits, type SandboxLimits, sameLimits, tightenLimits } from "./container-spec.js";
import { containerName, LABEL, RuntimeContainers } from "./docker-containers.js";
import { DockerSandbox, type SandboxOwner } from "./docker-sandbox.js";
import { type EgressEndpoint, EgressNetworks } from "./egress-network.js";
import { connectDocker } from "./engine.js";
import { ExecutorSession } from "./executor-session.js";
import {
  assertGoalId,
  foldersUnder,
  type GoalFolders,
  goalFolders,
  parseUser,
  removeTreeNoFollow,
} from "./folders.js";
import { FrozenGoals } from "./frozen-goals.js";
import { sweepGoalFolders, sweepPoolFolders } from "./gc-folders.js";
import { GoalExpiries } from "./goal-expiry.js";
import { ensureImage } from "./image.js";
import { checkInputs, copyInputs, inputRules } from "./inputs.js";
import type { McpServerContainer, McpServerSpec } from "./mcp-container.js";
import { LiveMcpServers } from "./mcp-servers.js";
import { type PoolSlot, WarmPool } from "./pool.js";

export interface DockerBackendOptions {
  docker?: Docker;
  /** uid:gid inside the container. Default 1000:1000 when the daemon is root, else its own ids. */
  user?: string;
  /** Extra labels on every container made (tests mark theirs so leftovers can be found). */
  labels?: Record<string, string>;
  /**
   * Extra security options on every container made, after Aido's own (which they cannot
   * remove): e.g. `seccomp=<profile JSON>` for a stricter profile, or one that hides
   * Landlock to see exec refused as on a kernel without it.
   */
  securityOpt?: string[];
  /** Build the image on first need (default true); progress goes to onProgress. */
  ensureImage?: boolean;
  onProgress?: (message: string) => void;
  /**
   * A goal's host folders as the kernel sees them (a session's bound workspace included,
   * kernel/assemble.ts); what an MCP server's /workspace mount is made from. Default: the
   * goal's own folders, or the workspace its acquire bound.
   */
  folders?: (goalId: string) => GoalFolders;
  /** What the operator should know (said once): a kernel that skips a rule. */
  log?: (message: string) => void;
}

function defaultUser(): string {
  const uid = process.getuid?.() ?? 1000;
  return uid === 0 ? "1000:1000" : `${uid}:${process.getgid?.() ?? uid}`;
}

/** The skill a /skills/<name> mount carries. */
function nameOfMount(m: SkillMount): string {
  return m.containerPath.slice(m.containerPath.lastIndexOf("/") + 1);
}

export class DockerBackend implements SandboxBackend, SandboxOwner {
  readonly runtimeId: string;
  readonly docker: Docker;
  readonly execTimeoutMs: number;
  readonly maxOutputBytes: number;
  readonly landlock: "on" | "off";
  private readonly containers: RuntimeContainers;
  private readonly handles = new Map<string, DockerSandbox>();
  private readonly acquiring = new Map<string, Promise<DockerSandbox>>();
  private readonly limitsOf = new Map<string, SandboxLimits>();
  private readonly skillsOf = new Map<string, SkillMount[]>();
  /** When each goal's sandbox expires: its first container's label, kept by the next ones. */
  private readonly expiries = new GoalExpiries();
  /** Goals whose /workspace is a bound host folder (AcquireOptions.workspace). */
  private readonly workspaceOf = new Map<string, string>();
  /** Goals on an egress network: the folder shared with their relay (AcquireOptions.egressShare). */
  private readonly egressShareOf = new Map<string, string>();
  private readonly networks: EgressNetworks;
  /** Goals whose sandbox was removed for good (remove()): a later acquire is refused. */
  private readonly retired = new Set<string>();
  /** Goals whose containers are frozen (pause), their engine calls, and what waits for them to thaw. */
  private readonly frozen: FrozenGoals;
  /**
   * Goals this process made (or tried to make) a container, network or MCP server for, or
   * found a running container of at start-up, or whose network a sweep kept (a live goal's,
   * made by a process that died): remove() asks the engine only about these. Any other
   * goal has nothing in the engine — the start-up sweep removed what dead processes left
   * for goals that are not live — so its end costs no Docker call.
   */
  private readonly touched = new Set<string>();
  /**
   * Pool slots this process owns from their creation until they are a goal's (created,
   * warming up, ready, being handed over): GC removes only slot containers not in here.
   */
  private readonly ownSlots = new Set<string>();
  /** Goal folders a sweep found expired but could not remove: the next sweep tries them again. */
  private readonly failedGoalFolders = new Set<string>();
  /** The MCP server containers this process started and still speaks to. */
  private readonly mcpServers: LiveMcpServers;
  private readonly pool: WarmPool;
  private readonly poolDir: string;
  private imageReady: Promise<unknown> | undefined;
  private saidNoTcpRule = false;

  constructor(
    private readonly config: Config,
    private readonly opts: DockerBackendOptions = {},
  ) {
    this.docker = opts.docker ?? connectDocker();
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
      folders: (goalId) => opts.folders?.(goalId) ?? this.foldersOf(goalId, this.workspaceOf.get(goalId)),
    });
    this.frozen = new FrozenGoals(
      this.containers,
      (goalId) => [this.containerName(goalId), ...this.mcpServers.ofGoal(goalId)],
      (goalId) => this.retired.has(goalId),
    );
    const daemonUser = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    this.networks = new EgressNetworks(this.docker, config, this.containers, daemonUser, opts.labels);
    this.execTimeoutMs = config.sandbox.execTimeoutMs;
    this.maxOutputBytes = config.limits.toolOutputMaxBytes;
    this.landlock = config.sandbox.landlock;
    this.poolDir = join(config.home, "sandbox-pool");
    this.pool = new WarmPool(
      config.sandbox.warmPool,
      () => this.makeSlot(),
      (s) => this.destroySlot(s),
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
    // Frozen (its node is fenced): no container is made for it, nor handed out, until unpause.
    await this.frozen.thawed(goalId);
    this.refuseRetired(goalId);
    this.touched.add(goalId);
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
    if (this.retired.has(goalId)) {
      // The goal ended while its container was being made: it goes at once.
      this.dropHandle(goalId);
      await this.containers.remove(this.containerName(goalId));
      this.refuseRetired(goalId);
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
    return this.egressShareOf.has(goalId);
  }

  async egress(goalId: string, share: string): Promise<EgressEndpoint> {
    assertGoalId(goalId);
    this.refuseRetired(goalId);
    // An MCP server's network (egress/mcp-callers.ts) is made only while its goal is not retired.
    const server = parseMcpEgressId(goalId);
    if (server) this.refuseRetired(server.goalId);
    this.touched.add(server?.goalId ?? goalId);
    await this.imageOnce();
    return this.networks.ensure(goalId, share);
  }

  /** The goal's egress network, made (with its relay) if the goal has one. */
  private async networkOf(goalId: string): Promise<string | undefined> {
    const share = this.egressShareOf.get(goalId);
    return share === undefined ? undefined : (await this.egress(goalId, share)).network;
  }

  private async open(goalId: string, opts: AcquireOptions): Promise<DockerSandbox> {
    const defaults = defaultLimits(this.config);
    const limits = tightenLimits(defaults, opts.limits);
    const folders = this.foldersOf(goalId, opts.workspace);
    const everySkill = skillMounts(this.config);
    const skills = opts.skills ? everySkill.filter((m) => opts.skills?.includes(nameOfMount(m))) : everySkill;
    const name = this.containerName(goalId);
    const existing = await this.containers.inspect(name);
    let handle: DockerSandbox | undefined;
    if (opts.workspace !== undefined) this.workspaceOf.set(goalId, opts.workspace);
    if (opts.egressShare !== undefined) this.egressShareOf.set(goalId, opts.egressShare);
    const network = await this.networkOf(goalId);
    // A running container on the wrong network (none, where the goal now has one) is replaced.
    const onNetwork = (c: Docker.ContainerInspectInfo) =>
      network === undefined ? c.HostConfig.NetworkMode === "none" : c.HostConfig.NetworkMode === network;
    if (existing?.State.Running && onNetwork(existing)) {
      this.limitsOf.set(goalId, this.containers.limitsFromLabels(existing.Config.Labels) ?? limits);
      this.expiries.adopt(goalId, existing.Config.Labels);
      this.skillsOf.set(goalId, skills);
      handle = new DockerSandbox(goalId, this.docker.getContainer(existing.Id), this);
    } else {
      if (existing) {
        this.expiries.adopt(goalId, existing.Config.Labels); // a stopped one's expiry goes on
        await this.containers.remove(existing.Id);
      }
      this.limitsOf.set(goalId, limits);
      this.skillsOf.set(goalId, skills);
      // Pool slots mount every skill and their own workspace; a goal allowed fewer skills,
      // or working in a bound host folder, gets a container of its own.
      const poolFits =
        !this.expiries.has(goalId) &&
        sameLimits(limits, defaults) &&
        skills.length === everySkill.length &&
        opts.workspace === undefined &&
        network === undefined;
      // A slot's TTL counts from when it started: one that waited more than a tenth of it
      // (a daemon left idle) is replaced, or its goal would be ended as expired early, or
      // at the first sweep when it waited past its TTL.
      const fresh = (s: PoolSlot) => s.expires - Date.now() / 1000 >= 0.9 * defaults.ttlSeconds;
      const slot = !existsSync(folders.root) && poolFits ? this.pool.take(fresh) : undefined;
      if (slot) {
        ensurePrivateDir(this.config.goalsDir);
        renameSync(slot.folders.root, folders.root);
        await slot.container.rename({ name });
        this.ownSlots.delete(slot.id);
        this.expiries.adopt(goalId, { [LABEL.expires]: String(slot.expires) });
        handle = new DockerSandbox(goalId, slot.container, this, slot.session);
      } else {
        await this.imageOnce();
        const container = await this.containers.createStarted(
          name,
          folders,
          limits,
          { [LABEL.goal]: goalId, ...this.expiries.label(goalId, limits.ttlSeconds) },
          skills,
          network,
        );
        handle = new DockerSandbox(goalId, container, this);
      }
      void this.pool.refill();
    }
    this.handles.set(goalId, handle);
    return handle;
  }

  async replaceContainer(goalId: string): Promise<Docker.Container> {
    const name = this.containerName(goalId);
    const old = await this.containers.inspect(name);
    if (old) {
      this.expiries.adopt(goalId, old.Config.Labels);
      await this.containers.remove(old.Id);
    }
    const limits = this.limitsOf.get(goalId) ?? defaultLimits(this.config);
    const fresh = await this.containers.createStarted(
      name,
      this.foldersOf(goalId, this.workspaceOf.get(goalId)),
      limits,
      { [LABEL.goal]: goalId, ...this.expiries.label(goalId, limits.ttlSeconds) },
      this.skillsOf.get(goalId) ?? [],
      await this.networkOf(goalId),
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

  async unpause(goalId: string, opts: { last?: boolean } = {}): Promise<void> {
    assertGoalId(goalId);
    const freezes = this.frozen.freezeCount(goalId);
    try {
      await this.frozen.unpause(goalId);
    } catch (e) {
      // Frozen again since it began (a new fence, whose lift may have begun its own unpause
      // since): that fence's lift unfreezes it. Before, a new lift's unpause hid the new freeze,
      // and a last try held past both gave up a goal the new fence had tried once.
      if (!opts.last || this.frozen.frozenSince(goalId, freezes)) throw e;
      // Given up: its containers go (a forced removal kills a paused one), its servers'
      // connections end (the next call starts them again), and what waits goes on, in a fresh
      // container over the same workspace: unless a new fence froze the goal again meanwhile
      // (release keeps it frozen for that fence's lift).
      await this.containers.remove(this.containerName(goalId)).catch(() => {});
      this.handles.get(goalId)?.containerGone();
      await this.mcpServers.removeOfGoal(goalId).catch(() => {});
      this.frozen.release(goalId);
      throw e;
    }
  }

  async remove(goalId: string, opts: { deleteFolders?: boolean } = {}): Promise<void> {
    assertGoalId(goalId);
    // A container being made for the goal right now is removed by acquire once it exists.
    this.retired.add(goalId);
    // A frozen one goes as it is (a forced removal kills it); its waiting acquire is refused.
    this.frozen.drop(goalId);
    this.dropHandle(goalId);
    this.limitsOf.delete(goalId);
    this.skillsOf.delete(goalId);
    this.expiries.forget(goalId);
    this.workspaceOf.delete(goalId);
    const hadEgress = this.egressShareOf.delete(goalId);
    if (!this.touched.delete(goalId)) {
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
    this.refuseRetired(spec.goalId);
    this.touched.add(spec.goalId);
    const server = await this.mcpServers.start(
      spec,
      () => (spec.image === undefined ? this.imageOnce() : Promise.resolve()),
      (goalId) => this.refuseRetired(goalId),
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
      if (goalId) this.touched.add(goalId);
      // A container on an egress network is not adopted: its relay's other end (the daemon's
      // listener, the callers' credentials) died with the process that made it. The sweep
      // removes it unless the goal is live; a live one gets a new container on next need.
      if (!goalId || c.State !== "running" || c.HostConfig.NetworkMode !== "none") continue;
      if (!this.handles.has(goalId)) {
        const limits = this.containers.limitsFromLabels(c.Labels);
        if (limits) this.limitsOf.set(goalId, limits);
        this.expiries.adopt(goalId, c.Labels);
        this.handles.set(goalId, new DockerSandbox(goalId, this.docker.getContainer(c.Id), this));
      }
      goals.push(goalId);
    }
    return goals.sort();
  }

  async gc(opts: GcOptions): Promise<GcReport> {
    const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
    const report: GcReport = {
      removedContainers: [],
      removedFolders: [],
      failedFolders: [],
      failedContainers: [],
    };
    const liveContainers = new Set<string>();
    for (const c of await this.containers.list(true)) {
      if (c.Labels[LABEL.relay]) continue; // the egress sweep's, below
      const name = containerName(c);
      const mcpServer = c.Labels[LABEL.mcpServer];
      if (mcpServer !== undefined) {
        const frozen = (g: string) => this.frozen.has(g);
        const removed = await this.mcpServers.sweep(
          c,
          mcpServer,
          now,
          { ...opts, frozen },
          report.failedContainers,
        );
        if (removed) report.removedContainers.push(removed);
        else if (c.Labels[LABEL.goal]) liveContainers.add(c.Labels[LABEL.goal] as string);
        continue;
      }
      const goalId = this.containers.goalOfName(name);
      const slot = c.Labels[LABEL.pool];
      let reason: GcReport["removedContainers"][number]["reason"] | undefined;
      const expires = Number(c.Labels[LABEL.expires] ?? "0");
      if (!goalId) reason = slot && this.ownSlots.has(slot) ? undefined : "stale-pool";
      else if (expires > 0 && expires <= now) reason = "expired";
      // A container this process froze (its node is fenced: pause) runs, held: the engine
      // lists it as "paused", and sweeping it as stopped removed a live goal's container under
      // its fence. One paused that nothing here holds frozen (an earlier process's fence, an
      // unpause given up whose removal failed too) would stay so for good: it goes as a stopped one does.
      else if (c.State !== "running" && !(c.State === "paused" && goalId && this.frozen.has(goalId)))
        reason = "stopped";
      else if (!(await opts.isGoalLive(goalId))) reason = "orphan";
      // On an egress network this process did not set up (one being made now is in there).
      else if (c.HostConfig.NetworkMode !== "none" && !this.egressShareOf.has(goalId)) reason = "orphan";
      if (!reason) {
        if (goalId) liveContainers.add(goalId);
        continue;
      }
      if (goalId) this.dropHandle(goalId);
      if (goalId && reason === "expired") this.expiries.forget(goalId);
      const swept = { name, reason, containerId: c.Id, ...(goalId ? { goalId } : {}) };
      // One container the engine will not remove (a 500 for it) does not stop the sweep.
      const error = await this.containers.remove(c.Id).then(
        () => undefined,
        (e: unknown) => errorMessage(e),
      );
      if (error !== undefined) {
        report.failedContainers.push({ ...swept, error });
        continue;
      }
      report.removedContainers.push(swept);
    }
    // Relays and networks of goals that ended (a live goal's stay: its next container joins them).
    report.removedEgress = await this.networks.sweep(report.failedContainers, async (g) => {
      // An MCP server's network lives as long as its goal; one kept is the goal's to remove.
      const goalId = parseMcpEgressId(g)?.goalId ?? g;
      const kept = this.egressShareOf.has(g) || (await opts.isGoalLive(goalId));
      if (kept) this.touched.add(goalId);
      return kept;
    });
    if (opts.removeExpiredFolders) {
      const keep = async (goalId: string) =>
        liveContainers.has(goalId) || this.handles.has(goalId) || (await opts.isGoalLive(goalId));
      const ttl = this.config.sandbox.ttlSeconds;
      await sweepGoalFolders(this.config.goalsDir, ttl, now, keep, report, this.failedGoalFolders);
    }
    // Stale slots' folders too (their containers removed above): once a sweep, so one that
    // will not go is tried, and reported, once.
    sweepPoolFolders(this.poolDir, this.ownSlots, report);
    return report;
  }

  /** Remove every container of this runtime (and idle pool slots): the test suites' cleanup. */
  async removeAll(): Promise<number> {
    await this.pool.close();
    for (const goalId of [...this.handles.keys()]) this.dropHandle(goalId);
    this.egressShareOf.clear();
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

  private foldersOf(goalId: string, workspace: string | undefined) {
    const f = goalFolders(this.config.goalsDir, goalId);
    return workspace === undefined ? f : { ...f, workspace, hostWorkspace: true };
  }

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

  private async makeSlot(): Promise<PoolSlot> {
    await this.imageOnce();
    const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const folders = foldersUnder(join(this.poolDir, id));
    this.ownSlots.add(id);
    let container: Docker.Container | undefined;
    const limits = defaultLimits(this.config);
    const expires = Math.floor(Date.now() / 1000) + limits.ttlSeconds;
    try {
      container = await this.containers.createStarted(
        this.containers.poolName(id),
        folders,
        limits,
        { [LABEL.pool]: id, [LABEL.expires]: String(expires) },
        skillMounts(this.config),
      );
      const session = await ExecutorSession.start(container);
      return { id, folders, container, session, expires };
    } catch (e) {
      this.ownSlots.delete(id);
      if (container) await this.containers.remove(container.id);
      removeTreeNoFollow(folders.root);
      throw e;
    }
  }

  private async destroySlot(slot: PoolSlot): Promise<void> {
    this.ownSlots.delete(slot.id);
    slot.session.close();
    await this.containers.remove(slot.container.id);
    removeTreeNoFollow(slot.folders.root);
  }

  private refuseRetired(goalId: string): void {
    if (!this.retired.has(goalId)) return;
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `the sandbox of goal ${goalId} was removed when the goal ended; no new container is started for it`,
      { goalId },
    );
  }

  private dropHandle(goalId: string): void {
    this.handles.get(goalId)?.close();
    this.handles.delete(goalId);
  }
}
