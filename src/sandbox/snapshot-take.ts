// sandbox/snapshot-take.ts — taking one snapshot of a goal's /workspace and /output:
// walk each root (lstat only), copy into one new pack the files whose stat differs from
// the last snapshot's index (snapshot-packs.ts), then write the manifest (fsynced, after
// the pack), the new stat index and the summary line. The distinct contents are held to
// the store's cap as the pack grows, so a refused snapshot never holds more than the cap
// on disk. Locking, pruning, restoring and listing are snapshots.ts's.

import { closeSync, constants, existsSync, promises as fsp } from "node:fs";
import { join } from "node:path";
import { WorkspaceRoot, yieldEvery } from "./snapshot-fs.js";
import {
  type IndexRow,
  MANIFEST_VERSION,
  type ManifestEntry,
  readIndex,
  SNAPSHOT_ROOTS,
  type SnapshotManifest,
  type SnapshotRootName,
  type SnapshotRoots,
  type SnapshotSummary,
  writeIndex,
  writeJsonAtomically,
} from "./snapshot-manifest.js";
import type { PackStore, PackWriter } from "./snapshot-packs.js";
import { openWorkspaceFile, type WorkspaceEntry, walkForSnapshot } from "./snapshot-walk.js";

export interface TakeRequest {
  /** The goal's snapshots/ folder. */
  dir: string;
  goalId: string;
  /** The new snapshot's id. */
  id: string;
  roots: SnapshotRoots;
  label?: string;
  /** The goal's pack store; closed here once the pack is committed or aborted. */
  packs: PackStore;
  manifestPath: string;
  indexPath: string;
  /** Throws (quota_exceeded) when this many bytes of distinct contents pass the store's cap. */
  refuseAbove(bytes: number): void;
}

export interface SnapshotTaken {
  /** Regular files in the snapshot. */
  files: number;
  /** Their total size. */
  bytes: number;
  /** Files read anew (new or changed since the last snapshot) plus files gone since it. */
  changed: number;
}

/** Take the snapshot `r.id`; nothing names it until its pack and manifest are durable. */
export async function takeSnapshot(r: TakeRequest): Promise<SnapshotTaken> {
  const { dir, id, roots, label, packs } = r;
  packs.removeLeftovers();
  const pack = packs.writer(id);
  const previous = await readIndex(r.indexPath);
  const entries: ManifestEntry[] = [];
  const index = new Map<string, IndexRow>();
  const covered: SnapshotRootName[] = [];
  let changed = 0;
  try {
    for (const root of SNAPSHOT_ROOTS) {
      if (!existsSync(roots[root])) continue;
      covered.push(root);
      changed += await snapshotRoot(roots[root], `${root}/`, pack, previous, entries, index, () =>
        r.refuseAbove(pack.written),
      );
    }
    r.refuseAbove(contentBytes(entries));
    pack.commit();
  } catch (e) {
    pack.abort();
    throw e;
  } finally {
    packs.close();
  }
  for (const path of previous.keys()) if (!index.has(path)) changed++;
  const files = entries.filter((e) => e.t === "file");
  const bytes = files.reduce((n, e) => n + (e.s ?? 0), 0);
  const created_at = new Date().toISOString();
  const manifest: SnapshotManifest = {
    version: MANIFEST_VERSION,
    id,
    goal_id: r.goalId,
    created_at,
    roots: covered,
    entries,
  };
  if (label !== undefined) manifest.label = label;
  await writeJsonAtomically(r.manifestPath, manifest, { durable: true });
  await writeIndex(r.indexPath, index);
  const summary: SnapshotSummary = { id, created_at, files: files.length, bytes };
  if (label !== undefined) summary.label = label;
  const log = await fsp.open(
    join(dir, "snapshots.jsonl"),
    constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
    0o600,
  );
  try {
    await log.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await log.close();
  }
  return { files: files.length, bytes, changed };
}

/**
 * Walk one root into `entries` and `index` (paths prefixed with `prefix`), copying into the
 * pack the files whose stat differs from the previous index. Returns how many were read.
 */
async function snapshotRoot(
  hostDir: string,
  prefix: string,
  pack: PackWriter,
  previous: Map<string, IndexRow>,
  entries: ManifestEntry[],
  index: Map<string, IndexRow>,
  checkRoom: () => void,
): Promise<number> {
  const ws = WorkspaceRoot.open(hostDir);
  let changed = 0;
  try {
    // Files not in the index are read whatever their stat: the walk need not lstat them.
    const current = await walkForSnapshot(ws, (path) => previous.has(prefix + path));
    ws.trim();
    const breathe = yieldEvery();
    for (const e of current) {
      const p = prefix + e.path;
      if (e.type !== "file") {
        entries.push({ p, t: e.type, m: e.mode, u: e.uid, g: e.gid, ...(e.target ? { l: e.target } : {}) });
        continue;
      }
      const known = "unstatted" in e ? undefined : previous.get(p);
      if (known && !("unstatted" in e) && sameStat(known, e)) {
        entries.push({ p, t: "file", m: e.mode, u: e.uid, g: e.gid, s: e.size, h: known.hash });
        index.set(p, known);
        continue;
      }
      changed++;
      const copied = copyIn(ws, pack, e.path);
      if (copied) {
        const { st, hash, bytes } = copied;
        entries.push({ p, t: "file", m: st.mode, u: st.uid, g: st.gid, s: bytes, h: hash });
        index.set(p, { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, hash });
      }
      checkRoom();
      await breathe();
    }
  } finally {
    ws.close();
  }
  return changed;
}

/** Copy one workspace file into the new pack; null when it vanished or stopped being a file. */
function copyIn(
  ws: WorkspaceRoot,
  pack: PackWriter,
  path: string,
): { st: WorkspaceEntry; hash: string; bytes: number } | null {
  let opened: { fd: number; entry: WorkspaceEntry };
  try {
    opened = openWorkspaceFile(ws, path);
  } catch {
    return null;
  }
  try {
    return { st: opened.entry, ...pack.putFromFd(opened.fd, opened.entry.size) };
  } finally {
    closeSync(opened.fd);
  }
}

/** Bytes of the distinct contents a snapshot names. */
function contentBytes(entries: readonly ManifestEntry[]): number {
  const seen = new Map<string, number>();
  for (const e of entries) if (e.h) seen.set(e.h, e.s ?? 0);
  let n = 0;
  for (const size of seen.values()) n += size;
  return n;
}

function sameStat(
  row: IndexRow,
  e: { size: number; mtimeNs: bigint; ctimeNs: bigint; ino: bigint },
): boolean {
  return row.size === e.size && row.mtimeNs === e.mtimeNs && row.ctimeNs === e.ctimeNs && row.ino === e.ino;
}
