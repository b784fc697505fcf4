// sandbox/executor/grep.ts — grep: walk a folder without following symlinks and match a
// JavaScript regex per line. It reads only what the calling agent may read: every file is
// checked against the read view the host sends (the agent's read globs minus the
// operator's deny globs) before it is opened, and folders no read glob can reach are not
// entered at all. The search runs in a worker thread (main.ts) so that a pathological
// regex is stopped by terminating the thread.
// Files are opened without blocking and read only if fstat says they are regular (a fifo
// swapped in after the listing would otherwise block the search), and what was read through
// a folder is kept only if the folder is still at the path it was judged by (stillAt): a
// command can move the folder grep is walking into a place the agent may not read and fill
// it from there. Such a file is skipped, like one that vanished.

import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  type Stats,
} from "node:fs";
import { posix } from "node:path";
import {
  below,
  filterGlobMatcher,
  globCovers,
  globsOverlap,
  matchPath,
  subtree,
} from "../../security/glob.js";
import type { ReadView } from "../types.js";
import { anchorDir, anchorParent, changed, fdPath, lstatAnchored, openUnder, stillAt } from "./anchored.js";
import { errnoOf, fail, fsFail, OpError } from "./op-error.js";
import { isProcFolder } from "./proc-wall.js";
import { absolute, WORKSPACE } from "./realpath.js";

const WALK_MAX_ENTRIES = 200_000;
const GREP_MAX_FILE = 20 * 1024 * 1024;
const LINE_MAX = 500;

/** A view absent means a trusted caller: everything is readable. */
export function mayReadFile(view: ReadView | undefined, path: string): boolean {
  if (!view) return true;
  return view.read.some((g) => matchPath(g, path)) && !view.deny.some((d) => matchPath(d, path));
}

/** Could anything below `dir` be readable? (A folder name with glob characters only makes this likelier.) */
export function mayEnter(view: ReadView | undefined, dir: string): boolean {
  if (!view) return true;
  return (
    view.read.some((g) => globsOverlap(g, below(dir))) && !view.deny.some((d) => globCovers(d, subtree(dir)))
  );
}

interface Found {
  abs: string;
  rel: string;
  st: Stats;
  read(): Buffer;
}

/** Read a regular file without blocking on what is not one; `path` names it for errors. */
function readRegularFile(path: string, flags = 0): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | flags);
  try {
    if (!fstatSync(fd).isFile()) throw new OpError("invalid_input", `${path}: not a regular file`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Read a file by name inside an open folder, never following a symlink, and only if the
 * folder is still at `dirPath`, the path it was judged by (see the header).
 */
function readNoFollow(dirFd: number, name: string, dirPath: string): Buffer {
  const buf = readRegularFile(fdPath(dirFd, name), constants.O_NOFOLLOW);
  if (!stillAt(dirFd, dirPath))
    throw changed(posix.join(dirPath, name), "its folder was moved while it was read");
  return buf;
}

/**
 * Every file below an open root: each folder is opened from the root's fd component by
 * component with O_NOFOLLOW, and entries are looked at and read through that folder's fd,
 * so a folder swapped for a symlink mid-walk is skipped, never followed.
 */
function* walkNoFollow(rootFd: number, root: string, view: ReadView | undefined): Generator<Found> {
  const stack = [""];
  let seen = 0;
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    let dirFd: number;
    try {
      dirFd = openUnder(rootFd, rel === "" ? [] : rel.split("/"));
    } catch {
      continue;
    }
    try {
      let names: string[];
      try {
        names = readdirSync(fdPath(dirFd)).sort().reverse();
      } catch {
        continue;
      }
      for (const name of names) {
        if (++seen > WALK_MAX_ENTRIES) return;
        const r = rel === "" ? name : `${rel}/${name}`;
        const abs = posix.join(root, r);
        let st: Stats;
        try {
          st = lstatSync(fdPath(dirFd, name));
        } catch {
          continue;
        }
        if (st.isDirectory()) {
          if (mayEnter(view, abs) && !isProcFolder(st)) stack.push(r);
        } else if (st.isFile() && mayReadFile(view, abs)) {
          const fd = dirFd;
          const dirPath = rel === "" ? root : posix.join(root, rel);
          yield { abs, rel: r, st, read: () => readNoFollow(fd, name, dirPath) };
        }
      }
    } finally {
      closeSync(dirFd);
    }
  }
}

/** Unanchored walk (trusted callers without `expect`). */
function* walkPaths(root: string, view: ReadView | undefined): Generator<Found> {
  const stack = [""];
  let seen = 0;
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    let names: string[];
    try {
      names = readdirSync(posix.join(root, rel)).sort().reverse();
    } catch {
      continue;
    }
    for (const name of names) {
      if (++seen > WALK_MAX_ENTRIES) return;
      const r = rel === "" ? name : `${rel}/${name}`;
      const abs = posix.join(root, r);
      let st: Stats;
      try {
        st = lstatSync(abs);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (mayEnter(view, abs) && !isProcFolder(st)) stack.push(r);
      } else if (st.isFile() && mayReadFile(view, abs))
        yield { abs, rel: r, st, read: () => readRegularFile(abs) };
    }
  }
}

