// cli/output-copy.ts — how a goal's deliverables reach the user's folder (`aido output`,
// and through it run-aido.sh's ./output). What a goal wrote is untrusted, so only regular
// files and folders are copied: a symbolic link (it would point at the user's own files
// once outside the container), a fifo, socket or device is skipped and reported. Modes
// are rebuilt, never copied: 0644, or 0755 when the owner could execute, minus the
// caller's umask — a setuid or setgid bit can never arrive. The destination is never
// written through a link: an existing file is replaced (unlink, then O_EXCL|O_NOFOLLOW),
// and a destination folder that is a symlink, or a file where a folder should go, is left
// alone and reported. The source is read with lstat and O_NOFOLLOW only, each folder
// opened once (O_DIRECTORY | O_NOFOLLOW) and its entries reached through that descriptor
// (/proc/self/fd/<fd>/<name>), never by a path again: a goal still running can swap a
// folder of its output for a link to a host folder after the walk saw it, and by path the
// copy read the host's files (as root: any) into the user's folder. Names are read and
// written as bytes (a goal's file named with bytes that are not UTF-8 arrives as named),
// and reported with those bytes as \xNN (untrusted-files.ts displayName).

import { constants, promises as fsp, type Stats } from "node:fs";
import { displayName, fdEntryPath, fdPath, sparseRefusal } from "../sandbox/untrusted-files.js";

const CHUNK = 1 << 20;
const SLASH = Buffer.from("/");

export interface CopyReport {
  files: number;
  bytes: number;
  /** Paths (relative to the source) not copied, with the reason; bytes that are not UTF-8 as \xNN. */
  skipped: Array<{ path: string; reason: string }>;
}

export interface CopyOptions {
  /** chown every file and folder made (run-aido.sh: the host user, when the copier is root). */
  owner?: { uid: number; gid: number };
}

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Copy the tree under `src` into `dest` (created, with its parents, once there is
 * something to copy). A missing `src` copies nothing.
 */
export async function copyDeliverables(
  src: string,
  dest: string,
  opts: CopyOptions = {},
): Promise<CopyReport> {
  const report: CopyReport = { files: 0, bytes: 0, skipped: [] };
  let root: Awaited<ReturnType<typeof fsp.lstat>>;
  try {
    root = await fsp.lstat(src);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return report;
    throw e;
  }
  if (!root.isDirectory()) {
    report.skipped.push({ path: ".", reason: "the source is not a folder (a symlink is never followed)" });
    return report;
  }
  const top = await openFolder(src);
  if (!top) {
    report.skipped.push({ path: ".", reason: "changed while being copied" });
    return report;
  }
  try {
    await new Copier(dest, opts, report).dir(top, Buffer.alloc(0), "");
  } finally {
    await top.close();
  }
  return report;
}

class Copier {
  private rootMade = false;

  constructor(
    private readonly dest: string,
    private readonly opts: CopyOptions,
    private readonly report: CopyReport,
  ) {}

  /**
   * Copy the entries of the folder open at `src`, which is `rel` under the source (`shown` as
   * it is reported). Names are bytes: a task can name a file with bytes that are not UTF-8,
   * and such a name read as a string no longer reached the file (it was not copied).
   */
  async dir(src: fsp.FileHandle, rel: Buffer, shown: string): Promise<void> {
    const names = (await fsp.readdir(fdPath(src.fd), { encoding: "buffer" })).sort(Buffer.compare);
    for (const name of names) {
      const from = fdEntryPath(src.fd, name);
      const r = rel.length > 0 ? Buffer.concat([rel, SLASH, name]) : name;
      const shownR = shown ? `${shown}/${displayName(name)}` : displayName(name);
      const st = await lstatOrNull(from);
      if (!st) {
        this.skip(shownR, "changed while being copied");
      } else if (st.isDirectory()) {
        if (!(await this.makeDir(r, shownR))) continue;
        const sub = await openFolder(from);
        if (!sub) {
          this.skip(shownR, "changed while being copied");
          continue;
        }
        try {
          await this.dir(sub, r, shownR);
        } finally {
          await sub.close();
        }
      } else if (st.isFile()) {
        await this.file(from, r, shownR, st.ino);
      } else {
        this.skip(shownR, `${kindOf(st)}: only regular files and folders are copied`);
      }
    }
  }

