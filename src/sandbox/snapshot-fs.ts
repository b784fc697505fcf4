// sandbox/snapshot-fs.ts — host-side access to a goal's workspace that never leaves it.
//
// The container owns the workspace and may swap any folder for a symlink at any moment,
// while the daemon that snapshots and restores it runs as root on the host. A path-based
// write to "<workspace>/a/b" would follow a symlink planted at "a" and let the container
// make root write anywhere on the host. So every operation here is anchored on an open
// directory fd and addressed as /proc/self/fd/<fd>/<name> (Linux's openat through procfs):
// the kernel resolves the folder by the inode we opened, not by its path, and each folder
// is opened one component at a time with O_NOFOLLOW. Only the last component is ever
// looked up by name, and every call on it is one that does not follow a final symlink
// (lstat, readlink, unlink, rmdir, rename, symlink, lchown, open with O_NOFOLLOW).
//
// Calls are synchronous on purpose: a promise per lstat made a 10,000-file walk 3-7x
// slower. Long loops call `yieldEvery` so the daemon's event loop still breathes.

import { type BigIntStats, closeSync, constants, fstatSync, lstatSync, openSync } from "node:fs";
import { setImmediate as nextTurn } from "node:timers/promises";
import { AidoError, ErrorCode } from "../errors.js";

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** O_NONBLOCK: a fifo swapped in for a file must not hang the daemon on open. */
export const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
export const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Above this many cached folder fds the cache is emptied between batches. */
const MAX_CACHED_DIRS = 2000;

/**
 * A workspace-relative path: "/"-separated, no leading "/", no "", "." or ".." segment, no
 * NUL. Manifests are written by us, but they are read back from disk, so check anyway.
 */
export function checkRelPath(rel: string): string[] {
  const parts = rel.split("/");
  if (rel === "" || rel.includes("\0") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new AidoError(ErrorCode.invalidInput, `path "${rel}" escapes or is not a plain workspace path`, {
      path: rel,
    });
  }
  return parts;
}

export function splitRel(rel: string): { dir: string; name: string } {
  const i = rel.lastIndexOf("/");
  return i < 0 ? { dir: "", name: rel } : { dir: rel.slice(0, i), name: rel.slice(i + 1) };
}

/** Returns a function to await in long loops: it yields to the event loop every `ms`. */
export function yieldEvery(ms = 15): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < ms) return;
    await nextTurn();
    last = performance.now();
  };
}

/** An open folder of the workspace; names inside it are resolved against its inode. */
export class AnchoredDir {
  constructor(
    readonly fd: number,
    readonly rel: string,
  ) {}

  /** Path that reaches `name` inside this folder, whatever happened to the folder's path. */
  at(name: string): string {
    if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `bad file name "${name}" in workspace folder "${this.rel}"`,
      );
    }
    return `/proc/self/fd/${this.fd}/${name}`;
  }

  /** Path of the folder itself (for readdir). */
  self(): string {
    return `/proc/self/fd/${this.fd}`;
  }

  lstat(name: string): BigIntStats {
    return lstatSync(this.at(name), { bigint: true });
  }
}

/** The workspace root and a cache of its folders, each opened without following links. */
export class WorkspaceRoot {
  private readonly dirs = new Map<string, AnchoredDir>();

  private constructor(readonly root: AnchoredDir) {}

  static open(workspaceDir: string): WorkspaceRoot {
    return new WorkspaceRoot(new AnchoredDir(openSync(workspaceDir, DIR_FLAGS), ""));
  }

  /** The folder at `rel` ("" is the root), opened component by component with O_NOFOLLOW. */
  dir(rel: string): AnchoredDir {
    if (rel === "") return this.root;
    const cached = this.dirs.get(rel);
    if (cached) return cached;
    checkRelPath(rel);
    const { dir, name } = splitRel(rel);
    const opened = new AnchoredDir(openSync(this.dir(dir).at(name), DIR_FLAGS), rel);
    this.dirs.set(rel, opened);
    return opened;
  }

  /** Open folder `rel` for metadata changes (the caller closes the fd). */
  openDirFd(rel: string): number {
    if (rel === "") return openSync(this.root.self(), DIR_FLAGS);
    const { dir, name } = splitRel(rel);
    const fd = openSync(this.dir(dir).at(name), DIR_FLAGS);
    if (!fstatSync(fd).isDirectory()) {
      closeSync(fd);
      throw new AidoError(ErrorCode.sandboxFailed, `"${rel}" is not a folder`);
    }
    return fd;
  }

  /** Drop cached folders at or below `rel` (after it was removed or replaced). */
  forget(rel: string): void {
    const prefix = `${rel}/`;
    for (const [key, d] of [...this.dirs]) {
      if (key === rel || key.startsWith(prefix)) {
        this.dirs.delete(key);
        closeSync(d.fd);
      }
    }
  }

  /** Between batches of work: keep the fd count bounded on workspaces with many folders. */
  trim(): void {
    if (this.dirs.size <= MAX_CACHED_DIRS) return;
    for (const d of this.dirs.values()) closeSync(d.fd);
    this.dirs.clear();
  }

  close(): void {
    for (const d of this.dirs.values()) closeSync(d.fd);
    this.dirs.clear();
    closeSync(this.root.fd);
  }
}
