// gate/invoke.ts — the only way a tool runs. Every call from a model, a socket client or
// a test takes this path, in this order:
//   schema (zod) -> capability (signed token, the tool, the needs the input states)
//   -> policy (on what the call states) -> budget
//   -> needs judged in the container (paths resolved there) -> capability and policy on them
//   -> approval -> audit "tool.invoked" (durable) -> snapshot before a mutation -> run in
//   the sandbox -> audit the result.
// Order matters twice. Nothing with a side effect happens before every check has passed
// and the audit entry is committed. And the goal's container is only looked at (needs()
// resolves paths with realpath inside it, which starts it) once every check that does not
// need it has passed: a call refused for its tool, its command or the budget starts nothing.
// Every refusal is audited as tool.denied with the stage that refused it, and surfaces
// as a GateDenied error the caller can show to the model (it can recover) or map to a
// JSON-RPC code.

import type { z } from "zod";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { SandboxHandle } from "../sandbox/types.js";
import { approvalScopeOf } from "../security/approval-scope.js";
import type { ApprovalQueue } from "../security/approvals.js";
import type { AuditLog } from "../security/audit.js";
import type { DenyStage } from "../security/audit-events.js";
import type { JsonValue } from "../security/canonical-json.js";
import { formatGrant, type Grant } from "../security/grants.js";
import { grantsAllow } from "../security/narrowing.js";
import type { PolicyEngine } from "../security/policy.js";
import { inert } from "../security/terminal-text.js";
import type { CapabilityToken, TokenAuthority } from "../security/tokens.js";
import { confinementFor } from "./confinement.js";
import { describeNeed } from "./needs.js";
import { RunPaths } from "./run-paths.js";
import { TurnSnapshots } from "./turn-snapshots.js";
import type { Need, ToolContext, ToolDef, ToolResult, ToolServices } from "./types.js";

/** Who is calling: an agent (or a socket client acting as one) and its signed token. */
export interface Principal {
  agentId: string;
  goalId: string;
  /** The agent's identity (kernel/registry.ts): what an Allow Always grant binds to. */
  identity: string;
  token: CapabilityToken;
  /** Tools that wait for a human decision (manifest approval_required). */
  approvalRequired: ReadonlySet<string>;
  /** Budget account of the agent; a call is refused while it has no tokens left. */
  budgetAccount?: string;
  services?: ToolServices;
  /** The agent loop's turn number; snapshot-before-mutation keys on it. */
  turn?: number;
}

export interface BudgetView {
  /** Tokens the account (and its ancestors and goal cap) can still reserve. */
  remaining(account: string): number;
}

export interface SnapshotHook {
  /**
   * Called before the first mutating call of each agent turn when policy requires it.
   * `keep`: snapshots the new one must not prune (ToolDef.keepsSnapshots).
   */
  beforeMutation(principal: Principal, keep: readonly string[]): Promise<void>;
}

export interface GateDeps {
  tools: ReadonlyMap<string, ToolDef<unknown>>;
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
}

export interface ToolCall {
  name: string;
  input: unknown;
  /** The model's tool_use id, recorded in the audit entries. */
  callId?: string;
  signal?: AbortSignal;
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

  /** The agent stopped (kernel/registry.ts stopAgent): drop what the gate kept for it. */
  agentStopped(agentId: string): void {
    this.snapshots?.forget(agentId);
  }

