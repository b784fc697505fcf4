// gate/invoke.ts — the only way a tool runs. Every call from a model, a socket client or
// a test takes this path, in this order:
//   schema (zod) -> capability (signed token, the tool, the needs the input states)
//   -> policy (on what the call states) -> budget
//   -> (held while the goal's node is unsure of it) -> needs judged in the container (paths
//   resolved there) -> capability and policy on them
//   -> approval -> held while the goal's node is unsure of it (cluster mode; stage hold)
//   -> audit "tool.invoked" (durable) -> snapshot before a mutation -> the call's own
//   beforeRun hook (a plan's frame) -> held again and cancel looked at (after those awaits)
//   -> run in the sandbox -> audit the result.
// The stages that decide (through the approval decision) are gate/judge.ts, shared with
// simulations (gate/simulate.ts), which stop before the approval wait; the wait is
// gate/approval-wait.ts; this file audits, snapshots and runs.
// Order matters twice. Nothing with a side effect happens before every check has passed
// and the audit entry is committed. And the goal's container is only looked at (needs()
// resolves paths with realpath inside it, which starts it) once every check that does not
// need it has passed: a call refused for its tool, its command or the budget starts nothing.
// Every refusal is audited as tool.denied with the stage that refused it, and surfaces
// as a GateDenied error the caller can show to the model (it can recover) or map to a
// JSON-RPC code. A stage that fails instead of deciding (the goal's container not started,
// the approval store failing) is audited as tool.errored with the stage it was at
// (gate/stage-failure.ts), and its error reaches the caller unchanged: every call that does
// not run leaves one entry. With tracing on, each call is an execute_tool span (gate/trace-call.ts)
// that the stages annotate: approval, verdict, snapshot.

import type { ConfigSecret } from "../config-secrets.js";
import type { EgressPlumbing } from "../egress/plumbing.js";
import { AidoError, type ErrorCode } from "../errors.js";
import type { SandboxHandle } from "../sandbox/types.js";
import type { ProjectBinding } from "../security/approval-project.js";
import type { ApprovalQueue } from "../security/approvals.js";
import type { AuditLog } from "../security/audit.js";
import type { DenyStage } from "../security/audit-events.js";
import { auditCallId, auditText } from "../security/audit-text.js";
import type { JsonValue } from "../security/canonical-json.js";
import type { Grant } from "../security/grants.js";
import type { PolicyEngine } from "../security/policy.js";
import type { CapabilityToken, TokenAuthority } from "../security/tokens.js";
import { Attr, gateReason } from "../telemetry/attributes.js";
import type { Tracer, TraceSpan } from "../telemetry/tracer.js";
import { type ApprovalPassed, awaitApproval } from "./approval-wait.js";
import { blankedJson, hiddenText } from "./call-secrets.js";
import { failedIfCancelled, refuseIfCancelled } from "./cancel.js";
import { confinementFor } from "./confinement.js";
import { passHold } from "./hold.js";
import { type Deny, type Judged, judgeCall, type Seen } from "./judge.js";
import { allowNetwork } from "./network-check.js";
import { RunPaths } from "./run-paths.js";
import { type StepJudgement, simulateCall } from "./simulate.js";
import { auditStageFailure } from "./stage-failure.js";
import { traceCall } from "./trace-call.js";
import { TurnSnapshots } from "./turn-snapshots.js";
import type { BeforeRun, ToolContext, ToolDef, ToolResult, ToolServices } from "./types.js";

/** Who is calling: an agent (or a socket client acting as one) and its signed token. */
export interface Principal {
  agentId: string;
  goalId: string;
  /** The agent's identity (kernel/registry.ts): what an Allow Always grant binds to. */
  identity: string;
  /**
   * The project of the agent's goal (security/approval-project.ts): an Allow Always grant binds
   * to it too. Absent: the goal alone (projectOfCall).
   */
  project?: ProjectBinding;
  token: CapabilityToken;
  /** Tools that wait for a human decision (manifest approval_required). */
  approvalRequired: ReadonlySet<string>;
  /** Budget account of the agent; a call is refused while it has no tokens left. */
  budgetAccount?: string;
  services?: ToolServices;
  /** The agent loop's turn number; snapshot-before-mutation keys on it. */
  turn?: number;
  /**
   * The goal's folders are a throwaway copy (a shadow simulation, kernel/shadow.ts, or a
   * world, kernel/worlds.ts): no snapshot before mutation, since nothing of it is kept to
   * roll back to, and no human is asked (a call that needs one, with no standing decision
   * covering it, is refused).
   */
  scratch?: true;
}