/** The files grep looks at. */
function grepFiles(a: GrepArgs): Iterable<Found> {
  const root = a.path;
  if (a.expect === undefined) {
    let st: Stats;
    try {
      st = lstatSync(root);
    } catch (e) {
      fsFail(e, root);
    }
    if (!st.isDirectory()) {
      if (!st.isFile() || !mayReadFile(a.view, root)) return [];
      return [{ abs: root, rel: posix.basename(root), st, read: () => readRegularFile(root) }];
    }
    return walkPaths(root, a.view);
  }
  if (a.expect !== "/") {
    const at = anchorParent(a, false);
    try {
      const st = lstatAnchored(at);
      if (!st) throw new OpError("not_found", `${at.expect}: no such file or directory`);
      if (!st.isDirectory()) {
        if (!st.isFile() || !mayReadFile(a.view, at.expect)) return [];
        const buf = readNoFollow(at.dir, at.name, posix.dirname(at.expect));
        return [{ abs: at.expect, rel: at.name, st, read: () => buf }];
      }
    } catch (e) {
      if (errnoOf(e) === "ELOOP") throw changed(at.expect, "it is now a symlink");
      fsFail(e, at.expect);
    } finally {
      closeSync(at.dir);
    }
  }
  if (!mayEnter(a.view, root)) return [];
  const fd = anchorDir(a);
  return (function* () {
    try {
      yield* walkNoFollow(fd, root, a.view);
    } finally {
      closeSync(fd);
    }
  })();
}

export interface GrepArgs {
  pattern: string;
  path: string;
  glob?: string;
  maxMatches: number;
  expect?: string;
  view?: ReadView;
}

export interface GrepMatch {
  path: string;
  line: number;
  text: string;
}

/** Validate the op's arguments on the main thread (bad input fails before a worker starts). */
export function grepArgs(a: Record<string, unknown>): GrepArgs {
  if (typeof a.pattern !== "string" || a.pattern === "")
    fail("invalid_input", "pattern must be a non-empty string");
  try {
    new RegExp(a.pattern);
  } catch (e) {
    fail("invalid_input", `invalid regular expression: ${(e as Error).message}`);
  }
  if (a.glob !== undefined && typeof a.glob !== "string") fail("invalid_input", "glob must be a string");
  if (typeof a.glob === "string") {
    try {
      filterGlobMatcher(a.glob);
    } catch (e) {
      fail("invalid_input", `glob ${JSON.stringify(a.glob)}: ${(e as Error).message}`);
    }
  }
  const out: GrepArgs = {
    pattern: a.pattern,
    path: absolute(a.path ?? WORKSPACE),
    maxMatches: typeof a.maxMatches === "number" && a.maxMatches > 0 ? a.maxMatches : 500,
  };
  if (typeof a.glob === "string") out.glob = a.glob;
  if (typeof a.expect === "string") out.expect = a.expect;
  if (a.view !== undefined) out.view = readView(a.view);
  return out;
}

function readView(v: unknown): ReadView {
  const ok = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === "string");
  const o = v as { read?: unknown; deny?: unknown } | null;
  if (!o || !ok(o.read) || !ok(o.deny))
    fail("invalid_input", "view must be {read: string[], deny: string[]}");
  return { read: o.read, deny: o.deny };
}

/** The search itself (in the worker thread). */
export function grepWork(a: GrepArgs): GrepMatch[] {
  const re = new RegExp(a.pattern);
  const onPath = a.glob ? a.glob.includes("/") : false;
  const filter = a.glob ? filterGlobMatcher(a.glob) : undefined;
  const out: GrepMatch[] = [];
  for (const f of grepFiles(a)) {
    if (f.st.size > GREP_MAX_FILE) continue;
    if (filter && !filter(onPath ? f.rel : posix.basename(f.rel))) continue;
    let buf: Buffer;
    try {
      buf = f.read();
    } catch {
      continue;
    }
    if (buf.subarray(0, 8192).includes(0)) continue;
    const lines = buf.toString("utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i] as string;
      if (!re.test(text)) continue;
      out.push({
        path: f.abs,
        line: i + 1,
        text: text.length > LINE_MAX ? `${text.slice(0, LINE_MAX)}…` : text,
      });
      if (out.length >= a.maxMatches) return out;
    }
  }
  return out;
}
