// kernel/plan-undo.ts — what plan.execute's on_failure "restore" puts back: the changes the
// plan's steps made, and nothing else. The person editing the project in their editor
// while an MCP client's plan runs (or another agent of the goal) keeps their edits.
//
// Each step that can change /workspace or /output is framed by two snapshots of the store
// (incremental: an lstat walk, and only files whose stat moved are read): one right before
// the tool runs — taken in the gate's beforeRun hook (ToolCall.beforeRun), after the approval
// wait, the hold and the gate's last cancel check, so what the person changes while they are
// asked is not in the step's window, and a call the gate refused takes none — and one right
// after it. What differs between the two is what the step changed —
// for file_write and file_edit only at the exact path the tool wrote (its canonical path,
// as the tool reports it) and the folders it made for it; for any other step (exec,
// snapshot_restore, adopt_world, spawn_*: code with no known write scope) whatever changed
// in the window, whoever changed it. Between two steps nothing is recorded, so a path
// changed only there (or while a step waited for its approval) is never touched.
//
// Per path, the restore undoes the plan's changes last first: the path must still be what
// the last step that changed it left (else someone changed it after the plan did: a
// conflict, left as it is and reported); it goes back to what was there before that step,
// and on back through the earlier steps that changed it as long as nobody changed it
// between them (if someone did, their version is what is put back). What the undo needs is
// pinned while the plan runs (SnapshotStore.pin), against every pruning, also one by
// another call's snapshot (the gate's before the plan's own exec): the snapshot before a
// step until the step's changes are read from it, then only the contents the changed paths
// had before it — not the whole snapshot, so a plan of many steps on a large workspace
// does not hold every step's manifest past sandbox.snapshots_max_mb.

import type { BeforeRun, ToolDef } from "../gate/types.js";
import type { ManifestEntry } from "../sandbox/snapshot-manifest.js";
import type { Permit } from "../sandbox/snapshot-restore.js";
import type { SnapshotRoots, SnapshotStore, UndoChange, UndoResult } from "../sandbox/snapshots.js";

/** How many paths left (conflicts, failures) a plan's result lists of each; the counts are whole. */
export const RESTORE_LISTED_MAX = 100;

/**
 * The longest path or reason a list shows: a path is the workspace's own names, and the walk
 * reaches folders nested past PATH_MAX, so one can be any length.
 */
const SHOWN_MAX = 4096;

/** What on_failure "restore" did: only what the plan's steps changed is put back. */
export interface PlanRestore {
  /** Paths the plan's steps changed (what the restore set out to put back). */
  paths_changed: number;
  /** Paths put back. */
  files_restored: number;
  /** Paths left as they are: the agent may not write them, or writing failed (the first RESTORE_LISTED_MAX). */
  files_failed: { path: string; reason: string }[];
  files_failed_total: number;
  /** Paths left as they are because someone changed them after the plan's step did (the first RESTORE_LISTED_MAX). */
  conflicts: { path: string; reason: string }[];
  conflicts_total: number;
}

/** The undo's outcome as a plan's result tells it: every count, the first paths of each list. */
export function restoreReport(r: UndoResult, pathsChanged: number): PlanRestore {
  const listed = (list: readonly { path: string; reason: string }[]) =>
    list.slice(0, RESTORE_LISTED_MAX).map((e) => ({ path: shown(e.path), reason: shown(e.reason) }));
  return {
    paths_changed: pathsChanged,
    files_restored: r.files_restored,
    files_failed: listed(r.files_failed),
    files_failed_total: r.files_failed.length,
    conflicts: listed(r.conflicts),
    conflicts_total: r.conflicts.length,
  };
}

function shown(text: string): string {
  return text.length > SHOWN_MAX ? `${text.slice(0, SHOWN_MAX - 1)}…` : text;
}

/** What a step may change: nothing, the paths it names, or anything (its window). */
export type StepScope = { kind: "none" } | { kind: "paths" } | { kind: "tree" };

/** Tools whose run changes nothing under /workspace or /output, though they mutate elsewhere. */
const NAMED_PATH_TOOLS = new Set(["file_write", "file_edit"]);

