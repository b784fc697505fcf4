// kernel/runtime.ts — the runtime, composed once. Runtime.open builds every part in
// dependency order over one SQLite connection (db, runtime key, tokens, audit, approvals,
// budget, policy, sandbox backend, snapshots, memory, skills, the tool registry, the
// inference scheduler, the gate, the event bus, the agent registry, spawning and the
// goal queue), recovers what a previous process left behind, and close() takes it down
// in reverse. The daemon and the tests use the same object; nothing else constructs
// these parts, so no path can end up with a gate that lacks a check or a tool registry
// that lacks the skills.

import { ContextArchive } from "../agent/context.js";
import { ConversationStore } from "../agent/conversations.js";
import type { AgentEnv } from "../agent/env.js";
import type { LoopResult } from "../agent/loop.js";
import { toolSpec } from "../agent/prompt.js";
import { principalOf } from "../agent/tool-calls.js";
import type { Config } from "../config.js";
import { type Db, openDatabase } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import { Gate } from "../gate/invoke.js";
import type { ToolDef, ToolResult } from "../gate/types.js";
import { LlmClients } from "../llm/clients.js";
import type { CreateClientOptions } from "../llm/providers.js";
import { InferenceScheduler } from "../llm/scheduler.js";
import type { LlmClient, ToolSpec } from "../llm/types.js";
import { parseManifestValue } from "../manifest/load.js";
import { loadRoles } from "../manifest/roles.js";
import type { Embedder } from "../memory/embedder.js";
import { createEmbedder } from "../memory/openai-embedder.js";
import { MemoryStore } from "../memory/store.js";
import { createMemoryTools } from "../memory/tools.js";
import type { SandboxBackend } from "../sandbox/backend.js";
import { DockerBackend } from "../sandbox/docker.js";
import { goalFolders } from "../sandbox/folders.js";
import { WorkspaceQuota } from "../sandbox/quota.js";
import { SnapshotStore } from "../sandbox/snapshots.js";
import { ApprovalQueue } from "../security/approvals.js";
import { AuditLog } from "../security/audit.js";
import { BudgetLedger } from "../security/budget.js";
import { RuntimeKey } from "../security/keys.js";
import { PolicyEngine } from "../security/policy.js";
import { tightenHome } from "../security/private-home.js";
import { TokenAuthority } from "../security/tokens.js";
import { SkillRegistry } from "../skills/registry.js";
import { createSkillTools } from "../skills/tools.js";
import { type BuiltinToolDeps, builtinTools } from "../tools/registry.js";
import { AgentRunner } from "./agents.js";
import { EventBus } from "./events.js";
import { GoalSandboxes } from "./goal-sandboxes.js";
import { GoalRunner } from "./goals.js";
import { type AgentRecord, AgentRegistry, type AgentSummary } from "./registry.js";
import { SandboxSweeper } from "./sandbox-sweeper.js";
import { newAgentId, Spawner } from "./spawn.js";
import { createSpawnTools } from "./spawn-tools.js";

export type { BuiltinToolDeps };

/** Pseudo-goals of standalone agents (agent.spawn) are named s_<…>; goals are g_<…>. */
const STANDALONE_PREFIX = "s_";
const isStandalone = (goalId: string) => goalId.startsWith(STANDALONE_PREFIX);

export interface RuntimeOptions {
  /** The sandbox backend; default a DockerBackend on the local engine. */
  backend?: SandboxBackend;
  /** Tools beyond the built-in ones (they pass the same gate). */
  tools?: ToolDef<unknown>[];
  /** The built-in tools (files, exec, web_fetch, snapshots, memory, skill_read); default tools/registry.ts. */
  builtinTools?: (deps: BuiltinToolDeps) => ToolDef<unknown>[];
  /** Client tuning (retry backoff), e.g. for tests. */
  llm?: CreateClientOptions;
  /** Memory embedder; default from config.memory. */
  embedder?: Embedder;
  /** Diagnostics the runtime cannot return to a caller (a sandbox sweep failed); default stderr. */
  log?: (message: string) => void;
}