  /** Where `rel` (bytes) goes in the destination. */
  private destOf(rel: Buffer): Buffer {
    return Buffer.concat([Buffer.from(this.dest), SLASH, rel]);
  }

  /** The destination folder for `rel`, made if absent; false (reported) if something else is there. */
  private async makeDir(rel: Buffer, shown: string): Promise<boolean> {
    await this.ensureRoot();
    const to = this.destOf(rel);
    const st = await lstatOrNull(to);
    if (st?.isDirectory()) return true;
    if (st) {
      this.skip(shown, `${kindOf(st)} in the destination where a folder would go; left alone`);
      return false;
    }
    await fsp.mkdir(to, { mode: 0o755 });
    if (this.opts.owner) await fsp.lchown(to, this.opts.owner.uid, this.opts.owner.gid);
    return true;
  }

  private async file(from: Buffer, rel: Buffer, shown: string, ino: number): Promise<void> {
    let input: fsp.FileHandle;
    try {
      input = await fsp.open(from, READ_FLAGS);
    } catch {
      this.skip(shown, "changed while being copied");
      return;
    }
    try {
      const st = await input.stat();
      if (st.ino !== ino || !st.isFile()) {
        this.skip(shown, "changed while being copied");
        return;
      }
      const sparse = sparseRefusal(st.size, st.blocks);
      if (sparse !== undefined) {
        this.skip(shown, sparse);
        return;
      }
      await this.ensureRoot();
      const to = this.destOf(rel);
      const there = await lstatOrNull(to);
      if (there?.isDirectory()) {
        this.skip(shown, "a folder in the destination where the file would go; left alone");
        return;
      }
      // Replace, never write through: a link or file at the path is unlinked first.
      if (there) await fsp.unlink(to);
      const output = await fsp.open(to, WRITE_FLAGS, st.mode & 0o100 ? 0o755 : 0o644);
      try {
        await copyContent(input, output, st.size);
        if (this.opts.owner) await output.chown(this.opts.owner.uid, this.opts.owner.gid);
      } finally {
        await output.close();
      }
      this.report.files += 1;
      this.report.bytes += st.size;
    } finally {
      await input.close();
    }
  }

  private async ensureRoot(): Promise<void> {
    if (this.rootMade) return;
    const made = await fsp.mkdir(this.dest, { recursive: true, mode: 0o755 });
    // Only a folder made here changes hands; an existing destination keeps its owner.
    if (this.opts.owner && made !== undefined)
      await fsp.chown(this.dest, this.opts.owner.uid, this.opts.owner.gid);
    this.rootMade = true;
  }

  private skip(path: string, reason: string): void {
    this.report.skipped.push({ path, reason });
  }
}

/** Up to `size` bytes (the size when opened: a goal still writing cannot keep the copy growing). */
async function copyContent(from: fsp.FileHandle, to: fsp.FileHandle, size: number): Promise<void> {
  const buf = Buffer.allocUnsafe(CHUNK);
  for (let left = size; left > 0; ) {
    const { bytesRead } = await from.read(buf, 0, Math.min(CHUNK, left), null);
    if (bytesRead === 0) return;
    for (let off = 0; off < bytesRead; ) off += (await to.write(buf, off, bytesRead - off)).bytesWritten;
    left -= bytesRead;
  }
}

/** The folder at `path` opened without following a link there; undefined when it is not a folder now. */
async function openFolder(path: string | Buffer): Promise<fsp.FileHandle | undefined> {
  try {
    return await fsp.open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    if (["ELOOP", "ENOTDIR", "ENOENT"].includes((e as NodeJS.ErrnoException).code ?? "")) return undefined;
    throw e;
  }
}

async function lstatOrNull(path: string | Buffer): Promise<Stats | null> {
  try {
    return await fsp.lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

function kindOf(st: Awaited<ReturnType<typeof fsp.lstat>>): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isFIFO()) return "a fifo";
  if (st.isSocket()) return "a socket";
  if (st.isBlockDevice() || st.isCharacterDevice()) return "a device";
  if (st.isDirectory()) return "a folder";
  return "a regular file";
}
