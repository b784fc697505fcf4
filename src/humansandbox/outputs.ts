// humansandbox/outputs.ts — a run's declared outputs: where the script writes them and
// how they come back into the project, with the git diff of what that changed.
//
// Scripts write outputs at their project-relative paths, relative to their working
// folder (`results/x.csv`, `migration.log`), also when that folder is read-only
// (`filesystem: readonly`). So before the container starts, each declared output gets a
// symlink in the work folder, /workspace/<path> -> /output/<path>, and its folder in
// /output: the script's write goes through the link into /output, and nothing else of
// /workspace becomes writable. A folder output (`results/`, trailing slash) links the
// folder; a file output links the file (the link dangles until the script writes it,
// and open() creates the target); a glob links its fixed leading folders (`out/*.sql`
// links `out/`); a glob in the first segment (`*.log`) gets no link and is written to
// /output directly. The links are made by the host before the container exists and
// point inside the container, so the host never follows them (staging a script into the
// work folder replaces whatever is there without following it).
//
// Collected are only regular files under /output (a symlink the script made there would
// point at the host's files once outside the container). /output is walked through folder
// descriptors with names as bytes, no link followed (sandbox/untrusted-walk.ts, the
// dashboard's walk too), each file opened the way the walk reached it and checked to be
// the one walked, never through a symlink on the project side either: the project folders
// on its way are opened one by one from the project's, never following a link a task put
// there after the check (output-place.ts: also the temps, and who owns what is made). A name that is not
// UTF-8 is reported with its bytes as \xNN and left in /output: outputs.diff could not name it. Modes are rebuilt (0644, or 0755 when the owner could execute),
// never copied: no setuid or setgid bit a script set reaches the project (copyFileSync
// would have kept them). outputs.diff, what this changed in a git repository, is
// outputs-diff.ts's.

