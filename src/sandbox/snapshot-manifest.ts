// sandbox/snapshot-manifest.ts — the on-disk formats of snapshots: the per-snapshot
// manifest (what the workspace held) and the stat index (what the last snapshot saw).
// Both are read back from disk, so both are checked before anything trusts them;
// manifest paths are also checked never to leave the workspace.

import { constants, promises as fsp } from "node:fs";
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

/** 2: contents live in packs (snapshot-packs.ts). */
export const MANIFEST_VERSION = 2;

export interface SnapshotManifest {
  version: typeof MANIFEST_VERSION;
  id: string;
  goal_id: string;
  label?: string;
  created_at: string;
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
      throw new AidoError(ErrorCode.notFound, `goal ${goalId} has no snapshot ${id}`, { goalId, id });
    }
    throw e;
  }
  const data = JSON.parse(raw) as SnapshotManifest;
  if (
    data?.version !== MANIFEST_VERSION ||
    data.id !== id ||
    data.goal_id !== goalId ||
    !Array.isArray(data.entries)
  ) {
    throw new AidoError(ErrorCode.sandboxFailed, `snapshot manifest ${file} is damaged`, { goalId, id });
  }
  data.entries = data.entries.map((e) => checkEntry(e, id));
  return data;
}

export async function readIndex(file: string): Promise<Map<string, IndexRow>> {
  let raw: string;
  try {
    raw = await fsp.readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw e;
  }
  // A damaged index only costs speed: every file is read again.
  const out = new Map<string, IndexRow>();
  try {
    const data = JSON.parse(raw) as {
      version: number;
      files: Record<string, [number, string, string, string, string]>;
    };
    if (data.version !== 1) return out;
    for (const [path, [size, mtime, ctime, ino, hash]] of Object.entries(data.files)) {
      if (!HASH.test(hash)) return new Map();
      out.set(path, { size, mtimeNs: BigInt(mtime), ctimeNs: BigInt(ctime), ino: BigInt(ino), hash });
    }
  } catch {
    return new Map();
  }
  return out;
}

export async function writeIndex(file: string, index: Map<string, IndexRow>): Promise<void> {
  const files: Record<string, [number, string, string, string, string]> = {};
  for (const [path, r] of index)
    files[path] = [r.size, String(r.mtimeNs), String(r.ctimeNs), String(r.ino), r.hash];
  await writeJsonAtomically(file, { version: 1, files });
}

/**
 * Write then rename: a crash leaves the old file or the new one, never half of one.
 * `durable` also fsyncs the file before the rename and its folder after, so the new file
 * survives a power loss too.
 */
export async function writeJsonAtomically(
  file: string,
  value: unknown,
  opts: { durable?: boolean } = {},
): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.tmp`);
  const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.writeFile(JSON.stringify(value));
    if (opts.durable) await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  if (opts.durable) {
    const d = await fsp.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
