// kernel/plans.ts — propose -> simulate -> execute (plan.simulate / create / execute / list).
//   simulate  every step judged by the gate's own deciding stages (gate/simulate.ts), in
//             order, against the present state: nothing runs, so a file step 1 would create
//             is not there for step 2. Audited once as plan.simulated (never as tool.denied).
//   create    simulate, then store the steps, the simulation and a hash over the steps, the
//             agent's grants and the policy in force (kernel/plan-store.ts).
//   execute   refused (policy_denied, naming what) when the ledger row was tampered with,
//             the plan already ran, or its steps, the executing agent's grants or the policy
//             changed since it was simulated, and (limit_exceeded) while a plan of the goal
//             runs when either undoes its failure; else a snapshot of /workspace and /output, then
//             exactly the stored steps through the gate (approvals apply as for any call),
//             stopping at the first step that is refused, fails or reports an error; with
//             on_failure "restore" what the steps changed is undone, and nothing else
//             (kernel/plan-undo.ts; held to the agent's file_write grants and the policy,
//             like snapshot_restore).
// Step inputs are checked against their tool's schema at the edge: a bad one is an
// invalid_input naming `steps.N.input.FIELD`, not a simulated denial; one nested deeper
// than the gate takes is also audited as the gate audits it (tool.denied, stage schema).

import { randomUUID } from "node:crypto";
import type { AgentEnv } from "../agent/env.js";
import { principalOf } from "../agent/tool-calls.js";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { argumentDepthRefusal, MAX_ARGUMENT_DEPTH } from "../gate/argument-depth.js";
import type { Gate, Principal } from "../gate/invoke.js";
import { RunPaths } from "../gate/run-paths.js";
import type { SnapshotRoots, SnapshotStore } from "../sandbox/snapshots.js";
import type { AuditLog } from "../security/audit.js";
import { auditText } from "../security/audit-text.js";
import type { Grant } from "../security/grants.js";
import type { PolicyEngine } from "../security/policy.js";
import {
  cancelledBefore,
  type InvokeStep,
  type PlanStepError,
  type PlanStepResult,
  runStep,
  stepError,
  stepPath,
} from "./plan-steps.js";
import {
  grantsDigest,
  type PlanDigests,
  type PlanRow,
  type PlanStep,
  type PlanStore,
  type PlanSummary,
  policyDigest,
  type Simulation,
  stepsDigest,
} from "./plan-store.js";
import {
  namedSnapshots,
  type PlanRestore,
  PlanUndo,
  restoreReport,
  type StepScope,
  scopeOf,
} from "./plan-undo.js";
import type { AgentRecord, AgentRegistry } from "./registry.js";
import { ShadowBusy, type ShadowRun, type Shadows } from "./shadow.js";

export type { InvokeStep, PlanRestore, PlanStep, PlanStepError, PlanStepResult, PlanSummary, Simulation };
export { stepError };

const NOTE =
  "Steps are judged in order against the present state, without running any: what an earlier step would create, change or delete is not seen by the later ones, commands' run-time effects are not known, and a human may answer an approval differently when the plan runs.";

export interface PlanExecution {
  plan_id: string;
  status: "succeeded" | "failed" | "restored";
  steps: PlanStepResult[];
  /** The snapshot taken before the plan, while the store holds it. */
  snapshot_id?: string;
  /** That snapshot's id once the store pruned it (it can no longer be restored). */
  snapshot_pruned?: string;
  /** What the restore did (on_failure "restore"). */
  restore?: PlanRestore;
  error?: string;
}

export interface PlansDeps {
  config: Config;
  store: PlanStore;
  audit: AuditLog;
  gate: Gate;
  policy: PolicyEngine;
  registry: AgentRegistry;
  env: AgentEnv;
  snapshots: SnapshotStore;
  shadows: Shadows;
  /** Host folders of a goal's /workspace and /output. */
  roots(goalId: string): SnapshotRoots;
  /** The daemon's log: what a caller must not see of an unexpected failure. */
  log(message: string): void;
}

export class Plans {
  /** Goal id -> the plans of it executing now, each with whether it undoes its failure. */
  private readonly running = new Map<string, Map<string, boolean>>();

  constructor(private readonly deps: PlansDeps) {}

