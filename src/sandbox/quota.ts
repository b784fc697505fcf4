// sandbox/quota.ts — how much a goal has written to the host, against
// sandbox.workspace_max_mb. A goal's writes land in two host folders (workspace/ and
// output/, bind-mounted at /workspace and /output); their usage is measured here by a walk
// on the host: lstat only, never following a link, each entry charged its size or its
// allocated blocks, whichever is larger, and at least one 4 KiB block (so a flood of empty
// files or folders fills the quota too); a folder it cannot read or name makes the goal
// count as full. The cost is bounded three ways: a goal has at
// most one walk in flight (callers share it), a result is reused for CACHE_MS unless a
// caller needs a fresh one, and a walk stops counting at twice the cap. quota-sandbox.ts
// applies the measure to every write a tool makes.

import { lstatSync, readdirSync, type Stats } from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { type GoalFolders, goalFolders } from "./folders.js";

export const MIB = 1024 * 1024;
/** The least an entry costs: one filesystem block. */
export const MIN_ENTRY_BYTES = 4096;
const CACHE_MS = 2_000;
/** Time between two measures while an exec runs; longer when a walk takes long (4x its time). */
export const POLL_MS = 500;
/** Entries walked between two turns of the event loop. */
const YIELD_EVERY = 1000;

export interface QuotaUsage {
  /** workspace + output, as charged (see the header); stops growing past twice the cap. */
  bytes: number;
  workspace: number;
  output: number;
  /** When it was measured (Date.now()). */
  at: number;
  /**
   * What the walk could not count (a folder it may not read, or one nested deeper than a
   * host path can name), and what to do about it: the goal then counts as past the cap
   * (fail closed).
   */
  unreadable?: string;
}

/** What an entry of `size` bytes (with `blocks` 512-byte blocks allocated) is charged. */
export function chargeOf(size: number, blocks = 0): number {
  return Math.max(MIN_ENTRY_BYTES, size, blocks * 512);
}

/** Room per block kept back for a file's map (fileRoom): four blocks per MiB. */
const MAP_BLOCK_PER = 256 * 1024;

/**
 * The largest file an exec may grow within `room` (its RLIMIT_FSIZE). A file's size is not
 * all it is charged: its last block is allocated whole, and the filesystem allocates blocks
 * of its own for a file's map (ext4's extent tree; ext2/3's indirect blocks, one per 4 MiB),
 * so a fragmented file exactly `room` long is charged past it. The room is taken in whole
 * blocks (a sparse file is charged its size, so it can end mid-block), and one block per
 * 256 KiB of it (at least one) is kept back for the map. That is twice the most measured:
 * a command filling a file's gaps in an order that splits the extent tree's leaves (ext4
 * keeps the half-empty ones) got 1.6 blocks of map per MiB at 8 MiB, 1.9 at 64 MiB; a
 * block per MiB was not enough. A map past it is growth like any other, which the
 * measures while the command runs bound (docs/sandbox.md).
 */
export function fileRoom(room: number): number {
  const whole = Math.floor(room / MIN_ENTRY_BYTES) * MIN_ENTRY_BYTES;
  return Math.max(0, whole - MIN_ENTRY_BYTES * Math.max(1, Math.ceil(room / MAP_BLOCK_PER)));
}

export function formatMib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}

export class WorkspaceQuota {
  readonly maxBytes: number;
  private readonly cached = new Map<string, QuotaUsage>();
  private readonly walking = new Map<string, Promise<QuotaUsage>>();

  constructor(
    private readonly opts: {
      goalsDir: string;
      maxMb: number;
      /** The goal's folders (a bound host workspace included); default goalFolders. */
      folders?: (goalId: string) => GoalFolders;
    },
  ) {
    this.maxBytes = opts.maxMb * MIB;
  }

  /** The goal's usage: a cached measure younger than CACHE_MS, or a walk (shared while in flight). */
  async usage(goalId: string, opts: { fresh?: boolean } = {}): Promise<QuotaUsage> {
    const hit = this.cached.get(goalId);
    if (!opts.fresh && hit && Date.now() - hit.at < CACHE_MS) return hit;
    let walk = this.walking.get(goalId);
    if (!walk) {
      walk = this.measure(goalId).finally(() => this.walking.delete(goalId));
      this.walking.set(goalId, walk);
    }
    const u = await walk;
    this.cached.set(goalId, u);
    return u;
  }

  /** Bytes the goal may still write (0 when at or over the cap). */
  async room(goalId: string): Promise<number> {
    return Math.max(0, this.maxBytes - (await this.usage(goalId)).bytes);
  }

