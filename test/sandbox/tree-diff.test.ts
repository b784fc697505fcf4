// What changed in a copy restored from a snapshot (src/sandbox/tree-diff.ts), on the host
// with a real snapshot store: only paths whose stat moved are compared, a rewrite with the
// same content is no change, old contents come from the snapshot, links are never followed.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SnapshotStore } from "../../src/sandbox/snapshots.js";
import { diffCopy, statTree, TEXT_DIFF_MAX_BYTES } from "../../src/sandbox/tree-diff.js";

let home: string;
let store: SnapshotStore;
const roots = (dir: string) => ({ workspace: join(dir, "workspace"), output: join(dir, "output") });

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "aido-tree-diff-"));
  store = new SnapshotStore({ goalsDir: join(home, "goals"), maxMb: 50 });
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

/** A real folder snapshotted, and a copy restored from it: what kernel/shadow.ts does. */
async function copyOf(files: Record<string, string>, readable: (path: string) => boolean = () => true) {
  const real = roots(join(home, "goals", "g1"));
  for (const dir of Object.values(real)) mkdirSync(dir, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(real.workspace, rel, ".."), { recursive: true });
    writeFileSync(join(real.workspace, rel), text);
  }
  const snap = await store.create("g1", real);
  const copy = roots(join(home, "copy"));
  for (const dir of Object.values(copy)) mkdirSync(dir, { recursive: true });
  await store.restore("g1", copy, snap.id);
  const before = await statTree(copy);
  const diff = () =>
    diffCopy(
      copy,
      before,
      (paths, contents) => store.readEntries("g1", snap.id, paths, contents ? TEXT_DIFF_MAX_BYTES : 0),
      readable,
    );
  return { copy, diff };
}

describe("diffCopy", () => {
  it("reports nothing for an untouched copy, and nothing for a file rewritten with the same content", async () => {
    const { copy, diff } = await copyOf({ "a.txt": "a\n", "src/b.txt": "b\n" });
    expect((await diff()).counts).toEqual({ added: 0, changed: 0, deleted: 0 });
    writeFileSync(join(copy.workspace, "a.txt"), "a\n");
    expect((await diff()).counts).toEqual({ added: 0, changed: 0, deleted: 0 });
  });

  it("reports added, changed (with the diff from the snapshot's content) and deleted paths with sizes", async () => {
    const { copy, diff } = await copyOf({ "a.txt": "one\ntwo\n", "gone.txt": "bye\n" });
    writeFileSync(join(copy.workspace, "a.txt"), "one\nTWO\n");
    writeFileSync(join(copy.output, "new.md"), "# new\n");
    unlinkSync(join(copy.workspace, "gone.txt"));
    const d = await diff();
    expect(d.added).toEqual([
      {
        path: "/output/new.md",
        type: "file",
        size: 6,
        diff: "--- /dev/null\n+++ b/output/new.md\n@@ -0,0 +1 @@\n+# new",
      },
    ]);
    expect(d.changed).toEqual([
      {
        path: "/workspace/a.txt",
        type: "file",
        size: 8,
        size_before: 8,
        diff: "--- a/workspace/a.txt\n+++ b/workspace/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO",
      },
    ]);
    expect(d.deleted).toEqual([{ path: "/workspace/gone.txt", type: "file", size: 4 }]);
  });

  it("reports a mode change, and a file replaced by a folder, without a text diff", async () => {
    const { copy, diff } = await copyOf({ "run.sh": "echo hi\n", data: "x" });
    chmodSync(join(copy.workspace, "run.sh"), 0o755);
    unlinkSync(join(copy.workspace, "data"));
    mkdirSync(join(copy.workspace, "data"));
    const d = await diff();
    expect(d.changed.map((c) => [c.path, c.type, c.diff])).toEqual([
      ["/workspace/data", "dir", undefined],
      ["/workspace/run.sh", "file", undefined],
    ]);
  });

  it("reports a planted link as a link and never reads what it points to; binary files get no text diff", async () => {
    const { copy, diff } = await copyOf({ "bin.dat": "plain" });
    symlinkSync("/etc/passwd", join(copy.workspace, "link"));
    writeFileSync(join(copy.workspace, "bin.dat"), Buffer.from([0, 1, 2, 3]));
    const d = await diff();
    expect(d.added).toEqual([{ path: "/workspace/link", type: "link", size: "/etc/passwd".length }]);
    expect(d.changed).toEqual([{ path: "/workspace/bin.dat", type: "file", size: 4, size_before: 5 }]);
  });

  it("keeps the diffs of one result under 256 KiB together, counting the ones left out", async () => {
    const line = (c: string) => `${c.repeat(99)}\n`;
    const files: Record<string, string> = {};
    for (let i = 0; i < 100; i++) files[`f${i}.txt`] = line("a").repeat(100);
    const { copy, diff } = await copyOf(files);
    // Every line of every file rewritten: each diff is some 20 KB.
    for (let i = 0; i < 100; i++) writeFileSync(join(copy.workspace, `f${i}.txt`), line("b").repeat(100));
    writeFileSync(join(copy.workspace, "new.txt"), line("c").repeat(100));
    const d = await diff();
    expect(d.counts).toEqual({ added: 1, changed: 100, deleted: 0 });
    const diffs = [...d.added, ...d.changed].flatMap((c) => (c.diff ? [c.diff] : []));
    expect(diffs.length).toBeGreaterThan(5);
    expect(diffs.reduce((n, t) => n + Buffer.byteLength(t), 0)).toBeLessThanOrEqual(256 * 1024);
    expect(d.diffs_omitted).toBe(101 - diffs.length);
  });

  it("shows no text of a path the caller may not read, before or after", async () => {
    const { copy, diff } = await copyOf(
      { "secret.env": "TOKEN=hunter2\n", "a.txt": "a\n" },
      (p) => p === "/workspace/a.txt",
    );
    writeFileSync(join(copy.workspace, "secret.env"), "x\n");
    writeFileSync(join(copy.workspace, "a.txt"), "b\n");
    writeFileSync(join(copy.workspace, "new.env"), "y\n");
    const d = await diff();
    expect(d.changed).toEqual([
      {
        path: "/workspace/a.txt",
        type: "file",
        size: 2,
        size_before: 2,
        diff: expect.stringContaining("-a\n+b"),
      },
      { path: "/workspace/secret.env", type: "file", size: 2, size_before: 14 },
    ]);
    expect(d.added).toEqual([{ path: "/workspace/new.env", type: "file", size: 2 }]);
    expect(d.diffs_omitted).toBe(0);
  });
});
