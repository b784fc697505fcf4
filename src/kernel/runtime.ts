// kernel/runtime.ts — the runtime: what the daemon and the tests hold. Runtime.open makes
// the home private, opens the database, builds every part in dependency order
// (assemble.ts), recovers what a previous process left behind (its agents, its pending
// approvals, its goals, then its containers), and close() takes it down in reverse. The
// methods here are the agent.* and tool.* operations of the socket; goals are `goals`.

import type { AgentEnv } from "../agent/env.js";
import type { LoopResult } from "../agent/loop.js";
import { toolSpec } from "../agent/prompt.js";
import { principalOf } from "../agent/tool-calls.js";
import type { Config } from "../config.js";
import { type Db, openDatabase } from "../db/database.js";
import type { EgressGate } from "../egress/gate-policy.js";
import type { EgressPlumbing } from "../egress/plumbing.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { Gate, ToolCall } from "../gate/invoke.js";
import type { ToolDef, ToolResult } from "../gate/types.js";
import type { Intents } from "../intent/intents.js";
import type { ToolSpec } from "../llm/types.js";
import { parseManifestValue } from "../manifest/load.js";
import type { MemoryStore } from "../memory/store.js";
import type { SandboxBackend } from "../sandbox/backend.js";
import type { WorkspaceQuota } from "../sandbox/quota.js";
import type { ApprovalQueue } from "../security/approvals.js";
import type { AuditLog } from "../security/audit.js";
import type { BudgetLedger } from "../security/budget.js";
import { tightenHome } from "../security/private-home.js";
import type { SkillRegistry } from "../skills/registry.js";
import type { Tracer } from "../telemetry/tracer.js";
import type { McpServers } from "../tools/mcp/servers.js";
import type { BuiltinToolDeps } from "../tools/registry.js";
import type { AgentRunner } from "./agents.js";
import { assembleRuntime, isStandalone, STANDALONE_PREFIX } from "./assemble.js";
import type { EventBus } from "./events.js";
import type { GoalSandboxes } from "./goal-sandboxes.js";
import type { GoalSnapshots } from "./goal-snapshots.js";
import type { GoalRunner } from "./goals.js";
import type { Plans } from "./plans.js";
import type { AgentRecord, AgentRegistry, AgentSummary } from "./registry.js";
import type { RuntimeOptions, RuntimeParts } from "./runtime-parts.js";
import type { SandboxSweeper } from "./sandbox-sweeper.js";
import type { Sessions } from "./sessions.js";
import { newAgentId, type Spawner } from "./spawn.js";
import type { Worlds } from "./worlds.js";

export type { BuiltinToolDeps, RuntimeOptions };

