// sandbox/untrusted-walk.ts — the one synchronous walk of a folder a sandbox wrote (the
// dashboard's output listing and downloads, `aido run`'s output collection), and the open
// of what it found. Each folder is opened once (O_DIRECTORY | O_NOFOLLOW) and its entries
// reached through that descriptor (/proc/self/fd/<fd>/<name>), never by a path again: by
// path, a task still running that swapped a folder for a link to a host folder between two
// steps had the host's files listed (their names reported, their contents copied). Names
// are read as bytes: one that is not UTF-8, read as a string, no longer reached its file,
// which was then left out in silence or reported as changed. Entries are given with their
// names as on disk and as shown (untrusted-files.ts displayName).

import { isUtf8 } from "node:buffer";
import { closeSync, constants, type Dir, lstatSync, opendirSync, openSync, type Stats } from "node:fs";
import { displayName, fdEntryPath, fdPath } from "./untrusted-files.js";

export interface WalkedEntry {
  /** The names (bytes, as on disk) from the walked folder down to the entry. */
  names: Buffer[];
  /** The path as shown: "/"-joined, names that are not UTF-8 with \xNN (displayName). */
  shown: string;
  /** Every name on the way is UTF-8 (then `shown` is the path itself). */
  utf8: boolean;
  kind: "file" | "symbolic link" | "fifo" | "socket" | "device";
  size: number;
  dev: number;
  ino: number;
}

export interface WalkLimits {
  /**
   * Entries given at most: regular files, and with `others` the rest too (a task's quarter of
   * a million links were each given, then each reported by the caller).
   */
  maxFiles: number;
  /** Entries looked at at most, whatever they are (a task can leave a quarter of a million links). */
  maxVisited: number;
  /** Folders entered below the walked one at most. */
  maxDepth: number;
}

export interface Walk {
  /** Regular files, and with `others` the entries that are neither file nor folder. */
  entries: WalkedEntry[];
  /** A limit was reached: the rest of the folder is not in `entries`. */
  truncated: boolean;
  /**
   * Folders (as shown, "" the walked one) whose entries could not be read or looked at: a
   * task of the reader's own uid took their permissions (`chmod 644`, `chmod 311`). The walk
   * threw on them, and `aido run` collected none of the run's outputs.
   */
  unreadable: string[];
}

function kindOf(st: Stats): WalkedEntry["kind"] | undefined {
  if (st.isFile()) return "file";
  if (st.isSymbolicLink()) return "symbolic link";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  if (st.isBlockDevice() || st.isCharacterDevice()) return "device";
  return undefined;
}

/**
 * The entries under `root`, in name order within each folder (a folder's names read one at
 * a time, so a huge one costs no more than the limits). `enter` decides whether a folder is
 * walked into (all by default); `others` also gives links, fifos, sockets and devices.
 */
export function walkUntrusted(
  root: string,
  limits: WalkLimits,
  opts: { others?: boolean; enter?: (names: Buffer[], shown: string) => boolean } = {},
): Walk {
  const entries: WalkedEntry[] = [];
  let files = 0;
  let visited = 0;
  let truncated = false;
  const unreadable: string[] = [];
  const walk = (dir: number, rel: Buffer[], prefix: string, utf8: boolean, depth: number) => {
    if (depth > limits.maxDepth) {
      truncated = true;
      return;
    }
    const names: Buffer[] = [];
    let d: Dir;
    try {
      // Names as Buffers: Node does this, though its types know only string names here.
      d = opendirSync(fdPath(dir), { encoding: "buffer" as BufferEncoding });
    } catch (e) {
      if (code(e) !== "ENOENT") unreadable.push(prefix);
      return;
    }
    try {
      for (let e = d.readSync(); e !== null; e = d.readSync()) {
        if (visited >= limits.maxVisited) {
          truncated = true;
          break;
        }
        visited++;
        names.push(e.name as unknown as Buffer);
      }
    } catch {
      // the folder went meanwhile: what was read is walked
    } finally {
      d.closeSync();
    }
    names.sort(Buffer.compare);
    for (const n of names) {
      if (files >= limits.maxFiles) {
        truncated = true;
        return;
      }
      const at = fdEntryPath(dir, n);
      let st: Stats | undefined;
      try {
        st = lstatSync(at, { throwIfNoEntry: false });
      } catch {
        unreadable.push(prefix); // no search permission: no entry of it can be looked at
        return;
      }
      if (!st) continue;
      const path = [...rel, n];
      const shown = prefix === "" ? displayName(n) : `${prefix}/${displayName(n)}`;
      const ok = utf8 && isUtf8(n);
      if (st.isDirectory()) {
        if (opts.enter && !opts.enter(path, shown)) continue;
        const sub = openFolder(at);
        if (typeof sub === "string") {
          // A link swapped in (or removed) since the lstat is passed over; one not readable, said.
          if (sub === "EACCES" || sub === "EPERM") unreadable.push(shown);
          continue;
        }
        try {
          walk(sub, path, shown, ok, depth + 1);
        } finally {
          closeSync(sub);
        }
        continue;
      }
      const kind = kindOf(st);
      if (kind === undefined || (kind !== "file" && !opts.others)) continue;
      files++;
      entries.push({ names: path, shown, utf8: ok, kind, size: st.size, dev: st.dev, ino: st.ino });
    }
  };
  const top = openFolder(root);
  if (typeof top === "string") return { entries, truncated, unreadable };
  try {
    walk(top, [], "", true, 0);
  } finally {
    closeSync(top);
  }
  return { entries, truncated, unreadable };
}

/**
 * A walked file opened the way the walk reached it: each folder on the way through the
 * descriptor of the one before (O_DIRECTORY | O_NOFOLLOW), the file itself O_NOFOLLOW |
 * O_NONBLOCK (a FIFO swapped in never blocks the open). Undefined when something on the
 * way is not what it was; the caller checks with fstat that it is the very file walked.
 */
export function openWalked(root: string, names: readonly Buffer[]): number | undefined {
  let dir = folderOrUndefined(root);
  try {
    for (const name of names.slice(0, -1)) {
      if (dir === undefined) return undefined;
      const next = folderOrUndefined(fdEntryPath(dir, name));
      closeSync(dir);
      dir = next;
    }
    if (dir === undefined) return undefined;
    const last = names.at(-1) as Buffer;
    return openSync(fdEntryPath(dir, last), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  } finally {
    if (dir !== undefined) closeSync(dir);
  }
}

/** The folder at `path` opened without following a link there; the error's code when it is not one now. */
function openFolder(path: string | Buffer): number | string {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    return code(e);
  }
}

function folderOrUndefined(path: string | Buffer): number | undefined {
  const fd = openFolder(path);
  return typeof fd === "number" ? fd : undefined;
}

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? "EIO";
}