import { chownSync, closeSync, fstatSync, lstatSync, mkdirSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { errorMessage } from "../errors.js";
import { isWithin } from "../fs/within.js";
import { displayName, fdEntryPath, sparseRefusal } from "../sandbox/untrusted-files.js";
import { openWalked, type WalkedEntry, walkUntrusted } from "../sandbox/untrusted-walk.js";
import {
  EVIDENCE_DIR,
  evidenceFolders,
  evidenceTest,
  type RuntimeHome,
  runtimeFolders,
} from "./evidence-guard.js";
import {
  copyPlainFile,
  endPlacement,
  newPlacement,
  type OpenOutput,
  openDestination,
  type Placement,
  removeLeftovers,
} from "./output-place.js";
import { outputPatternMeets } from "./paths.js";
import type { ProjectOwner } from "./project.js";

/** What linkOutputs made, and the patterns it could not give a link to. */
export interface OutputLinks {
  /** Work-folder paths now linked into /output, e.g. "results" -> /output/results. */
  linked: string[];
  skipped: Array<{ pattern: string; reason: string }>;
}

/** The part of a pattern that can be linked: its leading segments without a wildcard. */
function linkable(pattern: string): { path: string; folder: boolean } | undefined {
  const segs = pattern.split("/").filter((x) => x !== "" && x !== ".");
  const glob = segs.findIndex((x) => x.includes("*"));
  if (glob === 0 || segs.length === 0) return undefined;
  if (glob > 0) return { path: segs.slice(0, glob).join("/"), folder: true };
  return { path: segs.join("/"), folder: pattern.endsWith("/") };
}

/**
 * Link each declared output from the work folder into /output (see the header). Folders
 * are made owned by `owner` (the container's user) when we are root. A link inside
 * another declared output's link is not needed and not made.
 */
export function linkOutputs(
  work: string,
  output: string,
  patterns: readonly string[],
  owner: { uid: number; gid: number },
): OutputLinks {
  const result: OutputLinks = { linked: [], skipped: [] };
  const wanted = patterns
    .map((pattern) => ({ pattern, l: linkable(pattern) }))
    .sort((a, b) => (a.l?.path.length ?? 0) - (b.l?.path.length ?? 0));
  const mkdirs = (root: string, rel: string) => {
    let at = root;
    for (const seg of rel.split("/").filter(Boolean)) {
      at = join(at, seg);
      try {
        mkdirSync(at, { mode: 0o755 });
        if (process.getuid?.() === 0) chownSync(at, owner.uid, owner.gid);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
    }
  };
  for (const { pattern, l } of wanted) {
    if (!l) {
      result.skipped.push({
        pattern,
        reason: "a wildcard in its first segment: write it to /output directly",
      });
      continue;
    }
    if (result.linked.some((p) => isWithin(p, l.path))) continue;
    const parent = dirname(l.path) === "." ? "" : dirname(l.path);
    const blocked = blockedAt(work, l.path, true);
    if (blocked) {
      result.skipped.push({ pattern, reason: blocked });
      continue;
    }
    mkdirs(output, l.folder ? l.path : parent);
    mkdirs(work, parent);
    symlinkSync(`/output/${l.path}`, join(work, l.path));
    result.linked.push(l.path);
  }
  return result;
}

export interface CollectResult {
  collected: string[];
  /** Paths matched but not collected, with the reason. */
  skipped: Array<{ path: string; reason: string }>;
}

/**
 * The first component of `rel` under `root` that is a symlink (or not a directory where
 * one is needed); with `absent`, `rel` itself must not exist at all.
 */
function blockedAt(root: string, rel: string, absent = false): string | undefined {
  const parts = rel.split("/");
  let cur = root;
  for (let i = 0; i < parts.length; i++) {
    cur = join(cur, parts[i] as string);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(cur);
    } catch {
      return undefined; // the rest does not exist yet: created as plain folders
    }
    if (st.isSymbolicLink()) return `${parts.slice(0, i + 1).join("/")} is a symlink`;
    if (i < parts.length - 1 && !st.isDirectory())
      return `${parts.slice(0, i + 1).join("/")} is not a folder`;
    if (i === parts.length - 1 && absent) return `${rel} already exists in the work folder`;
    if (i === parts.length - 1 && !st.isFile()) return `${rel} exists and is not a regular file`;
  }
  return undefined;
}

/**
 * What the walk of /output looks at at most: the host copies a task's files, and a task can
 * leave millions of entries or a chain of folders deeper than a stack. Past these, what was
 * not walked is reported, not collected.
 */
const COLLECT_LIMITS = { maxFiles: 100_000, maxVisited: 1_000_000, maxDepth: 256 };

/**
 * What the collection reports at most: each skipped path is a warning event and a line of
 * summary.json, and a task chooses its paths (256 folders of 255 bytes: 64 KiB a path).
 * Past REPORT_SKIPPED skips the rest are counted, not listed; a path longer than PATH_MAX is
 * counted, not listed nor collected (nothing could open it in the project by its path); past
 * REPORT_CHARS of listed paths nothing more is collected. Unbounded, 20,000 links at the
 * bottom of such a chain wrote a gigabyte of warnings into events.log, and the run's summary
 * could not be written at all (a string past the engine's limit): the task had its own
 * run's record go missing.
 */
const REPORT_SKIPPED = 1000;
const REPORT_CHARS = 8 << 20;
const PATH_MAX = 4095;

/**
 * A repository's own folder (or the file that points at one: a worktree's `.git`), any depth
 * and any case (a filesystem that ignores it). Written by a wildcard (`outputs: ["**"]`), a
 * task's .git/config (core.fsmonitor) or .git/hooks/pre-commit was a command the person's
 * next git, or their editor's git status, ran on the host; a `.git` file could point git at
 * the sandbox's own /output. Only a pattern that names .git collects there (what it matches).
 */
const GIT_DIR = ".git";

/** The sandbox a collection is of: its id and evidence folder (output-place.ts: its temps' journals), and the runtime's home kept out. */
export interface CollectFor {
  id: string;
  root: string;
  runtime: RuntimeHome;
  /** Whom what is collected is given to: the project's owner, decided once for the command (project.ts). */
  owner: ProjectOwner;
}

export function collectOutputs(
  outputDir: string,
  project: string,
  patterns: readonly string[],
  sandbox: CollectFor,
): CollectResult {
  const result: CollectResult = { collected: [], skipped: [] };
  let unlisted = 0;
  let tooLong = 0;
  let chars = 0;
  const skip = (path: string, reason: string) => {
    if (result.skipped.length >= REPORT_SKIPPED) unlisted++;
    else {
      result.skipped.push({ path, reason });
      chars += path.length;
    }
  };
  const inEvidence = evidenceTest(project);
  const gitPatterns = patterns.filter((p) => p.split("/").some((seg) => seg.toLowerCase() === GIT_DIR));
  // What a killed collection of this sandbox left first; then its own temps are noted anew.
  removeLeftovers(project, sandbox.root, sandbox.id);
  const at = newPlacement(
    sandbox.id,
    sandbox.root,
    sandbox.owner,
    new Set([...evidenceFolders(project), ...runtimeFolders(sandbox.runtime)]),
  );
  const meets = (names: readonly Buffer[]) => {
    const shown = names.map(displayName);
    const all = patterns.map((p) => outputPatternMeets(p, shown));
    return all.includes("match") ? "match" : all.includes("below") ? "below" : undefined;
  };
  // Through folder descriptors, names as bytes, no link followed (sandbox/untrusted-walk.ts):
  // a task still running (a second run) that swaps a folder for a link to a host folder
  // has the link reported by its own name, never the host's files.
  const { entries, truncated, unreadable } = walkUntrusted(outputDir, COLLECT_LIMITS, {
    others: true,
    enter: (names) => meets(names) !== undefined,
  });
  for (const folder of unreadable)
    if (Buffer.byteLength(folder) > PATH_MAX) tooLong++;
    else
      skip(
        folder === "" ? "." : folder,
        "a folder whose entries could not be read (its permissions were taken, by a task): nothing in it was collected",
      );
  let stopped = false;
  for (const e of entries) {
    if (meets(e.names) !== "match") continue;
    const rel = e.shown;
    if (chars > REPORT_CHARS) {
      stopped = true;
      break;
    }
    if (Buffer.byteLength(rel) > PATH_MAX) {
      tooLong++; // counted, not listed: a path of up to 256 names of 255 bytes each
      continue;
    }
    if (e.kind !== "file") {
      skip(rel, `a ${e.kind}: only regular files are collected`);
      continue;
    }
    if (inEvidence(rel)) {
      // Copied in, it would replace the project's evidence: a task rewriting its own record.
      skip(rel, `the project's evidence store (${EVIDENCE_DIR}) is never written by outputs`);
      continue;
    }
    const shownNames = e.names.map(displayName);
    if (
      shownNames.some((n) => n.toLowerCase() === GIT_DIR) &&
      !gitPatterns.some((p) => outputPatternMeets(p, shownNames) === "match")
    ) {
      skip(
        rel,
        "in git's own folder (.git: its config and hooks are commands git runs for the person): collected only by an output pattern that names .git",
      );
      continue;
    }
    if (!e.utf8) {
      skip(
        rel,
        `its name is not UTF-8 (shown with \\xNN): not collected, as outputs.diff could not name it; it stays in ${outputDir} until the sandbox is destroyed`,
      );
      continue;
    }
    // Whatever the project side does meanwhile (a task holding a folder there read-write, a
    // folder not the host's to write), this output is skipped with why, never the collection
    // thrown: thrown, the outputs already copied into the project were in no record.
    let why: string | undefined;
    try {
      why = collectOne(outputDir, project, e, at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      why = `could not be written in the project (${code ?? errorMessage(err)})`;
    }
    if (why !== undefined) {
      skip(rel, why);
      continue;
    }
    result.collected.push(rel);
    chars += rel.length;
  }
  if (tooLong > 0)
    result.skipped.push({
      path: ".",
      reason: `${tooLong} paths longer than ${PATH_MAX} bytes (PATH_MAX) not collected, not listed: nothing could open them in the project`,
    });
  if (unlisted > 0)
    result.skipped.push({ path: ".", reason: `${unlisted} more paths not collected, not listed` });
  if (truncated)
    result.skipped.push({
      path: ".",
      reason: `more than ${COLLECT_LIMITS.maxFiles} entries, ${COLLECT_LIMITS.maxVisited} looked at or ${COLLECT_LIMITS.maxDepth} folders deep: the rest was not collected`,
    });
  if (stopped)
    result.skipped.push({
      path: ".",
      reason: `more than ${REPORT_CHARS} characters of paths listed: the rest was not collected`,
    });
  endPlacement(at);
  return result;
}

/** Copy one walked regular file to its place in the project; the reason when it is not. */
function collectOne(outputDir: string, project: string, e: WalkedEntry, at: Placement): string | undefined {
  const why = blockedAt(project, e.shown);
  if (why) return `${why} in the project`;
  const src = openOutput(outputDir, e);
  if (src === undefined) return "changed while it was collected (a link or not a regular file)";
  try {
    const sparse = sparseRefusal(src.size, src.blocks);
    if (sparse !== undefined) return sparse;
    const folders = e.names.slice(0, -1);
    const into = openDestination(project, folders, at);
    if (typeof into === "string") return into;
    try {
      const name = e.names.at(-1) as Buffer;
      // The runtime's database or audit head, a link from AIDO_HOME to this project file:
      // replaced, the runtime would run on the task's state.
      const prior = lstatSync(fdEntryPath(into, name), { throwIfNoEntry: false });
      if (prior && at.keptOut.has(`${prior.dev}:${prior.ino}`))
        return "the runtime's database or audit head (a link from AIDO_HOME to it) is never replaced by outputs";
      copyPlainFile(src, into, folders, name, at);
    } finally {
      closeSync(into);
    }
    return undefined;
  } finally {
    closeSync(src.fd);
  }
}

/**
 * The walked file opened as the walk reached it (no link followed on the way, without
 * blocking on a FIFO swapped in), and still the very regular file walked; undefined when not.
 */
function openOutput(root: string, e: WalkedEntry): OpenOutput | undefined {
  const fd = openWalked(root, e.names);
  if (fd === undefined) return undefined;
  const st = fstatSync(fd);
  if (!st.isFile() || st.dev !== e.dev || st.ino !== e.ino) {
    closeSync(fd);
    return undefined;
  }
  return { fd, mode: st.mode, size: st.size, blocks: st.blocks };
}