  /**
   * plan.simulate: the gate's verdict and inventory for each step; with `shadow`, the steps
   * also run against a throwaway copy of the workspace (kernel/shadow.ts). Audited as
   * plan.simulated.
   */
  async simulate(
    agentId: string,
    steps: readonly PlanStep[],
    opts: { planId?: string; shadow?: boolean; signal?: AbortSignal } = {},
  ): Promise<Simulation> {
    const { planId } = opts;
    const agent = this.liveAgent(agentId);
    const principal = principalOf(this.deps.env, agent);
    this.checkSteps(steps, principal);
    const signal = opts.signal ? AbortSignal.any([agent.abort.signal, opts.signal]) : agent.abort.signal;
    const judged: Simulation["steps"] = [];
    for (const [index, step] of steps.entries()) {
      const j = await this.deps.gate.simulate(principal, { name: step.tool, input: step.input, signal });
      judged.push({ index, ...j });
    }
    const ok = judged.every((s) => s.verdict !== "deny");
    const shadow = opts.shadow ? await this.shadowRun(principal, agent, steps, signal) : undefined;
    this.deps.audit.record(
      "plan.simulated",
      {
        ...(planId ? { plan_id: planId } : {}),
        ...(shadow
          ? {
              shadow: {
                goal_id: shadow.goal_id,
                steps_run: shadow.steps.filter((s) => s.ran).length,
                ...shadow.diff.counts,
              },
            }
          : {}),
        ok,
        steps: judged.map((s) => ({
          index: s.index,
          tool: s.tool,
          verdict: s.verdict,
          ...(s.stage ? { stage: s.stage } : {}),
          ...(s.reason ? { reason: s.reason } : {}),
        })),
      },
      { goalId: agent.goalId, agentId },
    );
    return { steps: judged, ok, note: NOTE, ...(shadow ? { shadow } : {}) };
  }

  /**
   * The shadow run of a simulation, its diff showing text only where the agent may read (its
   * file_read grants and the policy; a confirm rule counts as no). One refused because
   * another runs is audited as plan.refused.
   */
  private async shadowRun(
    principal: Principal,
    agent: AgentRecord,
    steps: readonly PlanStep[],
    signal: AbortSignal,
  ): Promise<ShadowRun> {
    const reads = new RunPaths("file_read", this.grantsOf(agent), this.deps.policy);
    const readable = (path: string) => reads.allow({ kind: "file_read", path }, false) === undefined;
    try {
      return await this.deps.shadows.run(principal, steps, readable, signal);
    } catch (e) {
      if (e instanceof ShadowBusy)
        this.deps.audit.record(
          "plan.refused",
          { reason: `shadow simulation refused: ${e.message}` },
          { goalId: principal.goalId, agentId: principal.agentId },
        );
      throw e;
    }
  }

  /** plan.create: simulate, then store the plan with its simulation and hash. */
  async create(
    agentId: string,
    title: string,
    steps: readonly PlanStep[],
  ): Promise<{ plan_id: string; hash: string; simulation: Simulation }> {
    const id = `plan_${randomUUID()}`;
    const simulation = await this.simulate(agentId, steps, { planId: id });
    const agent = this.liveAgent(agentId);
    const digests: PlanDigests = {
      steps: stepsDigest(steps),
      grants: grantsDigest(this.grantsOf(agent), agent.manifest.approval_required),
      policy: policyDigest(this.deps.config.policy),
    };
    const row = this.deps.store.insert({
      id,
      agentId,
      goalId: agent.goalId,
      title,
      steps,
      simulation,
      digests,
    });
    return { plan_id: id, hash: row.hash, simulation };
  }

  list(agentId?: string): PlanSummary[] {
    return this.deps.store.list(agentId);
  }

  /**
   * At start-up: executions the previous process was running ended with it (failed), and
   * the shadow copies it left go.
   */
  recover(): string[] {
    this.deps.shadows.removeLeftovers();
    return this.deps.store.recover();
  }

