// kernel/assemble.ts — the runtime's parts, built once, in dependency order, over one
// SQLite connection: runtime key and audit log, tokens, approvals, budget, policy, the
// sandbox backend, snapshots, memory, skills, persistent intents, the tool registry and the
// external MCP servers (tools/mcp/), the gate, the agent registry, the inference scheduler,
// spawning, the agent environment and runner, the goal queue, the plan ledger, parallel
// worlds and the sandbox sweeper. Each part is made from parts made before it; the few
// callbacks that point forward (a container's skills come from the goal's root agent, a
// refused reservation reaches its goal) are closures called only once everything exists.
// Nothing else constructs these parts, so no path can end up with a gate that lacks a check
// or a tool registry that lacks the skills. Runtime (runtime.ts) holds them; their shape
// and the builder's options are runtime-parts.ts's, the bus forwarding bus-forwarding.ts's.

import { ContextArchive } from "../agent/context.js";
import { ConversationStore } from "../agent/conversations.js";
import type { AgentEnv } from "../agent/env.js";
import type { Config } from "../config.js";
import { configSecretKinds } from "../config-secrets.js";
import type { Db } from "../db/database.js";
import { EgressGate } from "../egress/gate-policy.js";
import { EgressPlumbing } from "../egress/plumbing.js";
import type { EgressProxy } from "../egress/types.js";
import { AidoError, ErrorCode } from "../errors.js";
import { Gate } from "../gate/invoke.js";
import type { ToolDef } from "../gate/types.js";
import { Intents } from "../intent/intents.js";
import { LlmClients } from "../llm/clients.js";
import { InferenceScheduler } from "../llm/scheduler.js";
import { loadRoles } from "../manifest/roles.js";
import { createEmbedder } from "../memory/openai-embedder.js";
import { MemoryStore } from "../memory/store.js";
import { createMemoryTools } from "../memory/tools.js";
import { DockerBackend } from "../sandbox/docker.js";
import type { McpServerContainer } from "../sandbox/mcp-container.js";
import { WorkspaceQuota } from "../sandbox/quota.js";
import { SnapshotStore } from "../sandbox/snapshots.js";
import { WorkspaceBinds } from "../sandbox/workspace-binds.js";
import { goalOnlyProject, type ProjectBinding } from "../security/approval-project.js";
import { ApprovalQueue } from "../security/approvals.js";
import { AuditLog } from "../security/audit.js";
import { BudgetLedger } from "../security/budget.js";
import { RuntimeKey } from "../security/keys.js";
import { PolicyEngine } from "../security/policy.js";
import { TokenAuthority } from "../security/tokens.js";
import { SkillRegistry } from "../skills/registry.js";
import { createSkillTools } from "../skills/tools.js";
import { openTracer } from "../telemetry/tracer.js";
import { McpPins } from "../tools/mcp/pins.js";
import { McpServers } from "../tools/mcp/servers.js";
import { startStdioServer } from "../tools/mcp/stdio-start.js";
import { builtinTools } from "../tools/registry.js";
import { AgentRunner } from "./agents.js";
import { emitEgress, forwardApprovalEvents } from "./bus-forwarding.js";
import { EventBus } from "./events.js";
import { chargeGoal } from "./goal-intent.js";
import { GoalSandboxes } from "./goal-sandboxes.js";
import { GoalSnapshots } from "./goal-snapshots.js";
import { GoalStore } from "./goal-store.js";
import { GoalRunner } from "./goals.js";
import { PlanStore } from "./plan-store.js";
import { Plans } from "./plans.js";
import { AgentRegistry } from "./registry.js";
import type { RuntimeOptions, RuntimeParts } from "./runtime-parts.js";
import { SandboxSweeper } from "./sandbox-sweeper.js";
import { failSessionGoals } from "./session-budget.js";
import { Sessions } from "./sessions.js";
import { Shadows } from "./shadow.js";
import { newAgentId, Spawner } from "./spawn.js";
import { createSpawnTools } from "./spawn-tools.js";
import { createWorldTools } from "./world-tools.js";
import { Worlds } from "./worlds.js";

/** Pseudo-goals of standalone agents (agent.spawn) are named s_<…>; goals are g_<…>. */
export const STANDALONE_PREFIX = "s_";
export const isStandalone = (goalId: string): boolean => goalId.startsWith(STANDALONE_PREFIX);

