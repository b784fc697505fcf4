// kernel/goal-reach.ts — how far outside a goal submitted by an MCP session may reach: no
// further than the session itself. A session (sessions.ts) holds its manifest's grants, and
// its `network:` grants (hosts and ports its egress may open) and external MCP servers
// (`mcp:` grants, `mcp_servers`) are all it can reach beyond its container. A goal it hands to
// the swarm (goal.submit with `session_id`, mcp/orchestrator-tools.ts aido_submit) runs in a
// container of its own, so a goal allowed more reach would let a session without network
// send its project files out through the goal: files in as `inputs`, out by web_fetch.
//
// So the goal's root manifest is held to the session's reach on those two axes, before the
// goal exists; every descendant is then held by the narrowing it already passes (a child's
// grants within its parent's, its mcp_servers within its parent's: kernel/spawn.ts), and
// the held manifest is what the goal's row keeps, so a restart keeps it too:
//   a manifest the client's model named   refused (capability_denied) naming each key and
//                                         the session's limit on it: nothing is dropped
//                                         from what a model wrote without telling it;
//   the default bootstrap manifest        narrowed: its network/mcp grants become what
//                                         both it and the session allow, its mcp_servers
//                                         those the session has.
// Everything else (spawn, memory, files, commands in the goal's own container) is the
// goal's own business and is not narrowed.

import { AidoError, ErrorCode } from "../errors.js";
import type { LoadedManifest } from "../manifest/load.js";
import { formatGrant, type Grant } from "../security/grants.js";
import { grantCovers, uncoveredGrants } from "../security/narrowing.js";
import { formatOffenses, type Offense } from "./narrow-manifest.js";

/** What an MCP session can reach outside its container, as a ceiling for the goals it submits. */
export interface SessionReach {
  session_id: string;
  /** The session's `network:` and `mcp:` grants (from its verified token). */
  grants: readonly Grant[];
  /** The external MCP servers its effective manifest lists. */
  mcpServers: readonly string[];
}

/** Grants that reach outside the goal's container: the egress proxy or an external MCP server. */
export function isReachGrant(g: Grant): boolean {
  return g.kind === "network" || g.kind === "mcp";
}

/** The reach part of a session's grants and servers. */
export function sessionReach(
  sessionId: string,
  grants: readonly Grant[],
  mcpServers: readonly string[],
): SessionReach {
  return { session_id: sessionId, grants: grants.filter(isReachGrant), mcpServers: [...mcpServers] };
}

function spelled(list: readonly string[]): string {
  return `[${list.join(", ")}]`;
}

/** Each key of `m` that reaches further than `reach`, and the session's limit on it. */
export function reachOffenses(m: LoadedManifest, reach: SessionReach): Offense[] {
  const offenses: Offense[] = [];
  const wider = uncoveredGrants(reach.grants, m.capabilities.filter(isReachGrant));
  if (wider.length > 0) {
    offenses.push({
      key: "capabilities",
      message: `${wider.map((g) => `"${g}"`).join(", ")} beyond the session's network and mcp grants ${spelled(reach.grants.map(formatGrant))}`,
    });
  }
  const servers = (m.mcp_servers ?? []).filter((s) => !reach.mcpServers.includes(s));
  if (servers.length > 0) {
    offenses.push({
      key: "mcp_servers",
      message: `${servers.map((s) => `"${s}"`).join(", ")} not in the session's mcp_servers ${spelled([...reach.mcpServers])}`,
    });
  }
  return offenses;
}

/** Refuse (capability_denied) a manifest a client named that reaches further than its session. */
export function requireWithinReach(m: LoadedManifest, reach: SessionReach): void {
  const offenses = reachOffenses(m, reach);
  if (offenses.length === 0) return;
  const offending = uncoveredGrants(reach.grants, m.capabilities.filter(isReachGrant));
  throw new AidoError(
    ErrorCode.capabilityDenied,
    `manifest "${m.name}" reaches further than MCP session ${reach.session_id} may: ${formatOffenses(offenses)}`,
    {
      manifest: m.name,
      session_id: reach.session_id,
      keys: offenses.map((o) => o.key),
      ...(offending.length > 0 ? { offending } : {}),
    },
  );
}

/**
 * The manifest with its reach cut to what both it and the session allow: a reach grant is
 * kept when a session grant covers it, and a session grant is added when one of the
 * manifest's covers it ("network: *" under a session's "network: a.test" becomes
 * "network: a.test"); mcp_servers keeps those the session has. Other grants are untouched.
 */
export function narrowToReach(m: LoadedManifest, reach: SessionReach): LoadedManifest {
  const own = m.capabilities.filter(isReachGrant);
  const both = [
    ...own.filter((g) => reach.grants.some((s) => grantCovers(s, g))),
    ...reach.grants.filter((s) => own.some((g) => grantCovers(g, s))),
  ];
  const seen = new Set<string>();
  const kept = both.filter((g) => {
    const key = formatGrant(g);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return {
    ...m,
    capabilities: [...m.capabilities.filter((g) => !isReachGrant(g)), ...kept],
    ...(m.mcp_servers !== undefined
      ? { mcp_servers: m.mcp_servers.filter((s) => reach.mcpServers.includes(s)) }
      : {}),
  };
}