export interface BudgetView {
  /** Tokens the account (and its ancestors and goal cap) can still reserve. */
  remaining(account: string): number;
}

export interface SnapshotHook {
  /**
   * Called before the first mutating call of each agent turn when policy requires it.
   * `keep`: snapshots the new one must not prune (ToolDef.keepsSnapshots). Resolves to the
   * snapshot's id (traces: aido.snapshot.id).
   */
  beforeMutation(principal: Principal, keep: readonly string[]): Promise<string | undefined>;
}

/** A refusal of a tool lookup: what the gate audits and reports, stage and all. */
export interface ToolRefusal {
  code: ErrorCode;
  stage: DenyStage;
  reason: string;
}

/**
 * Tools known only per agent and per goal (external MCP servers' tools, tools/mcp/): looked
 * up by name when the built-in map has none, and listed for an agent's offer.
 */
export interface ExternalTools {
  /**
   * The tool `name` stands for, for this caller; a refusal names why it cannot be called.
   * Contacts nothing: an external tool reaches its server only in its `needs` (stage 5),
   * once the token, the grants, the policy and the budget allowed the call.
   */
  resolve(
    principal: Principal,
    name: string,
  ): Promise<{ tool: ToolDef<unknown> } | { refusal: ToolRefusal } | undefined>;
  /** `name` is a pinned tool of an approved server (for any caller); contacts nothing. */
  knows(name: string): boolean;
  /**
   * The tools this agent could call now, of the sources its verified `grants` reach at all
   * (an external server is connected only when a grant allows one of its pinned tools);
   * the caller filters each tool by its grant need.
   */
  offered(
    principal: Pick<Principal, "agentId" | "goalId">,
    grants: readonly Grant[],
  ): Promise<ToolDef<unknown>[]>;
}

export interface GateDeps {
  tools: ReadonlyMap<string, ToolDef<unknown>>;
  /** Per-agent tools beyond `tools` (external MCP servers'); absent: none. */
  external?: ExternalTools;
  tokens: TokenAuthority;
  policy: PolicyEngine;
  audit: AuditLog;
  approvals: ApprovalQueue;
  budget?: BudgetView;
  /** The goal's sandbox; lazy (sandbox/lazy.ts), so calls that never touch it cost nothing. */
  sandbox(goalId: string): SandboxHandle;
  snapshots?: SnapshotHook;
  snapshotBeforeMutation: boolean;
  outputMaxBytes: number;
  approvalTimeoutMs: number;
  /**
   * Goals with a network (egress/plumbing.ts): what an exec of the caller may connect to
   * and the proxy variables it gets. Absent: no goal has a network.
   */
  egress?: Pick<EgressPlumbing, "access" | "agentStopped"> & Partial<Pick<EgressPlumbing, "goalSecretsIn">>;
  /**
   * The config's secrets (config-secrets.ts configSecretKinds), blanked `***` in what the gate
   * says and records of a call: its recorded input, a refusal's reason, an error; their kinds
   * name what an approval request carries (`carries_secrets`). Absent: none.
   */
  configSecrets?: () => readonly ConfigSecret[];
  /** Traces (telemetry/): one execute_tool span per call. Absent: tracing is off. */
  tracer?: Tracer;
  /**
   * Awaited once a call is allowed (its approval included), before it is audited as invoked
   * and runs: cluster mode holds a goal's calls here while its node is not sure the goal is
   * still its own (cluster/node.ts). A rejection: the call does not run. Awaited too before
   * the needs are resolved in the container (judge.ts stage 5), frozen meanwhile, and once
   * more after the gate's snapshot and the call's own beforeRun hook, right before the tool
   * runs (a rejection there: tool.failed, the tool not run).
   */
  beforeRun?(goalId: string, signal?: AbortSignal): Promise<void>;
}

export interface ToolCall {
  name: string;
  input: unknown;
  /** The model's tool_use id, recorded in the audit entries. */
  callId?: string;
  signal?: AbortSignal;
  /** The span the call's execute_tool span nests under (the agent's run); absent: a trace root. */
  trace?: TraceSpan;
  /**
   * The socket request the call serves (daemon/methods.ts asCallRequest): an approval request
   * the call asks for carries it, so the client knows which of its calls it belongs to.
   */
  requestId?: string;
  /**
   * Awaited once the call is allowed, audited as invoked and the gate's snapshot before a
   * mutation is taken, right before the tool runs: after the approval wait, the hold and the
   * last cancel check, so a refused or cancelled call never reaches it. A plan executed with
   * on_failure "restore" takes the snapshot framing its step here (kernel/plan-undo.ts), so
   * what the person changed while asked is not counted as the step's. A rejection is the run's
   * failure (tool.failed), the tool not run; so is a cancel that came while it (or the gate's
   * snapshot) ran (tool.failed, code cancelled: gate/cancel.ts). Absent: nothing is done.
   * It is told the gate's snapshot just taken (`snapshotId`, the one a person's
   * snapshot_restore would use) and the snapshots the call's input names (`keep`,
   * ToolDef.keepsSnapshots): a snapshot it takes must not prune them.
   */
  beforeRun?: (run: BeforeRun) => Promise<void>;
}

