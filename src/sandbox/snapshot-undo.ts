// sandbox/snapshot-undo.ts — undo named changes in one root, and nothing else: each path
// comes with what a change left there (`expect`) and what was there before it (`target`).
// A path whose present state is no longer `expect` was changed again by someone else since:
// it is a conflict, left as it is and reported, never overwritten. The others are put back
// as snapshot-restore.ts puts a snapshot back — anchored folder fds, no link followed,
// files rewritten through a temp file and a rename, setuid/setgid never restored, `permit`
// asked before each change — in the same order: removals deepest first (a folder that still
// holds paths nobody asked to remove stays, reported: they are someone else's), folders
// made shallowest first, files and links, then folder modes. Right before a path is
// removed or replaced it is checked once more to be as it was found: a person's save that
// lands while the undo runs (after its path was compared) is a conflict too. What was never
// named is never looked at, so the cost is the number of changed paths, not the size of
// the workspace. Used by plan.execute's scoped restore (kernel/plan-undo.ts).

import { closeSync, mkdirSync, readlinkSync, rmdirSync, unlinkSync } from "node:fs";
import { errorMessage } from "../errors.js";
import { splitRel, type WorkspaceRoot, yieldEvery } from "./snapshot-fs.js";
import type { ManifestEntry } from "./snapshot-manifest.js";
import type { PackStore } from "./snapshot-packs.js";
import {
  type Permit,
  Refused,
  type RestoreResult,
  restoreLeaf,
  safeMode,
  setOwnerAndMode,
} from "./snapshot-restore.js";
import { entryOf, openWorkspaceFile, typeOf, type WorkspaceEntry } from "./snapshot-walk.js";

export interface UndoChange {
  /** Root-relative ("src/a.py"). */
  path: string;
  /** What the change left (null: nothing). */
  expect: ManifestEntry | null;
  /** What to put back (null: nothing; its content must be in `packs`). */
  target: ManifestEntry | null;
  /** Why a mismatch is a conflict, e.g. "changed since step 2 of the plan left it". */
  conflict: string;
}

export interface UndoResult extends RestoreResult {
  /** Container paths left as they are because someone changed them after the change. */
  conflicts: { path: string; reason: string }[];
}

/** Undo `changes` in `ws`; `containerRoot` ("/workspace") names paths to permit and in the result. */
export async function undoChanges(
  ws: WorkspaceRoot,
  packs: PackStore,
  changes: readonly UndoChange[],
  containerRoot: string,
  permit: Permit = () => undefined,
): Promise<UndoResult> {
  const out: UndoResult = { files_restored: 0, files_failed: [], conflicts: [] };
  const touched = new Set<string>();
  const breathe = yieldEvery();
  const where = (path: string) => `${containerRoot}/${path}`;
  const current = new Map<string, WorkspaceEntry | null>();
  /**
   * Change `c.path`; `check` runs right before the change: `permit`, then (`guarded`: a
   * change that replaces or removes what is there) the path must still be as step 1 found
   * it, else someone wrote it since (a person's save while the undo ran): a conflict.
   */
  const attempt = async (
    c: UndoChange,
    guarded: boolean,
    fn: (check: () => void) => boolean,
  ): Promise<void> => {
    const path = c.path;
    const check = () => {
      const why = permit(where(path));
      if (why !== undefined) throw new Refused(why);
      if (guarded && !unchanged(ws, path, current.get(path) ?? null)) throw new Changed();
    };
    try {
      if (fn(check)) touched.add(path);
    } catch (e) {
      if (e instanceof Refused)
        out.files_failed.push({ path: where(path), reason: e.message, refused: true });
      else if (e instanceof Changed) out.conflicts.push({ path: where(path), reason: c.conflict });
      else if ((e as NodeJS.ErrnoException).code === "ENOTEMPTY")
        out.conflicts.push({ path: where(path), reason: "the folder holds paths the plan did not make" });
      else out.files_failed.push({ path: where(path), reason: errorMessage(e) });
    }
    await breathe();
  };

  // 1. Which paths are still as the change left them: only those are undone.
  const undo: UndoChange[] = [];
  for (const c of changes) {
    let now: WorkspaceEntry | null;
    try {
      now = present(ws, c.path);
    } catch (e) {
      out.files_failed.push({ path: where(c.path), reason: errorMessage(e) });
      continue;
    }
    if (now !== null && isSpecial(now)) {
      // Snapshots hold no fifo, socket or device: whose it is (the plan's step, or someone
      // after it) is not known, so it is left, and said to be what it is.
      out.conflicts.push({ path: where(c.path), reason: SPECIAL_CONFLICT });
      continue;
    }
    if (!matches(ws, packs, now, c.expect)) {
      out.conflicts.push({ path: where(c.path), reason: c.conflict });
      continue;
    }
    if (matches(ws, packs, now, c.target, true)) continue;
    current.set(c.path, now);
    undo.push(c);
    await breathe();
  }

  // 2. Remove what the target does not have (or has as another type), children first.
  const removals = undo
    .filter((c) => {
      const now = current.get(c.path);
      return now && (c.target === null || c.target.t !== now.type);
    })
    .sort((a, b) => (a.path < b.path ? 1 : -1));
  for (const c of removals) {
    const now = current.get(c.path)!;
    await attempt(c, true, (check) => {
      check();
      const { dir, name } = splitRel(c.path);
      const parent = ws.dir(dir);
      if (now.type === "dir") {
        ws.forget(c.path);
        rmdirSync(parent.at(name));
      } else unlinkSync(parent.at(name));
      current.set(c.path, null);
      return true;
    });
  }

  // 3. Folders to make, parents first; 4. files and links; 5. folder modes, deepest first.
  const sorted = undo.filter((c) => c.target !== null).sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const c of sorted) {
    if (c.target!.t !== "dir" || current.get(c.path)) continue;
    await attempt(c, false, (check) => {
      check();
      const { dir, name } = splitRel(c.path);
      mkdirSync(ws.dir(dir).at(name), 0o700);
      return true;
    });
  }
  ws.trim();
  for (const c of sorted) {
    const now = current.get(c.path) ?? undefined;
    if (c.target!.t !== "dir")
      await attempt(c, true, (check) => restoreLeaf(ws, packs, c.target!, now, new Map(), check));
  }
  for (const c of sorted.reverse()) {
    const w = c.target!;
    const now = current.get(c.path);
    if (w.t !== "dir" || (now && now.mode === safeMode(w))) continue;
    await attempt(c, false, (check) => {
      check();
      const fd = ws.openDirFd(c.path);
      try {
        setOwnerAndMode(fd, w);
      } finally {
        closeSync(fd);
      }
      return true;
    });
  }
  out.files_restored = touched.size;
  return out;
}

