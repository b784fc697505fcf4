// sandbox/snapshot-manifest.ts — the on-disk formats of snapshots: the per-snapshot
// manifest (what the workspace held), the stat index (what the last snapshot saw) and
// the summary line snapshots.jsonl keeps per snapshot.
// Both are read back from disk, so both are checked before anything trusts them;
// manifest paths are also checked never to leave the workspace.

import {
  closeSync,
  constants,
  promises as fsp,
  fsyncSync,
  openSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { checkRelPath } from "./snapshot-fs.js";

/** One path of a snapshot: type, mode, owner, and content hash (file) or target (link). */
export interface ManifestEntry {
  p: string;
  t: "file" | "dir" | "symlink";
  m: number;
  u: number;
  g: number;
  s?: number;
  h?: string;
  l?: string;
}

/**
 * 2: contents live in packs (snapshot-packs.ts), paths relative to the workspace.
 * 3: several roots; paths start with the root's name ("workspace/…", "output/…").
 * A version 2 manifest is read as a version 3 one covering the workspace only.
 */
export const MANIFEST_VERSION = 3;

/** The folders a snapshot covers, by the name of their mount point in the container. */
export const SNAPSHOT_ROOTS = ["workspace", "output"] as const;
export type SnapshotRootName = (typeof SNAPSHOT_ROOTS)[number];
/** Host folders of a goal's /workspace and /output (sandbox/folders.ts goalFolders). */
export type SnapshotRoots = Record<SnapshotRootName, string>;

/** The roots a manifest may name. */
const ROOT_NAMES: ReadonlySet<string> = new Set(SNAPSHOT_ROOTS);

/** One line of snapshots.jsonl: what list() shows of a snapshot. */
export interface SnapshotSummary {
  id: string;
  label?: string;
  created_at: string;
  files: number;
  bytes: number;
}

export interface SnapshotManifest {
  version: typeof MANIFEST_VERSION;
  id: string;
  goal_id: string;
  label?: string;
  created_at: string;
  /** The roots this snapshot covers; a restore leaves the others alone. */
  roots: SnapshotRootName[];
  entries: ManifestEntry[];
}

export interface IndexRow {
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  hash: string;
}

// These files are ours, read back from our own folder; checked by hand rather than with
// zod because a 10,000-entry manifest parsed by zod cost more than the whole snapshot.
const HASH = /^[0-9a-f]{64}$/;
const isId = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0;

function checkEntry(e: unknown, id: string): ManifestEntry {
  const x = e as ManifestEntry;
  const ok =
    typeof x === "object" &&
    x !== null &&
    typeof x.p === "string" &&
    (x.t === "file" || x.t === "dir" || x.t === "symlink") &&
    isId(x.m) &&
    x.m <= 0o7777 &&
    isId(x.u) &&
    isId(x.g) &&
    (x.t !== "file" || (isId(x.s) && typeof x.h === "string" && HASH.test(x.h))) &&
    (x.t !== "symlink" || (typeof x.l === "string" && x.l !== "" && !x.l.includes("\0")));
  if (!ok) throw new AidoError(ErrorCode.sandboxFailed, `snapshot ${id}: damaged entry ${JSON.stringify(e)}`);
  checkRelPath(x.p);
  return x;
}

export async function readManifest(file: string, goalId: string, id: string): Promise<SnapshotManifest> {
  let raw: string;
  try {
    raw = await fsp.readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new AidoError(
        ErrorCode.notFound,
        `goal ${goalId} has no snapshot ${id} (the oldest snapshots are pruned to keep them under sandbox.snapshots_max_mb)`,
        { goalId, id },
      );
    }
    throw e;
  }
  const data = JSON.parse(raw) as Omit<SnapshotManifest, "version"> & { version: number };
  const damaged = () =>
    new AidoError(ErrorCode.sandboxFailed, `snapshot manifest ${file} is damaged`, { goalId, id });
  if (
    (data?.version !== 2 && data?.version !== MANIFEST_VERSION) ||
    data.id !== id ||
    data.goal_id !== goalId ||
    !Array.isArray(data.entries)
  ) {
    throw damaged();
  }
  if (data.version === 2) {
    data.roots = ["workspace"];
    for (const e of data.entries as ManifestEntry[])
      if (e && typeof e.p === "string") e.p = `workspace/${e.p}`;
  }
  if (!Array.isArray(data.roots) || !data.roots.every((r) => ROOT_NAMES.has(r))) throw damaged();
  const entries = data.entries.map((e) => checkEntry(e, id));
  for (const e of entries) {
    const root = e.p.split("/")[0]!;
    if (!data.roots.includes(root as "workspace") || e.p === root) throw damaged();
  }
  return { ...data, version: MANIFEST_VERSION, entries };
}

