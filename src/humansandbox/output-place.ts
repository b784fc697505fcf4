// humansandbox/output-place.ts — the project side of a collection (outputs.ts walks /output):
// opening the folder an output goes in, writing it there through a temp of the sandbox's,
// recovering the temps a killed collection left, and who owns what it makes.
//
// - Folders are opened one by one from the project's, O_NOFOLLOW (openDestination): a link
//   a running task put on the way is never followed.
// - Each file is written as `.aido-output-<sandbox id>-<collection>-<file>` in its folder
//   (8 hex each), then renamed over its name. A collection killed in between (SIGKILL of
//   `aido sandbox run`) left the temp in the person's project for good. Each folder is now
//   noted in the collection's journal, `collecting-<collection>-<pid>` in the sandbox's
//   evidence folder, before a temp is made in it; the next collection or `destroy` of that
//   sandbox takes each journal whose process is gone and removes that collection's temps in
//   the folders it names: opened the same way, only regular files of exactly that name,
//   never through a link. A collection still running (a second `aido run` of the sandbox)
//   keeps its temps: its process is alive.
// - Run as root (`sudo aido sandbox run`) in a project owned by someone else, what the
//   collection makes (files, folders) is given the project folder's owner and group on the
//   descriptor already held; a file it replaces keeps the owner it had. Nothing that existed
//   before is chowned. Root-owned, the person's editor and git could not rewrite them.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { fdEntryPath, fdPath } from "../sandbox/untrusted-files.js";
import { EVIDENCE_DIR } from "./evidence-guard.js";
import type { ProjectOwner } from "./state.js";

/** What one collection writes with: the sandbox's temps, journal and the owner. */
export interface Placement {
  id: string;
  /** This collection's 8 hex, in its temps' names and its journal's. */
  collection: string;
  /** Its journal of folders a temp was made in. */
  journal: string;
  owner: ProjectOwner;
  /** Folders of the store and of the runtime's home, as "dev:ino": never written in. */
  keptOut: ReadonlySet<string>;
  /** Folders already in the journal this collection (by their names' hex). */
  noted: Set<string>;
  /** The journal, open for appending once made (never reopened by its name). */
  fd?: number;
}

const JOURNAL = /^collecting-([0-9a-f]{8})-([1-9][0-9]*)$/;

/** A new collection's placement: its journal in the sandbox's evidence folder `root`. */
export function newPlacement(
  id: string,
  root: string,
  owner: ProjectOwner,
  keptOut: ReadonlySet<string>,
): Placement {
  const collection = randomBytes(4).toString("hex");
  const journal = join(root, `collecting-${collection}-${process.pid}`);
  return { id, collection, journal, owner, keptOut, noted: new Set() };
}

function tempName(at: Placement): string {
  return `.aido-output-${at.id}-${at.collection}-${randomBytes(4).toString("hex")}`;
}

function isTempOf(id: string, collection: string, name: string): boolean {
  return new RegExp(`^\\.aido-output-${id}-${collection}-[0-9a-f]{8}$`).test(name);
}

