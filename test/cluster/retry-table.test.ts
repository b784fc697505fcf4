// cluster/retry-table.ts on a real SQLite file: what a node still owes (an end to announce, an
// audit entry, a drop) outlives its process, a row the next process cannot read is said and
// skipped rather than stopping the node's start, and a write the database refuses is logged,
// never thrown (the node goes on with what it keeps in memory). The refusals are real: a
// database opened read-only, a table dropped under the node.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryTable, type RetryTableSpec, UnreadableRow } from "../../src/cluster/retry-table.js";
import { type Db, openDatabase } from "../../src/db/database.js";

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "aido-retry-table-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

type Row = { reason: string; node: string | null };

const MIGRATIONS = [
  "CREATE TABLE test_retries (goal_id TEXT PRIMARY KEY, reason TEXT NOT NULL)",
  "ALTER TABLE test_retries ADD COLUMN node TEXT",
];

/** The table over `db`, logging into `logs`. */
function table(db: Db, logs: string[], onConflict: "replace" | "keep" = "replace"): RetryTable<Row> {
  const spec: RetryTableSpec<Row> = {
    module: "test.retries",
    table: "test_retries",
    migrations: MIGRATIONS,
    columns: ["reason", "node"],
    onConflict,
    unwritten: (goalId) => `could not record ${goalId}`,
    undropped: (goalId) => `could not forget ${goalId}`,
    unreadable: (goalId, why) => `left ${goalId}: ${why}`,
  };
  return new RetryTable(db, spec, (m) => logs.push(m));
}

/** Rows read back as they are; one whose reason says "bad" is unreadable. */
const asRead = (r: Row) => (r.reason.startsWith("bad") ? new UnreadableRow(`reason ${r.reason}`) : r);

describe("a retry table", () => {
  it("gives a row back to the node's next process, until it is dropped", () => {
    const file = join(dir, "reopen.db");
    const logs: string[] = [];
    const first = openDatabase(file);
    const t = table(first, logs);
    expect(t.put("g_1", { reason: "refused", node: "n-a" })).toBe(true);
    expect(t.put("g_2", { reason: "refused", node: null })).toBe(true);
    first.close();

    const second = openDatabase(file);
    const again = table(second, logs);
    expect([...again.readBack(asRead)]).toEqual([
      ["g_1", { reason: "refused", node: "n-a" }],
      ["g_2", { reason: "refused", node: null }],
    ]);
    expect(again.delete("g_1")).toBe(true);
    second.close();

    const third = openDatabase(file);
    expect([...table(third, logs).readBack(asRead).keys()]).toEqual(["g_2"]);
    // Migrated once: the module's versions, as an older node's database has them.
    expect(
      third.prepare("SELECT version FROM schema_migrations WHERE module = 'test.retries'").pluck().all(),
    ).toEqual([1, 2]);
    third.close();
    expect(logs).toEqual([]);
  });

  it("replaces a goal's row, or keeps the first one, as the table says", () => {
    const logs: string[] = [];
    const db = openDatabase(join(dir, "conflict.db"));
    const replacing = table(db, logs, "replace");
    replacing.put("g_r", { reason: "first", node: "n-a" });
    replacing.put("g_r", { reason: "second", node: null });
    expect(replacing.readBack(asRead).get("g_r")).toEqual({ reason: "second", node: null });
    const keeping = table(db, logs, "keep");
    keeping.put("g_r", { reason: "third", node: "n-b" });
    expect(keeping.readBack(asRead).get("g_r")).toEqual({ reason: "second", node: null });
    db.close();
    expect(logs).toEqual([]);
  });

  it("logs and skips a row it cannot read, leaves it in the table, and reads the others", () => {
    const file = join(dir, "bad.db");
    const logs: string[] = [];
    const db = openDatabase(file);
    const t = table(db, logs);
    t.put("g_good", { reason: "refused", node: null });
    t.put("g_bad", { reason: "bad json", node: null });
    // Whoever can write the file put a blob where text belongs.
    db.prepare("INSERT INTO test_retries (goal_id, reason, node) VALUES (?, ?, ?)").run(
      "g_blob",
      "refused",
      Buffer.from([0, 1, 2]),
    );
    db.prepare("INSERT INTO test_retries (goal_id, reason) VALUES (?, ?)").run(Buffer.from("g_x"), "refused");
    const read = t.readBack(asRead);
    expect([...read.keys()]).toEqual(["g_good"]);
    expect(logs).toEqual([
      "left g_bad: reason bad json",
      "left g_blob: its node is not text",
      "cluster: a row of the node's database (test_retries) is left where it is: its goal_id is not text",
    ]);
    expect(db.prepare("SELECT COUNT(*) FROM test_retries").pluck().get()).toBe(4);
    db.close();
  });

  it("logs a write a read-only database refuses, and does not throw", () => {
    const file = join(dir, "readonly.db");
    const writable = openDatabase(file);
    table(writable, []).put("g_kept", { reason: "refused", node: null });
    writable.close();

    const logs: string[] = [];
    const db = new Database(file, { readonly: true });
    const t = table(db, logs);
    expect(t.readBack(asRead).has("g_kept")).toBe(true);
    expect(t.put("g_new", { reason: "refused", node: null })).toBe(false);
    expect(t.delete("g_kept")).toBe(false);
    expect(logs).toEqual([
      "could not record g_new: attempt to write a readonly database",
      "could not forget g_kept: attempt to write a readonly database",
    ]);
    db.close();
    const reopened = openDatabase(file);
    expect([...table(reopened, []).readBack(asRead).keys()]).toEqual(["g_kept"]);
    reopened.close();
  });

  it("logs a write to a table dropped under it, and does not throw", () => {
    const logs: string[] = [];
    const db = openDatabase(join(dir, "dropped.db"));
    const t = table(db, logs);
    expect(t.put("g_1", { reason: "refused", node: null })).toBe(true);
    db.exec("DROP TABLE test_retries");
    expect(t.put("g_2", { reason: "refused", node: null })).toBe(false);
    expect(t.delete("g_1")).toBe(false);
    expect(logs).toEqual([
      "could not record g_2: no such table: test_retries",
      "could not forget g_1: no such table: test_retries",
    ]);
    db.close();
  });

  it("refuses a table or column name that is not a plain SQL name", () => {
    const db = openDatabase(join(dir, "names.db"));
    expect(
      () =>
        new RetryTable<{ "reason; DROP TABLE x": string }>(
          db,
          {
            module: "test.names",
            table: "test_names",
            migrations: [],
            columns: ["reason; DROP TABLE x"],
            onConflict: "keep",
            unwritten: () => "",
            undropped: () => "",
            unreadable: () => "",
          },
          () => {},
        ),
    ).toThrow(/"reason; DROP TABLE x" is not a SQL name/);
    db.close();
  });
});
