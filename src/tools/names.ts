// tools/names.ts — the names of the tools Aido ships, for checks that run before a
// runtime exists: a manifest's `approval_required` and the `tool: NAME` rules of config
// `policy.deny` / `policy.confirm`. A misspelt name there would silently name nothing (no
// human check, no deny), so it is refused with the nearest real name as a suggestion.
// The list is the runtime's tool registry at rest: test/manifest/tool-names.test.ts opens a
// runtime and requires the two to be equal, so neither can drift.
//
// External MCP tools (`mcp__<server>__<tool>`, tools/mcp/) are accepted by their shape:
// the tools a server offers are only known once it is reached, long after these checks.

export const BUILTIN_TOOL_NAMES: readonly string[] = [
  "adopt_world",
  "exec",
  "file_edit",
  "file_list",
  "file_read",
  "file_read_many",
  "file_write",
  "grep",
  "memory_delete",
  "memory_query",
  "memory_store",
  "skill_read",
  "snapshot_create",
  "snapshot_list",
  "snapshot_restore",
  "spawn_agent",
  "spawn_agents",
  "spawn_worlds",
  "web_fetch",
];

const KNOWN = new Set(BUILTIN_TOOL_NAMES);

/** `mcp__<server>__<tool>`: a server name (security/grants.ts MCP_SERVER_NAME) and an MCP tool name. */
const MCP_TOOL_NAME = /^mcp__([a-z][a-z0-9-]{0,31})__([A-Za-z0-9_.-]{1,64})$/;

/** The name an external MCP server's tool has among Aido's tools. */
export function mcpToolName(server: string, tool: string): string {
  return `mcp__${server}__${tool}`;
}

/** The server and tool an `mcp__<server>__<tool>` name stands for, or undefined. */
export function parseMcpToolName(name: string): { server: string; tool: string } | undefined {
  const m = MCP_TOOL_NAME.exec(name);
  return m ? { server: m[1] as string, tool: m[2] as string } : undefined;
}

/** Why `name` is not a tool (with the nearest tool name when one is close), or undefined. */
export function unknownToolProblem(name: string): string | undefined {
  if (KNOWN.has(name) || parseMcpToolName(name)) return undefined;
  const near = nearestToolName(name);
  return `unknown tool "${name}"${near ? ` (did you mean "${near}"?)` : ""}; tools are ${BUILTIN_TOOL_NAMES.join(", ")}`;
}

/** The tool name closest to `name` by edit distance, when it is close enough to be a typo. */
function nearestToolName(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const known of BUILTIN_TOOL_NAMES) {
    const d = editDistance(name.toLowerCase(), known);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}