export function scopeOf(tool: ToolDef<unknown> | undefined): StepScope {
  if (tool && NAMED_PATH_TOOLS.has(tool.name)) return { kind: "paths" };
  // spawn_* tools' children act in the goal's own container: whatever they write is theirs.
  if (tool && !tool.mutates && !tool.name.startsWith("spawn_")) return { kind: "none" };
  return { kind: "tree" };
}

/** The snapshots a plan's steps name (ToolDef.keepsSnapshots: snapshot_restore's id). */
export function namedSnapshots(
  steps: readonly { tool: string; input: unknown }[],
  tool: (name: string) => ToolDef<unknown> | undefined,
): string[] {
  return steps.flatMap((step) => {
    const def = tool(step.tool);
    const parsed = def?.keepsSnapshots ? def.input.safeParse(step.input) : undefined;
    return parsed?.success ? (def?.keepsSnapshots?.(parsed.data) ?? []) : [];
  });
}

interface Change {
  step: number;
  before: ManifestEntry | null;
  after: ManifestEntry | null;
}

export interface PlanUndoDeps {
  snapshots: SnapshotStore;
  goalId: string;
  roots: SnapshotRoots;
  planId: string;
  actor: string;
  /** Tell of a snapshot taken (the executor audits it as snapshot.created). */
  taken(id: string, label: string, files: number): void;
  /**
   * Snapshots the plan's steps name (snapshot_restore's id: ToolDef.keepsSnapshots), pinned
   * for the plan's life so no frame of a step before it prunes what it will restore. Only
   * for a plan whose failure is undone (kernel/plans.ts): it runs alone in its goal.
   */
  named?: readonly string[];
}

export class PlanUndo {
  /** Root-prefixed path ("workspace/a.txt") -> the plan's changes to it, in step order. */
  private readonly changes = new Map<string, Change[]>();
  /** Releases the pins on the contents the undo puts back. */
  private readonly unpin: (() => void)[] = [];
  /**
   * The snapshot framing the step that runs, pinned until its changes are read, and the
   * paths the gate judged the step to write.
   */
  private before: { step: number; id: string; unpin: () => void; writes: readonly string[] } | undefined;
  /** Snapshots taken for the steps (for the cost report). */
  snapshotsTaken = 0;

  constructor(private readonly deps: PlanUndoDeps) {
    if (deps.named && deps.named.length > 0)
      this.unpin.push(deps.snapshots.pin(deps.goalId, { ids: [...new Set(deps.named)] }));
  }

  /** The plan ended: what it pinned may be pruned again. */
  release(): void {
    this.before?.unpin();
    this.before = undefined;
    for (const unpin of this.unpin.splice(0)) unpin();
  }

  /**
   * Before step `index` is handed to the gate: the hook (ToolCall.beforeRun) that takes the
   * snapshot framing it right before its tool runs, or none when the step changes no file.
   * A step the gate refuses or that is cancelled before it runs never calls it: no frame.
   * The gate's snapshot just taken before the call (the one a person's snapshot_restore
   * would use) and what the call names are pinned as long as the frame: the frame's own
   * snapshots, taken with the store at its cap, would otherwise prune them.
   */
  frame(index: number, scope: StepScope): ((run?: BeforeRun) => Promise<void>) | undefined {
    this.before?.unpin();
    this.before = undefined;
    if (scope.kind === "none") return undefined;
    return async (run) => {
      const ids = [...(run?.snapshotId ? [run.snapshotId] : []), ...(run?.keep ?? [])];
      const unpinGate = this.deps.snapshots.pin(this.deps.goalId, { ids });
      try {
        const s = await this.snap(`plan ${this.deps.planId} before step ${index}`);
        this.before = {
          step: index,
          id: s.id,
          writes: run?.writes ?? [],
          unpin: () => {
            s.unpin();
            unpinGate();
          },
        };
      } catch (e) {
        unpinGate();
        throw e;
      }
    };
  }

