// sandbox/snapshot-blobs.ts — the content-addressed store behind snapshots: one file per
// distinct content, named by its SHA-256, so a snapshot costs only what changed.
//
// Blobs are always copies, never hard links into the workspace: the workspace and the
// store share a filesystem, and a later in-place write to a linked workspace file would
// silently change every snapshot that holds it. Content is hashed from the bytes we copy
// (not re-read from the workspace), so a file changing mid-snapshot can never leave a blob
// whose name does not match its content. Synchronous calls, for the reason given in
// snapshot-fs.ts; callers yield between files.

import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";

const HASH = /^[0-9a-f]{64}$/;
const CHUNK = 1024 * 1024;
const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

export class BlobStore {
  private readonly knownDirs = new Set<string>();
  private readonly buf = Buffer.allocUnsafe(CHUNK);

  constructor(readonly dir: string) {}

  pathOf(hash: string): string {
    if (!HASH.test(hash)) throw new AidoError(ErrorCode.internal, `bad blob hash "${hash}"`);
    return this.blobPath(hash);
  }

  /** For a hash this module computed itself (always 64 hex digits). */
  private blobPath(hash: string): string {
    return join(this.dir, hash.slice(0, 2), hash);
  }

  has(hash: string): boolean {
    return existsSync(this.pathOf(hash));
  }

  /**
   * Copy an open workspace file into the store; returns its hash and size. `size` (the
   * fd's fstat size) lets the copy stop at a short read that reached it, without one more
   * read to see end-of-file; a file that shrank meanwhile is still read until a 0 read.
   */
  putFromFd(fd: number, size?: number): { hash: string; bytes: number } {
    const tmp = this.tmpPath();
    const out = openSync(tmp, NEW_FILE, 0o600);
    let copied: { hash: string; bytes: number };
    try {
      copied = copyHashing(fd, out, this.buf, size);
    } catch (e) {
      closeSync(out);
      unlinkSync(tmp);
      throw e;
    }
    closeSync(out);
    // No existence check first: a blob already stored has the same content by its name,
    // and rename replaces it atomically, so one rename does what stat + rename/unlink did.
    this.ensureDir(join(this.dir, copied.hash.slice(0, 2)));
    renameSync(tmp, this.blobPath(copied.hash));
    return copied;
  }

  /**
   * Copy a blob into an open file, checked against its name on the way: a damaged store
   * throws (the caller discards the half-written file) instead of restoring junk.
   */
  copyTo(hash: string, out: number): number {
    const src = openSync(this.pathOf(hash), constants.O_RDONLY);
    try {
      const actual = copyHashing(src, out, this.buf);
      if (actual.hash !== hash) {
        throw new AidoError(
          ErrorCode.sandboxFailed,
          `snapshot blob ${hash} is damaged (content hash ${actual.hash})`,
        );
      }
      return actual.bytes;
    } finally {
      closeSync(src);
    }
  }

  /** SHA-256 of an open file's content (to compare a workspace file with a blob). */
  hashFd(fd: number): string {
    return copyHashing(fd, null, this.buf).hash;
  }

  private ensureDir(dir: string): void {
    if (this.knownDirs.has(dir)) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.knownDirs.add(dir);
  }

  private tmpPath(): string {
    const tmpDir = join(this.dir, "tmp");
    this.ensureDir(tmpDir);
    return join(tmpDir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  }
}

function copyHashing(
  src: number,
  out: number | null,
  buf: Buffer,
  size?: number,
): { hash: string; bytes: number } {
  const h = createHash("sha256");
  let bytes = 0;
  for (;;) {
    const n = readSync(src, buf, 0, buf.length, bytes);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    if (out !== null) {
      let written = 0;
      while (written < n) written += writeSync(out, buf, written, n - written);
    }
    bytes += n;
    if (size !== undefined && n < buf.length && bytes >= size) break;
  }
  return { hash: h.digest("hex"), bytes };
}
