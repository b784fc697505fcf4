// gate/run-paths.ts — paths a tool touches that it could not declare before it ran (a
// snapshot restore learns them only by comparing the snapshot with the folders). The gate
// hands the tool ToolContext.allowPath, answered here from the same grants and policy the
// needs were judged by; the refusals are kept and audited together when the call ends,
// one tool.denied entry per stage, so a restore of 10,000 files does not write 10,000.

import { ErrorCode } from "../errors.js";
import type { AuditLog } from "../security/audit.js";
import type { DenyStage } from "../security/audit-events.js";
import { auditCallId, auditText } from "../security/audit-text.js";
import type { Grant } from "../security/grants.js";
import { grantsAllow } from "../security/narrowing.js";
import type { PolicyEngine } from "../security/policy.js";
import { describeNeed } from "./needs.js";
import type { PathNeed } from "./types.js";

interface RefusedPath {
  need: PathNeed;
  stage: DenyStage;
  reason: string;
}

/** The paths one call asked about while it ran, and what was refused. */
export class RunPaths {
  private readonly refused: RefusedPath[] = [];

  constructor(
    private readonly tool: string,
    private readonly grants: readonly Grant[],
    private readonly policy: PolicyEngine,
    /** Confirm rules a human allowed this very call past (PolicyDecision.rules ids). */
    private readonly confirmed: ReadonlySet<string> = new Set(),
    /** The call's id, named in the entries as the gate's own entries name it. */
    private readonly callId?: string,
  ) {}

  /**
   * Undefined when a grant and the policy allow `need`, else why not. A `confirm` rule
   * counts as a refusal (the call cannot stop to ask) unless the human who allowed the
   * call answered that very rule (a `tool: snapshot_restore` rule covers every path the
   * restore learns; a path rule the call did not match when it asked stays shut).
   * `record: false` asks without the answer counting as a refusal (the tool only decides
   * what to report).
   */
  allow(need: PathNeed, record = true): string | undefined {
    let stage: DenyStage = "capability";
    let reason: string | undefined;
    if (!grantsAllow(this.grants, need)) reason = `no capability grants ${describeNeed(need)}`;
    else {
      const d = this.policy.decide({ tool: this.tool, input: {}, needs: [need] });
      if (d.decision === "deny") reason = `${d.reason} (rule ${d.rule})`;
      else if (d.decision === "confirm") {
        const unasked = d.rules.filter((id) => !this.confirmed.has(id));
        if (unasked.length === d.rules.length)
          reason = `${d.reason} (rule ${d.rule}), which this call cannot stop to ask`;
        else if (unasked.length > 0)
          reason = `rule ${unasked.join(", ")} asks a human to confirm ${describeNeed(need)}, which the human who allowed this call was not asked about`;
      }
      if (reason !== undefined) stage = "policy";
    }
    if (reason !== undefined && record) this.refused.push({ need, stage, reason });
    return reason;
  }

  /** One tool.denied entry per stage, naming the first ten paths and the count. */
  audit(audit: AuditLog, ids: { goalId: string; agentId: string }): void {
    for (const stage of ["capability", "policy"] as const) {
      const these = this.refused.filter((r) => r.stage === stage);
      if (these.length === 0) continue;
      const shown = these.slice(0, 10).map((r) => `${r.need.kind} ${r.need.path}`);
      const more = these.length > shown.length ? ` and ${these.length - shown.length} more` : "";
      audit.append({
        kind: "tool.denied",
        goalId: ids.goalId,
        agentId: ids.agentId,
        payload: {
          tool: auditText(this.tool),
          stage,
          reason: auditText(
            `${these.length} path(s) left untouched: ${shown.join(", ")}${more}; ${these[0]!.reason}`,
          ),
          code: stage === "policy" ? ErrorCode.policyDenied : ErrorCode.capabilityDenied,
          ...(this.callId ? { call_id: auditCallId(this.callId) } : {}),
        },
      });
    }
  }
}
