// sandbox/executor/confinement.ts — turning an agent's Confinement (globs, as the gate
// computed it) into Landlock rules for aido-landlock, against the file system as it is when
// the exec starts. Landlock grants whole hierarchies (a rule on a folder covers everything
// below it) or single files, and it has no deny rule, so a glob is applied soundly, never
// wider than granted:
//   - a folder that the globs cover entirely, with no deny glob reaching into it, gets one
//     hierarchy rule (`/workspace/**` -> one rule on /workspace);
//   - any other folder gets no rule; the walk enters it when a glob could match below it
//     and gives rules to what exists and matches now (files: file rules; folders covered
//     entirely: hierarchy rules). So `/output/*.md` reads and rewrites the .md files that
//     exist, `/workspace/**` minus `path: /workspace/secrets/**` becomes a rule per sibling
//     of `secrets` (none on /workspace itself), and creating a file needs a folder grant;
//   - an exact folder grant (`/workspace`, no `**`) gives no rule: a rule would open the
//     whole subtree;
//   - symlinks are never followed or given rules, and a glob whose fixed prefix runs
//     through a symlink gives nothing (the helper refuses such paths too).
// Writes follow the reads: a write hierarchy rule lets a command create, rename and move
// names anywhere below its folder, and Landlock's REFER check only refuses a move that
// gains rights *in the domain*. Grants are about paths, though: in a folder whose reads are
// mixed — some names below it readable by path and others not (a file pattern such as
// `pub/*.md`, a read grant on a subfolder, a read deny reaching into it) — a name the domain
// gives no read right can be moved or renamed onto a path the grants let file_read read
// (`mv inbox/k.txt pub/k.md`). So a write hierarchy rule only ever goes on a folder whose
// reads are uniform: readable as a whole, or with nothing below it readable. A mixed folder
// is walked into like a deny subtraction: its files get write-file rules, its uniform
// subfolders hierarchy rules, and no name can be created, removed or moved in it by an exec.
// Around that: the root file system's system folders (read, execute), /proc (read), the
// few /dev nodes programs need, and the agent's private temp folder (read, write). Only an
// agent whose exec grants name programs by a path in the goal's folders (Confinement.execute)
// may run a file from them; for any other, the read rules there carry no execute right.
// The walk is bounded (entries, rules, time); past a bound the exec is refused.

import { type Dirent, lstatSync, mkdirSync, readdirSync } from "node:fs";
import { posix } from "node:path";
import { below, globCovers, globsOverlap, isCanonicalPath, matchPath, subtree } from "../../security/glob.js";
import type { Confinement } from "../types.js";
import { errnoOf, fail } from "./op-error.js";
import { realpathOf } from "./realpath.js";

export type RuleKind = "read" | "write" | "read-file" | "write-file" | "read-data" | "read-data-file";

export interface Rule {
  kind: RuleKind;
  path: string;
}

export interface ExpandLimits {
  maxRules: number;
  maxEntries: number;
  maxMs: number;
}

export const DEFAULT_LIMITS: ExpandLimits = { maxRules: 4096, maxEntries: 100_000, maxMs: 2000 };

/** Top-level folders that are not the read-only root's: the goal's mounts and scratch space. */
export const NOT_SYSTEM = new Set(["workspace", "output", "inputs", "skills", "tmp", "proc", "dev"]);

/** Device nodes a program may open (read and write); /dev/shm and /dev/mqueue stay closed. */
export const DEVICES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"];

/**
 * Rules every confined exec gets: each top-level entry of `root` except the goal's mounts,
 * /tmp, /proc and /dev (read; symlinks such as /bin -> usr/bin are covered by their
 * target), /proc (read: Landlock's ptrace scoping keeps other domains' fd, mem and environ
 * closed), the device nodes, and /dev/pts (terminals).
 */
