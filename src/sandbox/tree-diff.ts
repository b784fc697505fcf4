// sandbox/tree-diff.ts — what changed in a copy of a goal's /workspace and /output since it
// was restored from a snapshot (a shadow simulation's copy, kernel/shadow.ts): paths
// added, changed and deleted, with sizes, and a unified text diff for small text files.
// Cheap on a large tree, as a snapshot is: the copy's stat is taken right after the
// restore, and only paths whose stat moved (inode, size, mode, mtime, ctime — a container
// can set mtime back but not ctime) are read and compared with what the snapshot held;
// the old contents come from the snapshot's packs. Walked with lstat and files opened
// O_NOFOLLOW: a link is compared as a link (its target text), never followed, so a link a
// step planted cannot make the diff read a host file. Called once nothing runs in the copy.
// Bounded whatever the steps did: at most LISTED_MAX paths listed per kind, and the text
// diffs of one result share a budget of bytes and of comparison cells (a step can write a
// thousand small text files in one command; their diffs would be a response of tens of MB
// and seconds of the daemon's time). Past the budget, paths are listed without a diff and
// counted in diffs_omitted; only listed paths are read, and old contents are read from the
// snapshot only for the diffs still made. A path's text is shown only when the caller says
// it is `readable` (the agent may read it): a step may overwrite a file it cannot read, and
// the diff must not hand it the old contents.

import { createHash } from "node:crypto";
import { type BigIntStats, constants, promises as fsp } from "node:fs";
import { join } from "node:path";
import type { ManifestEntry, SnapshotRoots } from "./snapshot-manifest.js";
import { type CellBudget, unifiedDiff } from "./text-diff.js";

/** Text files up to this size (before and after) get a unified diff. */
export const TEXT_DIFF_MAX_BYTES = 64 * 1024;
/** At most this many paths are listed per kind; the counts stay exact. */
const LISTED_MAX = 1000;
/** The text diffs of one result together stay under this many bytes. */
const DIFF_TEXT_MAX_BYTES = 256 * 1024;
/** Line-comparison cells the diffs of one result may take together (text-diff.ts). */
const DIFF_CELLS_MAX = 16_000_000;
/** Old contents are read from the snapshot this many paths at a time. */
const OLD_READ_BATCH = 64;

export interface PathChange {
  /** Container path: /workspace/src/a.py. */
  path: string;
  type: "file" | "dir" | "link" | "other";
  /** Size after (added, changed) or before (deleted), in bytes. */
  size: number;
  size_before?: number;
  /** Unified diff (small text files). */
  diff?: string;
}

export interface TreeDiff {
  added: PathChange[];
  changed: PathChange[];
  deleted: PathChange[];
  counts: { added: number; changed: number; deleted: number };
  /**
   * Listed files that could have had a diff (up to TEXT_DIFF_MAX_BYTES, readable) left
   * without one because the result's diff budget was spent; once it is, they are not read,
   * so a binary file among them counts too.
   */
  diffs_omitted: number;
}

/** What the diffs of one result may still take. */
interface DiffBudget extends CellBudget {
  bytes: number;
}

interface Stat {
  type: PathChange["type"];
  size: number;
  mode: number;
  /** inode, size, mtime, ctime in ns: equal means untouched. */
  key: string;
}

/** Every path of the copy ("/workspace/a/b") with its lstat. */
export type TreeStat = Map<string, Stat>;

/**
 * What the snapshot held at some paths ("workspace/a/b"); with `contents`, small files'
 * contents too (up to TEXT_DIFF_MAX_BYTES).
 */
export type OriginalEntries = (
  paths: string[],
  contents: boolean,
) => Promise<Map<string, { entry: ManifestEntry; content?: Buffer }>>;

/** The copy's stat, right after it was restored. */
export async function statTree(roots: SnapshotRoots): Promise<TreeStat> {
  const out: TreeStat = new Map();
  for (const root of ["workspace", "output"] as const) await walk(roots[root], `/${root}`, out);
  return out;
}

/**
 * What changed in the copy since `before` (its stat after the restore from the snapshot
 * `original`); text diffs only for paths `readable` allows.
 */