/** What agent.run / agent.spawn_and_run return. */
export interface AgentRunResult {
  agent_id: string;
  stop_reason: LoopResult["stopReason"];
  text: string;
  usage: LoopResult["usage"];
  iterations: number;
  error?: LoopResult["error"];
}

export class Runtime {
  readonly tools: Map<string, ToolDef<unknown>>;
  /** Each goal's writes to the host, against sandbox.workspace_max_mb (every handle is held to it). */
  readonly quota: WorkspaceQuota;
  /** Each goal's sandbox handle, and the one path that ends it. */
  readonly sandboxes: GoalSandboxes;
  private readonly clients = new Map<string, LlmClient>();
  private closing: Promise<void> | undefined;
  private log: (message: string) => void = (m) => process.stderr.write(`aido: ${m}\n`);

  private constructor(
    readonly config: Config,
    readonly db: Db,
    readonly key: RuntimeKey,
    readonly tokens: TokenAuthority,
    readonly audit: AuditLog,
    readonly approvals: ApprovalQueue,
    readonly budget: BudgetLedger,
    readonly policy: PolicyEngine,
    readonly backend: SandboxBackend,
    readonly snapshots: SnapshotStore,
    readonly memory: MemoryStore,
    readonly skills: SkillRegistry,
    readonly events: EventBus,
    readonly scheduler: InferenceScheduler,
    readonly llm: LlmClients,
    tools: Map<string, ToolDef<unknown>>,
  ) {
    this.tools = tools;
    this.quota = new WorkspaceQuota({ goalsDir: config.goalsDir, maxMb: config.sandbox.workspaceMaxMb });
    this.sandboxes = new GoalSandboxes({
      config,
      backend,
      audit,
      quota: this.quota,
      acquireOptions: (goalId) => ({ skills: this.rootSkills(goalId) }),
      log: (m) => this.log(m),
    });
  }

  // Filled in by open(): they depend on the runtime itself (the tool registry, the gate's
  // sandbox cache, the scheduler's event sink).
  gate!: Gate;
  registry!: AgentRegistry;
  spawner!: Spawner;
  runner!: AgentRunner;
  goals!: GoalRunner;
  sweeper!: SandboxSweeper;
  env!: AgentEnv;
  conversations!: ConversationStore;
  archive!: ContextArchive;

