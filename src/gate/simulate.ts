// gate/simulate.ts — what the gate would decide about one call, told before anything runs:
// the verdict (allow / deny / confirm) with the stage and the reason, and the call's
// side-effect inventory (paths read and written, commands with the programs they unfold
// to, hosts, whether a human would be asked and what an answer covers). It runs the
// deciding stages of the gate itself (gate/judge.ts) and stops where a real call would wait
// for a human: no approval request, no tool.invoked, no snapshot, no run, no tool.denied.
// The inventory is read from what the gate worked out (the needs, the exec analysis), never
// derived a second time. Resolving paths may start the goal's container (as a real call
// would); nothing is written. Auditing the simulation is the caller's (kernel/plans.ts).

import type { ErrorCode } from "../errors.js";
import type { DenyStage } from "../security/audit-events.js";
import { projectOfCall } from "./approval-wait.js";
import { GateDenied, type GateDeps, type Principal, type ToolCall } from "./invoke.js";
import { type Deny, type Judged, judgeCall, type Seen } from "./judge.js";
import { SCRIPT_VIA } from "./needs.js";
import type { Need } from "./types.js";

/** One command an exec call runs: the string, every simple command it unfolds to, its scripts. */
export interface CommandInventory {
  command: string;
  /** Every simple command the analysis unfolded (wrappers, `sh -c`, scripts), as argv text. */
  programs: string[];
  /** Script files the command hands to a shell, judged with it. */
  scripts?: string[];
}

export interface ApprovalInventory {
  /** A human would be asked (no standing decision covers the call). */
  would_ask: boolean;
  /** The standing decision that covers the call instead. */
  covered_by?: { via: "allow_session" | "allow_always"; approval_id?: string; grant_id?: string };
  /** What an answer would cover. */
  covers: string;
  /** Why a human is involved: approval_required, or a policy confirm rule. */
  why: string;
}

/** What a call would touch, as the gate judged it (as far as it got before a refusal). */
export interface Inventory {
  reads: string[];
  writes: string[];
  /** Paths an exec argument names whose direction only the program knows (read or written). */
  accesses: string[];
  commands: CommandInventory[];
  hosts: string[];
  approval?: ApprovalInventory;
}

export interface StepJudgement {
  tool: string;
  verdict: "allow" | "deny" | "confirm";
  /** The stage that refused (deny), or "approval" (confirm). */
  stage?: DenyStage;
  reason?: string;
  code?: ErrorCode;
  inventory: Inventory;
}

/** The gate's stages 1-6 on `call`, as a verdict and an inventory (see the header). */
export async function simulateCall(
  deps: GateDeps,
  principal: Principal,
  call: ToolCall,
): Promise<StepJudgement> {
  const seen: Seen = {};
  const deny: Deny = (code, stage, reason, details = {}) => {
    throw new GateDenied(code, stage, reason, { tool: call.name, ...details });
  };
  let judged: Judged;
  try {
    judged = await judgeCall(deps, principal, call, deny, seen);
  } catch (e) {
    if (!(e instanceof GateDenied)) throw e;
    return {
      tool: call.name,
      verdict: "deny",
      stage: e.stage,
      reason: e.message,
      code: e.code,
      inventory: inventoryOf(seen, seen.needs ?? seen.stated ?? []),
    };
  }
  const inventory = inventoryOf(seen, judged.needs);
  if (!judged.approval) return { tool: call.name, verdict: "allow", inventory };
  const { scope, why } = judged.approval;
  const standing = deps.approvals.covering({
    agentId: principal.agentId,
    identity: principal.identity,
    project: projectOfCall(principal),
    tool: judged.tool.name,
    scope,
  });
  inventory.approval = { would_ask: standing === undefined, covers: scope.target, why };
  if (standing) {
    inventory.approval.covered_by = {
      via: standing.via,
      ...(standing.approvalId ? { approval_id: standing.approvalId } : {}),
      ...(standing.grantId ? { grant_id: standing.grantId } : {}),
    };
    return { tool: call.name, verdict: "allow", inventory };
  }
  return { tool: call.name, verdict: "confirm", stage: "approval", reason: why, inventory };
}

/** The inventory of a call from the needs the gate found and the command it analysed. */
function inventoryOf(seen: Seen, needs: readonly Need[]): Inventory {
  const reads = new Set<string>();
  const writes = new Set<string>();
  const accesses = new Set<string>();
  const hosts = new Set<string>();
  const programs: string[] = [];
  const scripts = new Set<string>();
  for (const n of needs) {
    if (n.kind === "file_read") {
      reads.add(n.path);
      if (n.via === SCRIPT_VIA) scripts.add(n.path);
    } else if (n.kind === "file_write") writes.add(n.path);
    else if (n.kind === "file_access") accesses.add(n.path);
    else if (n.kind === "network") hosts.add(n.host);
    else if (n.kind === "exec") {
      const text = n.argv.join(" ");
      if (!programs.includes(text)) programs.push(text);
    }
  }
  for (const helper of seen.command?.helpers ?? []) if (!programs.includes(helper)) programs.push(helper);
  const input = seen.input as { command?: unknown } | undefined;
  const commands: CommandInventory[] =
    seen.tool?.name === "exec" && typeof input?.command === "string"
      ? [{ command: input.command, programs, ...(scripts.size > 0 ? { scripts: [...scripts] } : {}) }]
      : [];
  return {
    reads: [...reads],
    writes: [...writes],
    accesses: [...accesses],
    commands,
    hosts: [...hosts],
  };
}
