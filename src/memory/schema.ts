// memory/schema.ts — the memory module's tables (applied through db/migrate as module
// "memory"). vec0 tables are not here: they are created per embedder on first use
// (vector-index.ts), because which models will be used is not known in advance.

import type { Db } from "../db/database.js";
import { migrate } from "../db/database.js";

const MIGRATIONS = [
  `CREATE TABLE memories (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     identity TEXT NOT NULL,
     scope TEXT NOT NULL CHECK (scope IN ('private', 'goal', 'global')),
     category TEXT NOT NULL CHECK (category IN ('fact', 'observation', 'decision', 'preference')),
     content TEXT NOT NULL,
     goal_id TEXT NOT NULL,
     agent_id TEXT NOT NULL,
     source TEXT NOT NULL CHECK (source IN ('trusted', 'tool')),
     created_at INTEGER NOT NULL,
     replaces INTEGER,
     superseded_by INTEGER
   );
   CREATE INDEX memories_identity_live ON memories (identity) WHERE superseded_by IS NULL;
   CREATE INDEX memories_goal ON memories (goal_id);
   CREATE TABLE memory_indexes (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     table_name TEXT NOT NULL UNIQUE,
     model TEXT NOT NULL,
     dimensions INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     UNIQUE (model, dimensions)
   );
   CREATE TABLE memory_vectors (
     memory_id INTEGER NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
     index_id INTEGER NOT NULL REFERENCES memory_indexes (id),
     PRIMARY KEY (memory_id, index_id)
   );
   CREATE INDEX memory_vectors_index ON memory_vectors (index_id);`,
] as const;

export function migrateMemory(db: Db): void {
  migrate(db, "memory", MIGRATIONS);
}
