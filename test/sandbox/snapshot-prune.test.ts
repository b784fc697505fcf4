// The snapshot store's own cap (sandbox.snapshots_max_mb), on the host with real files: the
// oldest snapshots are pruned and their packs compacted so the store fits, a snapshot whose
// contents alone pass the cap is refused, and compaction is crash-safe — stopped after any
// of its steps, the store still restores every snapshot that was not pruned, and the next
// snapshot finishes the job.

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { MIB } from "../../src/sandbox/quota.js";
import { planPrune, storeFiles, storeUsage } from "../../src/sandbox/snapshot-prune.js";
import { SnapshotStore, type SnapshotsPruned } from "../../src/sandbox/snapshots.js";
import { makeTempHome, type TempHome } from "../support/home.js";

const KIB = 1024;
const goal = "g1";
let home: TempHome;
let ws: string;
let roots: { workspace: string; output: string };
let pruned: SnapshotsPruned[];

beforeEach(() => {
  home = makeTempHome();
  ws = join(home.config.goalsDir, goal, "workspace");
  roots = { workspace: ws, output: join(home.config.goalsDir, goal, "output") };
  mkdirSync(ws, { recursive: true });
  mkdirSync(roots.output, { recursive: true });
  pruned = [];
});
afterEach(() => home.cleanup());

const storeDir = () => join(home.config.goalsDir, goal, "snapshots");
const capped = (maxMb: number) =>
  new SnapshotStore({ goalsDir: home.config.goalsDir, maxMb, onPruned: (_g, p) => pruned.push(p) });
/** Random (incompressible, never deduplicated) content. */
const blob = (bytes: number) => randomBytes(bytes).toString("base64").slice(0, bytes);
/** The workspace as {relative path: content}. */
function contents(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(ws)) out[name] = readFileSync(join(ws, name), "utf8");
  return out;
}
/** Make the workspace hold exactly `files`. */
function setFiles(files: Record<string, string>): void {
  for (const name of readdirSync(ws)) if (!(name in files)) rmSync(join(ws, name));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(ws, name), text);
}
/** Every content hash the pack indexes name, with how many indexes name it. */
function indexedHashes(): Map<string, number> {
  const out = new Map<string, number>();
  const dir = join(storeDir(), "packs");
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".idx"))) {
    const idx = readFileSync(join(dir, name));
    for (let at = 8; at < idx.length; at += 48) {
      const h = idx.toString("hex", at, at + 32);
      out.set(h, (out.get(h) ?? 0) + 1);
    }
  }
  return out;
}

/** Restore snapshot `id` with a fresh store and check the workspace is `expected` again. */
async function expectRestores(id: string, expected: Record<string, string>): Promise<void> {
  const r = await capped(1024).restore(goal, roots, id);
  expect(r.files_failed, `restore of ${id}`).toEqual([]);
  expect(contents(), `workspace after restoring ${id}`).toEqual(expected);
}

describe("a snapshot store past sandbox.snapshots_max_mb", () => {
  it("prunes the oldest snapshots, frees their content, and restores every one that remains", async () => {
    const store = capped(1);
    const states: { id: string; files: Record<string, string> }[] = [];
    for (let i = 0; i < 6; i++) {
      setFiles({ "keep.txt": "the same every time\n", "data.bin": blob(300 * KIB) });
      states.push({ id: (await store.create(goal, roots, `round ${i}`)).id, files: contents() });
      // Each snapshot adds 300 KiB: the store never holds more than the cap (plus the newest's manifest).
      expect(storeUsage(storeDir())).toBeLessThanOrEqual(MIB);
    }
    const listed = (await store.list(goal)).map((s) => s.id);
    const gone = states.filter((s) => !listed.includes(s.id)).map((s) => s.id);
    expect(gone.length).toBeGreaterThanOrEqual(3);
    expect(pruned.flatMap((p) => p.snapshot_ids)).toEqual(gone);
    for (const p of pruned) {
      expect(p.after_bytes).toBeLessThan(p.before_bytes);
      expect(p.after_bytes).toBeLessThanOrEqual(p.limit_bytes);
    }
    // Only what the remaining snapshots hold is left in the packs.
    expect(indexedHashes().size).toBe(listed.length + 1);
    for (const s of states.filter((s) => listed.includes(s.id))) await expectRestores(s.id, s.files);
    const e = await store.restore(goal, roots, gone[0]!).catch((x: unknown) => x);
    expect(isAidoError(e) && e.code).toBe("not_found");
    expect((e as Error).message).toMatch(/pruned to keep them under sandbox\.snapshots_max_mb/);
  });

  it("refuses a snapshot whose contents alone pass the cap, storing nothing, and keeps the others", async () => {
    const store = capped(1);
    setFiles({ "small.txt": "small\n" });
    const small = await store.create(goal, roots);
    const usage = storeUsage(storeDir());
    setFiles({ "small.txt": "small\n", "a.bin": blob(600 * KIB), "b.bin": blob(600 * KIB) });
    const e = await store.create(goal, roots).catch((x: unknown) => x);
    expect(isAidoError(e) && e.code).toBe("quota_exceeded");
    expect((e as Error).message).toMatch(
      /^snapshot refused: \/workspace and \/output hold more than 1\.0 MiB of distinct file contents, .*sandbox\.snapshots_max_mb \(1 MiB\)/,
    );
    expect(storeUsage(storeDir())).toBe(usage); // no pack, manifest or temp file left behind
    expect((await store.list(goal)).map((s) => s.id)).toEqual([small.id]);
    expect(pruned).toEqual([]);
    await expectRestores(small.id, { "small.txt": "small\n" });
  });

  it("never prunes a snapshot a restore is about to bring back; the next snapshot does", async () => {
    const store = capped(1);
    setFiles({ "data.bin": blob(600 * KIB) });
    const target = await store.create(goal, roots);
    const files = contents();
    setFiles({ "data.bin": blob(600 * KIB) });
    await store.create(goal, roots, "before the restore", { keep: [target.id] });
    expect((await store.list(goal)).map((s) => s.id)).toContain(target.id);
    await expectRestores(target.id, files);
    await store.create(goal, roots, "after");
    expect((await store.list(goal)).map((s) => s.id)).not.toContain(target.id);
  });

  it("keeps a snapshot whose contents fill the cap exactly (a workspace at its own cap can still be snapshotted)", async () => {
    const store = capped(1);
    setFiles({ "full.bin": blob(MIB) });
    const full = await store.create(goal, roots);
    const files = contents();
    setFiles({});
    await expectRestores(full.id, files);
  });
});