export async function diffCopy(
  roots: SnapshotRoots,
  before: TreeStat,
  original: OriginalEntries,
  readable: (path: string) => boolean,
): Promise<TreeDiff> {
  const out: TreeDiff = {
    added: [],
    changed: [],
    deleted: [],
    counts: { added: 0, changed: 0, deleted: 0 },
    diffs_omitted: 0,
  };
  const budget: DiffBudget = { bytes: DIFF_TEXT_MAX_BYTES, cells: DIFF_CELLS_MAX };
  const after = await statTree(roots);
  const moved = [...after].filter(([p, b]) => {
    const a = before.get(p);
    return a !== undefined && a.key !== b.key && (a.type !== "dir" || b.type !== "dir" || a.mode !== b.mode);
  });
  const was = await original(
    moved.map(([p]) => p.slice(1)),
    false,
  );
  for (const [path, b] of after) {
    if (before.has(path)) continue;
    const change: PathChange = { path, type: b.type, size: b.size };
    if (!push(out, "added", change) || b.type !== "file" || b.size > TEXT_DIFF_MAX_BYTES) continue;
    if (!readable(path)) continue;
    if (spent(budget)) out.diffs_omitted++;
    else textDiff(out, budget, change, undefined, await readNoFollow(hostPath(roots, path)));
  }
  // Changed small files, listed, whose diff is made once every changed path is known.
  const texts: PathChange[] = [];
  for (const [path, b] of moved) {
    const a = before.get(path)!;
    const old = was.get(path.slice(1));
    const host = hostPath(roots, path);
    const change: PathChange = { path, type: b.type, size: b.size, size_before: a.size };
    if (a.type !== b.type || a.mode !== b.mode || !old) {
      push(out, "changed", change);
      continue;
    }
    if (b.type === "link") {
      if ((await fsp.readlink(host)) !== old.entry.l) push(out, "changed", change);
      continue;
    }
    if (b.type !== "file") continue;
    const small = b.size <= TEXT_DIFF_MAX_BYTES;
    const hash = small ? sha256(await readNoFollow(host)) : await hashNoFollow(host);
    if (hash === old.entry.h) continue; // rewritten with the same content
    const listed = push(out, "changed", change);
    if (listed && small && (old.entry.s ?? Infinity) <= TEXT_DIFF_MAX_BYTES && readable(path))
      texts.push(change);
  }
  await diffChanged(roots, texts, original, out, budget);
  for (const [path, a] of before)
    if (!after.has(path)) push(out, "deleted", { path, type: a.type, size: a.size });
  return out;
}

/** The text diffs of changed files, old contents read from the snapshot a batch at a time. */
async function diffChanged(
  roots: SnapshotRoots,
  texts: readonly PathChange[],
  original: OriginalEntries,
  out: TreeDiff,
  budget: DiffBudget,
): Promise<void> {
  for (let i = 0; i < texts.length; i += OLD_READ_BATCH) {
    if (spent(budget)) {
      out.diffs_omitted += texts.length - i;
      return;
    }
    const batch = texts.slice(i, i + OLD_READ_BATCH);
    const was = await original(
      batch.map((c) => c.path.slice(1)),
      true,
    );
    for (const change of batch) {
      if (spent(budget)) out.diffs_omitted++;
      else {
        const now = await readNoFollow(hostPath(roots, change.path));
        textDiff(out, budget, change, was.get(change.path.slice(1))?.content, now);
      }
    }
  }
}

const spent = (budget: DiffBudget) => budget.bytes <= 0 || budget.cells <= 0;

function hostPath(roots: SnapshotRoots, path: string): string {
  const [, root, ...rest] = path.split("/");
  return join(roots[root as keyof SnapshotRoots], ...rest);
}

/** Count the change, and list it while its kind has room; whether it was listed. */
function push(out: TreeDiff, kind: "added" | "changed" | "deleted", change: PathChange): boolean {
  out.counts[kind]++;
  if (out[kind].length >= LISTED_MAX) return false;
  out[kind].push(change);
  return true;
}

/** Give `change` the text diff of two texts, if both are text and it fits the budget. */
function textDiff(
  out: TreeDiff,
  budget: DiffBudget,
  change: PathChange,
  before: Buffer | undefined,
  after: Buffer,
): void {
  if (!isText(after) || (before && !isText(before))) return;
  const diff = unifiedDiff(change.path, before?.toString("utf8"), after.toString("utf8"), budget);
  if (diff === undefined) {
    if (spent(budget)) out.diffs_omitted++;
    return;
  }
  const bytes = Buffer.byteLength(diff, "utf8");
  if (bytes > budget.bytes) {
    out.diffs_omitted++;
    return;
  }
  budget.bytes -= bytes;
  change.diff = diff;
}

function isText(b: Buffer): boolean {
  if (b.length > TEXT_DIFF_MAX_BYTES || b.includes(0)) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

function typeOf(st: BigIntStats): Stat["type"] {
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "link";
  return st.isFile() ? "file" : "other";
}

/** Every path below `dir`, as `prefix` + "/rel", lstat'ed (links are not followed). */
async function walk(dir: string, prefix: string, out: TreeStat): Promise<void> {
  const visit = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await fsp.readdir(join(dir, rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    for (const name of names.sort()) {
      const r = `${rel}/${name}`;
      const st = await fsp.lstat(join(dir, r), { bigint: true });
      const type = typeOf(st);
      out.set(`${prefix}${r}`, {
        type,
        size: Number(st.size),
        mode: Number(st.mode & 0o7777n),
        key: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}`,
      });
      if (type === "dir") await visit(r);
    }
  };
  await visit("");
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function readNoFollow(path: string): Promise<Buffer> {
  const fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

async function hashNoFollow(path: string): Promise<string> {
  const fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const h = createHash("sha256");
    for await (const chunk of fh.createReadStream({ autoClose: false })) h.update(chunk as Buffer);
    return h.digest("hex");
  } finally {
    await fh.close();
  }
}
