// memory/cli.ts — what `aido memory list | search | delete | reset` does, as plain
// functions returning data; the CLI layer owns argument parsing and printing. People
// see every memory (any identity, superseded ones on request), unlike agents.

import type { MemoryStore } from "./store.js";
import type { MemoryHit, MemoryRecord } from "./types.js";

export interface MemoryListOptions {
  identity?: string;
  goalId?: string;
  includeSuperseded?: boolean;
  limit?: number;
}

export function listMemories(store: MemoryStore, opts: MemoryListOptions = {}): MemoryRecord[] {
  return store.list({ ...opts, limit: opts.limit ?? 100 });
}

export interface MemorySearchResult {
  hits: MemoryHit[];
  unindexed: number;
}

/** Searches every live memory, whoever owns it, nearest first. */
export async function searchMemories(
  store: MemoryStore,
  query: string,
  limit = 10,
): Promise<MemorySearchResult> {
  const { hits, unindexed } = await store.searchAll(query, limit);
  return { hits, unindexed };
}

export function deleteMemory(store: MemoryStore, id: number): MemoryRecord {
  return store.deleteAny(id);
}

/** Deletes all memories, or those of one identity; returns how many went. */
export function resetMemories(store: MemoryStore, opts: { identity?: string } = {}): { deleted: number } {
  return { deleted: store.reset(opts) };
}
