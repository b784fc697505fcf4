// sandbox/snapshot-restore.ts — make a workspace equal to a snapshot manifest, touching
// only what differs: unwanted paths removed (deepest first), missing folders made
// (shallowest first), changed files rewritten atomically (temp file + rename), links
// recreated as links, then modes and owners set. Everything goes through the anchored
// folders of snapshot-fs, so the container cannot redirect a root-owned write through a
// symlink. A path that cannot be restored is reported with its reason; the rest goes on.
//
// Before a path is changed (and only if it would change), `permit` is asked about its
// container path: a refusal (the calling agent holds no write grant there, or a policy
// rule denies it) leaves the path as it is and is reported with the reason. setuid and
// setgid bits are never restored, on any file or folder: a snapshot must not carry a
// setuid program back into a folder the host can see.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  lchownSync,
  mkdirSync,
  openSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import { errorMessage } from "../errors.js";
import { CREATE_FLAGS, READ_FLAGS, splitRel, type WorkspaceRoot, yieldEvery } from "./snapshot-fs.js";
import type { IndexRow, ManifestEntry } from "./snapshot-manifest.js";
import type { PackStore } from "./snapshot-packs.js";
import { openWorkspaceFile, typeOf, type WorkspaceEntry, walkWorkspace } from "./snapshot-walk.js";

export interface RestoreResult {
  /** Paths whose content, presence, link target, mode or owner was changed. */
  files_restored: number;
  /** Container paths left as they were; `refused` when `permit` said no (else an error). */
  files_failed: { path: string; reason: string; refused?: true }[];
}

/** Why the caller may not change this container path, or undefined when it may. */
export type Permit = (containerPath: string) => string | undefined;

export class Refused extends Error {}

const isRoot = process.getuid?.() === 0;

/**
 * Restore one root. `wanted` and `index` are relative to it; `containerRoot` ("/workspace")
 * is how paths are named to `permit` and in the result.
 */
export async function restoreWorkspace(
  ws: WorkspaceRoot,
  packs: PackStore,
  wanted: ManifestEntry[],
  index: Map<string, IndexRow>,
  containerRoot: string,
  permit: Permit = () => undefined,
): Promise<RestoreResult> {
  const current = new Map((await walkWorkspace(ws)).map((e) => [e.path, e]));
  const want = new Map(wanted.map((e) => [e.p, e]));
  const touched = new Set<string>();
  const failed: RestoreResult["files_failed"] = [];
  const breathe = yieldEvery();
  const attempt = async (path: string, fn: (check: () => void) => boolean): Promise<void> => {
    const where = `${containerRoot}/${path}`;
    const check = () => {
      const why = permit(where);
      if (why !== undefined) throw new Refused(why);
    };
    try {
      if (fn(check)) touched.add(path);
    } catch (e) {
      failed.push(
        e instanceof Refused
          ? { path: where, reason: e.message, refused: true }
          : { path: where, reason: errorMessage(e) },
      );
    }
    await breathe();
  };

  // 1. Remove what the snapshot does not have (or has as another type), children first.
  const removals = [...current.values()]
    .filter((c) => want.get(c.path)?.t !== c.type)
    .sort((a, b) => (a.path < b.path ? 1 : -1));
  for (const c of removals) {
    await attempt(c.path, (check) => {
      check();
      const { dir, name } = splitRel(c.path);
      const parent = ws.dir(dir);
      if (c.type === "dir") {
        ws.forget(c.path);
        rmdirSync(parent.at(name));
      } else unlinkSync(parent.at(name));
      current.delete(c.path);
      return true;
    });
  }

  // 2. Folders the snapshot has and the workspace lacks, parents first.
  const sorted = [...wanted].sort((a, b) => (a.p < b.p ? -1 : 1));
  for (const w of sorted) {
    if (w.t !== "dir" || current.has(w.p)) continue;
    await attempt(w.p, (check) => {
      check();
      const { dir, name } = splitRel(w.p);
      mkdirSync(ws.dir(dir).at(name), 0o700);
      return true;
    });
  }
  ws.trim();

  // 3. Files and links.
  for (const w of sorted) {
    if (w.t !== "dir")
      await attempt(w.p, (check) => restoreLeaf(ws, packs, w, current.get(w.p), index, check));
  }

  // 4. Folder modes and owners last (a read-only folder must not block its own content).
  for (const w of sorted.reverse()) {
    if (w.t !== "dir") continue;
    const c = current.get(w.p);
    if (c && sameMeta(w, c)) continue;
    await attempt(w.p, (check) => {
      check();
      const fd = ws.openDirFd(w.p);
      try {
        setOwnerAndMode(fd, w);
      } finally {
        closeSync(fd);
      }
      return true;
    });
  }
  return { files_restored: touched.size, files_failed: failed };
}

