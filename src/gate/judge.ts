// gate/judge.ts — the stages of the gate that decide, as one function used by a real call
// (gate/invoke.ts, which then waits for a human, audits, snapshots and runs) and by a
// simulation (gate/simulate.ts, which stops here). Keeping them in one place is the point:
// a simulation is the gate's own judgement, not a second copy of it that could drift.
//   1 schema (how deep the arguments nest, then zod) -> 2 capability (the token, the tool, the needs the input states)
//   -> 3 policy on what the call states -> 4 budget
//   -> 5 (held while the goal's node is unsure of it, cluster mode: its container frozen)
//        the needs as the container resolves them (this may start the goal's container, or
//        connect an external MCP server: nothing is contacted before here), capability
//        and policy on them
//   -> 6 the approval decision: does the call need a human (manifest approval_required, a
//        policy confirm rule), and what would an answer cover (its scope).
// Nothing here writes anything: `deny` decides what a refusal does (invoke audits it as
// tool.denied and throws; a simulation throws only), and `seen` records what was worked out
// before a refusal, so a simulated denial still shows the needs the gate had found, and the
// stage at work, so a real call whose stage throws is audited with it (gate/stage-failure.ts).

import type { z } from "zod";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { SandboxHandle } from "../sandbox/types.js";
import { type ApprovalScope, approvalScopeOf } from "../security/approval-scope.js";
import { cutCode, summaryInput } from "../security/approval-shown.js";
import type { AskedBy } from "../security/approval-store.js";
import type { DenyStage, GateStage } from "../security/audit-events.js";
import { formatGrant, type Grant } from "../security/grants.js";
import { grantsAllow } from "../security/narrowing.js";
import type { PolicyDecision } from "../security/policy.js";
import type { CommandAnalysis } from "../security/shell.js";
import { inert } from "../security/terminal-text.js";
import type { VerifiedToken } from "../security/tokens.js";
import { argumentDepthRefusal, MAX_ARGUMENT_DEPTH } from "./argument-depth.js";
import { hiddenText, shownForApproval } from "./call-secrets.js";
import { refuseIfCancelled } from "./cancel.js";
import { privateTmpOf } from "./confinement.js";
import { passHold } from "./hold.js";
import type { GateDeps, Principal, ToolCall } from "./invoke.js";
import { describeNeed } from "./needs.js";
import { procNeedRefusal, procPathRefusal } from "./proc-paths.js";
import type { Need, NeedsContext, ToolDef } from "./types.js";

/** What a refusal does: audit and throw (a real call) or throw only (a simulation). */
export type Deny = (
  code: ErrorCode,
  stage: DenyStage,
  reason: string,
  details?: Record<string, unknown>,
) => never;

/** What the deciding stages worked out so far; filled as they go, read after a refusal too. */
export interface Seen {
  /** The stage at work: where a failure (a stage that threw rather than decided) happened. */
  stage?: GateStage;
  tool?: ToolDef<unknown>;
  input?: unknown;
  /** The needs the input states (stage 2). */
  stated?: Need[];
  /** The needs as the container resolved them (stage 5). */
  needs?: Need[];
  /** The analysed command the policy judged (exec). */
  command?: CommandAnalysis;
}

/** The approval stage's decision for a call that needs a human. */
export interface ApprovalNeed {
  /**
   * What an answer covers, worked out as the gate judged the call. Its key (what a standing
   * answer matches on) is the call's own; its target, the sentence a human reads, is shown
   * with the goal's secrets blanked (call-secrets.ts).
   */
  scope: ApprovalScope;
  /** Work the scope out again (after an answer: did a word come to lead elsewhere?). */
  scopeOf(): Promise<ApprovalScope>;
  /** The call's input as a human is shown it: the goal's secrets blanked, its shape kept. */
  input: unknown;
  /** What the prompt shows of the call (inert text, of the input as shown). */
  summary: string;
  /**
   * The secrets the call carries, by kind (call-secrets.ts shownForApproval: "the API key of
   * provider anthropic"), never by value: what the blanks in input, summary and target are.
   */
  carriesSecrets: string[];
  /** Why a human is asked: the manifest's approval_required, or a policy confirm rule. */
  why: string;
  /** The same, as a record the approval keeps (the rule, the manifest key, the tool's default). */
  askedBy: AskedBy;
}