/** How long close() waits for buffered spans to reach the collector. */
export const TRACE_FLUSH_WAIT_MS = 5_000;

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
  readonly config: Config;
  readonly db: Db;
  readonly audit: AuditLog;
  readonly approvals: ApprovalQueue;
  readonly budget: BudgetLedger;
  readonly backend: SandboxBackend;
  readonly memory: MemoryStore;
  readonly skills: SkillRegistry;
  readonly events: EventBus;
  /** Persistent intents (intent.* on the socket; goals carry them). */
  readonly intents: Intents;
  readonly tools: ReadonlyMap<string, ToolDef<unknown>>;
  /** External MCP servers (mcp.list / mcp.approve on the socket; their tools pass the gate). */
  readonly mcp: McpServers;
  /** Each goal's writes to the host, against sandbox.workspace_max_mb (every handle is held to it). */
  readonly quota: WorkspaceQuota;
  readonly gate: Gate;
  readonly registry: AgentRegistry;
  readonly spawner: Spawner;
  readonly env: AgentEnv;
  readonly goals: GoalRunner;
  /** A goal's snapshots for its operator (snapshot.list / snapshot.restore on the socket). */
  readonly snapshots: GoalSnapshots;
  /** Plans: propose -> simulate -> execute (plan.* on the socket). */
  readonly plans: Plans;
  /** MCP sessions (session.open / session.close). */
  readonly sessions: Sessions;
  /** Parallel worlds (spawn_worlds, adopt_world). */
  readonly worlds: Worlds;
  /** The egress proxy's decisions and records; `egress.proxy(authenticate)` builds the proxy. */
  /** Goals' relays, listeners and callers in front of the proxy (egress/plumbing.ts). */
  private readonly egressPlumbing: EgressPlumbing;
  readonly egress: EgressGate;
  /** Each goal's sandbox handle, and the one path that ends it. */
  private readonly sandboxes: GoalSandboxes;
  private readonly runner: AgentRunner;
  private readonly sweeper: SandboxSweeper;
  private readonly tracer: Tracer | undefined;
  private closing: Promise<void> | undefined;

  private constructor(parts: RuntimeParts) {
    this.config = parts.config;
    this.db = parts.db;
    this.audit = parts.audit;
    this.approvals = parts.approvals;
    this.budget = parts.budget;
    this.backend = parts.backend;
    this.memory = parts.memory;
    this.skills = parts.skills;
    this.events = parts.events;
    this.intents = parts.intents;
    this.tools = parts.tools;
    this.mcp = parts.mcp;
    this.quota = parts.quota;
    this.gate = parts.gate;
    this.registry = parts.registry;
    this.spawner = parts.spawner;
    this.env = parts.env;
    this.goals = parts.goals;
    this.snapshots = parts.goalSnapshots;
    this.plans = parts.plans;
    this.sessions = parts.sessions;
    this.worlds = parts.worlds;
    this.egress = parts.egress;
    this.egressPlumbing = parts.egressPlumbing;
    this.sandboxes = parts.sandboxes;
    this.runner = parts.runner;
    this.sweeper = parts.sweeper;
    this.tracer = parts.tracer;
  }

  static async open(config: Config, opts: RuntimeOptions = {}): Promise<Runtime> {
    // Before anything is created in it: a home from an older Aido or a loose umask is
    // made private again (0700 folders, 0600 files).
    tightenHome(config);
    const db = openDatabase(config.dbPath);
    try {
      const rt = new Runtime(await assembleRuntime(config, db, opts));
      if (opts.onEvent) rt.events.subscribe({}, opts.onEvent);
      rt.recover();
      // After recovery has ended the goals a dead process left: their containers go now.
      await rt.sweeper.start();
      return rt;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /**
   * What a previous process left: agents first (their goals are about to be failed), then
   * whatever still waits for a human (it belonged to a call of that process), then the
   * goals themselves (queued goals start here), then plans it was executing (failed). Their containers: sweeper.start().
   */
  private recover(): void {
    this.registry.recover("daemon restarted while the agent was running");
    this.approvals.closeOrphans("the daemon restarted; the call that waited for this approval ended with it");
    this.goals.recover();
    this.plans.recover();
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
    return this.registry.status(rec.id);
  }

  /** Deliver a message to an agent and wait for its answer (agent.run). */
  async runAgent(agentId: string, message: string): Promise<AgentRunResult> {
    if (typeof message !== "string" || message.trim() === "") {
      throw new AidoError(ErrorCode.invalidInput, "message: must be a non-empty string", {
        field: "message",
      });
    }
    const agent = this.registry.require(agentId);
    let r: Awaited<ReturnType<AgentRunner["run"]>>;
    try {
      r = await this.runner.run(agent, message);
    } finally {
      // An on-demand agent is stopped when its task ends (AgentRunner.run): a standalone
      // one's container goes with it, as at agent.stop.
      if (agent.state === "stopped") await this.releaseStandalone(agent);
    }
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
      // Not held any more: it stopped, and its goal's records left memory with it.
      const agent = this.registry.get(s.agent_id);
      if (agent && agent.manifest.lifecycle !== "persistent" && agent.state !== "stopped") {
        this.stopAgent(s.agent_id, "spawn_and_run finished");
      }
    }
  }

  stopAgent(agentId: string, reason = "stopped by request"): AgentSummary {
    // An agent stopped before (its record may have left memory) is stopped again: a no-op.
    const agent = this.registry.find(agentId);
    if (!agent) throw new AidoError(ErrorCode.notFound, `no agent ${agentId}`, { agent_id: agentId });
    this.registry.stopAgent(agentId, reason);
    void this.releaseStandalone(agent);
    return this.registry.status(agentId);
  }

  /**
   * A standalone agent's pseudo-goal container ends with the agent (its folders stay, like a
   * goal's), and the goal is retired: nothing starts its container again (a container's
   * skills and network come from its root's record, which left memory with the agent).
   * Without this every stopped agent.spawn agent left a running container behind.
   */
  private releaseStandalone(agent: Pick<AgentRecord, "parentId" | "goalId">): Promise<void> {
    if (agent.parentId !== null || !isStandalone(agent.goalId)) return Promise.resolve();
    // A session's container goes when the session ends (sessions.ts), once.
    if (this.sessions.ownsGoal(agent.goalId)) return Promise.resolve();
    return this.sandboxes.retire(agent.goalId);
  }

  agentStatus(agentId: string): AgentSummary {
    return this.registry.status(agentId);
  }

  listAgents(filter: { goalId?: string; includeStopped?: boolean } = {}): AgentSummary[] {
    return this.registry.summaries(filter);
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
  invokeTool(
    agentId: string,
    tool: string,
    input: unknown,
    signal?: AbortSignal,
    requestId?: string,
  ): Promise<ToolResult> {
    return this.invokeToolCall(agentId, {
      name: tool,
      input,
      ...(signal ? { signal } : {}),
      ...(requestId ? { requestId } : {}),
    });
  }

  /**
   * invokeTool with the call object the caller made: it is handed to the gate as it is (its
   * signal joined with the agent's), so the caller can ask stageFailureOf about this very call.
   */
  invokeToolCall(agentId: string, call: ToolCall): Promise<ToolResult> {
    const agent: AgentRecord = this.registry.require(agentId);
    if (agent.state === "stopped") {
      throw new AidoError(ErrorCode.notFound, `agent ${agentId} is stopped`, { agent_id: agentId });
    }
    call.signal = call.signal ? AbortSignal.any([agent.abort.signal, call.signal]) : agent.abort.signal;
    return this.gate.invoke(principalOf(this.env, agent), call);
  }

  /** Stop the goals, release containers and timers, flush traces, close the database. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.sweeper.stop();
      await this.goals.close();
      const released: Promise<void>[] = [];
      // A stop that cannot be recorded (registry.ts stopAgent) does not keep the rest from
      // closing: the first such failure is thrown once all is closed.
      let unrecorded: unknown;
      for (const a of this.registry.list()) {
        // Persistent agents stay (paused, container kept) for the next open; others end here.
        if (a.manifest.lifecycle !== "persistent") {
          try {
            this.registry.stopAgent(a.id, "runtime closing");
          } catch (e) {
            unrecorded ??= e;
          }
          released.push(this.releaseStandalone(a));
        } else a.abort.abort(new AidoError(ErrorCode.cancelled, "runtime closing", {}));
      }
      await Promise.all(released);
      // Sessions end on their agents' agent.stopped: their containers go and they are audited.
      await this.sessions.settled();
      // Worlds' containers and folders go with the agents that spawned them.
      await this.worlds.close();
      this.sessions.dispose();
      // No relay reaches the proxy any more; persistent agents' goals open theirs anew.
      await this.egressPlumbing.closeAll();
      await this.mcp.closeAll();
      // Counts of repeated egress refusals still open go to the log before it closes.
      this.egress.flush();
      // Every span has ended (no agent runs any more): export them, waiting a bounded time.
      await this.tracer?.shutdown(TRACE_FLUSH_WAIT_MS);
      try {
        await this.backend.close();
      } finally {
        this.approvals.close();
        this.audit.close();
        this.db.close();
      }
      if (unrecorded !== undefined) throw unrecorded;
    })();
    return this.closing;
  }
}