export function systemRules(root = "/"): Rule[] {
  const rules: Rule[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (NOT_SYSTEM.has(entry.name) || entry.isSymbolicLink()) continue;
    rules.push({ kind: entry.isDirectory() ? "read" : "read-file", path: posix.join(root, entry.name) });
  }
  rules.push({ kind: "read", path: "/proc" });
  for (const d of DEVICES) rules.push({ kind: "read-file", path: d }, { kind: "write-file", path: d });
  rules.push({ kind: "read", path: "/dev/pts" }, { kind: "write", path: "/dev/pts" });
  return rules;
}

const PRIVATE_TMP = /^\/tmp\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Make (or check) the agent's private temp folder: a real folder of ours, mode 0700. */
export function ensurePrivateTmp(tmp: string): void {
  if (!PRIVATE_TMP.test(tmp))
    fail("invalid_input", `confinement.tmp must be /tmp/<name>, got ${JSON.stringify(tmp)}`);
  try {
    mkdirSync(tmp, 0o700);
  } catch (e) {
    if (errnoOf(e) !== "EEXIST") fail("io_error", `cannot make ${tmp}: ${(e as Error).message}`);
  }
  const st = lstatSync(tmp);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) {
    fail("invalid_input", `${tmp} is not a folder of the executor's own (a symlink or another user's)`);
  }
}

class Walk {
  readonly rules = new Map<string, Rule>();
  private entries = 0;
  private readonly started = Date.now();

  constructor(
    private readonly limits: ExpandLimits,
    private readonly what: string,
  ) {}

  add(kind: RuleKind, path: string): void {
    this.rules.set(`${kind} ${path}`, { kind, path });
    if (this.rules.size > this.limits.maxRules)
      this.tooLarge(`more than ${this.limits.maxRules} rules`, path);
  }

  tick(path: string): void {
    this.entries++;
    if (this.entries > this.limits.maxEntries)
      this.tooLarge(`more than ${this.limits.maxEntries} entries`, path);
    if ((this.entries & 255) === 0 && Date.now() - this.started > this.limits.maxMs) {
      this.tooLarge(`more than ${this.limits.maxMs} ms`, path);
    }
  }

  private tooLarge(what: string, at: string): never {
    fail(
      "confinement_too_large",
      `the agent's ${this.what} grants expand to ${what} of Landlock rules (walking ${at}); ` +
        "grant whole folders (/dir/**) instead of file patterns, or deny fewer paths inside them",
    );
  }
}

function typeOfPath(path: string): "dir" | "file" | "link" | "none" {
  try {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : "file";
  } catch {
    return "none";
  }
}

/** The fixed folder a glob starts from: its segments before the first wildcard one. */
function literalRoot(glob: string): string {
  const segs = glob.split("/").filter((s) => s !== "");
  const fixed: string[] = [];
  for (const s of segs) {
    if (s.includes("*")) break;
    fixed.push(s);
  }
  return `/${fixed.join("/")}`;
}

/** Globs of one direction, minus its deny globs. */
export interface GlobSet {
  globs: readonly string[];
  deny: readonly string[];
}

/** Everything below `dir`, and `dir` itself, is in the set. */
function covers(set: GlobSet, dir: string): boolean {
  return (
    set.globs.some((g) => globCovers(g, subtree(dir))) && !set.deny.some((d) => globsOverlap(d, subtree(dir)))
  );
}

/** Something below `dir` may be in the set. */
function reaches(set: GlobSet, dir: string): boolean {
  return (
    set.globs.some((g) => globsOverlap(g, below(dir))) && !set.deny.some((d) => globCovers(d, subtree(dir)))
  );
}

/** Every name below `dir` is readable, or none is (see the header). */
function readUniform(reads: GlobSet, dir: string): boolean {
  return covers(reads, dir) || !reaches(reads, dir);
}

/**
 * Rules of one direction: `globs` minus `deny`, as `dirKind` hierarchy rules and
 * `fileKind` file rules. For writes, `reads` is the read side: a folder whose reads are
 * mixed gets no write hierarchy rule.
 */