  /** plan.execute (see the header). `agentId`: who runs it; default the agent that created it. */
  async execute(
    planId: string,
    opts: { agentId?: string; onFailure?: "stop" | "restore"; signal?: AbortSignal },
    invoke: InvokeStep,
  ): Promise<PlanExecution> {
    const { store, audit } = this.deps;
    const row = store.get(planId);
    const agent = this.liveAgent(opts.agentId ?? row.agent_id);
    const ids = { goalId: agent.goalId, agentId: agent.id };
    const refuse = (reason: string, changed?: string[]): never => {
      audit.record("plan.refused", { plan_id: planId, reason, ...(changed ? { changed } : {}) }, ids);
      throw new AidoError(ErrorCode.policyDenied, `plan ${planId} was not executed: ${reason}`, {
        plan_id: planId,
        ...(changed ? { changed } : {}),
      });
    };
    const tampered = store.tampered(row);
    if (tampered) refuse(tampered);
    if (row.status !== "created" || store.startedInAudit(row))
      refuse(`it was already executed (status ${row.status}); a plan executes once, create a new one`);
    const steps = JSON.parse(row.steps) as PlanStep[];
    const changed = this.changedSince(row, steps, agent, refuse);
    if (changed.length > 0)
      refuse(`${changed.map((c) => CHANGED[c]).join("; ")} since it was simulated`, changed);
    // A plan whose failure is undone runs alone in its goal: another plan's writes would fall
    // in its steps' windows and be undone with its own (refused before it starts: it may run later).
    const undoes = opts.onFailure === "restore";
    const running = this.running.get(agent.goalId) ?? new Map<string, boolean>();
    const busy = [...running].find(([, other]) => undoes || other)?.[0];
    if (busy !== undefined) {
      const reason = `plan ${busy} of goal ${agent.goalId} is running; a plan executed with on_failure "restore" runs alone in its goal (another plan's writes would fall in its steps' windows and be undone with them)`;
      audit.record("plan.refused", { plan_id: planId, reason }, ids);
      throw new AidoError(ErrorCode.limitExceeded, `plan ${planId} was not executed: ${reason}`, {
        plan_id: planId,
        running: busy,
      });
    }
    if (!store.start(row, ids)) refuse("it was already executed; a plan executes once, create a new one");
    this.running.set(agent.goalId, running.set(planId, undoes));

    const result: PlanExecution = { plan_id: planId, status: "failed", steps: [] };
    let undo: PlanUndo | undefined;
    try {
      const roots = this.deps.roots(agent.goalId);
      // Made first: it pins the snapshots the steps name before the snapshot below can prune them;
      // only for a plan that undoes its failure (it runs alone in its goal): "stop" plans run side
      // by side, as many as a client starts, and their pins past the cap would add up unbounded.
      undo = new PlanUndo({
        snapshots: this.deps.snapshots,
        goalId: agent.goalId,
        roots,
        planId,
        actor: agent.id,
        taken: (id, label, files) => audit.record("snapshot.created", { snapshot_id: id, label, files }, ids),
        named: undoes ? namedSnapshots(steps, (name) => this.deps.gate.tools.get(name)) : [],
      });
      const snap = await this.deps.snapshots.create(agent.goalId, roots, `before plan ${planId}`, {
        actor: agent.id,
      });
      audit.record(
        "snapshot.created",
        { snapshot_id: snap.id, label: `before plan ${planId}`, files: snap.files },
        ids,
      );
      result.snapshot_id = snap.id;
      for (const [index, step] of steps.entries()) {
        // Cancelled between two steps (the step before ended as the cancel came): no later
        // step starts, and the plan says before which one it stopped (the gate would refuse the
        // step as cancelled too, but the plan's record names where it ended).
        if (opts.signal?.aborted) {
          result.steps.push({ index, ok: false, output: "", error: cancelledBefore(index) });
          break;
        }
        // Steps are framed only when a failure is to be undone: "stop" keeps whatever ran.
        const scope: StepScope =
          opts.onFailure === "restore" ? scopeOf(this.deps.gate.tools.get(step.tool)) : { kind: "none" };
        // The frame before the step is taken by the gate right before the tool runs, after its
        // approval wait: what the person changed while asked is not the step's (plan-undo.ts).
        const frame = undo.frame(index, scope);
        const { result: r, wrote } = await runStep(
          invoke,
          agent.id,
          index,
          step,
          opts.signal,
          this.deps.log,
          frame,
        );
        result.steps.push(r);
        // A step the gate refused (or that was cancelled before it ran) took no frame: nothing recorded.
        await undo.afterStep(index, scope, wrote, stepPath(step));
        if (!r.ok) break;
      }
      const failed = result.steps.find((s) => !s.ok);
      result.status = failed ? "failed" : "succeeded";
      // Not pinned (the undo needs only what the steps changed): a later step's snapshot may
      // have pruned it. Then the result and the records name it pruned, not one to restore.
      if (!(await this.deps.snapshots.list(agent.goalId)).some((s) => s.id === snap.id)) {
        result.snapshot_id = undefined;
        result.snapshot_pruned = snap.id;
      }
      if (failed && opts.onFailure === "restore") await this.restore(result, agent, undo);
    } catch (e) {
      result.error = stepError(e, this.deps.log).message;
    } finally {
      running.delete(planId);
      if (running.size === 0 && this.running.get(agent.goalId) === running) this.running.delete(agent.goalId);
      undo?.release();
      const failed = result.steps.find((s) => !s.ok);
      audit.record(
        "plan.executed",
        {
          plan_id: planId,
          status: result.status,
          steps_run: result.steps.length,
          ...(failed ? { failed_step: failed.index } : {}),
          ...(result.error ? { error: result.error } : {}),
          ...(result.snapshot_id ? { snapshot_id: result.snapshot_id } : {}),
          ...(result.snapshot_pruned ? { snapshot_pruned: result.snapshot_pruned } : {}),
        },
        ids,
      );
      store.finish(planId, result.status, result);
    }
    return result;
  }