  async invoke(principal: Principal, call: ToolCall): Promise<ToolResult> {
    const { deps } = this;
    const deny = (
      code: ErrorCode,
      stage: DenyStage,
      reason: string,
      details: Record<string, unknown> = {},
    ): never => {
      // The denial entry is written before the error is reported; if it cannot be
      // written, the audit error wins (fail closed, and loudly).
      deps.audit.append({
        kind: "tool.denied",
        goalId: principal.goalId,
        agentId: principal.agentId,
        payload: { tool: call.name, stage, reason, code, ...(call.callId ? { call_id: call.callId } : {}) },
      });
      throw new GateDenied(code, stage, reason, { tool: call.name, ...details });
    };

    // 1. schema
    const tool = deps.tools.get(call.name);
    if (!tool) {
      return deny(ErrorCode.unknownTool, "schema", `unknown tool "${call.name}"`, {
        known: [...deps.tools.keys()].sort(),
      });
    }
    const input = parseInput(tool, call.input, (msg, field) =>
      deny(ErrorCode.invalidInput, "schema", msg, field === undefined ? {} : { field }),
    );

    // 2. capability: the token first (forged, expired, revoked...), then the tool and
    // what the input states. Nothing here looks into the container.
    let grants: readonly Grant[];
    try {
      const verified = deps.tokens.verify(principal.token);
      if (verified.token.agentId !== principal.agentId) {
        return deny(ErrorCode.tokenInvalid, "capability", "capability token was issued to another agent");
      }
      grants = verified.grants;
    } catch (e) {
      return deny(ErrorCode.tokenInvalid, "capability", errorMessage(e));
    }
    const toolNeed: Need = { kind: "tool", name: tool.name };
    const stated = judging(deny, () => tool.staticNeeds?.(input) ?? [toolNeed]);
    for (const need of [toolNeed, ...stated]) {
      if (!grantsAllow(grants, need)) {
        return deny(ErrorCode.capabilityDenied, "capability", `no capability grants ${describeNeed(need)}`, {
          need,
          ...(need.kind === "tool" ? {} : { held: grants.map(formatGrant) }),
        });
      }
    }

    // 3. policy on what the call states (the exec command's analysis, tool rules).
    const early = deps.policy.decide({ tool: tool.name, input, needs: stated });
    if (early.decision === "deny") {
      return deny(ErrorCode.policyDenied, "policy", `${early.reason} (rule ${early.rule})`, {
        rule: early.rule,
      });
    }

    // 4. budget: an agent with nothing left cannot act.
    if (deps.budget && principal.budgetAccount !== undefined) {
      const left = deps.budget.remaining(principal.budgetAccount);
      if (left <= 0) {
        return deny(
          ErrorCode.budgetExceeded,
          "budget",
          `token budget of ${principal.budgetAccount} is exhausted`,
          {
            account: principal.budgetAccount,
          },
        );
      }
    }

    // 5. the needs as the container resolves them (this may start the goal's container),
    // each against the grants, then the policy on all of it.
    const sandbox = deps.sandbox(principal.goalId);
    const readRefusal = (path: string): AidoError | undefined => {
      const need: Need = { kind: "file_read", path };
      if (!grantsAllow(grants, need))
        return new AidoError(ErrorCode.capabilityDenied, `no capability grants ${describeNeed(need)}`, {
          need,
        });
      // The call's own input: the policy judged it at stage 3 already; only the path is new.
      const d = deps.policy.decide({ tool: tool.name, input, needs: [need] });
      return d.decision === "deny"
        ? new AidoError(ErrorCode.policyDenied, `${d.reason} (rule ${d.rule})`, { rule: d.rule })
        : undefined;
    };
    const needs = await judgingAsync(deny, () => tool.needs(input, { sandbox, readRefusal }));
    for (const need of needs) {
      if (!grantsAllow(grants, need)) {
        return deny(ErrorCode.capabilityDenied, "capability", `no capability grants ${describeNeed(need)}`, {
          need,
          held: grants.map(formatGrant),
        });
      }
    }
    const command = tool.policyCommand?.(input);
    const decision = deps.policy.decide({ tool: tool.name, input, needs, ...(command ? { command } : {}) });
    if (decision.decision === "deny") {
      return deny(ErrorCode.policyDenied, "policy", `${decision.reason} (rule ${decision.rule})`, {
        rule: decision.rule,
      });
    }

    // 6. approval: manifest approval_required, or a policy "confirm" rule. An earlier
    // Allow Session / Allow Always that covers the call's scope is reused (audited). The
    // scope is worked out only here (for exec it resolves every word in the container).
    const confirmRule = decision.decision === "confirm" ? decision : undefined;
    // The confirm rules a human allows this call past, once it is allowed (below): only their
    // paths open to its Landlock domain and grep's view; every other confirm path stays shut.
    const confirmed = new Set<string>(confirmRule?.rules ?? []);
    // Hosts a human approved for this call: a redirect hop elsewhere is not what they saw.
    let approvedHosts: ReadonlySet<string> | undefined;
    if (principal.approvalRequired.has(tool.name) || confirmRule) {
      approvedHosts = new Set(needs.flatMap((n) => (n.kind === "network" ? [n.host.toLowerCase()] : [])));
      const scopeOf = async () =>
        (await tool.approvalScope?.(input, needs, { sandbox, readRefusal })) ??
        approvalScopeOf(tool.name, input, needs);
      const scope = await scopeOf();
      const outcome = await deps.approvals.authorize({
        goalId: principal.goalId,
        agentId: principal.agentId,
        identity: principal.identity,
        tool: tool.name,
        input,
        summary: summarize(tool.name, input, confirmRule?.reason),
        scope,
        timeoutMs: deps.approvalTimeoutMs,
        ...(call.callId ? { callId: call.callId } : {}),
        ...(call.signal ? { signal: call.signal } : {}),
      });
      if (!outcome.allowed) {
        const refusal = APPROVAL_REFUSALS[outcome.decision as keyof typeof APPROVAL_REFUSALS];
        const why = outcome.reason ? `${refusal.why}: ${outcome.reason}` : refusal.why;
        return deny(refusal.code, "approval", `${why} (approval ${outcome.approvalId})`, {
          approval_id: outcome.approvalId,
        });
      }
      // The human answered about what the call's words led to when it asked. Should a word
      // lead elsewhere now (a link swapped in while the request waited), the answer was
      // about other files: refused, and the next call asks (or matches) afresh.
      if (outcome.via === "answer" && tool.approvalScope && (await scopeOf()).key !== scope.key) {
        return deny(
          ErrorCode.approvalDenied,
          "approval",
          `the files the call names changed while it waited for approval ${outcome.approvalId}; the answer was about the files as they were, so the call did not run`,
          { approval_id: outcome.approvalId },
        );
      }
    }

    // 7. audit, durable, then snapshot (before the first mutation of a turn) and run.
    const invoked = deps.audit.record(
      "tool.invoked",
      { tool: tool.name, input: input as JsonValue, ...(call.callId ? { call_id: call.callId } : {}) },
      { goalId: principal.goalId, agentId: principal.agentId },
    );
    const paths = new RunPaths(tool.name, grants, deps.policy);
    const ctx: ToolContext = {
      sandbox,
      goalId: principal.goalId,
      agentId: principal.agentId,
      outputMaxBytes: deps.outputMaxBytes,
      judged: needs,
      confinement: confinementFor(
        grants,
        deps.policy.closedPaths(confirmed),
        principal.agentId,
        principal.services?.skills,
      ),
      allowNetwork: (host, opts) =>
        this.allowNetwork(principal, tool.name, grants, host, opts?.literal === true, approvedHosts),
      allowPath: (need, opts) => paths.allow(need, opts?.record !== false),
      ...(call.signal ? { signal: call.signal } : {}),
      ...(principal.services ? { services: principal.services } : {}),
    };
    // settle() records how the run ended (tool.completed, or tool.failed and the error
    // rethrown) and hands the result back only once that entry is durable; the paths the
    // tool was refused while it ran are on record before it.
    return deps.audit.settle(
      invoked,
      async () => {
        try {
          if (tool.mutates)
            await this.snapshots?.before(principal, tool.name, tool.keepsSnapshots?.(input) ?? []);
          return await tool.run(input, ctx);
        } finally {
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
   * A host a running tool wants beyond its declared needs (a redirect hop, a private
   * address): allowed by a grant (literally naming it when `literal`) and by the policy.
   * When a human approved the call (`approvedHosts`), a hop to another host is refused: the
   * approval named its host ("web_fetch of any URL on host A"), and following a redirect
   * from A to B would carry it to a host nobody saw. A `literal` check is about the
   * addresses of a host already allowed, and is not held to it.
   * A refusal is audited like any other denial; the tool reports it to the model.
   */
  private allowNetwork(
    principal: Principal,
    tool: string,
    grants: readonly Grant[],
    host: string,
    literal: boolean,
    approvedHosts: ReadonlySet<string> | undefined,
  ): boolean {
    if (!literal && approvedHosts && !approvedHosts.has(host.toLowerCase())) {
      this.deps.audit.append({
        kind: "tool.denied",
        goalId: principal.goalId,
        agentId: principal.agentId,
        payload: {
          tool,
          stage: "approval",
          reason: `host ${host} is not the one a human approved for this call (${[...approvedHosts].join(", ")})`,
          code: ErrorCode.capabilityDenied,
        },
      });
      return false;
    }
    const need: Need = { kind: "network", host };
    const grant = literal
      ? grants.find((g) => g.kind === "network" && g.host === host.toLowerCase())
      : grantsAllow(grants, need);
    const decision = grant ? this.deps.policy.decide({ tool, input: {}, needs: [need] }) : undefined;
    if (grant && decision?.decision === "allow") return true;
    const reason = grant
      ? `policy refuses ${describeNeed(need)}`
      : `no capability grants ${describeNeed(need)}${literal ? " (a grant naming this address exactly is required)" : ""}`;
    this.deps.audit.append({
      kind: "tool.denied",
      goalId: principal.goalId,
      agentId: principal.agentId,
      payload: { tool, stage: grant ? "policy" : "capability", reason, code: ErrorCode.capabilityDenied },
    });
    return false;
  }
}

type Deny = (code: ErrorCode, stage: DenyStage, reason: string) => never;

/** Why a call that was not allowed at the approval stage is refused. */
const APPROVAL_REFUSALS = {
  deny: { code: ErrorCode.approvalDenied, why: "a human denied the call" },
  timed_out: { code: ErrorCode.approvalTimeout, why: "approval timed out" },
  expired: { code: ErrorCode.approvalExpired, why: "the approval was closed unanswered" },
} as const;

/** A refusal raised while working out a call's needs, as the stage it belongs to. */
function refusalOf(e: unknown, deny: Deny): never {
  if (e instanceof AidoError && e.code === ErrorCode.policyDenied) return deny(e.code, "policy", e.message);
  if (
    e instanceof AidoError &&
    (e.code === ErrorCode.invalidInput || e.code === ErrorCode.capabilityDenied)
  ) {
    return deny(e.code, e.code === ErrorCode.invalidInput ? "schema" : "capability", e.message);
  }
  throw e;
}

function judging<T>(deny: Deny, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    return refusalOf(e, deny);
  }
}

async function judgingAsync<T>(deny: Deny, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    return refusalOf(e, deny);
  }
}

function parseInput<I>(tool: ToolDef<I>, raw: unknown, fail: (msg: string, field?: string) => never): I {
  const parsed = (tool.input as z.ZodType<I>).safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0];
  const field = first?.path.map(String).join(".");
  const detail = parsed.error.issues
    .slice(0, 5)
    .map((i) => {
      const keys = i.code === "unrecognized_keys" ? ` (${i.keys.join(", ")})` : "";
      return `${i.path.length ? i.path.join(".") : "input"}: ${i.message}${keys}`;
    })
    .join("; ");
  return fail(`invalid input for ${tool.name}: ${detail}`, field === "" ? undefined : field);
}

/** What the approval prompt shows of the call: inert text (a model chose the input). */
function summarize(tool: string, input: unknown, reason?: string): string {
  let text = JSON.stringify(input);
  if (text.length > 300) text = `${text.slice(0, 300)}…`;
  return inert(`${tool} ${text}${reason ? ` — ${reason}` : ""}`);
}
