// sandbox/snapshots.ts — point-in-time copies of a goal's workspace, taken and restored on
// the host (the workspace is a host folder bind-mounted at /workspace).
//
// Layout under $AIDO_HOME/goals/<goal_id>/snapshots/:
//   packs/<id>.pack, .idx     content-addressed file contents: each snapshot appends the
//                             contents it is first to see into one pack (snapshot-packs)
//   manifests/<id>.json       one per snapshot: every path with type, mode, owner, content
//                             hash; written and fsynced after its pack, so it never names
//                             content a crash could have lost
//   stat-index.bin            stat index of the last snapshot (path -> size, mtime, ctime,
//                             inode, hash): a file whose stat is unchanged is not re-read
//   snapshots.jsonl           one summary line per snapshot, for list()
// Cost grows with what changed: the walk is lstat-only, and only files whose stat differs
// from the index are read and copied. ctime is part of the key because the container can
// set mtime back with `touch -d` but cannot set ctime.

import { randomBytes } from "node:crypto";
import { closeSync, constants, promises as fsp } from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { WorkspaceRoot, yieldEvery } from "./snapshot-fs.js";
import {
  type IndexRow,
  type ManifestEntry,
  readIndex,
  readManifest,
  type SnapshotManifest,
  writeIndex,
  writeJsonAtomically,
} from "./snapshot-manifest.js";
import { PackStore, type PackWriter } from "./snapshot-packs.js";
import { type RestoreResult, restoreWorkspace } from "./snapshot-restore.js";
import { openWorkspaceFile, type WorkspaceEntry, walkForSnapshot } from "./snapshot-walk.js";

export type { RestoreResult } from "./snapshot-restore.js";

const GOAL_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SNAPSHOT_ID = /^snap_[0-9a-z]{6,40}$/;
const LABEL_MAX = 200;

export interface SnapshotCreated {
  id: string;
  /** Regular files in the snapshot. */
  files: number;
  /** Their total size. */
  bytes: number;
  /** Files read anew (new or changed since the last snapshot) plus files gone since it. */
  changed: number;
}

export interface SnapshotSummary {
  id: string;
  label?: string;
  created_at: string;
  files: number;
  bytes: number;
}

export interface SnapshotStoreOptions {
  /** $AIDO_HOME/goals (Config.goalsDir). */
  goalsDir: string;
}

export function isSnapshotId(id: string): boolean {
  return SNAPSHOT_ID.test(id);
}

/**
 * One snapshot or restore at a time per goal folder in this process, whichever store
 * instance asks: both read and write the index, and a snapshot clears leftover packs.
 */
const locks = new Map<string, Promise<unknown>>();

export class SnapshotStore {
  constructor(private readonly opts: SnapshotStoreOptions) {}