  /**
   * Right after step `index` ended (its frame taken only if its tool ran). A file step's
   * path: the canonical one it reports it wrote (`wrote`), else the one the gate judged it
   * to write (a step that threw after writing reports none), else the path its input names
   * (`named`).
   */
  async afterStep(index: number, scope: StepScope, wrote?: string, named?: string): Promise<void> {
    const before = this.before;
    this.before = undefined;
    if (!before) return;
    try {
      const paths = wrote !== undefined ? [wrote] : before.writes.length > 0 ? before.writes : [named];
      if (before.step === index) await this.record(index, before.id, scope, paths);
    } finally {
      before.unpin();
    }
  }

  /** What step `index` changed since snapshot `before`; the contents to put back pinned. */
  private async record(
    index: number,
    before: string,
    scope: StepScope,
    wrote: readonly (string | undefined)[],
  ): Promise<void> {
    const after = await this.snap(`plan ${this.deps.planId} after step ${index}`);
    const [b, a] = await Promise.all([
      this.deps.snapshots.entries(this.deps.goalId, before),
      this.deps.snapshots.entries(this.deps.goalId, after.id),
    ]).finally(after.unpin);
    const candidates =
      scope.kind === "paths"
        ? new Set(wrote.flatMap((p) => [...withParents(p)]))
        : new Set([...b.keys(), ...a.keys()]);
    const hashes: string[] = [];
    for (const path of candidates) {
      const was = b.get(path) ?? null;
      const now = a.get(path) ?? null;
      if (sameEntry(was, now)) continue;
      const list = this.changes.get(path) ?? [];
      list.push({ step: index, before: was, after: now });
      this.changes.set(path, list);
      if (was?.h) hashes.push(was.h);
    }
    if (hashes.length > 0) this.unpin.push(this.deps.snapshots.pin(this.deps.goalId, { hashes }));
  }

  /** How many paths the plan changed so far. */
  get changedPaths(): number {
    return this.changes.size;
  }

  /** Undo what the plan changed where it is still as the plan left it. */
  async restore(permit: Permit): Promise<UndoResult> {
    const undo: UndoChange[] = [];
    for (const [path, list] of this.changes) {
      const last = list[list.length - 1]!;
      let target = last.before;
      for (let j = list.length - 2; j >= 0; j--) {
        // Someone changed it between two of the plan's steps: their version stays the target.
        if (!sameEntry(list[j + 1]!.before, list[j]!.after)) break;
        target = list[j]!.before;
      }
      undo.push({
        path,
        expect: last.after,
        target,
        conflict: `changed after step ${last.step} of the plan left it; left as it is`,
      });
    }
    return this.deps.snapshots.undo(this.deps.goalId, this.deps.roots, undo, permit);
  }

  /** A snapshot pinned as it is made (under the goal's lock: no pruning between the two). */
  private async snap(label: string): Promise<{ id: string; unpin: () => void }> {
    const s = await this.deps.snapshots.create(this.deps.goalId, this.deps.roots, label, {
      actor: this.deps.actor,
      pinned: true,
    });
    const unpin = s.unpin ?? (() => undefined);
    this.snapshotsTaken++;
    try {
      this.deps.taken(s.id, label, s.files);
    } catch (e) {
      unpin();
      throw e;
    }
    return { id: s.id, unpin };
  }
}

/**
 * "/workspace/d/a.txt" -> workspace/d/a.txt and the folders above it inside the root (a
 * file step makes missing parent folders).
 */
function withParents(containerPath: string | undefined): Set<string> {
  const out = new Set<string>();
  if (!containerPath) return out;
  const abs = containerPath.startsWith("/") ? containerPath : `/workspace/${containerPath}`;
  const parts = abs.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..") || (parts[0] !== "workspace" && parts[0] !== "output")) return out;
  for (let i = 2; i <= parts.length; i++) out.add(parts.slice(0, i).join("/"));
  return out;
}

/** The same path state: presence, type, mode, content, link target. */
function sameEntry(a: ManifestEntry | null, b: ManifestEntry | null): boolean {
  if (a === null || b === null) return a === b;
  return a.t === b.t && a.m === b.m && a.h === b.h && a.s === b.s && a.l === b.l;
}
