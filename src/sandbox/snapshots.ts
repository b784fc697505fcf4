// sandbox/snapshots.ts — point-in-time copies of what a goal's container can change,
// /workspace and /output, taken and restored on the host (both are host folders
// bind-mounted into the container).
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
// Paths are kept per root: "workspace/src/a.py" is /workspace/src/a.py in the container.
// Taking one is snapshot-take.ts's; its cost grows with what changed: the walk is lstat-only, and only files whose stat differs
// from the index are read and copied. ctime is part of the key because the container can
// set mtime back with `touch -d` but cannot set ctime.
//
// The store has a cap of its own, sandbox.snapshots_max_mb (default: the workspace cap):
// a snapshot whose distinct contents alone pass it is refused (quota_exceeded; the call it
// came before does not run), and when a new snapshot leaves the store past it, the oldest
// snapshots are pruned and their packs compacted (snapshot-prune.ts, snapshot-compact.ts).
// A goal's host footprint is thus its workspace cap plus its snapshots cap (plus the
// newest snapshot's own manifest and index, which is never pruned).
//
// Restore takes a `permit` check per path (the calling agent's grants and the policy, in
// tools/snapshot-tools.ts): what it refuses is left as it is and reported, the rest is
// restored. setuid and setgid bits are never restored (snapshot-restore.ts).

import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { formatMib, MIB } from "./quota.js";
import { WorkspaceRoot } from "./snapshot-fs.js";
import {
  type IndexRow,
  type ManifestEntry,
  readIndex,
  readManifest,
  SNAPSHOT_ROOTS,
  type SnapshotRoots,
  type SnapshotSummary,
} from "./snapshot-manifest.js";
import { PackStore } from "./snapshot-packs.js";
import { planPrune, storeFiles, storeUsage } from "./snapshot-prune.js";
import { type Permit, type RestoreResult, restoreWorkspace } from "./snapshot-restore.js";
import { type SnapshotTaken, takeSnapshot } from "./snapshot-take.js";
import { type UndoChange, type UndoResult, undoChanges } from "./snapshot-undo.js";

export type { SnapshotRoots, UndoChange, UndoResult };

const GOAL_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SNAPSHOT_ID = /^snap_[0-9a-z]{6,40}$/;
const LABEL_MAX = 200;

export interface SnapshotCreated extends SnapshotTaken {
  id: string;
  /** Set when older snapshots were pruned to make room for this one. */
  pruned?: SnapshotsPruned;
  /** With `pinned`: releases the pin the snapshot was made under (SnapshotStore.pin). */
  unpin?: () => void;
}

/** The oldest snapshots removed so the store fits under its cap (snapshot-prune.ts). */
export interface SnapshotsPruned {
  snapshot_ids: string[];
  /** Bytes the store held before and holds after. */
  before_bytes: number;
  after_bytes: number;
  limit_bytes: number;
}

export interface SnapshotStoreOptions {
  /** $AIDO_HOME/goals (Config.goalsDir). */
  goalsDir: string;
  /** sandbox.snapshots_max_mb: what one goal's snapshot store may hold on the host. */
  maxMb: number;
  /** Told of every pruning (the runtime audits it as snapshot.pruned). */
  onPruned?(goalId: string, pruned: SnapshotsPruned, actor?: string): void;
}

export function isSnapshotId(id: string): boolean {
  return SNAPSHOT_ID.test(id);
}

/**
 * One snapshot or restore at a time per goal folder in this process, whichever store
 * instance asks: both read and write the index, and a snapshot clears leftover packs.
 */
const locks = new Map<string, Promise<unknown>>();

/**
 * What no pruning may remove while someone needs it, whichever call's snapshot prunes (a
 * plan's undo: kernel/plan-undo.ts): store folder -> pinned snapshot ids and contents
 * (sha256) -> holders.
 */
const pins = new Map<string, { ids: Map<string, number>; hashes: Map<string, number> }>();

export class SnapshotStore {
  constructor(private readonly opts: SnapshotStoreOptions) {}

