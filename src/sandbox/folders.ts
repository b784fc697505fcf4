// sandbox/folders.ts — a goal's host folders ($AIDO_HOME/goals/<goal_id>/{workspace,
// output,inputs}) and their safe removal. Goal ids become path components and container
// names, so they are validated here, once. Removal never follows a symlink: a link is
// unlinked, never descended into, so a link planted by an agent (or an operator) can
// never make the GC delete files outside the goal's folder.

import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmdirSync,
  unlinkSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { ensurePrivateDir } from "../security/private-home.js";
import { inert } from "../security/terminal-text.js";
import { fdEntryPath, fdPath } from "./untrusted-files.js";

/** workspace/, output/, inputs/ inside the private goal folder. */
const SHARED_DIR_MODE = 0o755;

const GOAL_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function assertGoalId(goalId: string): void {
  if (!GOAL_ID.test(goalId) || goalId.includes("..")) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `goal id ${JSON.stringify(goalId)} is not valid: use letters, digits, "_", "-" or "." (up to 128, no "..")`,
      { goalId },
    );
  }
}

export interface GoalFolders {
  root: string;
  workspace: string;
  output: string;
  inputs: string;
  /**
   * workspace is a host folder an MCP session bound (sandbox/workspace-binds.ts), not one
   * of ours: it is never created, chmod-ed or chown-ed here, and never removed with the goal.
   */
  hostWorkspace?: boolean;
}

export function foldersUnder(root: string): GoalFolders {
  return {
    root,
    workspace: join(root, "workspace"),
    output: join(root, "output"),
    inputs: join(root, "inputs"),
  };
}

export function goalFolders(goalsDir: string, goalId: string): GoalFolders {
  assertGoalId(goalId);
  return foldersUnder(join(goalsDir, goalId));
}

/** The uid:gid the container runs as; its writable folders are handed to it when we are root. */
export interface SandboxUser {
  uid: number;
  gid: number;
}

