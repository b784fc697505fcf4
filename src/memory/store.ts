// memory/store.ts — MemoryStore: episodic memories in SQLite, their vectors in vec0.
// Who sees what is decided here and nowhere else: own private memories, the same goal's
// shared ones, global ones; without persistent memory, only memories of the current goal.
// Only the owner may replace or delete a memory, and a stranger's id is "not found",
// never "forbidden", so that ids do not leak whether a memory exists.
//
// Every query needs the embedder's index status (how many live memories, how many it has
// vectors for), which counts rows. It is kept between queries while the tables cannot have
// changed: every write of this module goes through a store on some connection, and a store
// bumps its connection's generation after each one (even one that failed and rolled back),
// while a commit by another connection (the CLI beside a live daemon) changes SQLite's
// data_version; either one drops the kept status.

import * as sqliteVec from "sqlite-vec";
import type { Config } from "../config.js";
import { type Db, openDatabase, prepared } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { Embedder } from "./embedder.js";
import { getRecord, getRecords, type MemoryRow, toRecord } from "./records.js";
import { type IndexStatus, indexStatusOf, type ReembedResult, reembedAll } from "./reindex.js";
import { migrateMemory } from "./schema.js";
import type { MemoryHit, MemoryRecord, QueryInput, QueryResult, StoreInput } from "./types.js";
import { MEMORY_CATEGORIES, MEMORY_SCOPES, MEMORY_SOURCES } from "./types.js";
import {
  ensureIndex,
  findIndex,
  insertVector,
  type KnnFilter,
  knn,
  removeVectors,
  visibilityKey,
} from "./vector-index.js";

export const MAX_QUERY_LIMIT = 100;
const DEFAULT_QUERY_LIMIT = 5;
const REEMBED_BATCH = 256;
/** Address space for memory-mapped reads of the database (not memory use: pages stay in the OS cache). */
const MMAP_BYTES = 1024 * 1024 * 1024;

export interface MemoryStoreOptions {
  embedder: Embedder;
  /** Live memories one identity may hold; a store beyond it fails with limit_exceeded. */
  maxRecords: number;
  /** Bytes (UTF-8) of one memory's content; larger is refused. */
  maxContentBytes: number;
  /** config.persistentMemory: memories outlive their goal and are visible to later goals. */
  persistent: boolean;
  /** Close the database with the store (it was opened for the store). */
  ownsDb?: boolean;
  now?: () => number;
}

export interface ListFilter {
  identity?: string;
  goalId?: string;
  includeSuperseded?: boolean;
  limit?: number;
}

const invalid = (message: string, field: string) => new AidoError(ErrorCode.invalidInput, message, { field });

/** Per connection: bumped after every write a store makes through it (see the header). */
const generations = new WeakMap<Db, number>();

/** What the status was computed at: this connection's generation and SQLite's data_version. */
interface KeptStatus {
  generation: number;
  dataVersion: number;
  status: IndexStatus;
}

export class MemoryStore {
  readonly db: Db;
  readonly embedder: Embedder;
  private readonly opts: MemoryStoreOptions;
  private readonly now: () => number;
  private kept: KeptStatus | undefined;