describe("compaction stopped after any step", () => {
  // Three snapshots, 400 KiB contents: s1 {A, B}, s2 {A2, B}, s3 {A3, B}. Under a 1 MiB cap
  // s1 and s2 go: s1's pack keeps only B (a rewrite), s2's pack goes whole.
  async function threeSnapshots() {
    const big = capped(1024);
    const B = blob(400 * KIB);
    const states: { id: string; files: Record<string, string> }[] = [];
    for (const A of [blob(400 * KIB), blob(400 * KIB), blob(400 * KIB)]) {
      setFiles({ "a.bin": A, "b.bin": B });
      states.push({ id: (await big.create(goal, roots)).id, files: contents() });
    }
    return states;
  }

  it("leaves a store that restores every snapshot not pruned, and the next snapshot finishes the job", async () => {
    const probe = await threeSnapshots();
    const plan = await planPrune({
      files: storeFiles(storeDir()),
      goalId: goal,
      newest: probe[2]!.id,
      maxBytes: MIB,
      usedBytes: storeUsage(storeDir()),
      newPackId: () => `snap_compacted${Math.random().toString(36).slice(2, 10)}`,
    });
    expect(plan.pruned).toEqual([probe[0]!.id, probe[1]!.id]);
    expect(plan.steps.map((s) => s.what.replace(/snap_\w+/g, "P"))).toEqual([
      "rewrite snapshots.jsonl",
      "remove manifest P",
      "remove manifest P",
      "copy 1 contents of P into P.pack",
      "write P.idx",
      "remove P.idx",
      "remove P.pack",
      "remove P.idx",
      "remove P.pack",
    ]);
    for (let k = 0; k <= plan.steps.length; k++) {
      home.cleanup();
      home = makeTempHome();
      ws = join(home.config.goalsDir, goal, "workspace");
      roots = { workspace: ws, output: join(home.config.goalsDir, goal, "output") };
      mkdirSync(ws, { recursive: true });
      mkdirSync(roots.output, { recursive: true });
      const states = await threeSnapshots();
      const partial = await planPrune({
        files: storeFiles(storeDir()),
        goalId: goal,
        newest: states[2]!.id,
        maxBytes: MIB,
        usedBytes: storeUsage(storeDir()),
        newPackId: () => `snap_compacted${k}x${Math.random().toString(36).slice(2, 8)}`,
      });
      // The crash: only the first k steps happened.
      for (const step of partial.steps.slice(0, k)) await step.run();
      for (const s of states.filter((s) => !partial.pruned.includes(s.id)))
        await expectRestores(s.id, s.files);

      // The next snapshot (same contents as s3) prunes and compacts what is left to do.
      pruned = [];
      const next = await capped(1).create(goal, roots);
      const listed = (await capped(1).list(goal)).map((s) => s.id);
      expect(listed, `after a crash at step ${k}`).toEqual([states[2]!.id, next.id]);
      expect(
        [...indexedHashes().values()].every((n) => n === 1),
        `no duplicate content after step ${k}`,
      ).toBe(true);
      expect(indexedHashes().size).toBe(2);
      expect(storeUsage(storeDir())).toBeLessThanOrEqual(MIB);
      expect(readdirSync(join(storeDir(), "packs")).filter((n) => !/\.(pack|idx)$/.test(n))).toEqual([]);
      for (const id of listed) await expectRestores(id, states[2]!.files);
      expect(existsSync(join(storeDir(), "manifests", `${states[0]!.id}.json`))).toBe(false);
    }
  });
});