export function parseUser(user: string): SandboxUser {
  const m = /^(\d+):(\d+)$/.exec(user);
  if (!m)
    throw new AidoError(ErrorCode.configInvalid, `sandbox user "${user}" must be uid:gid (numbers)`, {
      user,
    });
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/**
 * Create the layout. The goal's root (and goals/ above it) is 0700, private to the daemon's
 * user; nothing inside the container depends on it (a bind mount's source is resolved by
 * the engine, and the container sees only the mounted folders themselves). workspace/,
 * output/ and inputs/ are 0755 whatever the umask: the container user must reach /inputs,
 * and the host reads what the container writes.
 */
export function makeGoalFolders(f: GoalFolders): void {
  ensurePrivateDir(dirname(f.root));
  ensurePrivateDir(f.root);
  for (const dir of f.hostWorkspace ? [f.output, f.inputs] : [f.workspace, f.output, f.inputs]) {
    mkdirSync(dir, { recursive: true, mode: SHARED_DIR_MODE });
    chmodSync(dir, SHARED_DIR_MODE);
  }
}

/**
 * The layout for a container: workspace/ and output/ become the container user's when the
 * daemon is root (a container uid 1000 must be able to write them); inputs/ stays the
 * host's and is mounted read-only.
 */
export function prepareFolders(f: GoalFolders, user: SandboxUser): void {
  makeGoalFolders(f);
  if (process.getuid?.() === 0) {
    for (const dir of f.hostWorkspace ? [f.output] : [f.workspace, f.output])
      chownSync(dir, user.uid, user.gid);
  }
}

/** How often a folder is emptied again when something kept adding to it meanwhile. */
const EMPTY_PASSES = 3;

/**
 * Folders open at once in one removal: a folder this deep below the tree's top is moved up
 * into the top (renamed through the descriptors, under a fresh name) and emptied from there.
 * The walk holds one descriptor and one stack frame per level, and a task can nest folders
 * far deeper than either allows (a chain some thousands deep overflowed the stack, so the tree
 * could never be removed).
 */
const MAX_DEPTH = 64;

/** Folders moved up in one removal before it gives up on a tree that keeps growing. */
const MAX_HOISTS = 100_000;

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/**
 * Remove a tree without ever following a symlink: links (the root included) are
 * unlinked, directories are emptied, then removed. Also while something still writing the
 * tree (a container that has it mounted) renames its parts: a folder is opened once
 * (O_DIRECTORY | O_NOFOLLOW) and its entries reached through that descriptor
 * (/proc/self/fd/<fd>/<name>: Linux, as the sandboxes are), never by its path again. By
 * path, a folder swapped for a link to a host folder after it was listed would turn the
 * rest of the removal onto the same names there. However deep the tree, at most MAX_DEPTH
 * folders are open at once (see there).
 */
export function removeTreeNoFollow(path: string): void {
  try {
    removeEntry(path, { top: undefined, hoisted: new Set(), hoists: 0 }, 0);
  } catch (e) {
    // The descriptor paths mean nothing to a reader: name the tree instead. The entry's own
    // name is the task's, of any bytes: it is printed on terminals and written in logs, where
    // a newline or an escape in it would forge lines, so it is made inert.
    const why = inert((e as Error).message.replace(/\/proc\/self\/fd\/\d+\//g, ""));
    throw Object.assign(new Error(`cannot remove ${path}: ${why}`), { code: code(e) });
  }
}

/** One removal: the descriptor of the tree's top folder, and the names moved up into it. */
interface Walk {
  top: number | undefined;
  /** Moved up since the top folder was last listed: listing them again is no sign of a writer. */
  hoisted: Set<string>;
  hoists: number;
}

/**
 * Remove what is at `path` (a path made of trusted folders and one name, or
 * /proc/self/fd/<fd>/<name>), `depth` folders below the tree's top.
 */
function removeEntry(path: string | Buffer, walk: Walk, depth: number): void {
  for (let attempt = 0; ; attempt++) {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path);
    } catch (e) {
      if (code(e) === "ENOENT") return;
      throw e;
    }
    if (!st.isDirectory()) {
      try {
        unlinkSync(path);
      } catch (e) {
        if (code(e) !== "ENOENT") throw e;
      }
      return;
    }
    ownToEmpty(path, st);
    if (walk.top !== undefined && depth >= MAX_DEPTH) {
      hoist(path, walk, walk.top);
      return;
    }
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch (e) {
      // Swapped for a link or a file since the lstat: remove that instead.
      if (attempt < EMPTY_PASSES && ["ELOOP", "ENOTDIR", "ENOENT"].includes(code(e) ?? "")) continue;
      throw e;
    }
    const isTop = walk.top === undefined;
    if (isTop) walk.top = fd;
    try {
      for (let written = 0; ; ) {
        // Names as bytes: a task can name a file with bytes that are not UTF-8 (\xff), and
        // such a name read as a string no longer reaches the file, which then could never
        // be removed (the folder "kept being written to").
        const names = readdirSync(fdPath(fd), { encoding: "buffer" });
        if (names.length === 0) break;
        if (!isTop || names.some((n) => !walk.hoisted.has(n.toString("latin1")))) written++;
        if (written > EMPTY_PASSES)
          throw Object.assign(new Error("it kept being written to"), { code: "ENOTEMPTY" });
        if (isTop) walk.hoisted.clear();
        for (const name of names) removeEntry(fdEntryPath(fd, name), walk, depth + 1);
      }
    } finally {
      if (isTop) walk.top = undefined;
      closeSync(fd);
    }
    try {
      rmdirSync(path);
    } catch (e) {
      // Renamed away meanwhile (it was emptied wherever it went), or a link put at its name.
      if (code(e) === "ENOENT") return;
      if (code(e) === "ENOTDIR" && attempt < EMPTY_PASSES) continue;
      throw e;
    }
    return;
  }
}

/** O_PATH (Linux): a descriptor that names a file without opening it for reading. */
const O_PATH = 0o10000000;

/**
 * A folder of the removing user's own that a task took the user's write or read permission
 * from (`chmod 555`, `chmod 000`: the person's sandbox runs its task as the person's uid) is
 * made the user's to list and empty (u+rwx); otherwise nothing in it could be removed, nor
 * the folder moved up, and the tree stayed for every sweep. The mode is changed through a
 * descriptor that names the folder itself (O_PATH | O_NOFOLLOW | O_DIRECTORY: never a
 * link's target), checked to be a folder of the user's. Root needs none of it.
 */
function ownToEmpty(path: string | Buffer, st: { uid: number; mode: number }): number | undefined {
  const uid = process.geteuid?.();
  if (uid === undefined || uid === 0 || st.uid !== uid || (st.mode & 0o700) === 0o700) return undefined;
  let fd: number;
  try {
    fd = openSync(path, O_PATH | constants.O_NOFOLLOW | constants.O_DIRECTORY);
  } catch {
    return undefined; // swapped meanwhile: the removal's own open says what is there now
  }
  try {
    const now = fstatSync(fd);
    if (!now.isDirectory() || now.uid !== uid || (now.mode & 0o700) === 0o700) return undefined;
    chmodSync(fdPath(fd), (now.mode & 0o7777) | 0o700);
    return now.mode & 0o7777;
  } finally {
    closeSync(fd);
  }
}

/**
 * The folder at `path`, of the user's own, made the user's to list and write again (u+rwx)
 * when a task took that from it (`chmod 555`, `chmod 000` on a folder the host makes files
 * in, such as a sandbox's stream folder: every later run failed to start). As ownToEmpty:
 * through a descriptor that never follows a link, root needs none of it. Returns the mode
 * it had when it was changed, undefined when nothing was changed.
 */
export function restoreOwnerAccess(path: string): number | undefined {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return st?.isDirectory() ? ownToEmpty(path, st) : undefined;
}

/**
 * Move the folder at `path` up into the tree's top folder (open at `top`), under a name no
 * one chose, to be emptied from there. rename(2) moves the entry itself, never what a link
 * there points at, and an entry already at the new name (not likely) fails the removal
 * rather than be replaced.
 */
function hoist(path: string | Buffer, walk: Walk, top: number): void {
  if (++walk.hoists > MAX_HOISTS)
    throw Object.assign(new Error("it kept being written to"), { code: "ENOTEMPTY" });
  const name = `.aido-deep-${randomBytes(8).toString("hex")}`;
  const to = fdPath(top, name);
  if (existsAt(to)) throw Object.assign(new Error(`${name} is already there`), { code: "EEXIST" });
  try {
    renameSync(path, to);
  } catch (e) {
    if (code(e) === "ENOENT") return; // removed or renamed away meanwhile
    throw e;
  }
  walk.hoisted.add(name);
}

function existsAt(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (e) {
    if (code(e) === "ENOENT") return false;
    throw e;
  }
}