/** A refusal: audited, never a side effect. `stage` says which check refused. */
export class GateDenied extends AidoError {
  readonly stage: DenyStage;
  constructor(code: ErrorCode, stage: DenyStage, message: string, details: Record<string, unknown> = {}) {
    super(code, message, { ...details, stage });
    this.stage = stage;
  }
}

export class Gate {
  private readonly deps: GateDeps;
  /** Snapshots before mutation, one per agent turn; absent when policy turns them off. */
  private readonly snapshots: TurnSnapshots | undefined;

  constructor(deps: GateDeps) {
    this.deps = deps;
    this.snapshots =
      deps.snapshotBeforeMutation && deps.snapshots ? new TurnSnapshots(deps.snapshots) : undefined;
  }

  get tools(): ReadonlyMap<string, ToolDef<unknown>> {
    return this.deps.tools;
  }

  /**
   * Is `name` a tool the runtime knows (built in, or a pinned tool of an approved MCP
   * server), whoever calls it? What a trace may name with content off (trace-call.ts).
   */
  knowsTool(name: string): boolean {
    return this.deps.tools.has(name) || this.deps.external?.knows(name) === true;
  }

  /** The built-in tools and the external ones this agent could call now, by name. */
  async toolsFor(
    principal: Pick<Principal, "agentId" | "goalId">,
    grants: readonly Grant[],
  ): Promise<ReadonlyMap<string, ToolDef<unknown>>> {
    const external = (await this.deps.external?.offered(principal, grants)) ?? [];
    if (external.length === 0) return this.deps.tools;
    const all = new Map(this.deps.tools);
    for (const t of external) if (!all.has(t.name)) all.set(t.name, t);
    return all;
  }

  /** The agent stopped (kernel/registry.ts stopAgent): drop what the gate kept for it. */
  agentStopped(agentId: string): void {
    this.snapshots?.forget(agentId);
    this.deps.egress?.agentStopped(agentId);
  }

  /**
   * `text` with the goal's proxy credentials and the config's secrets blanked (call-secrets.ts; the tools
   * blank the credentials in their output too). A refusal or an error may quote a path the container
   * resolved, and a command can name one after a credential (`ln -s "$HTTP_PROXY" l`): before,
   * file_read of such a link told the model, the audit and the events the password.
   */
  private hidden(goalId: string, text: string): string {
    return hiddenText(this.deps, goalId, text);
  }

  /**
   * A JSON value of a call, every text in it blanked as `hidden`, its shape kept (call-secrets.ts):
   * a call's input as tool.invoked records it (before, a child manifest a model wrote the
   * config's API key into, spawn_agent or spawn_agents, was in the audit whole, and so was a
   * password a call named), and a refusal's or error's details (the need, the resolved path).
   */
  private blankedJson<T>(goalId: string, value: T): T {
    return blankedJson(this.deps, goalId, value);
  }

  /** An error of a call, its message and details blanked in place (before it is audited). */
  private hideInError(goalId: string, e: unknown): void {
    if (!(e instanceof Error)) return;
    e.message = this.hidden(goalId, e.message);
    if (e instanceof AidoError) {
      Object.assign(e, { details: this.blankedJson(goalId, e.details) });
    }
  }

  /**
   * A call refused before it reached the gate: the agent loop found its arguments were not a
   * JSON object (stage schema) or its repeat guard stopped it (stage repeat_guard), or a
   * plan's step nests its arguments deeper than the gate takes (kernel/plans.ts). Audited as
   * every refusal is; the arguments are not recorded. Throws audit_failed if it cannot be.
   */
  refusedBeforeGate(
    principal: Principal,
    call: { name: string; callId?: string },
    refusal: { stage: "schema" | "repeat_guard"; code: string; reason: string },
  ): void {
    this.deps.audit.append({
      kind: "tool.denied",
      goalId: principal.goalId,
      agentId: principal.agentId,
      payload: {
        tool: auditText(call.name),
        ...refusal,
        reason: auditText(refusal.reason),
        ...(call.callId ? { call_id: auditCallId(call.callId) } : {}),
      },
    });
  }