  /**
   * Refuse (quota_exceeded) a write that would add `growth` bytes past the cap; `what`
   * names it ("file_write of /workspace/a.txt"). An admitted growth is added to the cached
   * usage at once, so writes in parallel cannot each pass on the same room.
   */
  async admit(goalId: string, growth: number, what: string): Promise<void> {
    if (growth <= 0) return;
    const u = await this.usage(goalId);
    if (u.bytes + growth > this.maxBytes)
      throw this.exceeded(goalId, u, `${what} would add ${formatMib(growth)}`);
    this.cached.set(goalId, { ...u, bytes: u.bytes + growth });
  }

  /**
   * Measure the goal afresh every POLL_MS (or 4x the last walk's time, if longer) and hand
   * each measure to `onUsage`, until the returned stop() is called.
   */
  watch(goalId: string, onUsage: (u: QuotaUsage) => void): () => void {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const tick = async (): Promise<void> => {
      const started = Date.now();
      try {
        const u = await this.usage(goalId, { fresh: true });
        if (!stopped) onUsage(u);
      } catch {
        // A walk that failed (the folder is being removed): the next tick tries again.
      }
      if (!stopped) timer = setTimeout(() => void tick(), Math.max(POLL_MS, 4 * (Date.now() - started)));
    };
    timer = setTimeout(() => void tick(), POLL_MS);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  /** The goal's files changed in ways not accounted for (an exec ran): measure again next time. */
  forget(goalId: string): void {
    this.cached.delete(goalId);
  }

  exceeded(goalId: string, used: QuotaUsage, what: string): AidoError {
    const why = used.unreadable
      ? `the goal counts as full: ${used.unreadable}`
      : `${formatMib(used.bytes)} used by /workspace and /output; delete files to make room`;
    return new AidoError(
      ErrorCode.quotaExceeded,
      `${what}: goal ${goalId}'s files on the host would pass sandbox.workspace_max_mb (${this.opts.maxMb} MiB; ${why})`,
      { goalId, limit_bytes: this.maxBytes, used_bytes: used.bytes },
    );
  }

  /** An exec stopped because the goal's files went past the cap while it ran. */
  stopped(goalId: string, used: QuotaUsage): AidoError {
    return new AidoError(
      ErrorCode.quotaExceeded,
      `exec stopped: goal ${goalId}'s files on the host passed sandbox.workspace_max_mb (${this.opts.maxMb} MiB; ${formatMib(used.bytes)} used by /workspace and /output) while it ran; delete files to make room`,
      { goalId, limit_bytes: this.maxBytes, used_bytes: used.bytes },
    );
  }

  private async measure(goalId: string): Promise<QuotaUsage> {
    const f = this.opts.folders ? this.opts.folders(goalId) : goalFolders(this.opts.goalsDir, goalId);
    const stopAt = 2 * this.maxBytes;
    const ws = await walk(f.workspace, stopAt);
    const out = ws.unreadable ? { total: 0 } : await walk(f.output, stopAt - ws.total);
    const unreadable = ws.unreadable ?? out.unreadable;
    const u = { bytes: ws.total + out.total, workspace: ws.total, output: out.total, at: Date.now() };
    return unreadable ? { ...u, bytes: Math.max(u.bytes, this.maxBytes + 1), unreadable } : u;
  }
}

/**
 * Charged bytes under `root` (root itself not counted), stopping once past `stopAt`.
 * Synchronous calls in slices of YIELD_EVERY entries: an lstat costs microseconds where its
 * promise form costs tens, and the daemon's event loop gets a turn after every slice.
 */
async function walk(root: string, stopAt: number): Promise<{ total: number; unreadable?: string }> {
  let total = 0;
  let slice = 0;
  const pending = [root];
  while (pending.length > 0 && total <= stopAt) {
    const dir = pending.pop() as string;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      if (gone(e)) continue;
      const unreadable = uncountable(e, root, dir);
      if (unreadable) return { total, unreadable };
      throw e;
    }
    for (const name of names) {
      if (++slice % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
      const path = join(dir, name);
      let st: Stats;
      try {
        st = lstatSync(path);
      } catch (e) {
        if (gone(e)) continue;
        const unreadable = uncountable(e, root, dir);
        if (unreadable) return { total, unreadable };
        throw e;
      }
      total += chargeOf(st.isSymbolicLink() ? 0 : st.size, st.blocks);
      if (st.isDirectory()) pending.push(path);
      if (total > stopAt) break;
    }
  }
  return { total };
}

function gone(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * Why a failed readdir or lstat under `dir` leaves the walk unable to count what is there,
 * or undefined for a failure that is thrown. A path past PATH_MAX (ENAMETOOLONG) is a
 * folder chain a command built step by step, relative to the last: what lies under it
 * cannot be named from here, so it cannot be counted (it was once skipped as gone, and
 * anything stored there was never charged).
 */
function uncountable(e: unknown, root: string, dir: string): string | undefined {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EPERM") return `${dir} cannot be read on the host; make it readable`;
  if (code === "ENAMETOOLONG")
    return `a folder under ${root} is nested deeper than a path on the host can name; delete it`;
  return undefined;
}
