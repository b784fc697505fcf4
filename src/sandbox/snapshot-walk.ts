// sandbox/snapshot-walk.ts — list a workspace as it is now (lstat only, links never
// followed) and open its files for reading without leaving it. Both snapshot and restore
// start here, so "what is in the workspace" has one definition.

import { closeSync, fstatSync, openSync, readdirSync, readlinkSync } from "node:fs";
import { AidoError, ErrorCode } from "../errors.js";
import { READ_FLAGS, splitRel, type WorkspaceRoot, yieldEvery } from "./snapshot-fs.js";

export type EntryType = "file" | "dir" | "symlink";

export interface WorkspaceEntry {
  /** Workspace-relative, "/"-separated. */
  path: string;
  type: EntryType;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  /** Symlink target, verbatim (never resolved). */
  target?: string;
}

const S_IFMT = 0o170000n;
const S_IFREG = 0o100000n;
const S_IFDIR = 0o040000n;
const S_IFLNK = 0o120000n;

interface StatLike {
  mode: bigint;
  uid: bigint;
  gid: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

export function typeOf(mode: bigint): EntryType | null {
  const fmt = mode & S_IFMT;
  if (fmt === S_IFREG) return "file";
  if (fmt === S_IFDIR) return "dir";
  if (fmt === S_IFLNK) return "symlink";
  return null; // fifos, sockets, devices: not workspace content
}

export function entryOf(path: string, st: StatLike, type: EntryType): WorkspaceEntry {
  return {
    path,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
  };
}

/**
 * A regular file the walk listed without an lstat (its folder entry says "regular file"):
 * the caller opens it anyway and takes the stat of what it opened (openWorkspaceFile).
 */
export interface UnstattedFile {
  path: string;
  type: "file";
  unstatted: true;
}

/** Every file, folder and symlink under the root, sorted by path. Vanishing entries are skipped. */
export async function walkWorkspace(ws: WorkspaceRoot): Promise<WorkspaceEntry[]> {
  return (await walk(ws, () => true)) as WorkspaceEntry[];
}

/**
 * Like walkWorkspace, but a regular file is lstat'ed only when `statFile(path)` says its
 * stat is needed (a snapshot needs it only for files it may skip: those in its index).
 * A first snapshot thereby makes one path lookup per file fewer; what it records is the
 * same, since a file that is read is recorded with the stat of the opened fd.
 */
export async function walkForSnapshot(
  ws: WorkspaceRoot,
  statFile: (path: string) => boolean,
): Promise<(WorkspaceEntry | UnstattedFile)[]> {
  return walk(ws, statFile);
}

async function walk(
  ws: WorkspaceRoot,
  statFile: (path: string) => boolean,
): Promise<(WorkspaceEntry | UnstattedFile)[]> {
  const out: (WorkspaceEntry | UnstattedFile)[] = [];
  const breathe = yieldEvery();
  const pending = [""];
  while (pending.length > 0) {
    const rel = pending.pop()!;
    try {
      walkDir(ws, rel, out, pending, statFile);
    } catch (e) {
      // A folder swapped for a link or removed since we listed it: its content is gone.
      const code = (e as NodeJS.ErrnoException).code;
      if (rel === "" || (code !== "ENOENT" && code !== "ELOOP" && code !== "ENOTDIR")) throw e;
    }
    await breathe();
  }
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

function walkDir(
  ws: WorkspaceRoot,
  rel: string,
  out: (WorkspaceEntry | UnstattedFile)[],
  pending: string[],
  statFile: (path: string) => boolean,
): void {
  const dir = ws.dir(rel);
  for (const item of readdirSync(dir.self(), { withFileTypes: true })) {
    const name = item.name;
    const path = rel === "" ? name : `${rel}/${name}`;
    if (item.isFile() && !statFile(path)) {
      out.push({ path, type: "file", unstatted: true });
      continue;
    }
    let st: StatLike;
    try {
      st = dir.lstat(name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    const type = typeOf(st.mode);
    if (type === null) continue;
    const entry = entryOf(path, st, type);
    if (type === "symlink") entry.target = readlinkSync(dir.at(name), "utf8");
    if (type === "dir") pending.push(path);
    out.push(entry);
  }
}

/**
 * Open a workspace file for reading: no link followed anywhere on the way, and the fd
 * must be a regular file. Returns the fd (the caller closes it) with the stat of what was
 * actually opened.
 */
export function openWorkspaceFile(ws: WorkspaceRoot, rel: string): { fd: number; entry: WorkspaceEntry } {
  const { dir, name } = splitRel(rel);
  const fd = openSync(ws.dir(dir).at(name), READ_FLAGS);
  try {
    const st = fstatSync(fd, { bigint: true });
    if (typeOf(st.mode) !== "file") {
      throw new AidoError(ErrorCode.sandboxFailed, `"${rel}" is no longer a regular file`, { path: rel });
    }
    return { fd, entry: entryOf(rel, st, "file") };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
