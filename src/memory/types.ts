// memory/types.ts — the vocabulary of episodic memory: what a memory is, who owns it,
// who may see it and where it came from. Kept apart from the store so that tools, the
// CLI and the agent loop can speak about memories without pulling in SQLite.

/** private: only its owner identity; goal: every agent of the same goal; global: everyone. */
export const MEMORY_SCOPES = ["private", "goal", "global"] as const;
export type MemoryScopeKind = (typeof MEMORY_SCOPES)[number];

export const MEMORY_CATEGORIES = ["fact", "observation", "decision", "preference"] as const;
export type MemoryCategory = (typeof MEMORY_CATEGORIES)[number];

/**
 * trusted: the words came from the user or the operator. tool: they were written by an agent
 * that had read tool output (files, web pages, command output) — untrusted, shown as such.
 */
export const MEMORY_SOURCES = ["trusted", "tool"] as const;
export type MemorySource = (typeof MEMORY_SOURCES)[number];

export interface Provenance {
  goalId: string;
  agentId: string;
  source: MemorySource;
}

export interface MemoryRecord {
  id: number;
  /** Stable owner: derived from the agent identity (see memoryIdentity), not the agent id. */
  identity: string;
  scope: MemoryScopeKind;
  category: MemoryCategory;
  content: string;
  provenance: Provenance;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** The memory this one replaced, if any. */
  replaces: number | null;
  /** Set once a newer memory replaced this one; superseded memories are never queried. */
  supersededBy: number | null;
}

export interface StoreInput {
  identity: string;
  scope: MemoryScopeKind;
  category: MemoryCategory;
  content: string;
  provenance: Provenance;
  /** Id of a live memory of the same identity that this one supersedes. */
  replaces?: number;
}

export interface QueryInput {
  identity: string;
  /** The goal asking: decides which goal-shared memories are visible (and, without persistent memory, all of them). */
  goalId: string;
  query: string;
  limit?: number;
  categories?: readonly MemoryCategory[];
  /** People only (CLI search): every live memory, whoever owns it. Tools never set it. */
  everyone?: boolean;
}

export interface MemoryHit extends MemoryRecord {
  /** Cosine distance to the query: 0 is identical, 2 is opposite. Nearest first. */
  distance: number;
}

export interface QueryResult {
  hits: MemoryHit[];
  /** Live memories (anyone's) that the current embedder has not indexed; > 0 means run reembed. */
  unindexed: number;
  embedder: { id: string; dimensions: number };
}

/**
 * The memory owner of an agent identity (AgentRecord.identity: the manifest name for a
 * root, the lineage for a model-written child), shared by every incarnation of it, so a
 * persistent agent keeps its memory and a child named like an operator's manifest does not
 * read that manifest's memories. An agent of a goal an MCP session submitted (`by`: the
 * goal's submitted_by) owns memories in that session's namespace: the session's client's
 * model names the manifest, so a session goal named `bootstrap` read and planted the user's
 * own `bootstrap` goals' private memories (with persistent memory on).
 */
export function memoryIdentity(agentIdentity: string, by?: { session_id: string }): string {
  return by === undefined ? `agent:${agentIdentity}` : `mcp_session:${by.session_id}/agent:${agentIdentity}`;
}
