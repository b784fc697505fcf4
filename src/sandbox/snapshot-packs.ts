// sandbox/snapshot-packs.ts — the content-addressed store behind snapshots: file contents
// kept once per distinct SHA-256, appended into pack files.
//
// Layout under snapshots/packs/ (the index format and the durable writes:
// snapshot-pack-files.ts):
//   <snapshot id>.pack   the contents a snapshot was the first to see, back to back
//   <snapshot id>.idx    where each content is in the pack
// A snapshot writes all its new contents into ONE pack: one file created, one fsync, one
// rename, where a file per content cost 10,000 creations and renames on a first snapshot.
// The pack is renamed into place, then its index, then (by the caller) the manifest, each
// fsynced first: a crash leaves at worst a pack nobody points at (removed by the next
// snapshot), never a manifest naming content that is not on disk.
//
// Contents are always copies, never hard links into the workspace (a later in-place write
// would change every snapshot holding it), and are hashed from the bytes copied, not
// re-read, so a file changing mid-snapshot cannot leave content that does not match its
// name. Reads check the hash again: a truncated or damaged pack makes the caller throw
// away what it wrote instead of restoring junk. Synchronous calls, for the reason given
// in snapshot-fs.ts; callers yield between files. Packs are never appended to once
// committed; snapshot-compact.ts rewrites one into a new pack when pruning leaves part of
// its content unneeded.

import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  fsyncSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import {
  type BlobLocation,
  CHUNK,
  IDX_NAME,
  isOrphanTemp,
  NEW_FILE,
  PACK_NAME,
  readIdx,
  tmpPath,
  writeAll,
  writeIndexFile,
} from "./snapshot-pack-files.js";

/** Pack writes are batched through a buffer this size; small files are read into it whole. */
const PACK_BUFFER = 4 * 1024 * 1024;

export class PackStore {
  private index: Map<string, BlobLocation> | null = null;
  private readonly packFds = new Map<string, number>();
  private readonly chunk = Buffer.allocUnsafe(CHUNK);

  constructor(readonly dir: string) {}

  /** Where a content is stored, if it is (indexes are read on first use). */
  locate(hash: string): BlobLocation | undefined {
    return this.loaded().get(hash);
  }

  /** A writer for the contents snapshot `id` sees first; the caller commits or aborts it. */
  writer(id: string): PackWriter {
    return new PackWriter(this, id);
  }

  /**
   * Copy a stored content into an open file, checked against its hash on the way: a
   * missing, truncated or damaged pack throws (the caller discards the half-written file).
   */
  copyTo(hash: string, out: number): number {
    const loc = this.locate(hash);
    if (!loc) {
      throw new AidoError(ErrorCode.sandboxFailed, `snapshot content ${hash} is in no pack index`, { hash });
    }
    const fd = this.packFd(loc.pack);
    const h = createHash("sha256");
    let done = 0;
    while (done < loc.length) {
      const n = readSync(fd, this.chunk, 0, Math.min(CHUNK, loc.length - done), loc.offset + done);
      if (n === 0) {
        throw new AidoError(
          ErrorCode.sandboxFailed,
          `snapshot content ${hash} is damaged: pack ${loc.pack} ends at byte ${loc.offset + done}, inside it`,
          { hash, pack: loc.pack },
        );
      }
      h.update(this.chunk.subarray(0, n));
      writeAll(out, this.chunk, n);
      done += n;
    }
    const actual = h.digest("hex");
    if (actual !== hash) {
      throw new AidoError(
        ErrorCode.sandboxFailed,
        `snapshot content ${hash} is damaged in pack ${loc.pack} (content hash ${actual})`,
        { hash, pack: loc.pack },
      );
    }
    return done;
  }

  /** A stored content, checked against its hash (as copyTo checks it); for small contents. */
  read(hash: string): Buffer {
    const loc = this.locate(hash);
    if (!loc) {
      throw new AidoError(ErrorCode.sandboxFailed, `snapshot content ${hash} is in no pack index`, { hash });
    }
    const buf = Buffer.alloc(loc.length);
    const fd = this.packFd(loc.pack);
    let done = 0;
    while (done < loc.length) {
      const n = readSync(fd, buf, done, loc.length - done, loc.offset + done);
      if (n === 0) break;
      done += n;
    }
    if (done !== loc.length || createHash("sha256").update(buf).digest("hex") !== hash) {
      throw new AidoError(
        ErrorCode.sandboxFailed,
        `snapshot content ${hash} is damaged in pack ${loc.pack}`,
        {
          hash,
          pack: loc.pack,
        },
      );
    }
    return buf;
  }

  /** SHA-256 of an open file's content (to compare a workspace file with a snapshot). */
  hashFd(fd: number): string {
    const h = createHash("sha256");
    let pos = 0;
    for (;;) {
      const n = readSync(fd, this.chunk, 0, CHUNK, pos);
      if (n === 0) return h.digest("hex");
      h.update(this.chunk.subarray(0, n));
      pos += n;
    }
  }

