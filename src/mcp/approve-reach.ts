// mcp/approve-reach.ts — what aido_approve may let a goal reach. A goal an MCP session
// submits reaches no further than the session (kernel/goal-reach.ts holds its manifest's
// `network:` grants to the session's), but a confirm rule on hosts no grant covers
// (`policy.confirm: ["network: *"]`) makes the egress relay ask a human about any host the
// goal's commands open (egress/gate-policy.ts). With `aido mcp serve --allow-approve` the
// session's model answers its goals' questions, so an "allow" there would let the model send
// the project out through its goal to a host the session itself never reaches. Such a
// question stays a human's (`aido approvals`); one about a host the session's own grants
// reach is answered as any other.

import type { ApprovalRecord } from "../client/types.js";
import { EGRESS_APPROVAL_TOOL } from "../egress/gate-policy.js";
import { parseGrant } from "../security/grants.js";
import { grantsAllow } from "../security/narrowing.js";

/** Why the session's model may not answer `a` (an egress question beyond its grants), or undefined. */
export function egressBeyondSession(a: ApprovalRecord, sessionGrants: readonly string[]): string | undefined {
  if (a.tool !== EGRESS_APPROVAL_TOOL) return undefined;
  const { host, port } = a.input as { host: string; port: number };
  const network = sessionGrants.filter((g) => g.startsWith("network:"));
  if (grantsAllow(network.map(parseGrant), { kind: "network", host, port })) return undefined;
  return `approval ${a.id} asks for egress to ${host} port ${port}, which this session's network grants [${network.join(", ")}] do not reach: a goal reaches no further than the session that submitted it, so a human answers it with \`aido approvals\``;
}