/** Build every part over `db` (opened by the caller, which closes it if this throws). */
export async function assembleRuntime(
  config: Config,
  db: Db,
  opts: RuntimeOptions = {},
): Promise<RuntimeParts> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`aido: ${m}\n`));
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
  const intents = new Intents(db, audit);
  // Every charge of a goal's accounts reaches its usage and the intent it carries, in the ledger's transaction.
  const budget = new BudgetLedger({ db, audit, onSpent: chargeGoal(new GoalStore(db), intents) });
  const policy = new PolicyEngine(config);
  const binds = new WorkspaceBinds(config.goalsDir);
  /** A goal's host folders, a session's bound project folder included: what every part that reaches them uses. */
  const foldersOf = (goalId: string) => binds.folders(goalId);
  const backend = opts.backend ?? new DockerBackend(config, { folders: foldersOf, log });
  // The host folders a goal's snapshots cover: one function for the gate's snapshot before
  // a mutation and a plan's snapshot before it runs.
  const snapshots = new SnapshotStore({
    goalsDir: config.goalsDir,
    maxMb: config.sandbox.snapshotsMaxMb,
    onPruned: (goalId, pruned, actor) =>
      audit.record("snapshot.pruned", { ...pruned }, { goalId, agentId: actor ?? null }),
  });
  const memory = new MemoryStore(db, {
    embedder: opts.embedder ?? (await createEmbedder(config)),
    maxRecords: config.memory.maxRecords,
    maxContentBytes: config.memory.maxContentBytes,
    persistent: config.persistentMemory,
  });
  const skills = SkillRegistry.fromConfig(config);
  const events = new EventBus();
  const quota = new WorkspaceQuota({
    goalsDir: config.goalsDir,
    maxMb: config.sandbox.workspaceMaxMb,
    folders: foldersOf,
  });
  // Goals with a network: their relays' listeners hand streams to the proxy, built on first
  // need over the daemon's egress policy (below) and these callers' credentials.
  let proxy: EgressProxy | undefined;
  const egressPlumbing: EgressPlumbing = new EgressPlumbing({
    home: config.home,
    backend,
    log,
    unheldPort: (egressId, report) => egress.recordUnheldPort(egressId, report),
    proxy: () => {
      proxy ??= egress.proxy(
        (caller, user, password) => egressPlumbing.callers.authenticate(caller, user, password),
        {
          requestOf: (caller, password) => egressPlumbing.callers.requestOf(caller, password),
          cancelOf: (caller, password) => egressPlumbing.callers.cancelOf(caller, password),
          callsOf: (caller) => egressPlumbing.callers.callsOf(caller),
          endedCall: (caller, password) => egressPlumbing.callers.endedCall(caller, password),
        },
      );
      return proxy;
    },
  });
  // External MCP servers' tools: an agent sees those of its manifest's servers (read from the
  // registry once it exists; called only when a tool is looked up or offered).
  const mcp = new McpServers({
    config,
    pins: new McpPins(db),
    audit,
    serversOf: (agentId) => registry.find(agentId)?.manifest.mcp_servers,
    // A server with network entries joins an egress network of its own, made once its goal
    // is not frozen (tools/mcp/stdio-start.ts); else network none.
    startStdio: (goalId, s, signal): Promise<McpServerContainer> =>
      startStdioServer(
        { backend, egress: egressPlumbing, probing: (g) => mcp.probing(g), log },
        goalId,
        s,
        signal,
      ),
    endProbe: (goalId) => backend.remove(goalId, { deleteFolders: true }),
  });
  const sandboxes: GoalSandboxes = new GoalSandboxes({
    config,
    backend,
    audit,
    quota,
    acquireOptions: (goalId) => {
      const workspace = binds.of(goalId);
      return {
        skills: rootSkills(registry, worlds.realGoal(goalId) ?? goalId),
        ...(workspace !== undefined ? { workspace } : {}),
      };
    },
    folders: foldersOf,
    log,
    usesNetwork: (goalId) => rootUsesNetwork(registry, worlds.realGoal(goalId) ?? goalId),
    egress: egressPlumbing,
    retired: (goalId) => mcp.closeGoal(goalId),
  });

  // The tools: built-in and extra ones, then memory_* and skill_read whether or not the
  // built-in list carried them; the spawn tools join once the runner exists (below).
  const tools = new Map<string, ToolDef<unknown>>();
  const builtins = (opts.builtinTools ?? builtinTools)({
    config,
    snapshots,
    quota,
    folders: foldersOf,
    audit,
  });
  for (const t of [...builtins, ...(opts.tools ?? [])]) addTool(tools, t);
  for (const t of [...createMemoryTools(), ...createSkillTools()]) if (!tools.has(t.name)) addTool(tools, t);

  const tracer = await openTracer(config, log);
  const gate: Gate = new Gate({
    ...(tracer ? { tracer } : {}),
    ...(opts.beforeToolCall ? { beforeRun: opts.beforeToolCall } : {}),
    tools,
    external: mcp,
    tokens,
    policy,
    audit,
    approvals,
    budget: { remaining: (account) => budget.available(account) },
    sandbox: (goalId) => sandboxes.handle(goalId),
    snapshots: {
      beforeMutation: async (p, keep) => {
        const label = p.turn === undefined ? "before a mutating call" : `before turn ${p.turn}`;
        const s = await snapshots.create(p.goalId, foldersOf(p.goalId), label, {
          actor: p.agentId,
          keep,
        });
        audit.record(
          "snapshot.created",
          { snapshot_id: s.id, label, files: s.files },
          { goalId: p.goalId, agentId: p.agentId },
        );
        return s.id;
      },
    },
    snapshotBeforeMutation: config.policy.snapshotBeforeMutation,
    outputMaxBytes: config.limits.toolOutputMaxBytes,
    approvalTimeoutMs: config.approvals.timeoutMs,
    egress: egressPlumbing,
    // A model may write the API key into a child manifest: its recorded input blanks it.
    configSecrets: () => configSecretKinds(config),
  });
  forwardApprovalEvents(approvals, events);
  const registry: AgentRegistry = new AgentRegistry({
    db,
    config,
    tokens,
    approvals,
    gate,
    budget,
    audit,
    events,
  });
  const egress = new EgressGate({
    config: config.egress,
    agent: (id) => registry.find(id),
    tokens,
    policy,
    approvals,
    audit,
    approvalTimeoutMs: config.approvals.timeoutMs,
    project: (goalId) => projectOf(goalId),
    serverNetwork: (name) => {
      const s = config.mcp.servers[name];
      return s?.transport === "stdio" ? s.network : undefined;
    },
    notify: (entry) => emitEgress(events, entry),
    log,
  });
  const scheduler = InferenceScheduler.fromConfig(
    config,
    (e) => {
      if (!events.wants(e.type)) return;
      const { type, ...rest } = e;
      events.emit(type, registry.goalOf(e.agentId) ?? null, rest as never);
    },
    opts.inferenceSlot,
  );
  const llm = new LlmClients(config, opts.llm ?? {});
  const spawner = new Spawner({
    config,
    db,
    registry,
    tokens,
    budget,
    audit,
    events,
    skills,
    makeClient: (agentId, name, model) => llm.forInstance(agentId, name, model),
  });
  const env: AgentEnv = {
    ...(tracer ? { tracer } : {}),
    config,
    gate,
    tokens,
    scheduler,
    budget,
    events,
    skills,
    roles: loadRoles(config.daemon.manifestDirs),
    memory,
    archive: new ContextArchive(db),
    client: (a) => llm.forInstance(a.id, a.manifest.name, a.model),
    projectOf: (goalId) => projectOf(goalId),
    onBudgetExceeded: (a, e) =>
      goals.budgetRefused(a.goalId, e.details.account as string | undefined, e.message),
    onBudgetOverspent: (a, e) => goals.budgetOverspent(a.goalId, e.message),
    beforeModelCall: (a) => goals.beforeModelCall(a.goalId),
  };
  const runner = new AgentRunner({
    env,
    registry,
    spawner,
    conversations: new ConversationStore(db),
    childRetries: config.limits.childRetries,
  });
  const spawnTools = createSpawnTools({ registry, runner, budget, batchCap: config.limits.spawnBatchCap });
  for (const t of spawnTools) addTool(tools, t);
  const worlds: Worlds = new Worlds({
    config,
    audit,
    snapshots,
    quota,
    registry,
    runner,
    budget,
    events,
    roots: foldersOf,
    retire: (goalId) => sandboxes.retire(goalId),
  });
  for (const t of createWorldTools({ registry, worlds })) addTool(tools, t);
  const goals = new GoalRunner({
    db,
    config,
    registry,
    spawner,
    runner,
    budget,
    audit,
    events,
    intents,
    memory,
    retireSandbox: (goalId) => sandboxes.retire(goalId),
    sessionAccount: (sessionId) => sessions.accountOf(sessionId),
    ...(opts.beforeFirstModelCall ? { beforeFirstModelCall: opts.beforeFirstModelCall } : {}),
  });
  const shadows = new Shadows({
    config,
    gate,
    audit,
    snapshots,
    roots: foldersOf,
    retire: (goalId) => sandboxes.retire(goalId),
    log,
  });
  const plans = new Plans({
    config,
    store: new PlanStore(db, audit, key),
    audit,
    gate,
    policy,
    registry,
    env,
    snapshots,
    shadows,
    roots: foldersOf,
    log,
  });
  const sessions = new Sessions({
    config,
    binds,
    spawner,
    registry,
    tools,
    audit,
    policy,
    events,
    newGoalId: () => `${STANDALONE_PREFIX}${newAgentId().slice(2)}`,
    retire: (goalId) => sandboxes.retire(goalId),
    ended: (s, reason) => failSessionGoals(budget, goals, s, reason),
    log,
  });
  /**
   * The project a goal's Allow Always answers bind to: a session's bound folder, the folder
   * a goal was submitted from, else the goal alone (security/approval-project.ts).
   */
  const projectOf = (goalId: string): ProjectBinding =>
    sessions.projectOf(goalId) ?? goals.projectOf(goalId) ?? goalOnlyProject(goalId);
  const sweeper = new SandboxSweeper({
    config,
    backend,
    audit,
    isLive: (goalId) =>
      mcp.probing(goalId) ||
      shadows.isLive(goalId) ||
      worlds.isLive(goalId) ||
      (isStandalone(goalId) ? registry.list({ goalId }).length > 0 : goals.isLive(goalId)),
    expired: (goalId, reason) => {
      if (!isStandalone(goalId)) goals.fail(goalId, reason);
    },
    released: (goalId) => sandboxes.released(goalId),
    log,
  });
  const goalSnapshots = new GoalSnapshots({ store: snapshots, gate, audit, tokens, goals, registry });
  return {
    config,
    db,
    audit,
    approvals,
    budget,
    backend,
    memory,
    skills,
    events,
    intents,
    tools,
    mcp,
    quota,
    sandboxes,
    gate,
    registry,
    spawner,
    env,
    runner,
    goals,
    goalSnapshots,
    sessions,
    sweeper,
    plans,
    worlds,
    egress,
    egressPlumbing,
    ...(tracer ? { tracer } : {}),
  };
}

function addTool(tools: Map<string, ToolDef<unknown>>, t: ToolDef<unknown>): void {
  if (tools.has(t.name)) {
    throw new AidoError(ErrorCode.configInvalid, `two tools are named "${t.name}"`, { tool: t.name });
  }
  tools.set(t.name, t);
}

/**
 * The skills a goal's container mounts: its root agent's list, which every agent of the
 * goal narrows (a root without a list was given every discovered skill at spawn). None
 * when the goal has no root record: the root's record is held until the goal's last agent
 * stops, and by then the goal is retired in the backend (a goal's end, a standalone agent's
 * stop), which starts no container for it again (test/kernel/goal-docker.test.ts).
 */
function rootSkills(registry: AgentRegistry, goalId: string): string[] {
  const root = registry.list({ goalId, includeStopped: true }).find((a) => a.parentId === null);
  return [...(root?.manifest.skills ?? [])];
}

/** The goal's root agent holds a network grant (its descendants only narrow what it holds). */
function rootUsesNetwork(registry: AgentRegistry, goalId: string): boolean {
  const root = registry.list({ goalId, includeStopped: true }).find((a) => a.parentId === null);
  return root?.manifest.capabilities.some((g) => g.kind === "network") ?? false;
}