// The stat index is binary: a JSON index of 10,000 rows cost ~100 ms to write and as much
// to read (BigInt <-> string for every time stamp), on every snapshot and restore. Columns,
// so each is written and read in one call:
//   "AIDOSTX2", u32 rows, u32 path bytes
//   rows x [u64 size, i64 mtime ns, i64 ctime ns, u64 inode]   (little-endian)
//   rows x 32-byte SHA-256
//   the paths, UTF-8, joined by NUL (a path never holds one)
const INDEX_MAGIC = Buffer.from("AIDOSTX2", "latin1");
const INDEX_HEAD = 16;

export async function readIndex(file: string): Promise<Map<string, IndexRow>> {
  let data: Buffer;
  try {
    data = await fsp.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw e;
  }
  // A damaged index only costs speed: every file is read again.
  const out = new Map<string, IndexRow>();
  if (data.length < INDEX_HEAD || !data.subarray(0, INDEX_MAGIC.length).equals(INDEX_MAGIC)) return out;
  const rows = data.readUInt32LE(8);
  const pathBytes = data.readUInt32LE(12);
  const hashesAt = INDEX_HEAD + rows * 32;
  const pathsAt = hashesAt + rows * 32;
  if (rows === 0 || data.length !== pathsAt + pathBytes) return out;
  const nums = new BigInt64Array(rows * 4);
  new Uint8Array(nums.buffer).set(data.subarray(INDEX_HEAD, hashesAt));
  const unsigned = new BigUint64Array(nums.buffer);
  const hashes = data.toString("hex", hashesAt, pathsAt);
  const paths = data.toString("utf8", pathsAt).split("\0");
  if (paths.length !== rows) return out;
  for (let i = 0; i < rows; i++) {
    out.set(paths[i]!, {
      size: Number(unsigned[i * 4]),
      mtimeNs: nums[i * 4 + 1]!,
      ctimeNs: nums[i * 4 + 2]!,
      ino: unsigned[i * 4 + 3]!,
      hash: hashes.slice(i * 64, i * 64 + 64),
    });
  }
  return out;
}

export async function writeIndex(file: string, index: Map<string, IndexRow>): Promise<void> {
  const rows = index.size;
  const nums = new BigInt64Array(rows * 4);
  const unsigned = new BigUint64Array(nums.buffer);
  const hashes: string[] = [];
  let i = 0;
  for (const r of index.values()) {
    unsigned[i * 4] = BigInt(r.size);
    nums[i * 4 + 1] = r.mtimeNs;
    nums[i * 4 + 2] = r.ctimeNs;
    unsigned[i * 4 + 3] = r.ino;
    hashes.push(r.hash);
    i++;
  }
  const paths = Buffer.from([...index.keys()].join("\0"), "utf8");
  const data = Buffer.allocUnsafe(INDEX_HEAD + rows * 64 + paths.length);
  INDEX_MAGIC.copy(data, 0);
  data.writeUInt32LE(rows, 8);
  data.writeUInt32LE(paths.length, 12);
  data.set(new Uint8Array(nums.buffer), INDEX_HEAD);
  data.write(hashes.join(""), INDEX_HEAD + rows * 32, rows * 32, "hex");
  paths.copy(data, INDEX_HEAD + rows * 64);
  await writeAtomically(file, data);
}

/**
 * Write then rename: a crash leaves the old file or the new one, never half of one.
 * Synchronous like the rest of snapshotting: through the thread pool, on a busy host, a
 * 1 MB write took 30-200 ms instead of about one.
 */
export async function writeAtomically(file: string, data: Buffer | string, durable = false): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    writeFileSync(fd, data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  if (durable) {
    const d = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  }
}

/**
 * JSON, written atomically. `durable` also fsyncs the file before the rename and its
 * folder after, so the new file survives a power loss too.
 */
export async function writeJsonAtomically(
  file: string,
  value: unknown,
  opts: { durable?: boolean } = {},
): Promise<void> {
  await writeAtomically(file, JSON.stringify(value), opts.durable);
}
