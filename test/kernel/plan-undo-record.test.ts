// What a plan's undo (kernel/plan-undo.ts) records and puts back, with the snapshot store on
// real files: a file step that reports no path (it threw after writing) is recorded at the
// path the gate judged it to write, not at the path its input names; a mode-only undo of a
// file someone hard-linked elsewhere leaves the other name's mode alone.

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PlanUndo } from "../../src/kernel/plan-undo.js";
import type { SnapshotRoots } from "../../src/sandbox/snapshot-manifest.js";
import { SnapshotStore } from "../../src/sandbox/snapshots.js";
import { makeTempHome, type TempHome } from "../support/home.js";

const goal = "g1";
let home: TempHome;
let ws: string;
let roots: SnapshotRoots;
let undo: PlanUndo;

beforeEach(() => {
  home = makeTempHome();
  ws = join(home.config.goalsDir, goal, "workspace");
  roots = { workspace: ws, output: join(home.config.goalsDir, goal, "output") };
  mkdirSync(ws, { recursive: true });
  mkdirSync(roots.output, { recursive: true });
  const store = new SnapshotStore({ goalsDir: home.config.goalsDir, maxMb: 64 });
  undo = new PlanUndo({
    snapshots: store,
    goalId: goal,
    roots,
    planId: "plan_t",
    actor: "agent_t",
    taken: () => {},
  });
});
afterEach(() => {
  undo.release();
  home.cleanup();
});

describe("what a plan's undo records and puts back", () => {
  it("records a file step that threw after writing at the path the gate judged, not the input's path through a link", async () => {
    mkdirSync(join(ws, "d"));
    symlinkSync("d", join(ws, "link"));
    writeFileSync(join(ws, "d", "a.txt"), "old\n");
    await undo.frame(0, { kind: "paths" })!({
      snapshotId: undefined,
      keep: [],
      writes: ["/workspace/d/a.txt"],
    });
    writeFileSync(join(ws, "d", "a.txt"), "the step's\n");
    // The step threw after writing: no path reported, its input named /workspace/link/a.txt.
    await undo.afterStep(0, { kind: "paths" }, undefined, "/workspace/link/a.txt");
    expect(undo.changedPaths).toBe(1);
    const r = await undo.restore(() => undefined);
    expect(r).toMatchObject({ files_restored: 1, files_failed: [], conflicts: [] });
    expect(readFileSync(join(ws, "d", "a.txt"), "utf8")).toBe("old\n");
  });

  it("puts a mode back on a fresh copy when the file has another hard link: the person's linked file keeps its mode", async () => {
    writeFileSync(join(ws, "a.txt"), "same\n", { mode: 0o644 });
    chmodSync(join(ws, "a.txt"), 0o644);
    await undo.frame(0, { kind: "tree" })!({ snapshotId: undefined, keep: [], writes: [] });
    chmodSync(join(ws, "a.txt"), 0o600); // the step: mode only
    await undo.afterStep(0, { kind: "tree" });
    // After the step, the person links its file to a name of their own, outside the workspace.
    const theirs = join(home.config.goalsDir, "theirs.txt");
    linkSync(join(ws, "a.txt"), theirs);
    const r = await undo.restore(() => undefined);
    expect(r).toMatchObject({ files_restored: 1, files_failed: [], conflicts: [] });
    expect(statSync(join(ws, "a.txt")).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("same\n");
    expect(statSync(theirs).mode & 0o777).toBe(0o600);
    expect(readFileSync(theirs, "utf8")).toBe("same\n");
  });
});

describe("fifos and sockets, which snapshots do not hold", () => {
  it("a file a step replaced with a fifo is left, the conflict saying what is there, not that someone changed it after the plan", async () => {
    writeFileSync(join(ws, "a.txt"), "old\n");
    await undo.frame(0, { kind: "tree" })!({ snapshotId: undefined, keep: [], writes: [] });
    rmSync(join(ws, "a.txt"));
    execFileSync("mkfifo", [join(ws, "a.txt")]);
    execFileSync("mkfifo", [join(ws, "p")]);
    await undo.afterStep(0, { kind: "tree" });
    const r = await undo.restore(() => undefined);
    expect(r.files_failed).toEqual([]);
    expect(r.conflicts).toEqual([
      { path: "/workspace/a.txt", reason: expect.stringMatching(/^a fifo, socket or device is there/) },
    ]);
    // Untracked: the fifo the step made is left as it is, and nothing hangs on it.
    expect(lstatSync(join(ws, "p")).isFIFO()).toBe(true);
    expect(lstatSync(join(ws, "a.txt")).isFIFO()).toBe(true);
  });
});