/** The process is gone (a pid of another user's process is alive: EPERM). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** Open `name` under the folder `dir` as a folder, never through a link; undefined when it is not one. */
function openFolderAt(dir: number, name: Buffer): number | undefined {
  try {
    return openSync(
      fdEntryPath(dir, name),
      constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW,
    );
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "ENOTDIR" || code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * The project folder an output goes in, opened folder by folder from the project's (each
 * made when absent, then opened O_DIRECTORY | O_NOFOLLOW through the one before): a link a
 * task put on the way after the check (one holding a read-write input there, still running)
 * is never followed. By path, the folders were made and the file created through it: the
 * outputs landed where the link pointed, the sandbox's own evidence or any folder of the
 * host. A folder on the way that is the evidence store or the runtime's home, by device and
 * inode whatever name reached it, is refused too. Returns the reason when it cannot be used.
 */
export function openDestination(project: string, folders: readonly Buffer[], at: Placement): number | string {
  let dir = openSync(project, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    for (const name of [undefined, ...folders]) {
      let made = false;
      if (name !== undefined) {
        try {
          mkdirSync(fdEntryPath(dir, name));
          made = true;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
        const next = openFolderAt(dir, name);
        if (next === undefined)
          return "changed while it was collected: a link or no folder on its way in the project";
        closeSync(dir);
        dir = next;
      }
      const st = fstatSync(dir);
      if (at.keptOut.has(`${st.dev}:${st.ino}`))
        return `the project's evidence store (${EVIDENCE_DIR}) or the runtime's home is never written by outputs`;
      // Made just now, and still root's: the one made (a task could swap its own in).
      if (made && at.owner && st.uid === 0) fchownSync(dir, at.owner.uid, at.owner.gid);
    }
    const open = dir;
    dir = -1;
    return open;
  } finally {
    if (dir !== -1) closeSync(dir);
  }
}

/** An output open for the copy, and what fstat said of it then. */
export interface OpenOutput {
  fd: number;
  mode: number;
  size: number;
  /** 512-byte blocks the filesystem holds for it (st_blocks). */
  blocks: number;
}

/** Note the folder (its names from the project) in the journal, once a collection, before a temp is made in it. */
function note(at: Placement, folders: readonly Buffer[]): void {
  const key = folders.map((n) => n.toString("hex")).join("/");
  if (at.noted.has(key)) return;
  // Made new (O_EXCL, never through a link) and written by its descriptor: the evidence
  // folder is the person's when root collects (state.ts ownEvidence), and a link they put at
  // the journal's name had root append to the file it pointed at (/etc/ld.so.preload).
  at.fd ??= openSync(
    at.journal,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o644,
  );
  writeSync(at.fd, `${JSON.stringify(folders.map((n) => n.toString("hex")))}\n`);
  at.noted.add(key);
}

/**
 * Content (up to the size it had when opened: a task still running cannot grow it during the
 * copy) and the owner-execute bit only, into `name` of the folder open at `dir` (reached by
 * `folders`). Written to a new file of its own there (O_EXCL) and renamed over `name`: an
 * existing project file is replaced whole or not at all, never written through, and whatever
 * a task put at `name` meanwhile (a link, a FIFO) is replaced, not followed. It was unlinked
 * first, then created O_EXCL: a copy that failed midway (a full disk) had the person's file
 * gone, and a name a running task made again between the two made the collection throw.
 */
export function copyPlainFile(
  src: OpenOutput,
  dir: number,
  folders: readonly Buffer[],
  name: Buffer,
  at: Placement,
): void {
  const mode = src.mode & 0o100 ? 0o755 : 0o644;
  note(at, folders);
  const temp = fdEntryPath(dir, Buffer.from(tempName(at)));
  const dst = openSync(
    temp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    mode,
  );
  let placed = false;
  try {
    try {
      if (process.geteuid?.() === 0) {
        // A file replaced keeps its owner; a new one is the project owner's (as root only).
        const prior = lstatSync(fdEntryPath(dir, name), { throwIfNoEntry: false });
        const who = prior?.isFile() ? prior : at.owner;
        if (who && (who.uid !== 0 || who.gid !== 0)) fchownSync(dst, who.uid, who.gid);
      }
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let left = src.size; left > 0; ) {
        const n = readSync(src.fd, buf, 0, Math.min(buf.length, left), null);
        if (n === 0) break;
        for (let off = 0; off < n; ) off += writeSync(dst, buf, off, n - off);
        left -= n;
      }
    } finally {
      closeSync(dst);
    }
    renameSync(temp, fdEntryPath(dir, name));
    placed = true;
  } finally {
    if (!placed) rmSync(temp, { force: true });
  }
}

/**
 * Remove the temps earlier collections of sandbox `id` left (killed between making one and
 * renaming it): each journal in its evidence folder `root` whose process is gone, the folders
 * it names opened from the project's without following a link, only regular files named as
 * that collection's temps; then the journal. Returns how many temps were removed.
 */
export function removeLeftovers(project: string, root: string, id: string): number {
  let removed = 0;
  for (const entry of readdirSync(root)) {
    const m = JOURNAL.exec(entry);
    if (!m || !gone(Number(m[2]))) continue;
    const journal = join(root, entry);
    let kept = false;
    for (const names of journalLines(journal)) {
      const n = removeTemps(project, names, (name) => isTempOf(id, m[1] as string, name));
      if (n === undefined) kept = true;
      else removed += n;
    }
    // A folder that could not be read (its permissions taken): the journal stays for the next time.
    if (!kept) rmSync(journal, { force: true });
  }
  return removed;
}

/** This collection ended: each temp was renamed or removed, its journal goes. */
export function endPlacement(at: Placement): void {
  if (at.fd === undefined) return;
  closeSync(at.fd);
  at.fd = undefined;
  rmSync(at.journal, { force: true });
}

/**
 * A journal's lines, read without following a link (a regular file only), each a list of
 * folder names of one name each: a name that is empty, `.`, `..` or holds a "/" (a journal
 * someone else wrote) would lead the removal out of the project; its line is ignored.
 */
function journalLines(journal: string): Buffer[][] {
  let fd: number;
  try {
    fd = openSync(journal, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return [];
  }
  let text: string;
  try {
    if (!fstatSync(fd).isFile()) return [];
    text = readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
  const out: Buffer[][] = [];
  for (const line of new Set(text.split("\n"))) {
    let hex: unknown;
    try {
      hex = JSON.parse(line);
    } catch {
      continue; // a line a kill cut short (or the empty last one): no temp was made after it
    }
    if (!Array.isArray(hex) || !hex.every((h) => typeof h === "string" && /^([0-9a-f]{2})+$/.test(h)))
      continue;
    const names = hex.map((h: string) => Buffer.from(h, "hex"));
    if (
      names.every((n) => !n.includes(0x2f) && !n.includes(0) && n.toString() !== "." && n.toString() !== "..")
    )
      out.push(names);
  }
  return out;
}

/**
 * The temps in the project folder reached by `folders` removed: how many, 0 when the folder
 * is gone (or a link now), undefined when it could not be read. An entry that changed
 * meanwhile (a task holding the folder read-write) is left as it is.
 */
function removeTemps(
  project: string,
  folders: readonly Buffer[],
  isTemp: (name: string) => boolean,
): number | undefined {
  let dir: number | undefined = openSync(project, constants.O_RDONLY | constants.O_DIRECTORY);
  let removed = 0;
  try {
    for (const n of folders) {
      const next: number | undefined = openFolderAt(dir, n);
      closeSync(dir);
      dir = next;
      if (dir === undefined) return 0;
    }
    let names: string[];
    try {
      names = readdirSync(fdPath(dir));
    } catch {
      return undefined;
    }
    for (const entry of names) {
      if (!isTemp(entry)) continue;
      const p = fdEntryPath(dir, Buffer.from(entry));
      try {
        if (!lstatSync(p, { throwIfNoEntry: false })?.isFile()) continue;
        unlinkSync(p);
        removed++;
      } catch {
        // gone or replaced by a folder since: not ours to force
      }
    }
    return removed;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM") return undefined;
    throw e;
  } finally {
    if (dir !== undefined) closeSync(dir);
  }
}
