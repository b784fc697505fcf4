// sandbox/executor/anchored.ts — acting on exactly the path the host judged. A file op
// called with `expect` (the canonical path the gate checked) must act on that path even if
// a parallel command swaps a symlink in while the op runs. So the op never hands a path
// string to the kernel to resolve: it opens "/" and then each component of `expect` in
// turn with O_NOFOLLOW (| O_DIRECTORY for folders), each relative to the folder opened
// before it through /proc/self/fd/<fd>/<name>. A component that is now a symlink fails
// (ELOOP/ENOTDIR) and the op is refused; once a folder is open, renaming or replacing it
// cannot redirect what happens inside it.
// What is read through an open folder is only handed back if the folder is still at the
// path it was judged at (stillAt): a command could move the folder, while a read runs, into
// a place the agent may not read and fill it from there.

import { closeSync, constants, lstatSync, mkdirSync, openSync, readlinkSync, type Stats } from "node:fs";
import { errnoOf, fail, fsFail, OpError } from "./op-error.js";
import { refuseProcPath } from "./proc-wall.js";
import { absolute, realpathOf } from "./realpath.js";

const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY } = constants;

/** A path that names `name` inside the open folder `fd` (or the folder itself). */
export const fdPath = (fd: number, name?: string): string =>
  name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;

/**
 * After reading through the open folder `fd`: is it still at `path`, the path it was judged
 * at? (/proc/self/fd/N names where the folder is now; a removed one reads "... (deleted)".)
 * Checking after the read is sound: a folder moved away to where the agent may not read,
 * and filled from there, could only read as `path` again by moving back to where it has
 * more rights, and Landlock refuses every command a move that gains rights (REFER).
 */
export function stillAt(fd: number, path: string): boolean {
  try {
    return readlinkSync(fdPath(fd)) === path;
  } catch {
    return false;
  }
}

export function changed(expect: string, why: string): OpError {
  return new OpError("path_changed", `${expect} changed after it was checked (${why}); refused`);
}

/** Components of a canonical absolute path; refuses anything that is not one. */
export function components(expect: unknown): string[] {
  if (typeof expect !== "string" || !expect.startsWith("/") || expect.includes("\0"))
    fail("invalid_input", "expect must be an absolute path");
  const parts = expect.split("/").filter((c) => c !== "");
  if (parts.some((c) => c === "." || c === "..")) fail("invalid_input", `expect ${expect} is not canonical`);
  return parts;
}

/** Open the folder `parts` below an open folder, each component with O_NOFOLLOW. */
export function openUnder(baseFd: number, parts: readonly string[]): number {
  let fd = openSync(fdPath(baseFd), O_RDONLY | O_DIRECTORY);
  try {
    for (const name of parts) {
      const next = openSync(fdPath(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * Open the folder made of `parts` from "/", never following a symlink. With `create`,
 * missing folders are made (mkdir does not follow a symlink either). Returns the fd.
 */
export function openDirNoFollow(parts: readonly string[], expect: string, create: boolean): number {
  let fd = openSync("/", O_RDONLY | O_DIRECTORY);
  try {
    for (const name of parts) {
      let next: number;
      try {
        next = openSync(fdPath(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (e) {
        if (errnoOf(e) !== "ENOENT" || !create) throw e;
        try {
          mkdirSync(fdPath(fd, name), 0o755);
        } catch (m) {
          if (errnoOf(m) !== "EEXIST") throw m;
        }
        next = openSync(fdPath(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      }
      closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    const code = errnoOf(e);
    if (code === "ELOOP" || code === "ENOTDIR") throw changed(expect, "a symlink or file stands in the path");
    fsFail(e, expect);
  }
}

export interface Anchored {
  /** The parent folder, open. The caller closes it. */
  dir: number;
  name: string;
  expect: string;
}

interface AnchorArgs {
  path?: unknown;
  expect?: unknown;
}

function judged(a: AnchorArgs): { expect: string; parts: string[] } {
  const p = absolute(a.path);
  const parts = components(a.expect);
  const expect = a.expect as string;
  if (p !== expect) fail("invalid_input", `path ${p} is not the expected ${expect}`);
  // Whatever the host judged, the executor reads nothing under /proc for an agent.
  refuseProcPath(expect);
  const now = realpathOf(p);
  if (now !== expect) throw changed(expect, `it now resolves to ${now}`);
  return { expect, parts };
}

/**
 * Before a file op: the path must still resolve to what the host judged. Returns the
 * parent folder's fd and the last component, for ops done through fdPath(dir, name).
 */
export function anchorParent(a: AnchorArgs, create: boolean): Anchored {
  const { expect, parts } = judged(a);
  if (parts.length === 0) fail("invalid_input", "/ has no parent folder");
  const dir = openDirNoFollow(parts.slice(0, -1), expect, create);
  return { dir, name: parts[parts.length - 1] as string, expect };
}

/** The whole path as an open folder (list, grep), after the same checks. */
export function anchorDir(a: AnchorArgs): number {
  const { expect, parts } = judged(a);
  return openDirNoFollow(parts, expect, false);
}

/** lstat of the last component; a symlink there means the path changed; null if missing. */
export function lstatAnchored(at: Anchored): Stats | null {
  try {
    const st = lstatSync(fdPath(at.dir, at.name));
    if (st.isSymbolicLink()) throw changed(at.expect, "it is now a symlink");
    return st;
  } catch (e) {
    if (e instanceof OpError) throw e;
    if (errnoOf(e) === "ENOENT") return null;
    fsFail(e, at.expect);
  }
}
