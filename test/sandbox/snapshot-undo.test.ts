// The scoped undo (snapshot-undo.ts, through SnapshotStore.undo) on real folders: a path
// it put back is compared with what the change left, and compared again right before it is
// replaced or removed, so a person's save that lands while the undo runs is kept and
// reported as a conflict, never overwritten.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ManifestEntry } from "../../src/sandbox/snapshot-manifest.js";
import { SnapshotStore, type UndoChange } from "../../src/sandbox/snapshots.js";
import { makeTempHome, type TempHome } from "../support/home.js";

let home: TempHome;
let ws: string;
let roots: { workspace: string; output: string };
let store: SnapshotStore;
const goal = "g1";

beforeEach(() => {
  home = makeTempHome();
  ws = join(home.config.goalsDir, goal, "workspace");
  roots = { workspace: ws, output: join(home.config.goalsDir, goal, "output") };
  mkdirSync(roots.output, { recursive: true });
  mkdirSync(ws, { recursive: true });
  store = new SnapshotStore({ goalsDir: home.config.goalsDir, maxMb: 1024 });
});
afterEach(() => home.cleanup());

const read = (rel: string) => readFileSync(join(ws, rel), "utf8");

/** The change between two snapshots at each of `paths`, as plan-undo.ts names it. */
async function changesBetween(before: string, after: string, paths: string[]): Promise<UndoChange[]> {
  const [b, a] = await Promise.all([store.entries(goal, before), store.entries(goal, after)]);
  return paths.map((p) => ({
    path: `workspace/${p}`,
    expect: (a.get(`workspace/${p}`) ?? null) as ManifestEntry | null,
    target: (b.get(`workspace/${p}`) ?? null) as ManifestEntry | null,
    conflict: "changed after the step left it",
  }));
}

describe("undo of named changes", () => {
  it("keeps a person's save that lands after the path was compared and before it is replaced or removed", async () => {
    writeFileSync(join(ws, "edited.txt"), "v0\n");
    writeFileSync(join(ws, "deleted.txt"), "v0\n");
    const before = (await store.create(goal, roots, "before the step")).id;
    // The step: edits one file, deletes one, makes one.
    writeFileSync(join(ws, "edited.txt"), "step\n");
    rmSync(join(ws, "deleted.txt"));
    writeFileSync(join(ws, "made.txt"), "step\n");
    const after = (await store.create(goal, roots, "after the step")).id;
    const changes = await changesBetween(before, after, ["edited.txt", "deleted.txt", "made.txt"]);

    // Each path passes the first comparison; the person saves it just before the undo
    // writes it (permit is asked right before each change).
    const saved: string[] = [];
    const r = await store.undo(goal, roots, changes, (path) => {
      const name = path.slice("/workspace/".length);
      if (!saved.includes(name)) {
        saved.push(name);
        writeFileSync(join(ws, name), `person's ${name}\n`);
      }
      return undefined;
    });
    expect(saved.sort()).toEqual(["deleted.txt", "edited.txt", "made.txt"]);
    expect(read("edited.txt")).toBe("person's edited.txt\n");
    expect(read("deleted.txt")).toBe("person's deleted.txt\n");
    expect(read("made.txt")).toBe("person's made.txt\n");
    expect(r.conflicts.map((c) => c.path).sort()).toEqual([
      "/workspace/deleted.txt",
      "/workspace/edited.txt",
      "/workspace/made.txt",
    ]);
    expect(r.files_restored).toBe(0);
  });

  it("puts back what nobody touched meanwhile", async () => {
    writeFileSync(join(ws, "edited.txt"), "v0\n");
    writeFileSync(join(ws, "deleted.txt"), "v0\n");
    const before = (await store.create(goal, roots, "before the step")).id;
    writeFileSync(join(ws, "edited.txt"), "step\n");
    rmSync(join(ws, "deleted.txt"));
    writeFileSync(join(ws, "made.txt"), "step\n");
    const after = (await store.create(goal, roots, "after the step")).id;
    const changes = await changesBetween(before, after, ["edited.txt", "deleted.txt", "made.txt"]);
    const r = await store.undo(goal, roots, changes);
    expect(r).toMatchObject({ files_restored: 3, files_failed: [], conflicts: [] });
    expect(read("edited.txt")).toBe("v0\n");
    expect(read("deleted.txt")).toBe("v0\n");
    expect(existsSync(join(ws, "made.txt"))).toBe(false);
  });
});