  /**
   * Undo what the plan's steps changed (kernel/plan-undo.ts), where the agent may write: a
   * path someone changed after the plan's step is a conflict, left as it is, reported and
   * audited; the status is "restored" only when nothing was left.
   */
  private async restore(result: PlanExecution, agent: AgentRecord, undo: PlanUndo) {
    const ids = { goalId: agent.goalId, agentId: agent.id };
    const paths = new RunPaths("snapshot_restore", this.grantsOf(agent), this.deps.policy);
    const r = await undo
      .restore((path) => paths.allow({ kind: "file_write", path }))
      .finally(() => paths.audit(this.deps.audit, ids));
    const restore = restoreReport(r, undo.changedPaths);
    this.deps.audit.record(
      "plan.restored",
      {
        plan_id: result.plan_id,
        ...(result.snapshot_id ? { snapshot_id: result.snapshot_id } : {}),
        ...(result.snapshot_pruned ? { snapshot_pruned: result.snapshot_pruned } : {}),
        paths_changed: restore.paths_changed,
        files_restored: restore.files_restored,
        files_failed: restore.files_failed_total,
        conflicts: restore.conflicts_total,
        ...(restore.conflicts_total > 0
          ? { conflict_paths: restore.conflicts.map((c) => auditText(c.path)) }
          : {}),
      },
      ids,
    );
    result.restore = restore;
    if (restore.files_failed_total === 0 && restore.conflicts_total === 0) result.status = "restored";
  }

  /** Which of the hash's parts differ now from what the plan was simulated with. */
  private changedSince(
    row: PlanRow,
    steps: readonly PlanStep[],
    agent: AgentRecord,
    refuse: (reason: string) => never,
  ): (keyof typeof CHANGED)[] {
    let grants: readonly Grant[] = [];
    try {
      grants = this.deps.env.tokens.verify(agent.token).grants;
    } catch (e) {
      refuse(`the capability token of agent ${agent.id} no longer verifies: ${errorMessage(e)}`);
    }
    const now: PlanDigests = {
      steps: stepsDigest(steps),
      grants: grantsDigest(grants, agent.manifest.approval_required),
      policy: policyDigest(this.deps.config.policy),
    };
    const changed: (keyof typeof CHANGED)[] = [];
    if (now.steps !== row.steps_digest) changed.push("steps");
    if (now.grants !== row.grants_digest) changed.push("grants");
    if (now.policy !== row.policy_digest) changed.push("policy");
    return changed;
  }

  private grantsOf(agent: AgentRecord): readonly Grant[] {
    return this.deps.env.tokens.verify(agent.token).grants;
  }

  private liveAgent(agentId: string): AgentRecord {
    const agent = this.deps.registry.require(agentId);
    if (agent.state === "stopped")
      throw new AidoError(ErrorCode.notFound, `agent ${agentId} is stopped`, { agent_id: agentId });
    return agent;
  }

  /**
   * Each step names a known tool and its input parses with that tool's schema. An input
   * nested too deep is refused as the gate refuses it, audited (tool.denied, stage schema,
   * the depth and not the value).
   */
  private checkSteps(steps: readonly PlanStep[], principal: Principal): void {
    for (const [i, step] of steps.entries()) {
      const tool = this.deps.gate.tools.get(step.tool);
      if (!tool) {
        throw new AidoError(ErrorCode.invalidInput, `steps.${i}.tool: unknown tool "${step.tool}"`, {
          field: `steps.${i}.tool`,
        });
      }
      // The gate refuses such arguments too (gate/argument-depth.ts); a plan's are refused
      // before its digest encodes them recursively, and audited as the gate would.
      const tooDeep = argumentDepthRefusal(step.tool, step.input);
      if (tooDeep !== undefined) {
        this.deps.gate.refusedBeforeGate(
          principal,
          { name: step.tool },
          { stage: "schema", code: ErrorCode.invalidInput, reason: `steps.${i}: ${tooDeep}` },
        );
        const field = `steps.${i}.input`;
        throw new AidoError(
          ErrorCode.invalidInput,
          `${field}: nested deeper than ${MAX_ARGUMENT_DEPTH} levels (input of ${step.tool})`,
          { field },
        );
      }
      const parsed = tool.input.safeParse(step.input);
      if (parsed.success) continue;
      const issue = parsed.error.issues[0];
      const keys = issue?.code === "unrecognized_keys" ? issue.keys : [];
      const path = [...(issue?.path ?? []), ...keys.slice(0, 1)].map(String);
      const field = [`steps.${i}.input`, ...path].join(".");
      const what = issue?.code === "unrecognized_keys" ? "unknown key" : (issue?.message ?? "invalid");
      throw new AidoError(ErrorCode.invalidInput, `${field}: ${what} (input of ${step.tool})`, { field });
    }
  }
}

/** The parts of a plan's hash, as a refusal names them. */
const CHANGED = {
  steps: "the plan's steps changed",
  grants: "the agent's grants (or its approval_required list) changed",
  policy: "the policy in force changed",
} as const;