export function expandGlobs(
  globs: readonly string[],
  deny: readonly string[],
  direction: "read" | "write",
  limits: ExpandLimits = DEFAULT_LIMITS,
  reads?: GlobSet,
): Rule[] {
  const walk = new Walk(limits, direction === "read" ? "file_read" : "file_write");
  const fileKind: RuleKind = direction === "read" ? "read-file" : "write-file";
  const set: GlobSet = { globs, deny };
  const hierarchy = (dir: string) => covers(set, dir) && (reads === undefined || readUniform(reads, dir));
  /** One entry: its type from the folder listing (no lstat per entry), or from lstat for a root. */
  const visit = (path: string, type: "dir" | "file" | "link" | "none", stack: string[]) => {
    walk.tick(path);
    if (type === "dir") {
      if (hierarchy(path)) walk.add(direction, path);
      else if (reaches(set, path)) stack.push(path);
    } else if (
      type === "file" &&
      globs.some((g) => matchPath(g, path)) &&
      !deny.some((d) => matchPath(d, path))
    ) {
      walk.add(fileKind, path);
    }
  };
  const roots = new Set(globs.map(literalRoot));
  for (const root of roots) {
    // A fixed prefix through a symlink names another place than the grant: nothing.
    if (!isCanonicalPath(root) || realpathOf(root) !== root) continue;
    const stack: string[] = [];
    visit(root, typeOfPath(root), stack);
    while (stack.length > 0) {
      const dir = stack.pop() as string;
      let entries: Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        const type = e.isSymbolicLink() ? "link" : e.isDirectory() ? "dir" : "file";
        visit(dir === "/" ? `/${e.name}` : `${dir}/${e.name}`, type, stack);
      }
    }
  }
  return [...walk.rules.values()];
}

/** A read rule without the execute right (the goal's folders of an agent that may run nothing there). */
function dataOnly(r: Rule): Rule {
  if (r.kind === "read") return { kind: "read-data", path: r.path };
  if (r.kind === "read-file") return { kind: "read-data-file", path: r.path };
  return r;
}

/**
 * aido-landlock's arguments for a confinement, system rules first. For an agent without
 * `execute`, the read rules of its temp folder and of its grants are data only (no execute
 * right): it runs nothing from the goal's folders. A grant reaching into the system folders
 * (`file_read: /**`) takes nothing from them: Landlock adds up the rights of every rule
 * above a file, and the system rules there carry the execute right. A write rule never does.
 */
export function confinementArgs(
  c: Confinement,
  system: readonly Rule[],
  limits: ExpandLimits = DEFAULT_LIMITS,
): string[] {
  const reads: GlobSet = { globs: c.read, deny: [...c.deny, ...c.denyRead] };
  const granted: Rule[] = [
    { kind: "read", path: c.tmp },
    { kind: "write", path: c.tmp },
    ...expandGlobs(reads.globs, reads.deny, "read", limits),
    ...expandGlobs(c.write, [...c.deny, ...c.denyWrite], "write", limits, reads),
  ];
  const rules = [...system, ...(c.execute ? granted : granted.map(dataOnly))];
  return rules.flatMap((r) => [`--${r.kind}`, r.path]);
}

/**
 * Without Landlock (ABI 0) an agent may still run commands when its grants are not
 * narrower than what the container mounts: all of /workspace, /output, /inputs and every
 * mounted skill readable, /workspace and /output writable, no deny glob, and programs there
 * runnable (`execute`).
 */
export function grantsCoverMounts(c: Confinement, mountedSkills: readonly string[]): boolean {
  if (!c.execute || c.deny.length + c.denyRead.length + c.denyWrite.length > 0) return false;
  const reads = ["/workspace", "/output", "/inputs", ...mountedSkills.map((s) => `/skills/${s}`)];
  const covers = (globs: readonly string[], dir: string) => globs.some((g) => globCovers(g, subtree(dir)));
  return reads.every((d) => covers(c.read, d)) && ["/workspace", "/output"].every((d) => covers(c.write, d));
}
