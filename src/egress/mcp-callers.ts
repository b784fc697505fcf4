// egress/mcp-callers.ts — a stdio MCP server as an egress caller (issue 13, "no network
// unless granted"). A server the operator configured with `network:` entries runs, per goal,
// on an egress network of its own — never its goal's: the two must not reach each other —
// whose relay, listener and callers are keyed by a pseudo-goal id derived from the goal and
// the server (`mcpnet.<server>.<goal>`; goal ids are the kernel's, so no real goal is named
// so). On that network the server is one caller, `mcp:<server>`, whose grants are the
// operator's entries for it: no agent, token or human stands behind it. The sweep keeps such
// a network as long as its goal is live; the goal's end removes it with the server.

import { MCP_SERVER_NAME } from "../security/grants.js";

const PREFIX = "mcpnet.";
const CALLER_PREFIX = "mcp:";

/** The pseudo-goal id of the egress network of `server` in `goalId`. */
export function mcpEgressId(goalId: string, server: string): string {
  return `${PREFIX}${server}.${goalId}`;
}

/** The goal and server a pseudo-goal id of mcpEgressId names; undefined for any other id. */
export function parseMcpEgressId(id: string): { goalId: string; server: string } | undefined {
  if (!id.startsWith(PREFIX)) return undefined;
  const rest = id.slice(PREFIX.length);
  const dot = rest.indexOf(".");
  const server = rest.slice(0, dot);
  const goalId = rest.slice(dot + 1);
  if (dot < 0 || !MCP_SERVER_NAME.test(server) || goalId === "") return undefined;
  return { goalId, server };
}

/** The proxy user, and the audit's agent, of a server's connections. */
export function mcpCallerId(server: string): string {
  return `${CALLER_PREFIX}${server}`;
}

/** Its proxy user: the caller id cannot be (Basic credentials end the user at its first ":"). */
export function mcpProxyUser(server: string): string {
  return `mcp.${server}`;
}

/** The server an egress caller id names (`mcp:<server>`); undefined for an agent. */
export function serverOfCaller(agentId: string): string | undefined {
  if (!agentId.startsWith(CALLER_PREFIX)) return undefined;
  const server = agentId.slice(CALLER_PREFIX.length);
  return MCP_SERVER_NAME.test(server) ? server : undefined;
}
