// sandbox/snapshot-pack-files.ts — the files under snapshots/packs/ and how they are
// written to survive a crash. A pack index, <snapshot id>.idx, is "AIDOIDX1" then one
// 48-byte row per content: sha256 (32 bytes), offset and length in the pack (u64
// little-endian each). Everything is written under a temp name (.tmp-<pid>-…), fsynced,
// renamed into place, and the folder fsynced; a temp file whose writer process is gone is
// a leftover. Reading and writing contents (the packs themselves) is snapshot-packs.ts's.

import {
  closeSync,
  constants,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

export const CHUNK = 1024 * 1024;
const IDX_MAGIC = Buffer.from("AIDOIDX1", "latin1");
const ROW = 48;
export const IDX_NAME = /^(snap_[0-9a-z]{6,40})\.idx$/;
export const PACK_NAME = /^(snap_[0-9a-z]{6,40})\.pack$/;
const TMP_PREFIX = ".tmp-";
export const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export interface BlobLocation {
  pack: string;
  offset: number;
  length: number;
}

/** One content of a pack: its SHA-256 (hex), where it starts in the pack and how long it is. */
export interface PackRow {
  hash: string;
  offset: number;
  length: number;
}

/** Bytes of a pack index holding `rows` contents. */
export function indexBytes(rows: number): number {
  return IDX_MAGIC.length + rows * ROW;
}

/** The packs under `dir` with their rows, in the order the store reads them (a later pack wins a duplicate). */
export function readPacks(dir: string): Map<string, PackRow[]> {
  const out = new Map<string, PackRow[]>();
  let names: string[] = [];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  for (const name of names) {
    const pack = IDX_NAME.exec(name)?.[1];
    if (pack === undefined) continue;
    const index = new Map<string, BlobLocation>();
    readIdx(readFileSync(join(dir, name)), pack, index);
    out.set(
      pack,
      [...index].map(([hash, loc]) => ({ hash, offset: loc.offset, length: loc.length })),
    );
  }
  return out;
}

/**
 * Write `<id>.idx` for `rows` durably: a temp file, fsynced, renamed into place, the folder
 * fsynced. Until the rename the pack is invisible (and removed as a leftover).
 */
export function writeIndexFile(dir: string, id: string, rows: readonly PackRow[]): void {
  const idx = Buffer.allocUnsafe(indexBytes(rows.length));
  IDX_MAGIC.copy(idx, 0);
  let at = IDX_MAGIC.length;
  for (const r of rows) {
    idx.write(r.hash, at, 32, "hex");
    idx.writeBigUInt64LE(BigInt(r.offset), at + 32);
    idx.writeBigUInt64LE(BigInt(r.length), at + 40);
    at += ROW;
  }
  const idxTmp = tmpPath(dir);
  const fd = openSync(idxTmp, NEW_FILE, 0o600);
  try {
    writeAll(fd, idx, idx.length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(idxTmp, join(dir, `${id}.idx`));
  fsyncDir(dir);
}

/** Read one pack index into `into`; a damaged index adds nothing (its contents read as missing). */
export function readIdx(data: Buffer, pack: string, into: Map<string, BlobLocation>): void {
  const rows = (data.length - IDX_MAGIC.length) / ROW;
  if (!Number.isInteger(rows) || rows < 0 || !data.subarray(0, IDX_MAGIC.length).equals(IDX_MAGIC)) return;
  for (let at = IDX_MAGIC.length; at < data.length; at += ROW) {
    const offset = data.readBigUInt64LE(at + 32);
    const length = data.readBigUInt64LE(at + 40);
    if (offset + length > BigInt(Number.MAX_SAFE_INTEGER)) continue;
    into.set(data.toString("hex", at, at + 32), { pack, offset: Number(offset), length: Number(length) });
  }
}

export function writeAll(fd: number, buf: Buffer, n: number): void {
  let written = 0;
  while (written < n) written += writeSync(fd, buf, written, n - written);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function tmpPath(dir: string): string {
  return join(dir, `${TMP_PREFIX}${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
}

/** Whether `name` is a temp file whose writer is gone (our own are covered by the caller's lock). */
export function isOrphanTemp(name: string): boolean {
  return name.startsWith(TMP_PREFIX) && !processAlive(Number(name.slice(TMP_PREFIX.length).split("-")[0]));
}

/** Whether a temp file's writer may still be running (this process never is: see isOrphanTemp). */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
