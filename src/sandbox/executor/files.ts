// sandbox/executor/files.ts — the file operations: read (a line window, stopping as soon
// as it is full), write (atomic replace), edit (literal, unique unless replace_all), list
// and stat. With `expect` (what the tools always send) each acts on the judged path only,
// through anchored.ts; without it, on the path as given (trusted internal callers).

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
import { type FileHandle, lstat, mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { posix } from "node:path";
import { anchorDir, anchorParent, changed, fdPath, lstatAnchored } from "./anchored.js";
import { errnoOf, fail, fsFail, OpError } from "./op-error.js";
import { absolute } from "./realpath.js";

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
const DEFAULT_READ_BYTES = 256 * 1024;

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

/** Open `a.expect` for reading: anchored parent, O_NOFOLLOW on the file itself. */
async function openExpected(a: Record<string, unknown>): Promise<FileHandle> {
  const at = anchorParent(a, false);
  try {
    return await open(fdPath(at.dir, at.name), O_RDONLY | O_NOFOLLOW);
  } catch (e) {
    if (errnoOf(e) === "ELOOP") throw changed(at.expect, "it is now a symlink");
    fsFail(e, at.expect);
  } finally {
    closeSync(at.dir);
  }
}

export async function opRead(a: Record<string, unknown>): Promise<unknown> {
  const p = absolute(a.path);
  const skip = num(a.offset);
  const limit = num(a.limit) || Number.POSITIVE_INFINITY;
  const maxBytes = num(a.maxBytes) || DEFAULT_READ_BYTES;
  let fh: FileHandle;
  if (a.expect !== undefined) fh = await openExpected(a);
  else {
    try {
      fh = await open(p, "r");
    } catch (e) {
      fsFail(e, p);
    }
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) fail("invalid_input", `${p}: is a directory`);
    const window = await readWindow(fh, skip, limit, maxBytes);
    return { ...window, size: st.size };
  } catch (e) {
    fsFail(e, p);
  } finally {
    await fh.close();
  }
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
  let text: string;
  if (expected) {
    const fh = await openExpected(a);
    try {
      if ((await fh.stat()).isDirectory()) fail("invalid_input", `${p}: is a directory`);
      text = await fh.readFile("utf8");
    } catch (e) {
      fsFail(e, p);
    } finally {
      await fh.close();
    }
  } else {
    try {
      text = await readFile(p, "utf8");
    } catch (e) {
      fsFail(e, p);
    }
  }
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
      return entriesOf(readdirSync(fdPath(fd)), (name) => lstatSync(fdPath(fd, name)));
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