  /** Snapshot the workspace; only files whose stat changed since the last one are read. */
  async create(goalId: string, workspaceDir: string, label?: string): Promise<SnapshotCreated> {
    if (label !== undefined && (label.length > LABEL_MAX || label.includes("\0"))) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `snapshot label must be at most ${LABEL_MAX} characters, no NUL`,
      );
    }
    return this.locked(goalId, () => this.createLocked(goalId, workspaceDir, label));
  }

  /** Make the workspace equal to snapshot `id`, touching only what differs. */
  async restore(goalId: string, workspaceDir: string, id: string): Promise<RestoreResult> {
    if (!isSnapshotId(id))
      throw new AidoError(ErrorCode.invalidInput, `"${id}" is not a snapshot id`, { id });
    return this.locked(goalId, async () => {
      const manifest = await readManifest(this.manifestPath(goalId, id), goalId, id);
      const index = await readIndex(this.indexPath(goalId));
      const ws = WorkspaceRoot.open(workspaceDir);
      const packs = this.packs(goalId);
      try {
        return await restoreWorkspace(ws, packs, manifest.entries, index);
      } finally {
        packs.close();
        ws.close();
      }
    });
  }

  /** Snapshots of a goal, oldest first. */
  async list(goalId: string): Promise<SnapshotSummary[]> {
    const file = join(this.dir(goalId), "snapshots.jsonl");
    let text: string;
    try {
      text = await fsp.readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    return text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as SnapshotSummary);
  }

  private async createLocked(goalId: string, workspaceDir: string, label?: string): Promise<SnapshotCreated> {
    const dir = this.dir(goalId);
    await fsp.mkdir(join(dir, "manifests"), { recursive: true, mode: 0o700 });
    const id = `snap_${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
    const packs = this.packs(goalId);
    packs.removeLeftovers();
    const pack = packs.writer(id);
    const previous = await readIndex(this.indexPath(goalId));
    const ws = WorkspaceRoot.open(workspaceDir);
    const entries: ManifestEntry[] = [];
    const index = new Map<string, IndexRow>();
    let changed = 0;
    try {
      // Files not in the index are read whatever their stat: the walk need not lstat them.
      const current = await walkForSnapshot(ws, (path) => previous.has(path));
      ws.trim();
      const breathe = yieldEvery();
      for (const e of current) {
        if (e.type !== "file") {
          entries.push({
            p: e.path,
            t: e.type,
            m: e.mode,
            u: e.uid,
            g: e.gid,
            ...(e.target ? { l: e.target } : {}),
          });
          continue;
        }
        const known = "unstatted" in e ? undefined : previous.get(e.path);
        if (known && !("unstatted" in e) && sameStat(known, e)) {
          entries.push({ p: e.path, t: "file", m: e.mode, u: e.uid, g: e.gid, s: e.size, h: known.hash });
          index.set(e.path, known);
          continue;
        }
        changed++;
        const copied = copyIn(ws, pack, e.path);
        if (copied) {
          const { st, hash, bytes } = copied;
          entries.push({ p: e.path, t: "file", m: st.mode, u: st.uid, g: st.gid, s: bytes, h: hash });
          index.set(e.path, { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, hash });
        }
        await breathe();
      }
      pack.commit();
    } catch (e) {
      pack.abort();
      throw e;
    } finally {
      ws.close();
      packs.close();
    }
    for (const path of previous.keys()) if (!index.has(path)) changed++;
    const files = entries.filter((e) => e.t === "file");
    const bytes = files.reduce((n, e) => n + (e.s ?? 0), 0);
    const created_at = new Date().toISOString();
    const manifest: SnapshotManifest = { version: 2, id, goal_id: goalId, created_at, entries };
    if (label !== undefined) manifest.label = label;
    await writeJsonAtomically(this.manifestPath(goalId, id), manifest, { durable: true });
    await writeIndex(this.indexPath(goalId), index);
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
    return { id, files: files.length, bytes, changed };
  }

  private async locked<T>(goalId: string, fn: () => Promise<T>): Promise<T> {
    if (!GOAL_ID.test(goalId))
      throw new AidoError(ErrorCode.invalidInput, `"${goalId}" is not a goal id`, { goalId });
    const key = this.dir(goalId);
    const before = locks.get(key) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(fn);
    locks.set(key, run);
    try {
      return await run;
    } finally {
      if (locks.get(key) === run) locks.delete(key);
    }
  }

  private dir(goalId: string): string {
    if (!GOAL_ID.test(goalId))
      throw new AidoError(ErrorCode.invalidInput, `"${goalId}" is not a goal id`, { goalId });
    return join(this.opts.goalsDir, goalId, "snapshots");
  }

  private packs(goalId: string): PackStore {
    return new PackStore(join(this.dir(goalId), "packs"));
  }

  private manifestPath(goalId: string, id: string): string {
    return join(this.dir(goalId), "manifests", `${id}.json`);
  }

  private indexPath(goalId: string): string {
    return join(this.dir(goalId), "stat-index.bin");
  }
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

function sameStat(
  row: IndexRow,
  e: { size: number; mtimeNs: bigint; ctimeNs: bigint; ino: bigint },
): boolean {
  return row.size === e.size && row.mtimeNs === e.mtimeNs && row.ctimeNs === e.ctimeNs && row.ino === e.ino;
}