  async invoke(principal: Principal, call: ToolCall): Promise<ToolResult> {
    // What the caller asks stageFailureOf about, should a stage fail (gate/stage-failure.ts).
    const asked: object = call;
    // The call's id is the provider's or a client's text: bounded and inert before any entry
    // keeps it (security/audit-text.ts).
    if (call.callId !== undefined) call = { ...call, callId: auditCallId(call.callId) };
    const tracer = this.deps.tracer;
    if (!tracer) return this.decideAndRun(principal, call, undefined, asked);
    return traceCall(tracer, principal, call, this.knowsTool(call.name), (span) =>
      this.decideAndRun(principal, call, span, asked),
    );
  }

  /**
   * Stages 1-7 up to tool.invoked: judged (gate/judge.ts), approved (gate/approval-wait.ts),
   * let through the hold (gate/hold.ts). A refusal is audited as tool.denied by `deny`; a stage
   * that throws instead (the container not started, a path not resolved in it, the approval
   * store failing, the hold failing) is audited as tool.errored with the stage it was at
   * (gate/stage-failure.ts), and its error reaches the caller as before. Either way one entry: a
   * denial whose own entry failed is not written twice. A call whose caller has gone is refused
   * after each await (gate/cancel.ts). `deny` is handed back for the last look before tool.invoked.
   */
  private async decide(
    principal: Principal,
    call: ToolCall,
    span: TraceSpan | undefined,
    asked: object,
  ): Promise<{ judged: Judged; passed: ApprovalPassed; deny: Deny }> {
    const { deps } = this;
    let denied = false;
    const deny: Deny = (code, stage, said, given = {}) => {
      denied = true;
      // A path the container resolved (a link named after a proxy credential) is named blanked.
      const reason = this.hidden(principal.goalId, said);
      const details = this.blankedJson(principal.goalId, given);
      // The denial entry is written before the error is reported; if it cannot be
      // written, the audit error wins (fail closed, and loudly).
      deps.audit.append({
        kind: "tool.denied",
        goalId: principal.goalId,
        agentId: principal.agentId,
        payload: {
          tool: auditText(call.name),
          stage,
          reason: auditText(reason),
          code,
          ...(call.callId ? { call_id: call.callId } : {}),
        },
      });
      span?.set({
        [Attr.gateVerdict]: "denied",
        [Attr.gateStage]: stage,
        [Attr.gateReason]: gateReason(deps.tracer?.content, code, reason),
      });
      throw new GateDenied(code, stage, reason, { tool: call.name, ...details });
    };
    const seen: Seen = {};
    try {
      // 1-6. the deciding stages (gate/judge.ts), shared with simulations.
      const judged = await judgeCall(deps, principal, call, deny, seen);
      // 6. approval: wait for a human, unless an earlier Allow Session / Allow Always covers
      // the call's scope (reused, audited).
      seen.stage = "approval";
      refuseIfCancelled(call.signal, "approval", deny);
      const passed = await awaitApproval(deps, principal, call, judged, span, deny);
      refuseIfCancelled(call.signal, "approval", deny);
      // 7. held while the goal's node is unsure of it (cluster mode: fenced, or paused past its
      // lease). A call the hold lets go without running is refused (tool.denied); a hold that
      // fails is the runtime's failure (tool.errored), gate/hold.ts.
      seen.stage = "hold";
      await passHold(deps, principal, call, deny);
      return { judged, passed, deny };
    } catch (e) {
      if (denied) throw e;
      // A stage that failed once the caller had gone (its sandbox call ended by the signal, the
      // goal's sandbox removed as its agent stopped): the cancellation, refused as such, the
      // stage's error in the reason (gate/cancel.ts).
      refuseIfCancelled(call.signal, seen.stage ?? "schema", deny, e);
      // Its error may quote a path the container resolved (a link named after a credential):
      // blanked in place, so tool.errored (the entry, the event) and the caller see it so.
      this.hideInError(principal.goalId, e);
      auditStageFailure(deps.audit, principal, call, seen.stage ?? "schema", e, asked);
      throw e;
    }
  }

