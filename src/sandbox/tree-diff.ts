// sandbox/tree-diff.ts — what changed between two host copies of a goal's /workspace and
// /output (a shadow simulation's copy before and after its steps ran, kernel/shadow.ts):
// files and folders added, changed and deleted, with sizes, and a unified text diff for
// small text files. Walked with lstat and files opened O_NOFOLLOW: a link is compared as a
// link (its target text), never followed, so a link a step planted cannot make the diff
// read a host file. Called once nothing runs in the copy any more.

import { createHash } from "node:crypto";
import { constants, promises as fsp } from "node:fs";
import { join } from "node:path";
import type { SnapshotRoots } from "./snapshot-manifest.js";
import { unifiedDiff } from "./text-diff.js";

/** Text files up to this size (before and after) get a unified diff. */
export const TEXT_DIFF_MAX_BYTES = 64 * 1024;
/** At most this many paths are listed per kind; the counts stay exact. */
const LISTED_MAX = 1000;

export interface PathChange {
  /** Container path: /workspace/src/a.py. */
  path: string;
  type: "file" | "dir" | "link" | "other";
  /** Size after (added, changed) or before (deleted), in bytes. */
  size: number;
  size_before?: number;
  /** Unified diff (small text files). */
  diff?: string;
}

export interface TreeDiff {
  added: PathChange[];
  changed: PathChange[];
  deleted: PathChange[];
  counts: { added: number; changed: number; deleted: number };
}

interface Entry {
  type: PathChange["type"];
  size: number;
  mode: number;
  /** SHA-256 of a file's content or a link's target. */
  hash?: string;
  /** The content of a file small enough to diff as text. */
  content?: Buffer;
}

/** Compare `before` and `after`, root by root. */
export async function diffTrees(before: SnapshotRoots, after: SnapshotRoots): Promise<TreeDiff> {
  const out: TreeDiff = { added: [], changed: [], deleted: [], counts: { added: 0, changed: 0, deleted: 0 } };
  for (const root of ["workspace", "output"] as const) {
    const a = await walk(before[root]);
    const b = await walk(after[root]);
    for (const [rel, eb] of b) {
      const ea = a.get(rel);
      const path = `/${root}${rel}`;
      if (!ea) push(out, "added", { path, type: eb.type, size: eb.size, ...textDiff(path, undefined, eb) });
      else if (!same(ea, eb))
        push(out, "changed", {
          path,
          type: eb.type,
          size: eb.size,
          size_before: ea.size,
          ...textDiff(path, ea, eb),
        });
    }
    for (const [rel, ea] of a)
      if (!b.has(rel)) push(out, "deleted", { path: `/${root}${rel}`, type: ea.type, size: ea.size });
  }
  return out;
}

function push(out: TreeDiff, kind: "added" | "changed" | "deleted", change: PathChange): void {
  out.counts[kind]++;
  if (out[kind].length < LISTED_MAX) out[kind].push(change);
}

function same(a: Entry, b: Entry): boolean {
  if (a.type !== b.type || a.size !== b.size || (a.mode & 0o7777) !== (b.mode & 0o7777)) return false;
  return a.hash === b.hash;
}

function textDiff(path: string, a: Entry | undefined, b: Entry): { diff?: string } {
  if (b.type !== "file" || (a && a.type !== "file")) return {};
  const before = a?.content;
  const after = b.content;
  if (!after || after.length > TEXT_DIFF_MAX_BYTES || (before && before.length > TEXT_DIFF_MAX_BYTES))
    return {};
  if (!isText(after) || (before && !isText(before))) return {};
  const diff = unifiedDiff(path, before?.toString("utf8"), after.toString("utf8"));
  return diff === undefined ? {} : { diff };
}

function isText(b: Buffer): boolean {
  if (b.includes(0)) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Every path below `dir` ("/a/b" relative form), lstat'ed; files read when small enough to compare whole. */
async function walk(dir: string): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  const visit = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await fsp.readdir(join(dir, rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    for (const name of names.sort()) {
      const r = `${rel}/${name}`;
      const full = join(dir, r);
      const st = await fsp.lstat(full);
      if (st.isDirectory()) {
        entries.set(r, { type: "dir", size: 0, mode: st.mode });
        await visit(r);
      } else if (st.isSymbolicLink()) {
        const target = Buffer.from(await fsp.readlink(full), "utf8");
        entries.set(r, { type: "link", size: target.length, mode: 0, hash: sha256(target) });
      } else if (st.isFile()) {
        entries.set(r, {
          type: "file",
          size: st.size,
          mode: st.mode,
          ...(await readNoFollow(full, st.size)),
        });
      } else entries.set(r, { type: "other", size: 0, mode: st.mode });
    }
  };
  await visit("");
  return entries;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A file's hash, and its content when it is small enough to diff. Never follows a link. */
async function readNoFollow(path: string, size: number): Promise<{ hash: string; content?: Buffer }> {
  const fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    if (size <= TEXT_DIFF_MAX_BYTES) {
      const content = await fh.readFile();
      return { hash: sha256(content), content };
    }
    const h = createHash("sha256");
    for await (const chunk of fh.createReadStream({ autoClose: false })) h.update(chunk as Buffer);
    return { hash: h.digest("hex") };
  } finally {
    await fh.close();
  }
}
