// gate/network-check.ts — a host a running tool asks for beyond the needs the gate judged (a
// redirect hop, the addresses a host resolved to): allowed only by a grant and the policy, and
// never to a host other than the one a human approved for the call. Every refusal is audited.

import { ErrorCode } from "../errors.js";
import { auditCallId, auditText } from "../security/audit-text.js";
import type { Grant } from "../security/grants.js";
import { grantsAllow } from "../security/narrowing.js";
import type { GateDeps, Principal } from "./invoke.js";
import { describeNeed } from "./needs.js";
import type { Need } from "./types.js";

/**
 * A host a running tool wants beyond its declared needs (a redirect hop, a private
 * address): allowed by a grant (literally naming it when `literal`) and by the policy.
 * When a human approved the call (`approvedHosts`), a hop to another host is refused: the
 * approval named its host ("web_fetch of any URL on host A"), and following a redirect
 * from A to B would carry it to a host nobody saw. A `literal` check is about the
 * addresses of a host already allowed, and is not held to it.
 * A refusal is audited like any other denial, naming the call (`callId`, as the gate's own
 * entries do: before, these entries named none, so a reader could not tell which call of a turn
 * was refused), its text inert and bounded (security/audit-text.ts); the tool reports it to the model.
 */
export function allowNetwork(
  deps: Pick<GateDeps, "audit" | "policy">,
  principal: Principal,
  { tool, callId }: { tool: string; callId?: string | undefined },
  grants: readonly Grant[],
  { host, port }: { host: string; port: number },
  literal: boolean,
  approvedHosts: ReadonlySet<string> | undefined,
): boolean {
  if (!literal && approvedHosts && !approvedHosts.has(`${host.toLowerCase()}:${port}`)) {
    deps.audit.append({
      kind: "tool.denied",
      goalId: principal.goalId,
      agentId: principal.agentId,
      payload: {
        tool: auditText(tool),
        stage: "approval",
        reason: auditText(
          `host ${host} is not the one a human approved for this call (${[...approvedHosts].join(", ")})`,
        ),
        code: ErrorCode.capabilityDenied,
        ...(callId ? { call_id: auditCallId(callId) } : {}),
      },
    });
    return false;
  }
  const need: Need = { kind: "network", host, port };
  const grant = literal
    ? grantsAllow(
        grants.filter((g) => g.kind === "network" && g.host === host.toLowerCase()),
        need,
      )
    : grantsAllow(grants, need);
  const decision = grant ? deps.policy.decide({ tool, input: {}, needs: [need] }) : undefined;
  if (grant && decision?.decision === "allow") return true;
  const reason = grant
    ? `policy refuses ${describeNeed(need)}`
    : `no capability grants ${describeNeed(need)}${literal ? " (a grant naming this address exactly is required)" : ""}`;
  deps.audit.append({
    kind: "tool.denied",
    goalId: principal.goalId,
    agentId: principal.agentId,
    payload: {
      tool: auditText(tool),
      stage: grant ? "policy" : "capability",
      reason: auditText(reason),
      code: ErrorCode.capabilityDenied,
      ...(callId ? { call_id: auditCallId(callId) } : {}),
    },
  });
  return false;
}
