// security/private-home.ts — $AIDO_HOME is the daemon user's alone: folders 0700, files
// 0600, whatever the umask of whoever started the daemon. Creation never relies on the
// umask (a folder made 0700 or a file opened 0600 can only lose bits to it), and a library
// that creates files with its own defaults (SQLite makes aido.db 0644) gets its file made
// for it first. Homes made by an older Aido, or by a hand with a loose umask, are tightened
// at every start (tightenHome). Links are never followed: a symlink where a state file or a
// goal folder should be is left alone rather than having its target chmodded.

import { chmodSync, closeSync, fchmodSync, lstatSync, mkdirSync, openSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Folders of the state layout (DESIGN.md "State") that hold one folder per goal or slot. */
const DIRS_OF_FOLDERS = ["goals", "sandbox-pool"] as const;
/** Other folders of the layout: keys/ (the runtime key), inbox/ (files run-aido.sh stages). */
const DIRS = ["keys", "inbox"] as const;
/** The daemon's own files next to the database. */
const FILES = ["agentd.pid", "agentd.log"] as const;

/** mkdir -p with 0700 on every folder it creates, and 0700 on `dir` itself in any case. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  tightenIfPlain(dir, PRIVATE_DIR_MODE, "dir");
}

/**
 * Create `file` 0600 if it does not exist (the umask can only remove bits from 0600), and
 * make an existing one 0600. Returns nothing: the caller opens the file as it likes.
 */
export function ensurePrivateFile(file: string): void {
  const fd = openSync(file, "a", PRIVATE_FILE_MODE);
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
}

/** The database file and the WAL/SHM files SQLite keeps beside it. */
export function databaseFiles(dbPath: string): string[] {
  return [dbPath, `${dbPath}-wal`, `${dbPath}-shm`];
}

/**
 * Make an existing home private again: AIDO_HOME, goals/, every goal folder, keys/ and the
 * pool and inbox folders 0700; the database (+ -wal, -shm), the audit head, pid file and
 * log 0600. What
 * does not exist is not created here. The runtime key is not touched: security/keys.ts
 * refuses a key others could read (it may have leaked) instead of quietly fixing it.
 */
export function tightenHome(config: Pick<Config, "home" | "dbPath" | "pidPath" | "auditHeadPath">): void {
  ensurePrivateDir(config.home);
  for (const name of [...DIRS_OF_FOLDERS, ...DIRS]) {
    const dir = join(config.home, name);
    if (!tightenIfPlain(dir, PRIVATE_DIR_MODE, "dir")) continue;
    if (!(DIRS_OF_FOLDERS as readonly string[]).includes(name)) continue;
    for (const child of readdirSync(dir)) tightenIfPlain(join(dir, child), PRIVATE_DIR_MODE, "dir");
  }
  const files = [
    ...databaseFiles(config.dbPath),
    config.auditHeadPath,
    config.pidPath,
    ...FILES.map((f) => join(config.home, f)),
  ];
  for (const file of files) tightenIfPlain(file, PRIVATE_FILE_MODE, "file");
}

/**
 * chmod `path` to `mode` when it is a real folder or regular file (lstat: a link is never
 * followed) whose permission bits differ. True when `path` is of that kind.
 */
function tightenIfPlain(path: string, mode: number, kind: "dir" | "file"): boolean {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
  if (kind === "dir" ? !st.isDirectory() : !st.isFile()) return false;
  if ((st.mode & 0o7777) === mode) return true;
  try {
    chmodSync(path, mode);
  } catch (e) {
    const want = mode.toString(8).padStart(4, "0");
    throw new AidoError(
      ErrorCode.configInvalid,
      `cannot make ${path} private (mode ${want}; it belongs to uid ${st.uid}): ${errorMessage(e)}`,
      { path, mode: want },
      { cause: e },
    );
  }
  return true;
}
