// db/database.ts — opens $AIDO_HOME/aido.db (WAL) and applies each module's schema.
// Modules own their tables: each passes its own named, ordered migrations to
// `migrate`, so no central file has to know every table.

import { existsSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { databaseFiles, ensurePrivateDir, ensurePrivateFile } from "../security/private-home.js";

export type Db = Database.Database;
export type Statement = Database.Statement;

// Compiled statements per connection, by SQL text. Preparing costs a parse and a plan
// every time; on the agent hot path (budget, registry, audit) that was a measurable
// share of the runtime's CPU per turn. Bounded: dynamic SQL (filters) cannot grow it
// without limit. A WeakMap, so a closed and dropped connection takes its cache with it.
const STATEMENT_CACHE_LIMIT = 500;
const statementCache = new WeakMap<Db, Map<string, Statement>>();

/**
 * `db.prepare(sql)`, compiled once per connection. The statement comes back in its
 * default mode (pluck and raw off), as a fresh one would, so callers may chain `.pluck()`
 * or `.raw()` as before. Do not hold one across a call that may use the same SQL (an
 * open `.iterate()` would make it busy).
 */
export function prepared(db: Db, sql: string): Statement {
  let cache = statementCache.get(db);
  if (!cache) {
    cache = new Map();
    statementCache.set(db, cache);
  }
  let stmt = cache.get(sql);
  if (!stmt) {
    if (cache.size >= STATEMENT_CACHE_LIMIT) cache.clear();
    stmt = db.prepare(sql);
    cache.set(sql, stmt);
  } else if (stmt.reader) {
    stmt.pluck(false);
    stmt.raw(false);
  }
  return stmt;
}

/**
 * The database file is made 0600 before SQLite opens it (SQLite would create it 0644 minus
 * the umask); SQLite then gives the -wal and -shm files it creates the database file's mode.
 * Existing ones from an older home are tightened too.
 */
export function openDatabase(file: string): Db {
  if (file !== ":memory:") {
    ensurePrivateDir(dirname(file));
    for (const f of databaseFiles(file)) if (f === file || existsSync(f)) ensurePrivateFile(f);
  }
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  // NORMAL in WAL mode: a commit survives a crash of the process (kill -9); only a
  // power loss can lose the last transactions. Modules that need more call fsync points.
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (module TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (module, version))",
  );
  return db;
}

/** Apply `steps[i]` as version i+1 of `module`, once, each in its own transaction. */
export function migrate(db: Db, module: string, steps: readonly string[]): void {
  const done = db
    .prepare("SELECT version FROM schema_migrations WHERE module = ?")
    .pluck()
    .all(module) as number[];
  const have = new Set(done);
  steps.forEach((sql, i) => {
    const version = i + 1;
    if (have.has(version)) return;
    db.transaction(() => {
      db.exec(sql);
      db.prepare("INSERT INTO schema_migrations (module, version) VALUES (?, ?)").run(module, version);
    })();
  });
}
