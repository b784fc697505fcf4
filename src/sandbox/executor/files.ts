// sandbox/executor/files.ts — the file operations: read (a line window, stopping as soon
// as it is full), write (atomic replace), edit (literal, unique unless replace_all, files
// up to EDIT_MAX_BYTES), list and stat. With `expect` (what the tools always send) each acts
// on the judged path only, through anchored.ts; without it, on the path as given (trusted
// internal callers).
// Reads open with O_NONBLOCK and refuse anything but a regular file before reading: a fifo
// opened for reading would block until a writer came, holding one of the few threads of
// Node's file-system pool, and a handful of them would stall every file op of the goal.
// What was read through an anchored folder is only returned if the folder is still where
// it was judged (stillAt); otherwise the op fails with path_changed.

import {
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { type FileHandle, lstat, mkdir, open, readdir, rename, unlink } from "node:fs/promises";
import { posix } from "node:path";
import { anchorDir, anchorParent, changed, fdPath, lstatAnchored, stillAt } from "./anchored.js";
import { errnoOf, fail, fsFail, OpError } from "./op-error.js";
import { absolute } from "./realpath.js";

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;
const DEFAULT_READ_BYTES = 256 * 1024;
/** file_edit holds a file (twice, as text and edited) in memory: larger ones are refused. */
export const EDIT_MAX_BYTES = 8 * 1024 * 1024;

export type EntryType = "file" | "dir" | "symlink" | "other";

export function typeOf(st: Stats): EntryType {
  if (st.isSymbolicLink()) return "symlink";
  if (st.isDirectory()) return "dir";
  if (st.isFile()) return "file";
  return "other";
}

const num = (v: unknown): number => (typeof v === "number" && v > 0 ? Math.floor(v) : 0);
const tmpName = (name: string): string =>
  `.${name}.aido-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;

/** What a file that is not a regular one is, for a refusal. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a fifo";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a regular file";
}

/**
 * Read a regular file: `a.expect` through its anchored parent folder (O_NOFOLLOW on the file
 * itself), or `a.path` as given. Opened without blocking and refused unless fstat says it is
 * a regular file; `use` reads it; then the folder must still be where it was judged.
 */
async function readRegular<T>(
  a: Record<string, unknown>,
  use: (fh: FileHandle, st: Stats) => Promise<T>,
): Promise<T> {
  const p = absolute(a.path);
  const at = a.expect === undefined ? undefined : anchorParent(a, false);
  try {
    let fh: FileHandle;
    try {
      fh = at
        ? await open(fdPath(at.dir, at.name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        : await open(p, O_RDONLY | O_NONBLOCK);
    } catch (e) {
      if (at && errnoOf(e) === "ELOOP") throw changed(at.expect, "it is now a symlink");
      fsFail(e, p);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) fail("invalid_input", `${p}: is ${kindOf(st)}; only regular files can be read`);
      const out = await use(fh, st);
      if (at && !stillAt(at.dir, posix.dirname(at.expect))) {
        throw changed(at.expect, "its folder was moved while it was read");
      }
      return out;
    } catch (e) {
      return fsFail(e, p);
    } finally {
      await fh.close();
    }
  } finally {
    if (at) closeSync(at.dir);
  }
}

export async function opRead(a: Record<string, unknown>): Promise<unknown> {
  const skip = num(a.offset);
  const limit = num(a.limit) || Number.POSITIVE_INFINITY;
  const maxBytes = num(a.maxBytes) || DEFAULT_READ_BYTES;
  return readRegular(a, async (fh, st) => ({
    ...(await readWindow(fh, skip, limit, maxBytes)),
    size: st.size,
  }));
}

/** The whole file as text, refused past EDIT_MAX_BYTES (also if it grows while it is read). */
async function readForEdit(fh: FileHandle, st: Stats, p: string): Promise<string> {
  const tooLarge = (size: string): never =>
    fail(
      "invalid_input",
      `${p} is ${size} bytes; file_edit edits files of at most ${EDIT_MAX_BYTES} bytes (8 MiB): ` +
        "rewrite it with file_write, or change it with a command",
    );
  if (st.size > EDIT_MAX_BYTES) tooLarge(String(st.size));
  const buf = Buffer.alloc(EDIT_MAX_BYTES + 1);
  let n = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
    if (bytesRead === 0) break;
    n += bytesRead;
    if (n > EDIT_MAX_BYTES) tooLarge(`more than ${EDIT_MAX_BYTES}`);
  }
  return buf.subarray(0, n).toString("utf8");
}

/** Lines [skip, skip+limit) up to maxBytes; a huge file costs its window, not its size. */
async function readWindow(
  fh: FileHandle,
  skip: number,
  limit: number,
  maxBytes: number,
): Promise<{ content: string; truncated: boolean }> {
  const buf = Buffer.alloc(1024 * 1024);
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let line = 0;
  let taken = 0;
  let carry = Buffer.alloc(0);
  let pos = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    pos += bytesRead;
    const chunk = bytesRead === 0 ? carry : Buffer.concat([carry, buf.subarray(0, bytesRead)]);
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0 && bytesRead > 0) break;
      const end = nl < 0 ? chunk.length : nl + 1;
      if (end > start) {
        if (line >= skip) {
          if (taken >= limit) return { content: Buffer.concat(kept).toString("utf8"), truncated: true };
          const piece = chunk.subarray(start, end);
          if (keptBytes + piece.length > maxBytes) {
            kept.push(piece.subarray(0, maxBytes - keptBytes));
            return { content: Buffer.concat(kept).toString("utf8"), truncated: true };
          }
          kept.push(piece);
          keptBytes += piece.length;
          taken++;
        }
        line++;
      }
      start = end;
      if (nl < 0) return { content: Buffer.concat(kept).toString("utf8"), truncated: false };
    }
    carry = chunk.subarray(start);
  }
}

/**
 * Atomic replace of `a.expect`: the temp file is created O_EXCL|O_NOFOLLOW in the anchored
 * parent folder and renamed over the name within that same folder (rename replaces a name,
 * it never follows one). Missing parent folders are made, each checked the same way.
 */
function writeExpected(a: Record<string, unknown>, data: Buffer): void {
  const at = anchorParent(a, true);
  try {
    const st = lstatAnchored(at);
    if (st?.isDirectory()) fail("invalid_input", `${at.expect}: is a directory`);
    // Set-id bits are never carried over (nothing a goal writes reaches the host with them).
    const mode = st?.isFile() ? st.mode & 0o777 : 0o644;
    const tmp = tmpName(at.name);
    let fd: number | undefined;
    try {
      fd = openSync(fdPath(at.dir, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
      writeFileSync(fd, data);
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      renameSync(fdPath(at.dir, tmp), fdPath(at.dir, at.name));
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      try {
        unlinkSync(fdPath(at.dir, tmp));
      } catch {
        // never created, or already renamed
      }
      fsFail(e, at.expect);
    }
  } finally {
    closeSync(at.dir);
  }
}

/** Atomic replace by path (no `expect`): temp file in the same folder, fsync, rename. */
async function writeAtomic(p: string, data: Buffer, mode: number): Promise<void> {
  const tmp = posix.join(posix.dirname(p), tmpName(posix.basename(p)));
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, "wx", mode);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, p);
  } catch (e) {
    if (fh) await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    fsFail(e, p);
  }
}

async function existingMode(p: string): Promise<number> {
  try {
    const st = await lstat(p);
    if (st.isDirectory()) fail("invalid_input", `${p}: is a directory`);
    return st.isFile() ? st.mode & 0o777 : 0o644;
  } catch (e) {
    if (e instanceof OpError) throw e;
    return 0o644;
  }
}

export async function opWrite(a: Record<string, unknown>): Promise<unknown> {
  const p = absolute(a.path);
  if (typeof a.content !== "string") fail("invalid_input", "content must be a string");
  const data = Buffer.from(a.content, "utf8");
  if (a.expect !== undefined) {
    writeExpected(a, data);
    return { bytes: data.length };
  }
  const mode = await existingMode(p);
  try {
    await mkdir(posix.dirname(p), { recursive: true });
  } catch (e) {
    fsFail(e, posix.dirname(p));
  }
  await writeAtomic(p, data, mode);
  return { bytes: data.length };
}

export async function opEdit(a: Record<string, unknown>): Promise<unknown> {
  const p = absolute(a.path);
  const { oldString, newString } = a;
  if (typeof oldString !== "string" || oldString === "")
    fail("invalid_input", "old_string must be a non-empty string");
  if (typeof newString !== "string") fail("invalid_input", "new_string must be a string");
  if (oldString === newString) fail("invalid_input", "old_string and new_string are the same");
  const expected = a.expect !== undefined;
  const mode = expected ? 0 : await existingMode(p);
  const text = await readRegular(a, (fh, st) => readForEdit(fh, st, p));
  const parts = text.split(oldString);
  const count = parts.length - 1;
  if (count === 0) fail("invalid_input", `${p}: old_string not found`);
  if (count > 1 && !a.replaceAll) {
    fail("invalid_input", `${p}: old_string occurs ${count} times; give more context or set replace_all`);
  }
  let out: string;
  if (a.replaceAll) out = parts.join(newString);
  else {
    const at = text.indexOf(oldString);
    out = text.slice(0, at) + newString + text.slice(at + oldString.length);
  }
  if (expected) writeExpected(a, Buffer.from(out, "utf8"));
  else await writeAtomic(p, Buffer.from(out, "utf8"), mode);
  return { replacements: a.replaceAll ? count : 1 };
}

export interface ListEntry {
  name: string;
  type: EntryType;
  size: number;
}

export async function opList(a: Record<string, unknown>): Promise<ListEntry[]> {
  if (a.expect !== undefined) {
    const fd = anchorDir(a);
    try {
      const entries = entriesOf(readdirSync(fdPath(fd)), (name) => lstatSync(fdPath(fd, name)));
      if (!stillAt(fd, a.expect as string))
        throw changed(a.expect as string, "it was moved while it was listed");
      return entries;
    } catch (e) {
      fsFail(e, a.expect as string);
    } finally {
      closeSync(fd);
    }
  }
  const p = absolute(a.path);
  let names: string[];
  try {
    names = await readdir(p);
  } catch (e) {
    fsFail(e, p);
  }
  return entriesOf(names, (name) => lstatSync(posix.join(p, name)));
}

function entriesOf(names: string[], stat: (name: string) => Stats): ListEntry[] {
  const out: ListEntry[] = [];
  for (const name of names.sort()) {
    try {
      const st = stat(name);
      out.push({ name, type: typeOf(st), size: st.size });
    } catch {
      // vanished while listing
    }
  }
  return out;
}

export async function opStat(a: Record<string, unknown>): Promise<unknown> {
  const p = absolute(a.path);
  const shape = (st: Stats) => ({
    path: p,
    type: typeOf(st),
    size: st.size,
    mode: st.mode & 0o7777,
    mtimeMs: st.mtimeMs,
  });
  if (a.expect !== undefined) {
    let at: ReturnType<typeof anchorParent>;
    try {
      at = anchorParent(a, false);
    } catch (e) {
      if (e instanceof OpError && e.code === "not_found") return null;
      throw e;
    }
    try {
      const st = lstatAnchored(at);
      return st && shape(st);
    } finally {
      closeSync(at.dir);
    }
  }
  try {
    return shape(await lstat(p));
  } catch (e) {
    const code = errnoOf(e);
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    fsFail(e, p);
  }
}