  static async open(config: Config, opts: RuntimeOptions = {}): Promise<Runtime> {
    // Before anything is created in it: a home from an older Aido or a loose umask is
    // made private again (0700 folders, 0600 files).
    tightenHome(config);
    const db = openDatabase(config.dbPath);
    try {
      const key = RuntimeKey.load(config.keysDir);
      const audit = new AuditLog({ db, signer: key, headFile: config.auditHeadPath, writeHead: true });
      if (config.sandbox.landlock === "off") {
        audit.append({
          kind: "sandbox.landlock_off",
          payload: {
            reason:
              "sandbox.landlock is off in the operator's config: commands run without a Landlock domain, so file grants do not bind what an exec reads or writes",
          },
        });
      }
      const tokens = new TokenAuthority({ db, key });
      const approvals = new ApprovalQueue({
        db,
        audit,
        signer: key,
        timeoutMs: config.approvals.timeoutMs,
        allowAlwaysTtlSeconds: config.approvals.allowAlwaysTtlSeconds,
      });
      const budget = new BudgetLedger({ db, audit });
      const policy = new PolicyEngine(config);
      const backend = opts.backend ?? new DockerBackend(config);
      const snapshots = new SnapshotStore({
        goalsDir: config.goalsDir,
        maxMb: config.sandbox.snapshotsMaxMb,
        onPruned: (goalId, pruned, actor) =>
          audit.record("snapshot.pruned", { ...pruned }, { goalId, agentId: actor ?? null }),
      });
      const embedder = opts.embedder ?? (await createEmbedder(config));
      const memory = new MemoryStore(db, {
        embedder,
        maxRecords: config.memory.maxRecords,
        maxContentBytes: config.memory.maxContentBytes,
        persistent: config.persistentMemory,
      });
      const skills = SkillRegistry.fromConfig(config);
      const events = new EventBus();
      const tools = new Map<string, ToolDef<unknown>>();
      const llm = new LlmClients(config, opts.llm ?? {});
      let rt: Runtime | undefined;
      const scheduler = InferenceScheduler.fromConfig(config, (e) => {
        const { type, ...rest } = e;
        rt?.events.emit(type, rt.registry.get(e.agentId)?.goalId ?? null, rest as never);
      });
      rt = new Runtime(
        config,
        db,
        key,
        tokens,
        audit,
        approvals,
        budget,
        policy,
        backend,
        snapshots,
        memory,
        skills,
        events,
        scheduler,
        llm,
        tools,
      );
      rt.wire(opts);
      // After recovery has ended the goals a dead process left: their containers go now.
      await rt.sweeper.start();
      return rt;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  private wire(opts: RuntimeOptions): void {
    if (opts.log) this.log = opts.log;
    const { config, db, events, approvals, budget } = this;
    const builtins = (opts.builtinTools ?? builtinTools)({
      config,
      snapshots: this.snapshots,
      quota: this.quota,
    });
    for (const t of [...builtins, ...(opts.tools ?? [])]) {
      this.addTool(t);
    }
    // memory_* and skill_read are always there, whether or not the builtin list carried them.
    for (const t of [...createMemoryTools(), ...createSkillTools()]) {
      if (!this.tools.has(t.name)) this.addTool(t);
    }
    this.gate = new Gate({
      tools: this.tools,
      tokens: this.tokens,
      policy: this.policy,
      audit: this.audit,
      approvals,
      budget: { remaining: (account) => budget.available(account) },
      sandbox: (goalId) => this.sandboxes.handle(goalId),
      snapshots: {
        beforeMutation: async (p, keep) => {
          const label = p.turn === undefined ? "before a mutating call" : `before turn ${p.turn}`;
          const s = await this.snapshots.create(p.goalId, goalFolders(config.goalsDir, p.goalId), label, {
            actor: p.agentId,
            keep,
          });
          this.audit.record(
            "snapshot.created",
            { snapshot_id: s.id, label, files: s.files },
            { goalId: p.goalId, agentId: p.agentId },
          );
        },
      },
      snapshotBeforeMutation: config.policy.snapshotBeforeMutation,
      outputMaxBytes: config.limits.toolOutputMaxBytes,
      approvalTimeoutMs: config.approvals.timeoutMs,
    });
    approvals.on("requested", (r) =>
      events.emit("approval.requested", r.goal_id, {
        approvalId: r.id,
        agentId: r.agent_id,
        tool: r.tool,
        summary: r.summary,
        target: r.target,
        covers: r.covers,
      }),
    );
    approvals.on("decided", (r) =>
      events.emit("approval.decided", r.goal_id, {
        approvalId: r.id,
        agentId: r.agent_id,
        tool: r.tool,
        decision: r.decision ?? r.status,
        ...(r.close_reason !== null ? { reason: r.close_reason } : {}),
      }),
    );
    this.registry = new AgentRegistry({
      db,
      config,
      tokens: this.tokens,
      approvals,
      gate: this.gate,
      budget,
      audit: this.audit,
      events,
    });
    this.spawner = new Spawner({
      config,
      db,
      registry: this.registry,
      tokens: this.tokens,
      budget,
      audit: this.audit,
      events,
      skills: this.skills,
      makeClient: (agentId, name, model) => this.clientFor(agentId, name, model),
    });
    this.archive = new ContextArchive(db);
    this.conversations = new ConversationStore(db);
    this.env = {
      config,
      gate: this.gate,
      tokens: this.tokens,
      scheduler: this.scheduler,
      budget,
      events,
      skills: this.skills,
      roles: loadRoles(config.daemon.manifestDirs),
      memory: this.memory,
      archive: this.archive,
      client: (a) => this.clientFor(a.id, a.manifest.name, a.model),
      onUsage: (a, u) => this.goals.addUsage(a.goalId, u),
      onBudgetExceeded: (a, e) =>
        this.goals.budgetRefused(a.goalId, e.details.account as string | undefined, e.message),
      onBudgetOverspent: (a, e) => this.goals.budgetOverspent(a.goalId, e.message),
    };
    this.runner = new AgentRunner({
      env: this.env,
      registry: this.registry,
      spawner: this.spawner,
      conversations: this.conversations,
      childRetries: config.limits.childRetries,
    });
    for (const t of createSpawnTools({
      registry: this.registry,
      runner: this.runner,
      budget,
      batchCap: config.limits.spawnBatchCap,
    })) {
      this.addTool(t);
    }
    this.goals = new GoalRunner({
      db,
      config,
      registry: this.registry,
      spawner: this.spawner,
      runner: this.runner,
      budget,
      audit: this.audit,
      events,
      memory: this.memory,
      retireSandbox: (goalId) => this.sandboxes.retire(goalId),
    });
    this.sweeper = new SandboxSweeper({
      config,
      backend: this.backend,
      audit: this.audit,
      isLive: (goalId) =>
        isStandalone(goalId) ? this.registry.list({ goalId }).length > 0 : this.goals.isLive(goalId),
      expired: (goalId, reason) => {
        if (!isStandalone(goalId)) this.goals.fail(goalId, reason);
      },
      released: (goalId) => this.sandboxes.released(goalId),
      log: this.log,
    });
    // What a previous process left: agents first (their goals are about to be failed),
    // then the goals themselves; queued goals start here. Their containers: sweeper.start().
    this.registry.recover("daemon restarted while the agent was running");
    // Whatever still waits for a human belonged to a call of the previous process.
    approvals.closeOrphans("the daemon restarted; the call that waited for this approval ended with it");
    this.goals.recover();
  }

  private addTool(t: ToolDef<unknown>): void {
    if (this.tools.has(t.name)) {
      throw new AidoError(ErrorCode.configInvalid, `two tools are named "${t.name}"`, { tool: t.name });
    }
    this.tools.set(t.name, t);
  }

  /**
   * The skills a goal's container mounts: its root agent's list, which every agent of the
   * goal narrows (a root without a list was given every discovered skill at spawn). None
   * when the goal has no root agent.
   */
  private rootSkills(goalId: string): string[] {
    const root = this.registry.list({ goalId, includeStopped: true }).find((a) => a.parentId === null);
    return [...(root?.manifest.skills ?? [])];
  }

  /**
   * One client per (manifest name, model): agents of the same kind share the SDK instance
   * and its keep-alive connections (a new client per child costs a TLS/TCP setup and ~10x
   * the CPU per turn in the fan-out bench). Record/replay keys on the manifest name too.
   */
  private clientFor(_agentId: string, manifestName: string, model: string): LlmClient {
    const key = `${manifestName}\u0000${model}`;
    let c = this.clients.get(key);
    if (!c) {
      c = this.llm.forAgent(manifestName, model);
      this.clients.set(key, c);
    }
    return c;
  }

  // --- agents (agent.* on the socket) ----------------------------------------------------

  /**
   * Start a standalone agent (agent.spawn): a root agent with its own pseudo-goal
   * ("s_<agent>": its own sandbox folder and budget, the manifest's budget.max_tokens or
   * limits.goal_max_tokens). Its grants must fit the operator's ceilings.
   */
  spawnAgent(manifestValue: unknown, source = "agent.spawn manifest"): AgentSummary {
    const manifest = parseManifestValue(manifestValue, source);
    const goalId = `${STANDALONE_PREFIX}${newAgentId().slice(2)}`;
    const rec = this.spawner.spawn({ goalId, manifest, parent: null });
    this.registry.setState(rec.id, "paused");
    return this.registry.summary(rec);
  }

  /** Deliver a message to an agent and wait for its answer (agent.run). */
  async runAgent(agentId: string, message: string): Promise<AgentRunResult> {
    if (typeof message !== "string" || message.trim() === "") {
      throw new AidoError(ErrorCode.invalidInput, "message: must be a non-empty string", {
        field: "message",
      });
    }
    const agent = this.registry.require(agentId);
    const r = await this.runner.run(agent, message);
    const out: AgentRunResult = {
      agent_id: agentId,
      stop_reason: r.stopReason,
      text: r.text,
      usage: r.usage,
      iterations: r.iterations,
    };
    if (r.error) out.error = r.error;
    return out;
  }

  /** agent.spawn_and_run: spawn, run once; an on-demand agent is stopped after. */
  async spawnAndRun(manifestValue: unknown, message: string): Promise<AgentRunResult> {
    const s = this.spawnAgent(manifestValue, "agent.spawn_and_run manifest");
    try {
      return await this.runAgent(s.agent_id, message);
    } finally {
      const agent = this.registry.require(s.agent_id);
      if (agent.manifest.lifecycle !== "persistent" && agent.state !== "stopped") {
        this.stopAgent(s.agent_id, "spawn_and_run finished");
      }
    }
  }

  stopAgent(agentId: string, reason = "stopped by request"): AgentSummary {
    const agent = this.registry.require(agentId);
    this.registry.stopAgent(agentId, reason);
    void this.releaseStandalone(agent);
    return this.registry.summary(agent);
  }

  /**
   * A standalone agent's pseudo-goal container ends with the agent (its folders stay, like a
   * goal's). Without this every stopped agent.spawn agent left a running container behind.
   */
  private releaseStandalone(agent: AgentRecord): Promise<void> {
    if (agent.parentId !== null || !isStandalone(agent.goalId)) return Promise.resolve();
    return this.sandboxes.retire(agent.goalId);
  }

  agentStatus(agentId: string): AgentSummary {
    return this.registry.summary(this.registry.require(agentId));
  }

  listAgents(filter: { goalId?: string; includeStopped?: boolean } = {}): AgentSummary[] {
    return this.registry.list(filter).map((a) => this.registry.summary(a));
  }

  // --- tools (tool.* on the socket) -----------------------------------------------------

  listTools(): ToolSpec[] {
    return [...this.tools.values()].map(toolSpec).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * tool.invoke: a call on behalf of an agent, through the same gate (approvals included).
   * It ends (an approval it waits for expires) when the agent stops or `signal` aborts
   * (the socket client that made it left).
   */
  invokeTool(agentId: string, tool: string, input: unknown, signal?: AbortSignal): Promise<ToolResult> {
    const agent: AgentRecord = this.registry.require(agentId);
    if (agent.state === "stopped") {
      throw new AidoError(ErrorCode.notFound, `agent ${agentId} is stopped`, { agent_id: agentId });
    }
    const ends = signal ? AbortSignal.any([agent.abort.signal, signal]) : agent.abort.signal;
    return this.gate.invoke(principalOf(this.env, agent), { name: tool, input, signal: ends });
  }

  /** Stop the goals, release containers and timers, close the database. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.sweeper.stop();
      await this.goals.close();
      const released: Promise<void>[] = [];
      for (const a of this.registry.list()) {
        // Persistent agents stay (paused, container kept) for the next open; others end here.
        if (a.manifest.lifecycle !== "persistent") {
          this.registry.stopAgent(a.id, "runtime closing");
          released.push(this.releaseStandalone(a));
        } else a.abort.abort(new AidoError(ErrorCode.cancelled, "runtime closing", {}));
      }
      await Promise.all(released);
      try {
        await this.backend.close();
      } finally {
        this.approvals.close();
        this.audit.close();
        this.db.close();
      }
    })();
    return this.closing;
  }
}
