// kernel/runtime-parts.ts — the shape of a runtime: the options its builder takes (the
// seams tests and cluster mode fill: a backend, extra tools, hooks before a model or tool
// call) and the parts it is made of, which assemble.ts builds and Runtime holds.

import type { AgentEnv } from "../agent/env.js";
import type { Config } from "../config.js";
import type { Db } from "../db/database.js";
import type { EgressGate } from "../egress/gate-policy.js";
import type { EgressPlumbing } from "../egress/plumbing.js";
import type { Gate } from "../gate/invoke.js";
import type { ToolDef } from "../gate/types.js";
import type { Intents } from "../intent/intents.js";
import type { CreateClientOptions } from "../llm/providers.js";
import type { SharedSlot } from "../llm/scheduler.js";
import type { Embedder } from "../memory/embedder.js";
import type { MemoryStore } from "../memory/store.js";
import type { SandboxBackend } from "../sandbox/backend.js";
import type { WorkspaceQuota } from "../sandbox/quota.js";
import type { ApprovalQueue } from "../security/approvals.js";
import type { AuditLog } from "../security/audit.js";
import type { BudgetLedger } from "../security/budget.js";
import type { SkillRegistry } from "../skills/registry.js";
import type { Tracer } from "../telemetry/tracer.js";
import type { McpServers } from "../tools/mcp/servers.js";
import type { BuiltinToolDeps } from "../tools/registry.js";
import type { AgentRunner } from "./agents.js";
import type { EventBus, RuntimeEvent } from "./events.js";
import type { GoalSandboxes } from "./goal-sandboxes.js";
import type { GoalSnapshots } from "./goal-snapshots.js";
import type { GoalRunner } from "./goals.js";
import type { Plans } from "./plans.js";
import type { AgentRegistry } from "./registry.js";
import type { SandboxSweeper } from "./sandbox-sweeper.js";
import type { Sessions } from "./sessions.js";
import type { Spawner } from "./spawn.js";
import type { Worlds } from "./worlds.js";

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
  /** Awaited before each goal's first model call (cluster mode: cluster/node.ts); see GoalRunnerDeps. */
  beforeFirstModelCall?: (goalId: string) => Promise<void>;
  /** A slot shared beyond this process, held for each model call (cluster mode: cluster/inference-slots.ts). */
  inferenceSlot?: SharedSlot;
  /** Awaited before each allowed tool call runs (cluster mode: cluster/node.ts); see GateDeps.beforeRun. */
  beforeToolCall?: (goalId: string, signal?: AbortSignal) => Promise<void>;
  /**
   * Every event from the first on: subscribed before recovery, so the goals a previous
   * process left (failed, or queued and started at once) are seen too (the daemon's log).
   */
  onEvent?: (event: RuntimeEvent) => void;
}

/** What Runtime holds: the parts its methods use and the ones its callers reach. */
export interface RuntimeParts {
  config: Config;
  db: Db;
  audit: AuditLog;
  approvals: ApprovalQueue;
  budget: BudgetLedger;
  backend: SandboxBackend;
  memory: MemoryStore;
  skills: SkillRegistry;
  events: EventBus;
  /** Persistent intents: one active objective per project folder. */
  intents: Intents;
  tools: ReadonlyMap<string, ToolDef<unknown>>;
  /** External MCP servers: per-goal connections, pins, `aido mcp list / approve`. */
  mcp: McpServers;
  /** Each goal's writes to the host, against sandbox.workspace_max_mb (every handle is held to it). */
  quota: WorkspaceQuota;
  /** Each goal's sandbox handle, and the one path that ends it. */
  sandboxes: GoalSandboxes;
  gate: Gate;
  registry: AgentRegistry;
  spawner: Spawner;
  env: AgentEnv;
  runner: AgentRunner;
  goals: GoalRunner;
  /** A goal's snapshots for its operator: list, and restore through the gate. */
  goalSnapshots: GoalSnapshots;
  /** MCP sessions: standalone agents, optionally working in a bound host folder. */
  sessions: Sessions;
  sweeper: SandboxSweeper;
  /** The plan ledger: propose -> simulate -> execute. */
  plans: Plans;
  /** Parallel worlds (spawn_worlds, adopt_world). */
  worlds: Worlds;
  /** The egress proxy's decisions and records for this runtime's goals (egress/gate-policy.ts). */
  egress: EgressGate;
  /** Goals' relays, listeners and callers (egress/plumbing.ts), in front of the proxy. */
  egressPlumbing: EgressPlumbing;
  /** Trace export (telemetry/); absent when tracing is off. */
  tracer?: Tracer;
}
