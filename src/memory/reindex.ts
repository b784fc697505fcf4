// memory/reindex.ts — which live memories an embedder's index covers, and filling the
// gap after an embedder switch. Kept out of the store because it is an operator's
// action (run once after changing memory.embedder), not part of an agent's call path.
// indexStatusOf is read by every query, though (store.ts keeps its answer while the
// tables cannot have changed), so its statements are the connection's cached ones.

import { type Db, prepared } from "../db/database.js";
import type { Embedder } from "./embedder.js";
import { getRecord, type MemoryRow, toRecord } from "./records.js";
import {
  allIndexes,
  ensureIndex,
  findIndex,
  insertVector,
  type VectorIndex,
  visibilityKey,
} from "./vector-index.js";

export interface IndexStatus {
  embedder: { id: string; dimensions: number };
  live: number;
  indexed: number;
  /** Other indexes holding vectors, e.g. the embedder used before a switch. */
  others: { model: string; dimensions: number; vectors: number }[];
}

export interface ReembedResult {
  indexed: number;
  model: string;
  dimensions: number;
}

/** Only live memories have vectors (replacing or deleting removes them), so no join is needed. */
function vectorsIn(db: Db, index: VectorIndex): number {
  return prepared(db, "SELECT count(*) FROM memory_vectors WHERE index_id = ?")
    .pluck()
    .get(index.id) as number;
}

export function indexStatusOf(db: Db, embedder: Pick<Embedder, "id" | "dimensions">): IndexStatus {
  const live = prepared(db, "SELECT count(*) FROM memories WHERE superseded_by IS NULL")
    .pluck()
    .get() as number;
  const index = findIndex(db, embedder);
  const others = allIndexes(db)
    .filter((i) => i.id !== index?.id)
    .map((i) => ({ model: i.model, dimensions: i.dimensions, vectors: vectorsIn(db, i) }))
    .filter((o) => o.vectors > 0);
  return {
    embedder: { id: embedder.id, dimensions: embedder.dimensions },
    live,
    indexed: index ? vectorsIn(db, index) : 0,
    others,
  };
}

/** Embeds, in batches, every live memory the embedder's index lacks. No transaction spans an embed call. */
export async function reembedAll(db: Db, embedder: Embedder, batchSize: number): Promise<ReembedResult> {
  const index = ensureIndex(db, embedder);
  const missing = db.prepare(
    `SELECT * FROM memories m WHERE m.superseded_by IS NULL
     AND NOT EXISTS (SELECT 1 FROM memory_vectors v WHERE v.memory_id = m.id AND v.index_id = ?)
     ORDER BY m.id LIMIT ?`,
  );
  const has = db.prepare("SELECT 1 FROM memory_vectors WHERE memory_id = ? AND index_id = ?");
  let indexed = 0;
  for (;;) {
    const batch = (missing.all(index.id, batchSize) as MemoryRow[]).map(toRecord);
    if (batch.length === 0) break;
    const vectors = await embedder.embed(batch.map((r) => r.content));
    let added = 0;
    db.transaction(() => {
      batch.forEach((r, i) => {
        // Re-read: a memory may have been replaced or deleted while the batch was embedding.
        const now = getRecord(db, r.id);
        if (!now || now.supersededBy !== null || has.get(r.id, index.id) !== undefined) return;
        insertVector(db, index, r.id, vectors[i]!, {
          vis: visibilityKey(r.scope, r.identity, r.provenance.goalId),
          category: r.category,
          goalId: r.provenance.goalId,
        });
        added++;
      });
    })();
    indexed += added;
  }
  return { indexed, model: embedder.id, dimensions: embedder.dimensions };
}