  /**
   * Snapshot /workspace and /output; only files whose stat changed since the last one are
   * read. Refused (quota_exceeded) when its contents alone pass the store's cap; when the
   * store then holds more than its cap, the oldest snapshots are pruned, except those in
   * `keep` and those pinned, and pinned contents (pin). `actor` (the agent that caused it) is passed on to onPruned.
   * `pinned`: the new snapshot is pinned under the goal's lock, before any other call's
   * snapshot can prune (pinning once this resolved left a gap a pruning could fall in); the
   * result's `unpin` releases it.
   */
  async create(
    goalId: string,
    roots: SnapshotRoots,
    label?: string,
    opts: { actor?: string; keep?: readonly string[]; pinned?: boolean } = {},
  ): Promise<SnapshotCreated> {
    if (label !== undefined && (label.length > LABEL_MAX || label.includes("\0"))) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `snapshot label must be at most ${LABEL_MAX} characters, no NUL`,
      );
    }
    return this.locked(goalId, async () => {
      const created = await this.createLocked(goalId, roots, label);
      const unpin = opts.pinned ? this.pin(goalId, { ids: [created.id] }) : undefined;
      try {
        const pruned = await this.prune(goalId, created.id, opts.keep ?? []);
        if (pruned) this.opts.onPruned?.(goalId, pruned, opts.actor);
        return { ...created, ...(pruned ? { pruned } : {}), ...(unpin ? { unpin } : {}) };
      } catch (e) {
        unpin?.();
        throw e;
      }
    });
  }

  /**
   * Keep snapshots `ids` of the goal, and the contents `hashes` whichever snapshot held them,
   * from every pruning (not only that of the caller's own snapshots) until the returned
   * function is called. Pins count: two holders of one id each release their own.
   */
  pin(goalId: string, what: { ids?: readonly string[]; hashes?: readonly string[] }): () => void {
    const key = this.dir(goalId);
    const held = pins.get(key) ?? { ids: new Map<string, number>(), hashes: new Map<string, number>() };
    pins.set(key, held);
    const add = (m: Map<string, number>, keys: readonly string[], by: number) => {
      for (const k of keys) {
        const n = (m.get(k) ?? 0) + by;
        if (n > 0) m.set(k, n);
        else m.delete(k);
      }
    };
    add(held.ids, what.ids ?? [], 1);
    add(held.hashes, what.hashes ?? [], 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      add(held.ids, what.ids ?? [], -1);
      add(held.hashes, what.hashes ?? [], -1);
      if (held.ids.size === 0 && held.hashes.size === 0 && pins.get(key) === held) pins.delete(key);
    };
  }

  /** The store's cap in bytes. */
  get maxBytes(): number {
    return this.opts.maxMb * MIB;
  }

  /**
   * Make /workspace and /output equal to snapshot `id` again, touching only what differs
   * and only paths `permit` allows (it gets the container path; a refusal is reported in
   * files_failed and the path left as it is).
   */
  async restore(goalId: string, roots: SnapshotRoots, id: string, permit?: Permit): Promise<RestoreResult> {
    if (!isSnapshotId(id))
      throw new AidoError(ErrorCode.invalidInput, `"${id}" is not a snapshot id`, { id });
    return this.locked(goalId, async () => {
      const manifest = await readManifest(this.manifestPath(goalId, id), goalId, id);
      const index = await readIndex(this.indexPath(goalId));
      const packs = this.packs(goalId);
      const result: RestoreResult = { files_restored: 0, files_failed: [] };
      try {
        // A root the snapshot did not cover (a v2 manifest has no /output) is left alone.
        for (const root of manifest.roots) {
          const prefix = `${root}/`;
          const entries = manifest.entries
            .filter((e) => e.p.startsWith(prefix))
            .map((e) => ({ ...e, p: e.p.slice(prefix.length) }));
          const rootIndex = new Map<string, IndexRow>();
          for (const [path, row] of index)
            if (path.startsWith(prefix)) rootIndex.set(path.slice(prefix.length), row);
          const ws = WorkspaceRoot.open(roots[root]);
          try {
            const r = await restoreWorkspace(ws, packs, entries, rootIndex, `/${root}`, permit);
            result.files_restored += r.files_restored;
            result.files_failed.push(...r.files_failed);
          } finally {
            ws.close();
          }
        }
      } finally {
        packs.close();
      }
      return result;
    });
  }

  /**
   * Every entry of snapshot `id`, by its root-prefixed path ("workspace/a.txt"). Read under
   * the goal's lock, so no pruning runs meanwhile.
   */
  async entries(goalId: string, id: string): Promise<Map<string, ManifestEntry>> {
    if (!isSnapshotId(id))
      throw new AidoError(ErrorCode.invalidInput, `"${id}" is not a snapshot id`, { id });
    return this.locked(goalId, async () => {
      const manifest = await readManifest(this.manifestPath(goalId, id), goalId, id);
      return new Map(manifest.entries.map((e) => [e.p, e]));
    });
  }

  /**
   * Undo named changes (root-prefixed paths, "workspace/a.txt"), each only where it is still
   * as the change left it (snapshot-undo.ts); the targets' contents come from this goal's
   * packs, so the snapshots that hold them must not have been pruned.
   */
  async undo(
    goalId: string,
    roots: SnapshotRoots,
    changes: readonly UndoChange[],
    permit?: Permit,
  ): Promise<UndoResult> {
    return this.locked(goalId, async () => {
      const result: UndoResult = { files_restored: 0, files_failed: [], conflicts: [] };
      const packs = this.packs(goalId);
      try {
        for (const root of SNAPSHOT_ROOTS) {
          const prefix = `${root}/`;
          const mine = changes
            .filter((c) => c.path.startsWith(prefix))
            .map((c) => {
              const path = c.path.slice(prefix.length);
              return { ...c, path, target: c.target && { ...c.target, p: path } };
            });
          if (mine.length === 0) continue;
          const ws = WorkspaceRoot.open(roots[root]);
          try {
            const r = await undoChanges(ws, packs, mine, `/${root}`, permit);
            result.files_restored += r.files_restored;
            result.files_failed.push(...r.files_failed);
            result.conflicts.push(...r.conflicts);
          } finally {
            ws.close();
          }
        }
      } finally {
        packs.close();
      }
      return result;
    });
  }

  /**
   * What snapshot `id` held at the paths `wanted` ("workspace/a.txt"): each path's entry,
   * and the content of those files no larger than `maxBytes` (a path it did not hold is
   * absent). Read under the goal's lock, so no pruning runs meanwhile. For comparing a copy
   * with the snapshot it was restored from (kernel/shadow.ts).
   */
  async readEntries(
    goalId: string,
    id: string,
    wanted: readonly string[],
    maxBytes: number,
  ): Promise<Map<string, { entry: ManifestEntry; content?: Buffer }>> {
    if (!isSnapshotId(id))
      throw new AidoError(ErrorCode.invalidInput, `"${id}" is not a snapshot id`, { id });
    return this.locked(goalId, async () => {
      const manifest = await readManifest(this.manifestPath(goalId, id), goalId, id);
      const want = new Set(wanted);
      const out = new Map<string, { entry: ManifestEntry; content?: Buffer }>();
      const packs = this.packs(goalId);
      try {
        for (const entry of manifest.entries) {
          if (!want.has(entry.p)) continue;
          const small = entry.t === "file" && entry.h !== undefined && (entry.s ?? Infinity) <= maxBytes;
          out.set(entry.p, small ? { entry, content: packs.read(entry.h!) } : { entry });
        }
      } finally {
        packs.close();
      }
      return out;
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

  /** Past its cap, prune the oldest snapshots (never `newest` or `keep`) and compact their packs. */
  private async prune(
    goalId: string,
    newest: string,
    keep: readonly string[],
  ): Promise<SnapshotsPruned | undefined> {
    const files = storeFiles(this.dir(goalId));
    const before = storeUsage(files.dir);
    if (before <= this.maxBytes) return undefined;
    // What a crash left goes first, whatever its age: under the lock nothing of it is live.
    const packs = this.packs(goalId);
    packs.removeLeftovers(0);
    packs.close();
    const plan = await planPrune({
      files,
      goalId,
      newest,
      keep: [...keep, ...(pins.get(files.dir)?.ids.keys() ?? [])],
      keepHashes: new Set(pins.get(files.dir)?.hashes.keys() ?? []),
      maxBytes: this.maxBytes,
      usedBytes: storeUsage(files.dir),
      newPackId: freshId,
    });
    for (const step of plan.steps) await step.run();
    if (plan.steps.length === 0) return undefined;
    return {
      snapshot_ids: plan.pruned,
      before_bytes: before,
      after_bytes: storeUsage(files.dir),
      limit_bytes: this.maxBytes,
    };
  }

  private async createLocked(goalId: string, roots: SnapshotRoots, label?: string): Promise<SnapshotCreated> {
    const dir = this.dir(goalId);
    await fsp.mkdir(join(dir, "manifests"), { recursive: true, mode: 0o700 });
    const id = freshId();
    const taken = await takeSnapshot({
      dir,
      goalId,
      id,
      roots,
      ...(label !== undefined ? { label } : {}),
      packs: this.packs(goalId),
      manifestPath: this.manifestPath(goalId, id),
      indexPath: this.indexPath(goalId),
      refuseAbove: (bytes) => this.refuseAbove(goalId, bytes),
    });
    return { id, ...taken };
  }

  /**
   * A snapshot whose contents alone pass the cap cannot be kept whatever is pruned: refused
   * before it is stored (checked as the pack grows too, so a refused snapshot never holds
   * more than the cap on disk).
   */
  private refuseAbove(goalId: string, bytes: number): void {
    if (bytes <= this.maxBytes) return;
    throw new AidoError(
      ErrorCode.quotaExceeded,
      `snapshot refused: /workspace and /output hold more than ${formatMib(this.maxBytes)} of distinct file contents, more than one snapshot may hold under sandbox.snapshots_max_mb (${this.opts.maxMb} MiB); delete files, or ask the operator to raise sandbox.snapshots_max_mb`,
      { goalId, limit_bytes: this.maxBytes },
    );
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

function freshId(): string {
  return `snap_${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
}
