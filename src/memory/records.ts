// memory/records.ts — reading memory rows: the one mapping from the memories table's
// columns to MemoryRecord, shared by the store and the re-indexer.

import { type Db, prepared } from "../db/database.js";
import type { MemoryCategory, MemoryRecord, MemoryScopeKind, MemorySource } from "./types.js";

export interface MemoryRow {
  id: number;
  identity: string;
  scope: MemoryScopeKind;
  category: MemoryCategory;
  content: string;
  goal_id: string;
  agent_id: string;
  source: MemorySource;
  created_at: number;
  replaces: number | null;
  superseded_by: number | null;
}

export function toRecord(r: MemoryRow): MemoryRecord {
  return {
    id: r.id,
    identity: r.identity,
    scope: r.scope,
    category: r.category,
    content: r.content,
    provenance: { goalId: r.goal_id, agentId: r.agent_id, source: r.source },
    createdAt: r.created_at,
    replaces: r.replaces,
    supersededBy: r.superseded_by,
  };
}

export function getRecord(db: Db, id: number): MemoryRecord | undefined {
  const row = prepared(db, "SELECT * FROM memories WHERE id = ?").get(id) as MemoryRow | undefined;
  return row ? toRecord(row) : undefined;
}

export function getRecords(db: Db, ids: readonly number[]): Map<number, MemoryRecord> {
  if (ids.length === 0) return new Map();
  const rows = prepared(db, "SELECT * FROM memories WHERE id IN (SELECT value FROM json_each(?))").all(
    JSON.stringify(ids),
  ) as MemoryRow[];
  return new Map(rows.map((r) => [r.id, toRecord(r)]));
}
