// A plan's frames (kernel/plan-undo.ts) against the snapshot store at its cap, on the host
// with real files: the frames never prune the snapshots the plan or the person still names
// (the gate's snapshot just before the step, a snapshot_restore step's target), and a frame
// is pinned as it is made, so another call's snapshot landing right after it cannot prune it.

import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PlanUndo, type PlanUndoDeps } from "../../src/kernel/plan-undo.js";
import { MIB } from "../../src/sandbox/quota.js";
import type { SnapshotRoots } from "../../src/sandbox/snapshot-manifest.js";
import { type SnapshotCreated, SnapshotStore } from "../../src/sandbox/snapshots.js";
import { makeTempHome, type TempHome } from "../support/home.js";

const KIB = 1024;
const goal = "g1";
let home: TempHome;
let ws: string;
let roots: SnapshotRoots;

beforeEach(() => {
  home = makeTempHome();
  ws = join(home.config.goalsDir, goal, "workspace");
  roots = { workspace: ws, output: join(home.config.goalsDir, goal, "output") };
  mkdirSync(ws, { recursive: true });
  mkdirSync(roots.output, { recursive: true });
});
afterEach(() => home.cleanup());

/** Random (incompressible, never deduplicated) content. */
const blob = (bytes: number) => randomBytes(bytes).toString("base64").slice(0, bytes);
/** A cap one 20 KiB file's snapshot fits in, two do not. */
const CAP_MB = (30 * KIB) / MIB;
const ids = async (store: SnapshotStore) => (await store.list(goal)).map((s) => s.id);

function undoOf(store: SnapshotStore, extra: Partial<PlanUndoDeps> = {}): PlanUndo {
  return new PlanUndo({
    snapshots: store,
    goalId: goal,
    roots,
    planId: "plan_t",
    actor: "agent_t",
    taken: () => undefined,
    ...extra,
  });
}

describe("a plan's frames with the store at its cap", () => {
  it("keep the gate's snapshot taken right before the step as long as the frame", async () => {
    const store = new SnapshotStore({ goalsDir: home.config.goalsDir, maxMb: CAP_MB });
    writeFileSync(join(ws, "a.txt"), blob(20 * KIB));
    // The gate's snapshot before the call: the one a person's snapshot_restore would use.
    const gate = await store.create(goal, roots, "before a mutating call");
    writeFileSync(join(ws, "a.txt"), blob(20 * KIB));
    const undo = undoOf(store);
    const hook = undo.frame(0, { kind: "tree" })!;
    await hook({ snapshotId: gate.id, keep: [], writes: [] });
    expect(await ids(store)).toContain(gate.id);
    writeFileSync(join(ws, "a.txt"), blob(20 * KIB));
    await undo.afterStep(0, { kind: "tree" });
    // The snapshot after the step, taken while the frame is held, spares it too.
    expect(await ids(store)).toContain(gate.id);
    undo.release();
  });

  it("keep a snapshot a step names (snapshot_restore's target) for the plan's life, however many frames come before it", async () => {
    const store = new SnapshotStore({ goalsDir: home.config.goalsDir, maxMb: CAP_MB });
    const first = blob(20 * KIB);
    writeFileSync(join(ws, "a.txt"), first);
    const target = await store.create(goal, roots, "the person's");
    const undo = undoOf(store, { named: [target.id] });
    for (let step = 0; step < 3; step++) {
      const hook = undo.frame(step, { kind: "tree" })!;
      await hook({ snapshotId: undefined, keep: [], writes: [] });
      writeFileSync(join(ws, "a.txt"), blob(20 * KIB));
      await undo.afterStep(step, { kind: "tree" });
      expect(await ids(store)).toContain(target.id);
    }
    // The step that names it can still put it back.
    await store.restore(goal, roots, target.id);
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe(first);
    undo.release();
  });

  it("pin the frame as it is made: another call's snapshot right after it does not prune it", async () => {
    /** A store where another call's snapshot lands between a frame's creation and its return. */
    class Interposed extends SnapshotStore {
      interpose = false;
      override async create(...args: Parameters<SnapshotStore["create"]>): Promise<SnapshotCreated> {
        const s = await super.create(...args);
        if (this.interpose && args[2]?.includes("before step")) {
          this.interpose = false;
          writeFileSync(join(ws, "a.txt"), blob(20 * KIB));
          await super.create(goal, roots, "another agent's call");
        }
        return s;
      }
    }
    const store = new Interposed({ goalsDir: home.config.goalsDir, maxMb: CAP_MB });
    const first = blob(20 * KIB);
    writeFileSync(join(ws, "a.txt"), first);
    const undo = undoOf(store);
    store.interpose = true;
    await undo.frame(0, { kind: "tree" })!({ snapshotId: undefined, keep: [], writes: [] });
    expect(store.interpose).toBe(false);
    writeFileSync(join(ws, "a.txt"), blob(20 * KIB));
    await undo.afterStep(0, { kind: "tree" });
    expect(undo.changedPaths).toBeGreaterThan(0);
    const r = await undo.restore(() => undefined);
    expect(r.files_failed).toEqual([]);
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe(first);
    undo.release();
  });

  it("two goals' plans at once, each store at its cap: each frame keeps its own goal's gate snapshot, and each undo works", async () => {
    const store = new SnapshotStore({ goalsDir: home.config.goalsDir, maxMb: CAP_MB });
    const goals = ["g1", "g2"].map((goalId) => {
      const folder = join(home.config.goalsDir, goalId, "workspace");
      const r = { workspace: folder, output: join(home.config.goalsDir, goalId, "output") };
      mkdirSync(folder, { recursive: true });
      mkdirSync(r.output, { recursive: true });
      return { goalId, folder, roots: r };
    });
    await Promise.all(
      goals.map(async ({ goalId, folder, roots: r }) => {
        const first = blob(20 * KIB);
        writeFileSync(join(folder, "a.txt"), first);
        const undo = new PlanUndo({
          snapshots: store,
          goalId,
          roots: r,
          planId: `plan_${goalId}`,
          actor: "agent_t",
          taken: () => undefined,
        });
        for (let step = 0; step < 3; step++) {
          const gate = await store.create(goalId, r, "before a mutating call");
          await undo.frame(step, { kind: "tree" })!({ snapshotId: gate.id, keep: [], writes: [] });
          expect((await store.list(goalId)).map((s) => s.id)).toContain(gate.id);
          writeFileSync(join(folder, "a.txt"), blob(20 * KIB));
          await undo.afterStep(step, { kind: "tree" });
        }
        const res = await undo.restore(() => undefined);
        expect(res).toMatchObject({ files_failed: [], conflicts: [] });
        expect(readFileSync(join(folder, "a.txt"), "utf8")).toBe(first);
        undo.release();
      }),
    );
  });
});
