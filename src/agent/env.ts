// agent/env.ts — what the agent loop needs from the runtime, as one interface, so the loop
// never reaches for a global and a test or the bench can assemble a smaller runtime. The
// kernel (kernel/runtime.ts) builds the one real AgentEnv.

import type { Config } from "../config.js";
import type { AidoError } from "../errors.js";
import type { Gate } from "../gate/invoke.js";
import type { EventBus } from "../kernel/events.js";
import type { AgentRecord } from "../kernel/registry.js";
import type { InferenceScheduler } from "../llm/scheduler.js";
import type { LlmClient, Usage } from "../llm/types.js";
import type { Role } from "../manifest/roles.js";
import type { MemoryStore } from "../memory/store.js";
import type { ProjectBinding } from "../security/approval-project.js";
import type { BudgetLedger } from "../security/budget.js";
import type { TokenAuthority } from "../security/tokens.js";
import type { SkillRegistry } from "../skills/registry.js";
import type { Tracer } from "../telemetry/tracer.js";
import type { ContextArchive } from "./context.js";

export interface AgentEnv {
  config: Config;
  gate: Gate;
  tokens: TokenAuthority;
  scheduler: InferenceScheduler;
  budget: BudgetLedger;
  events: EventBus;
  skills: SkillRegistry;
  /** The operator's role manifests, shown as templates to agents that can spawn them. */
  roles: readonly Role[];
  memory?: MemoryStore;
  archive: ContextArchive;
  /** Traces (telemetry/): invoke_agent and chat spans. Absent: tracing is off. */
  tracer?: Tracer;
  /**
   * The project of a goal (security/approval-project.ts): what its agents' Allow Always
   * answers bind to. Absent: each goal is its own project.
   */
  projectOf?(goalId: string): ProjectBinding;
  /** The LlmClient of an agent's model (record/replay applied). */
  client(agent: AgentRecord): LlmClient;
  /**
   * Told what every model call was charged (the goal sums these; its intent is charged by
   * the ledger itself): the reported usage, or the call's bound when the ledger charged that.
   */
  onUsage?(agent: AgentRecord, usage: Usage): void;
  /** Told when a reservation is refused; the kernel decides whether the goal cap was hit. */
  onBudgetExceeded?(agent: AgentRecord, error: AidoError): void;
  /** Told when a provider reported more than a call's bound (budget.overspent): the kernel stops the goal. */
  onBudgetOverspent?(agent: AgentRecord, error: AidoError): void;
  /** Awaited before each model call is sent, holding its slot (the goal runner's hook); a rejection fails the call. */
  beforeModelCall?(agent: AgentRecord): Promise<void>;
}

/** Longest answer asked of the model per call; also the output part of each budget reservation. */
export const MAX_OUTPUT_TOKENS = 4096;
