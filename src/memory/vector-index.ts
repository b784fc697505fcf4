// memory/vector-index.ts — one vec0 table per (embedder id, dimension). Vectors of two
// models are never compared: a table's name is derived from a hash of both, a registry
// row records which model and dimension it holds, and memory_vectors says which memory
// has a vector in which table (the "model and dimension stored with each vector").
// Only live memories have vectors; superseding or deleting removes them everywhere.
// Vectors are stored unit-length under vec0's L2 metric (a quarter cheaper to scan than
// its cosine metric); for unit vectors L2 order is cosine order and cosine distance is
// L2^2 / 2, which is what callers get back.

import { createHash } from "node:crypto";
import { type Db, prepared } from "../db/database.js";
import type { Embedder } from "./embedder.js";

export interface VectorIndex {
  id: number;
  table: string;
  model: string;
  dimensions: number;
}

/** Columns vec0 filters on during the k-nearest search (metadata columns). */
export interface VectorRowMeta {
  /** "p:<identity>" private, "g:<goal>" goal-shared, "*" global: one IN (...) covers visibility. */
  vis: string;
  category: string;
  goalId: string;
}

export function indexTableName(model: string, dimensions: number): string {
  const digest = createHash("sha256")
    .update(`${model}\u0000${dimensions}\u0000unit-l2`)
    .digest("hex")
    .slice(0, 16);
  return `memory_vec_${digest}`;
}

export function visibilityKey(
  scope: "private" | "goal" | "global",
  identity: string,
  goalId: string,
): string {
  return scope === "private" ? `p:${identity}` : scope === "goal" ? `g:${goalId}` : "*";
}

/** The index for this embedder, created (table and registry row) on first use. */
export function ensureIndex(db: Db, embedder: Embedder): VectorIndex {
  const existing = findIndex(db, embedder);
  if (existing) return existing;
  const table = indexTableName(embedder.id, embedder.dimensions);
  db.transaction(() => {
    db.exec(
      `CREATE VIRTUAL TABLE IF NOT EXISTS "${table}" USING vec0(` +
        `embedding float[${embedder.dimensions}], vis text, category text, goal_id text)`,
    );
    prepared(
      db,
      "INSERT OR IGNORE INTO memory_indexes (table_name, model, dimensions, created_at) VALUES (?, ?, ?, ?)",
    ).run(table, embedder.id, embedder.dimensions, Date.now());
  })();
  return findIndex(db, embedder)!;
}

export function findIndex(db: Db, embedder: Pick<Embedder, "id" | "dimensions">): VectorIndex | undefined {
  return prepared(
    db,
    'SELECT id, table_name AS "table", model, dimensions FROM memory_indexes WHERE model = ? AND dimensions = ?',
  ).get(embedder.id, embedder.dimensions) as VectorIndex | undefined;
}

export function allIndexes(db: Db): VectorIndex[] {
  return prepared(
    db,
    'SELECT id, table_name AS "table", model, dimensions FROM memory_indexes ORDER BY id',
  ).all() as VectorIndex[];
}

export function insertVector(
  db: Db,
  index: VectorIndex,
  memoryId: number,
  vector: Float32Array,
  meta: VectorRowMeta,
): void {
  if (vector.length !== index.dimensions) {
    throw new RangeError(
      `vector of ${vector.length} dimensions for index ${index.model}/${index.dimensions}`,
    );
  }
  prepared(
    db,
    `INSERT INTO "${index.table}" (rowid, embedding, vis, category, goal_id) VALUES (?, ?, ?, ?, ?)`,
  ).run(BigInt(memoryId), unit(vector), meta.vis, meta.category, meta.goalId);
  prepared(db, "INSERT INTO memory_vectors (memory_id, index_id) VALUES (?, ?)").run(memoryId, index.id);
}

/** Removes a memory's vectors from every index (call inside the caller's transaction). */
export function removeVectors(db: Db, memoryIds: readonly number[]): void {
  if (memoryIds.length === 0) return;
  const indexes = allIndexes(db);
  const byIndex = new Map(indexes.map((i) => [i.id, i]));
  const rows = prepared(
    db,
    `SELECT memory_id, index_id FROM memory_vectors WHERE memory_id IN (SELECT value FROM json_each(?))`,
  ).all(JSON.stringify(memoryIds)) as { memory_id: number; index_id: number }[];
  for (const r of rows) {
    const index = byIndex.get(r.index_id);
    if (index) prepared(db, `DELETE FROM "${index.table}" WHERE rowid = ?`).run(BigInt(r.memory_id));
  }
  prepared(db, "DELETE FROM memory_vectors WHERE memory_id IN (SELECT value FROM json_each(?))").run(
    JSON.stringify(memoryIds),
  );
}

export interface KnnFilter {
  /** Absent: no visibility filter (a person searching everything). */
  visibility?: readonly string[];
  /** Only memories written during this goal (no persistent memory). */
  goalId?: string;
  categories?: readonly string[];
}

/** The k nearest live vectors passing the filter, nearest first. */
export function knn(
  db: Db,
  index: VectorIndex,
  vector: Float32Array,
  k: number,
  filter: KnnFilter,
): { id: number; distance: number }[] {
  const where = ["embedding MATCH ?", "k = ?"];
  const params: unknown[] = [unit(vector), k];
  if (filter.visibility) {
    where.push(`vis IN (${filter.visibility.map(() => "?").join(", ")})`);
    params.push(...filter.visibility);
  }
  if (filter.goalId !== undefined) {
    where.push("goal_id = ?");
    params.push(filter.goalId);
  }
  if (filter.categories && filter.categories.length > 0) {
    where.push(`category IN (${filter.categories.map(() => "?").join(", ")})`);
    params.push(...filter.categories);
  }
  const rows = prepared(
    db,
    `SELECT rowid AS id, distance FROM "${index.table}" WHERE ${where.join(" AND ")} ORDER BY distance`,
  ).all(...params) as { id: number | bigint; distance: number }[];
  return rows.map((r) => ({ id: Number(r.id), distance: (r.distance * r.distance) / 2 }));
}

/** The vector scaled to length 1 (a zero vector stays zero). */
export function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
  if (n === 0 || Math.abs(n - 1) < 1e-6) return v;
  const inv = 1 / Math.sqrt(n);
  return v.map((x) => x * inv);
}