  /**
   * Remove what a crashed snapshot or compaction left: temp files of processes that are
   * gone, and packs whose index never landed (no manifest can name their content) once
   * they are `unindexedAfterMs` old (a live snapshot renames its index milliseconds after
   * its pack; pruning, which must free space now, passes 0). Call only under the goal's
   * snapshot lock, which covers this process's own temp files and packs.
   */
  removeLeftovers(unindexedAfterMs = 60_000): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    const indexed = new Set(names.filter((n) => IDX_NAME.test(n)).map((n) => n.slice(0, -4)));
    for (const name of names) {
      const pack = PACK_NAME.exec(name)?.[1];
      const full = join(this.dir, name);
      const stale =
        isOrphanTemp(name) ||
        (pack !== undefined &&
          !indexed.has(pack) &&
          Date.now() - lstatSync(full).mtimeMs >= unindexedAfterMs);
      if (stale) unlinkSync(full);
    }
  }

  close(): void {
    for (const fd of this.packFds.values()) closeSync(fd);
    this.packFds.clear();
  }

  /** Called by a writer once its pack and index are durable: indexes are read again on next use. */
  added(): void {
    this.index = null;
  }

  private loaded(): Map<string, BlobLocation> {
    if (this.index) return this.index;
    const index = new Map<string, BlobLocation>();
    let names: string[] = [];
    try {
      names = readdirSync(this.dir).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    for (const name of names) {
      const pack = IDX_NAME.exec(name)?.[1];
      if (pack !== undefined) readIdx(readFileSync(join(this.dir, name)), pack, index);
    }
    this.index = index;
    return index;
  }

  private packFd(pack: string): number {
    const open = this.packFds.get(pack);
    if (open !== undefined) return open;
    let fd: number;
    try {
      fd = openSync(join(this.dir, `${pack}.pack`), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      throw new AidoError(
        ErrorCode.sandboxFailed,
        `snapshot pack ${pack} cannot be opened: ${(e as Error).message}`,
        {
          pack,
        },
      );
    }
    this.packFds.set(pack, fd);
    return fd;
  }
}

/**
 * Appends contents to one new pack (opened on the first content, under a temp name).
 * Contents already in the store, or already in this pack, are not written twice.
 */
export class PackWriter {
  private fd: number | null = null;
  private tmp = "";
  private readonly buf = Buffer.allocUnsafe(PACK_BUFFER);
  /** Pack offset of buf[0], and how much of buf is filled. */
  private base = 0;
  private fill = 0;
  private readonly rows = new Map<string, [number, number]>();

  constructor(
    private readonly store: PackStore,
    private readonly id: string,
  ) {}

  /**
   * Copy an open file into the pack, hashing as it is read; returns its hash and size.
   * `size` (the fd's fstat size) lets a small file be read whole in one call, and lets
   * the copy stop at a short read that reached it; a file that grew meanwhile is read on
   * until a 0 read, so what is stored is always exactly what was hashed.
   */
  putFromFd(src: number, size?: number): { hash: string; bytes: number } {
    this.open();
    if (size !== undefined && size < PACK_BUFFER && PACK_BUFFER - this.fill <= size) this.flush();
    const start = this.base + this.fill;
    const h = createHash("sha256");
    let bytes = 0;
    try {
      for (;;) {
        if (this.fill === PACK_BUFFER) this.flush();
        const want = PACK_BUFFER - this.fill;
        const n = readSync(src, this.buf, this.fill, want, bytes);
        if (n === 0) break;
        h.update(this.buf.subarray(this.fill, this.fill + n));
        this.fill += n;
        bytes += n;
        if (size !== undefined && n < want && bytes >= size) break;
      }
    } catch (e) {
      this.rewind(start);
      throw e;
    }
    const hash = h.digest("hex");
    if (this.rows.has(hash) || this.store.locate(hash)) this.rewind(start);
    else this.rows.set(hash, [start, bytes]);
    return { hash, bytes };
  }

  /**
   * Make the pack and its index durable and visible. Nothing is left on disk when the
   * snapshot saw no new content.
   */
  commit(): void {
    if (this.fd === null) return;
    if (this.rows.size === 0) {
      this.abort();
      return;
    }
    const dir = this.store.dir;
    this.flush();
    ftruncateSync(this.fd, this.base); // drop bytes of a last content that was a duplicate
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = null;
    renameSync(this.tmp, join(dir, `${this.id}.pack`));
    const rows = [...this.rows].map(([hash, [offset, length]]) => ({ hash, offset, length }));
    writeIndexFile(dir, this.id, rows);
    this.store.added();
  }

  /** Bytes of new content in the pack so far (contents already stored are not counted). */
  get written(): number {
    return this.base + this.fill;
  }

  /** Throw away the unfinished pack. */
  abort(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    try {
      unlinkSync(this.tmp);
    } catch {
      // already gone
    }
  }

  private open(): void {
    if (this.fd !== null) return;
    mkdirSync(this.store.dir, { recursive: true, mode: 0o700 });
    this.tmp = tmpPath(this.store.dir);
    this.fd = openSync(this.tmp, NEW_FILE, 0o600);
  }

  private flush(): void {
    let written = 0;
    while (written < this.fill) {
      written += writeSync(this.fd!, this.buf, written, this.fill - written, this.base + written);
    }
    this.base += this.fill;
    this.fill = 0;
  }

  /** Forget everything from pack offset `start` on (later writes overwrite it). */
  private rewind(start: number): void {
    if (start >= this.base) this.fill = start - this.base;
    else {
      this.base = start;
      this.fill = 0;
    }
  }
}