  /** Opens (and migrates) config.dbPath with the sqlite-vec extension loaded. */
  static open(
    config: Pick<Config, "dbPath" | "memory" | "persistentMemory">,
    embedder: Embedder,
  ): MemoryStore {
    const db = openDatabase(config.dbPath);
    try {
      return new MemoryStore(db, {
        embedder,
        maxRecords: config.memory.maxRecords,
        maxContentBytes: config.memory.maxContentBytes,
        persistent: config.persistentMemory,
        ownsDb: true,
      });
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Uses an open database (e.g. the daemon's one connection); loads sqlite-vec into it. */
  constructor(db: Db, opts: MemoryStoreOptions) {
    sqliteVec.load(db);
    // vec0 scans its vector chunks on every query; through mmap SQLite reads them without
    // copying each page into its small page cache (about 3x faster at 100k x 384 dims).
    if ((db.pragma("mmap_size", { simple: true }) as number) < MMAP_BYTES)
      db.pragma(`mmap_size = ${MMAP_BYTES}`);
    migrateMemory(db);
    this.db = db;
    this.embedder = opts.embedder;
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  close(): void {
    if (this.opts.ownsDb) this.db.close();
  }

  async store(input: StoreInput): Promise<MemoryRecord> {
    this.validateStore(input);
    const [vector] = await this.embedder.embed([input.content]);
    if (!vector || vector.length !== this.embedder.dimensions) {
      throw new AidoError(
        ErrorCode.internal,
        `embedder ${this.embedder.id} returned a vector of the wrong size`,
      );
    }
    return this.writing(() => this.insert(input, vector));
  }

  private insert(input: StoreInput, vector: Float32Array): MemoryRecord {
    const index = ensureIndex(this.db, this.embedder);
    return this.db.transaction(() => {
      if (input.replaces !== undefined) this.requireOwnedLive(input.replaces, input.identity);
      else {
        const live = this.count({ identity: input.identity });
        if (live >= this.opts.maxRecords) {
          throw new AidoError(
            ErrorCode.limitExceeded,
            `memory limit reached: ${input.identity} holds ${live} memories (memory.max_records ${this.opts.maxRecords}); delete or replace one first`,
            { identity: input.identity, limit: this.opts.maxRecords },
          );
        }
      }
      const p = input.provenance;
      const id = Number(
        prepared(
          this.db,
          `INSERT INTO memories (identity, scope, category, content, goal_id, agent_id, source, created_at, replaces)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          input.identity,
          input.scope,
          input.category,
          input.content,
          p.goalId,
          p.agentId,
          p.source,
          this.now(),
          input.replaces ?? null,
        ).lastInsertRowid,
      );
      if (input.replaces !== undefined) {
        prepared(this.db, "UPDATE memories SET superseded_by = ? WHERE id = ?").run(id, input.replaces);
        removeVectors(this.db, [input.replaces]);
      }
      insertVector(this.db, index, id, vector, {
        vis: visibilityKey(input.scope, input.identity, p.goalId),
        category: input.category,
        goalId: p.goalId,
      });
      return this.get(id)!;
    })();
  }

  /** Nearest visible live memories first. Throws memory_not_indexed when the embedder's index is empty but memories exist. */
  async query(input: QueryInput): Promise<QueryResult> {
    const limit = input.limit ?? DEFAULT_QUERY_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_QUERY_LIMIT) {
      throw invalid(`memory query limit must be an integer in 1..${MAX_QUERY_LIMIT}, got ${limit}`, "limit");
    }
    if (input.query.trim() === "") throw invalid("memory query is empty", "query");
    for (const c of input.categories ?? []) {
      if (!(MEMORY_CATEGORIES as readonly string[]).includes(c))
        throw invalid(`unknown memory category "${c}"`, "categories");
    }
    const status = this.currentStatus();
    const embedder = { id: this.embedder.id, dimensions: this.embedder.dimensions };
    if (status.live > 0 && status.indexed === 0) {
      const others = status.others
        .map((o) => `${o.model} (${o.dimensions} dims, ${o.vectors} vectors)`)
        .join(", ");
      throw new AidoError(
        ErrorCode.memoryNotIndexed,
        `no memory is indexed for embedder ${embedder.id} (${embedder.dimensions} dims) but ${status.live} live memories exist` +
          `${others ? `, indexed under ${others}` : ""}; run reembed with this embedder to index them`,
        { embedder, live: status.live, others: status.others },
      );
    }
    if (status.live === 0) return { hits: [], unindexed: 0, embedder };
    if (input.everyone) {
      return {
        hits: await this.nearest(input.query, limit, {}),
        unindexed: status.live - status.indexed,
        embedder,
      };
    }
    const filter: KnnFilter = {
      visibility: [
        visibilityKey("private", input.identity, input.goalId),
        visibilityKey("goal", input.identity, input.goalId),
        "*",
      ],
      ...(this.opts.persistent ? {} : { goalId: input.goalId }),
      ...(input.categories ? { categories: input.categories } : {}),
    };
    return {
      hits: await this.nearest(input.query, limit, filter),
      unindexed: status.live - status.indexed,
      embedder,
    };
  }

  /** A person searches every live memory, whoever owns it (CLI). */
  async searchAll(query: string, limit = 10): Promise<QueryResult> {
    return this.query({ identity: "", goalId: "", query, limit, everyone: true });
  }

  private async nearest(query: string, limit: number, filter: KnnFilter): Promise<MemoryHit[]> {
    const index = findIndex(this.db, this.embedder);
    if (!index) return [];
    const [vector] = await this.embedder.embed([query]);
    const near = knn(this.db, index, vector!, limit, filter);
    const rows = getRecords(
      this.db,
      near.map((n) => n.id),
    );
    const hits: MemoryHit[] = [];
    for (const n of near) {
      const r = rows.get(n.id);
      if (r && r.supersededBy === null) hits.push({ ...r, distance: n.distance });
    }
    return hits;
  }

  /** An agent deletes its own memory (and the versions it replaced). Anyone else: not_found. */
  delete(id: number, identity: string): MemoryRecord {
    return this.writing(() =>
      this.db.transaction(() => {
        const rec = this.requireOwnedLive(id, identity);
        this.deleteChain(id);
        return rec;
      })(),
    );
  }

  /** A person deletes any memory (CLI). */
  deleteAny(id: number): MemoryRecord {
    return this.writing(() =>
      this.db.transaction(() => {
        const rec = this.get(id);
        if (!rec) throw new AidoError(ErrorCode.notFound, `memory ${id} not found`, { id });
        this.deleteChain(id);
        return rec;
      })(),
    );
  }

  get(id: number): MemoryRecord | undefined {
    return getRecord(this.db, id);
  }

  /** Newest first. */
  list(filter: ListFilter = {}): MemoryRecord[] {
    const { sql, params } = where(filter);
    const limit = filter.limit ?? 1000;
    const rows = prepared(
      this.db,
      `SELECT * FROM memories ${sql} ORDER BY created_at DESC, id DESC LIMIT ?`,
    ).all(...params, limit) as MemoryRow[];
    return rows.map(toRecord);
  }

  count(filter: Omit<ListFilter, "limit"> = {}): number {
    const { sql, params } = where(filter);
    return prepared(this.db, `SELECT count(*) FROM memories ${sql}`)
      .pluck()
      .get(...params) as number;
  }

  /** Deletes every memory (or every memory of one identity), superseded ones included. */
  reset(filter: { identity?: string } = {}): number {
    return this.writing(() =>
      this.db.transaction(() => {
        const ids = this.list({ ...filter, includeSuperseded: true, limit: Number.MAX_SAFE_INTEGER }).map(
          (r) => r.id,
        );
        this.deleteIds(ids);
        return ids.length;
      })(),
    );
  }

  /**
   * The end-of-goal hook: without persistent memory, a goal's memories go with it.
   * With persistent memory they stay (and this returns 0).
   */
  pruneGoal(goalId: string): number {
    if (this.opts.persistent) return 0;
    return this.writing(() =>
      this.db.transaction(() => {
        const ids = prepared(this.db, "SELECT id FROM memories WHERE goal_id = ?")
          .pluck()
          .all(goalId) as number[];
        this.deleteIds(ids);
        return ids.length;
      })(),
    );
  }

  /** Indexes every live memory the embedder has no vector for yet (after switching embedders). */
  async reembed(embedder: Embedder = this.embedder): Promise<ReembedResult> {
    // Each batch commits on its own between embed calls: the status goes stale at the first.
    this.bumpGeneration();
    try {
      return await reembedAll(this.db, embedder, REEMBED_BATCH);
    } finally {
      this.bumpGeneration();
    }
  }

  indexStatus(embedder: Pick<Embedder, "id" | "dimensions"> = this.embedder): IndexStatus {
    return indexStatusOf(this.db, embedder);
  }

  /** The status of this store's own embedder, recounted only when the tables may have changed. */
  private currentStatus(): IndexStatus {
    const generation = generations.get(this.db) ?? 0;
    const dataVersion = prepared(this.db, "PRAGMA data_version").pluck().get() as number;
    const kept = this.kept;
    if (kept && kept.generation === generation && kept.dataVersion === dataVersion) return kept.status;
    const status = indexStatusOf(this.db, this.embedder);
    this.kept = { generation, dataVersion, status };
    return status;
  }

  private bumpGeneration(): void {
    generations.set(this.db, (generations.get(this.db) ?? 0) + 1);
  }

  /** Runs a write; the kept status of every store on this connection is stale after it. */
  private writing<T>(write: () => T): T {
    try {
      return write();
    } finally {
      this.bumpGeneration();
    }
  }

  private validateStore(input: StoreInput): void {
    if (input.identity.trim() === "") throw invalid("memory identity is empty", "identity");
    if (!(MEMORY_SCOPES as readonly string[]).includes(input.scope))
      throw invalid(`unknown memory scope "${input.scope}"`, "scope");
    if (!(MEMORY_CATEGORIES as readonly string[]).includes(input.category)) {
      throw invalid(`unknown memory category "${input.category}"`, "category");
    }
    if (!(MEMORY_SOURCES as readonly string[]).includes(input.provenance.source)) {
      throw invalid(`unknown memory source "${input.provenance.source}"`, "provenance.source");
    }
    if (input.content.trim() === "") throw invalid("memory content is empty", "content");
    const bytes = Buffer.byteLength(input.content, "utf8");
    if (bytes > this.opts.maxContentBytes) {
      throw new AidoError(
        ErrorCode.limitExceeded,
        `memory content is ${bytes} bytes, more than memory.max_content_bytes (${this.opts.maxContentBytes})`,
        { field: "content", bytes, limit: this.opts.maxContentBytes },
      );
    }
  }

  private requireOwnedLive(id: number, identity: string): MemoryRecord {
    const rec = this.get(id);
    // One message for "absent", "someone else's" and "superseded": existence must not leak.
    if (!rec || rec.identity !== identity || rec.supersededBy !== null) {
      throw new AidoError(ErrorCode.notFound, `memory ${id} not found`, { id });
    }
    return rec;
  }

  /** A memory and every earlier version it replaced: forgetting a fact forgets its history too. */
  private deleteChain(id: number): void {
    const ids: number[] = [];
    let cur: number | null = id;
    while (cur !== null && !ids.includes(cur)) {
      ids.push(cur);
      cur =
        (prepared(this.db, "SELECT replaces FROM memories WHERE id = ?").pluck().get(cur) as number | null) ??
        null;
    }
    this.deleteIds(ids);
  }

  private deleteIds(ids: readonly number[]): void {
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      removeVectors(this.db, chunk);
      prepared(this.db, "DELETE FROM memories WHERE id IN (SELECT value FROM json_each(?))").run(
        JSON.stringify(chunk),
      );
    }
  }
}

function where(filter: Omit<ListFilter, "limit">): { sql: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (!filter.includeSuperseded) clauses.push("superseded_by IS NULL");
  if (filter.identity !== undefined) {
    clauses.push("identity = ?");
    params.push(filter.identity);
  }
  if (filter.goalId !== undefined) {
    clauses.push("goal_id = ?");
    params.push(filter.goalId);
  }
  return { sql: clauses.length ? `WHERE ${clauses.join(" AND ")}` : "", params };
}