/** Restore one file or link; false when it already matched. `check` runs before any change. */
export function restoreLeaf(
  ws: WorkspaceRoot,
  packs: PackStore,
  w: ManifestEntry,
  c: WorkspaceEntry | undefined,
  index: Map<string, IndexRow>,
  check: () => void,
): boolean {
  const { dir, name } = splitRel(w.p);
  if (w.t === "symlink") {
    if (c && c.target === w.l) {
      if (!isRoot || (c.uid === w.u && c.gid === w.g)) return false;
      check();
      lchownSync(ws.dir(dir).at(name), w.u, w.g);
      return true;
    }
    check();
    const parent = ws.dir(dir);
    const tmp = parent.at(tmpName());
    symlinkSync(w.l!, tmp);
    placeTemp(tmp, parent.at(name), () => {
      if (isRoot) lchownSync(tmp, w.u, w.g);
    });
    return true;
  }
  if (c && sameContent(ws, packs, c, w, index)) {
    if (sameMeta(w, c)) return false;
    check();
    const fd = openSync(ws.dir(dir).at(name), READ_FLAGS);
    let linked = false;
    try {
      const st = fstatSync(fd, { bigint: true });
      if (typeOf(st.mode) !== "file" || st.ino !== c.ino) throw new Error("file was replaced during restore");
      // A file with another hard link (a person's file linked to it): its mode and owner are
      // the other name's too, so a fresh copy takes this name instead of a chmod.
      linked = st.nlink > 1n;
      if (!linked) setOwnerAndMode(fd, w);
    } finally {
      closeSync(fd);
    }
    if (!linked) return true;
  }
  check();
  const parent = ws.dir(dir);
  const tmp = parent.at(tmpName());
  const fd = openSync(tmp, CREATE_FLAGS, 0o600);
  placeTemp(tmp, parent.at(name), () => {
    try {
      packs.copyTo(w.h!, fd);
      setOwnerAndMode(fd, w);
    } finally {
      closeSync(fd);
    }
  });
  return true;
}

/** Finish the temp file, then rename it over the target; on failure the temp file goes. */
function placeTemp(tmpPath: string, target: string, finish: () => void): void {
  try {
    finish();
    renameSync(tmpPath, target);
  } catch (e) {
    try {
      unlinkSync(tmpPath);
    } catch {
      // already gone
    }
    throw e;
  }
}

function sameContent(
  ws: WorkspaceRoot,
  packs: PackStore,
  c: WorkspaceEntry,
  w: ManifestEntry,
  index: Map<string, IndexRow>,
): boolean {
  if (c.type !== "file" || c.size !== w.s) return false;
  const row = index.get(c.path);
  if (
    row &&
    row.size === c.size &&
    row.mtimeNs === c.mtimeNs &&
    row.ctimeNs === c.ctimeNs &&
    row.ino === c.ino
  ) {
    return row.hash === w.h;
  }
  const { fd } = openWorkspaceFile(ws, c.path);
  try {
    return packs.hashFd(fd) === w.h;
  } finally {
    closeSync(fd);
  }
}

function sameMeta(w: ManifestEntry, c: WorkspaceEntry): boolean {
  return c.mode === safeMode(w) && (!isRoot || (c.uid === w.u && c.gid === w.g));
}

/** setuid and setgid are never restored, whoever owns the entry; the sticky bit is. */
export function safeMode(w: ManifestEntry): number {
  return w.m & 0o1777;
}

export function setOwnerAndMode(fd: number, w: ManifestEntry): void {
  // chown first: it clears setuid/setgid, which chmod then sets as recorded.
  if (isRoot) fchownSync(fd, w.u, w.g);
  fchmodSync(fd, safeMode(w));
}

function tmpName(): string {
  return `.aido-restore-${randomBytes(6).toString("hex")}`;
}