const SPECIAL_CONFLICT =
  "a fifo, socket or device is there, which snapshots do not hold (not known whose it is); left as it is";

/** What present() makes of a fifo, socket or device: a "file" no snapshot entry matches. */
const isSpecial = (e: WorkspaceEntry): boolean => e.type === "file" && e.size === -1;

/** The path was written (or made, removed, replaced) since step 1 saw it. */
class Changed extends Error {}

/**
 * Is the path still what step 1 saw (`was`)? Its lstat, not its content: any write moves a
 * file's ctime, which no one in the container can set back. A folder is only the same one
 * (its ctime moves as the undo itself puts paths back in it). What is left is the moment
 * between this lstat and the rename: a rename cannot compare and swap.
 */
function unchanged(ws: WorkspaceRoot, path: string, was: WorkspaceEntry | null): boolean {
  const now = present(ws, path);
  if (now === null || was === null) return now === was;
  if (now.type !== was.type || now.ino !== was.ino || now.mode !== was.mode) return false;
  if (now.type === "dir") return true;
  return (
    now.size === was.size &&
    now.mtimeNs === was.mtimeNs &&
    now.ctimeNs === was.ctimeNs &&
    now.target === was.target
  );
}

/** The path as it is now (lstat, no link followed on the way); null when nothing is there. */
function present(ws: WorkspaceRoot, path: string): WorkspaceEntry | null {
  const { dir, name } = splitRel(path);
  try {
    const parent = ws.dir(dir);
    const st = parent.lstat(name);
    const type = typeOf(st.mode);
    if (type === null) return { ...entryOf(path, st, "file"), type: "file", size: -1 }; // never matches
    const e = entryOf(path, st, type);
    if (type === "symlink") e.target = readlinkSync(parent.at(name), "utf8");
    return e;
  } catch (e) {
    // A parent gone, or swapped for a link or a file: nothing is there as a plain path.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") return null;
    throw e;
  }
}

/**
 * Is `now` the entry `want` describes: the same type, mode, link target and content (files
 * hashed; only its permission bits without setuid/setgid when `restored`, since a restore
 * never sets those).
 */
function matches(
  ws: WorkspaceRoot,
  packs: PackStore,
  now: WorkspaceEntry | null,
  want: ManifestEntry | null,
  restored = false,
): boolean {
  if (now === null || want === null) return now === want;
  if (now.type !== want.t || now.mode !== (restored ? safeMode(want) : want.m)) return false;
  if (want.t === "symlink") return now.target === want.l;
  if (want.t === "dir") return true;
  if (now.size !== want.s) return false;
  let opened: ReturnType<typeof openWorkspaceFile>;
  try {
    opened = openWorkspaceFile(ws, now.path);
  } catch {
    return false;
  }
  try {
    return opened.entry.ino === now.ino && packs.hashFd(opened.fd) === want.h;
  } finally {
    closeSync(opened.fd);
  }
}