  private async decideAndRun(
    principal: Principal,
    call: ToolCall,
    span: TraceSpan | undefined,
    asked: object,
  ): Promise<ToolResult> {
    const { deps } = this;
    const { judged, passed, deny } = await this.decide(principal, call, span, asked);
    const { tool, input, grants, needs, sandbox } = judged;
    const { confirmed, approvedHosts } = passed;
    // The last look, with nothing awaited between it and tool.invoked: an abort during the
    // return from decide() (a microtask of another task may run there) is seen here.
    refuseIfCancelled(call.signal, "hold", deny);
    span?.set({ [Attr.gateVerdict]: "allowed" });
    const invoked = deps.audit.record(
      "tool.invoked",
      {
        tool: tool.name,
        input: this.blankedJson(principal.goalId, input as JsonValue),
        ...(call.callId ? { call_id: call.callId } : {}),
      },
      { goalId: principal.goalId, agentId: principal.agentId },
    );
    const paths = new RunPaths(tool.name, grants, deps.policy, confirmed, call.callId);
    // settle() records how the run ended (tool.completed, or tool.failed and the error
    // rethrown) and hands the result back only once that entry is durable; the paths the
    // tool was refused while it ran are on record before it. What the run is handed is put
    // together in it: a failure there (no egress relay port left for the agent) ends the call
    // as tool.failed, where before it left tool.invoked without an end.
    return deps.audit.settle(
      invoked,
      async () => {
        const confinement = confinementFor(
          grants,
          deps.policy.closedPaths(confirmed),
          principal.agentId,
          principal.services?.skills,
        );
        // A socket client's call: its commands' connections name the call's request id in the
        // relay's questions while it runs (egress/callers.ts openCall; ended below,
        // and nothing that may throw comes between).
        const egress = deps.egress?.access(principal.goalId, principal.agentId, grants, call.requestId);
        const ctx: ToolContext = {
          sandbox,
          goalId: principal.goalId,
          agentId: principal.agentId,
          outputMaxBytes: deps.outputMaxBytes,
          judged: needs,
          // On a goal with a network, the agent's commands connect to its relay port only.
          confinement: egress ? { ...confinement, connect: egress.connect } : confinement,
          ...(egress ? { egress } : {}),
          allowNetwork: (host, port, opts) =>
            allowNetwork(
              deps,
              principal,
              { tool: tool.name, callId: call.callId },
              grants,
              { host, port },
              opts?.literal === true,
              approvedHosts,
            ),
          allowPath: (need, opts) => paths.allow(need, opts?.record !== false),
          ...(call.signal ? { signal: call.signal } : {}),
          ...(principal.services ? { services: principal.services } : {}),
          ...(span ? { trace: span } : {}),
        };
        try {
          const snapshot = tool.mutates && !principal.scratch && this.snapshots !== undefined;
          let snapshotId: string | undefined;
          if (snapshot) {
            snapshotId = await this.snapshots?.before(
              principal,
              tool.name,
              tool.keepsSnapshots?.(input) ?? [],
            );
            span?.set({ [Attr.snapshotId]: snapshotId });
          }
          if (call.beforeRun) {
            // A caller gone during the snapshot: its frame (seconds on a large workspace) is not taken.
            failedIfCancelled(call.signal, tool.name);
            await call.beforeRun({
              snapshotId,
              keep: tool.keepsSnapshots?.(input) ?? [],
              writes: needs.flatMap((n) => (n.kind === "file_write" ? [n.path] : [])),
            });
          }
          // Both awaits above may take seconds (a large workspace): a caller gone meanwhile is not
          // run for (gate/cancel.ts), and a node that became unsure of the goal meanwhile (its
          // fence fell) holds the call again; a refusal there is the run's failure (tool.failed).
          if (snapshot || call.beforeRun) await deps.beforeRun?.(principal.goalId, call.signal);
          failedIfCancelled(call.signal, tool.name);
          // Once tool.invoked is written the run is the tool's, cancel included: each honours the
          // signal as it can (a file write until it is sent, an exec killed), and adopt_world
          // not at all (it runs to its end, never half-applied).
          return await tool.run(input, ctx);
        } catch (e) {
          // Its error may name a path the container resolved (a link named after a credential).
          this.hideInError(principal.goalId, e);
          throw e;
        } finally {
          egress?.end?.();
          paths.audit(deps.audit, principal);
        }
      },
      (result) => ({
        output_bytes: Buffer.byteLength(result.output),
        ...(result.isError ? { is_error: true } : {}),
      }),
    );
  }

  /**
   * What the gate would decide about `call`, without asking anyone, auditing it, snapshotting
   * or running it (gate/simulate.ts): the same stages as invoke(), stopped before the
   * approval wait. Resolving paths may start the goal's container; nothing is written.
   */
  simulate(principal: Principal, call: ToolCall): Promise<StepJudgement> {
    return simulateCall(this.deps, principal, call);
  }
}