/** A call none of the deciding stages refused. */
export interface Judged {
  tool: ToolDef<unknown>;
  input: unknown;
  grants: readonly Grant[];
  needs: Need[];
  sandbox: SandboxHandle;
  /** The confirm rule that matched, when the policy wants a human. */
  confirmRule?: Extract<PolicyDecision, { decision: "confirm" }>;
  /** Present when the call waits for a human unless a standing decision covers it. */
  approval?: ApprovalNeed;
}

/** Stages 1-6 of the gate for one call (see the header). */
export async function judgeCall(
  deps: GateDeps,
  principal: Principal,
  call: ToolCall,
  deny: Deny,
  seen: Seen = {},
): Promise<Judged> {
  // 1. schema (an external MCP tool is looked up for this agent: its server in the agent's
  // manifest, approved, the tool pinned; its input checked against the pin. Its server is
  // not contacted until stage 5, where its live definition is checked against the pin.)
  seen.stage = "schema";
  // A call whose caller has gone is refused before anything is looked up, and after each await
  // here (gate/cancel.ts): a stage that waited does not go on for nobody.
  refuseIfCancelled(call.signal, "schema", deny);
  const external = deps.tools.has(call.name) ? undefined : await deps.external?.resolve(principal, call.name);
  refuseIfCancelled(call.signal, "schema", deny);
  if (external && "refusal" in external) {
    const r = external.refusal;
    return deny(r.code, r.stage, r.reason);
  }
  const tool = deps.tools.get(call.name) ?? external?.tool;
  if (!tool) {
    return deny(ErrorCode.unknownTool, "schema", `unknown tool "${call.name}"`, {
      known: [...deps.tools.keys()].sort(),
    });
  }
  seen.tool = tool;
  // Before anything walks them recursively (zod, the audit's encoder): arguments nested
  // thousands deep would overflow a stack rather than be refused (gate/argument-depth.ts).
  const tooDeep = argumentDepthRefusal(tool.name, call.input);
  if (tooDeep !== undefined) {
    return deny(ErrorCode.invalidInput, "schema", tooDeep, { max_depth: MAX_ARGUMENT_DEPTH });
  }
  const input = parseInput(tool, call.input, (msg, field) =>
    deny(ErrorCode.invalidInput, "schema", msg, field === undefined ? {} : { field }),
  );
  seen.input = input;

  // 2. capability: the token first (forged, expired, revoked...), then the tool and
  // what the input states. Nothing here looks into the container.
  seen.stage = "capability";
  // The agent check is outside the try: a refusal there throws, and caught it was refused
  // (and audited) a second time.
  let verified: VerifiedToken;
  try {
    verified = deps.tokens.verify(principal.token);
  } catch (e) {
    return deny(ErrorCode.tokenInvalid, "capability", errorMessage(e));
  }
  if (verified.token.agentId !== principal.agentId) {
    return deny(ErrorCode.tokenInvalid, "capability", "capability token was issued to another agent");
  }
  const grants = verified.grants;
  const toolNeed: Need = tool.grantNeed ?? { kind: "tool", name: tool.name };
  const stated = judging(deny, () => tool.staticNeeds?.(input) ?? [toolNeed]);
  seen.stated = stated;
  for (const need of [toolNeed, ...stated]) {
    if (!grantsAllow(grants, need)) {
      return deny(ErrorCode.capabilityDenied, "capability", `no capability grants ${describeNeed(need)}`, {
        need,
        ...(need.kind === "tool" ? {} : { held: grants.map(formatGrant) }),
      });
    }
  }

  // 3. policy on what the call states (the exec command's analysis, tool rules).
  seen.stage = "policy";
  const early = deps.policy.decide({ tool: tool.name, input, needs: stated });
  if (early.decision === "deny") {
    return deny(ErrorCode.policyDenied, "policy", `${early.reason} (rule ${early.rule})`, {
      rule: early.rule,
    });
  }

  // 4. budget: an agent with nothing left cannot act.
  seen.stage = "budget";
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

  // 5. the needs as the container resolves them (this may start the goal's container, or
  // connect an external MCP server), each against the grants, then the policy on all of it.
  // Not while the goal's node is unsure of it (cluster mode: its containers frozen by the
  // fence): held as at stage 7 (gate/hold.ts), and refused at stage hold if let go. Before, a
  // path resolved in a frozen container got no answer for 10 s and the call ended as a sandbox
  // error, neither run nor refused (no tool.denied).
  seen.stage = "hold";
  await passHold(deps, principal, call, deny);
  seen.stage = "needs";
  const sandbox = deps.sandbox(principal.goalId);
  const readRefusal = (path: string): AidoError | undefined => {
    const need: Need = { kind: "file_read", path };
    const proc = procPathRefusal(path);
    if (proc !== undefined) return new AidoError(ErrorCode.policyDenied, proc, { need });
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
  const needsCtx: NeedsContext = {
    sandbox,
    readRefusal,
    privateTmp: privateTmpOf(principal.agentId),
    ...(call.signal ? { signal: call.signal } : {}),
  };
  const needs = await judgingAsync(deny, () => tool.needs(input, needsCtx));
  seen.needs = needs;
  refuseIfCancelled(call.signal, "needs", deny);
  for (const need of needs) {
    if (!grantsAllow(grants, need)) {
      return deny(ErrorCode.capabilityDenied, "capability", `no capability grants ${describeNeed(need)}`, {
        need,
        held: grants.map(formatGrant),
      });
    }
  }
  seen.stage = "policy";
  for (const need of needs) {
    const proc = procNeedRefusal(need);
    if (proc !== undefined) return deny(ErrorCode.policyDenied, "policy", proc, { need });
  }
  const command = tool.policyCommand?.(input);
  if (command) seen.command = command;
  const decision = deps.policy.decide({ tool: tool.name, input, needs, ...(command ? { command } : {}) });
  if (decision.decision === "deny") {
    return deny(ErrorCode.policyDenied, "policy", `${decision.reason} (rule ${decision.rule})`, {
      rule: decision.rule,
    });
  }

  // 6. the approval decision: manifest approval_required, or a policy "confirm" rule. The
  // scope is worked out only here (for exec it resolves every word in the container).
  seen.stage = "approval";
  const confirmRule = decision.decision === "confirm" ? decision : undefined;
  const judged: Judged = { tool, input, grants, needs, sandbox, ...(confirmRule ? { confirmRule } : {}) };
  if (principal.approvalRequired.has(tool.name) || confirmRule || tool.approvalReason) {
    const scopeOf = async () =>
      (await tool.approvalScope?.(input, needs, needsCtx)) ?? approvalScopeOf(tool.name, input, needs);
    const scope = await scopeOf();
    refuseIfCancelled(call.signal, "approval", deny);
    // A path the container resolved through a link named after a proxy credential of the goal
    // (`ln -s "/workspace/$HTTP_PROXY" l`), or a path or host naming the config's API key: no
    // human is asked about it. The scope's key is the request's identity (what a standing
    // answer matches on) and is recorded as it is: blanked, two calls differing only in the
    // secret would share it. The request, its audit entry and its event named the password
    // whole; the refusal's reason is blanked as every refusal's is (invoke.ts deny).
    if (hiddenText(deps, principal.goalId, scope.key) !== scope.key) {
      return deny(
        ErrorCode.policyDenied,
        "approval",
        `the approval this call needs would name a proxy credential of this goal or a secret of the config (${needs.map(describeNeed).join(", ")}); refused`,
      );
    }
    // What the human reads (the request's input, summary and target: approval.list, the
    // approval.requested entry and event, the dashboard, MCP, the cluster's mirror) is the call
    // with those secrets blanked in place, its shape kept; the call runs with its own input.
    // It is told which secrets the blanks stand for, by kind (carries_secrets).
    // The code an exec runs is shown as well (approval-shown.ts), blanked before it is cut, so
    // that no secret is cut in two with its first half shown.
    const asked = { input, target: scope.target, code: scope.code ?? [] };
    const { shown, carries } = shownForApproval(deps, principal.goalId, asked);
    const code = shown.code.length > 0 ? { code: cutCode(shown.code) } : {};
    judged.approval = {
      scope: { ...scope, target: shown.target, ...code },
      scopeOf,
      input: shown.input,
      summary: summarize(tool.name, shown.input, confirmRule?.reason),
      carriesSecrets: carries,
      why: confirmRule
        ? confirmRule.reason
        : principal.approvalRequired.has(tool.name)
          ? `the agent's manifest lists ${tool.name} in approval_required`
          : (tool.approvalReason as string),
      askedBy: confirmRule
        ? { source: "policy.confirm", rule: confirmRule.rule, text: confirmRule.text }
        : principal.approvalRequired.has(tool.name)
          ? { source: "approval_required", text: tool.name }
          : { source: "tool_default", text: tool.approvalReason as string },
    };
  }
  return judged;
}

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
  return inert(`${tool} ${summaryInput(input)}${reason ? ` — ${reason}` : ""}`);
}
