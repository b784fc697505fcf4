// humansandbox/outputs.ts — bringing a run's declared outputs back into the project, and
// the git diff of what that changed. Only regular files are collected (a symlink the
// script made in /output would point at the host's files once outside the container),
// and never through a symlink on the project side either. The diff is what `git diff
// HEAD` shows for the collected paths, new files included, when the project is in a git
// repository; it is written as the run's outputs.diff.

import { execFileSync } from "node:child_process";
import { copyFileSync, lstatSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { collectableOutputs } from "./paths.js";

export interface CollectResult {
  collected: string[];
  /** Paths matched but not collected, with the reason. */
  skipped: Array<{ path: string; reason: string }>;
}

/** The first component of `rel` under `root` that is a symlink (or not a directory where one is needed). */
function blockedAt(root: string, rel: string): string | undefined {
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
    if (st.isSymbolicLink()) return `${parts.slice(0, i + 1).join("/")} is a symlink in the project`;
    if (i < parts.length - 1 && !st.isDirectory())
      return `${parts.slice(0, i + 1).join("/")} is not a folder`;
    if (i === parts.length - 1 && !st.isFile())
      return `${rel} exists in the project and is not a regular file`;
  }
  return undefined;
}

export function collectOutputs(
  outputDir: string,
  project: string,
  patterns: readonly string[],
): CollectResult {
  const { files, skipped } = collectableOutputs(outputDir, patterns);
  const result: CollectResult = {
    collected: [],
    skipped: skipped.map((path) => ({ path, reason: "not a regular file (symlinks are never collected)" })),
  };
  for (const rel of files) {
    const why = blockedAt(project, rel);
    if (why) {
      result.skipped.push({ path: rel, reason: why });
      continue;
    }
    const dest = join(project, rel);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(join(outputDir, rel), dest);
    result.collected.push(rel);
  }
  return result;
}

function git(project: string, args: string[], okCodes: number[] = [0]): string | undefined {
  try {
    return execFileSync("git", ["-C", project, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as { status?: number; stdout?: string };
    if (err.status !== undefined && okCodes.includes(err.status)) return err.stdout ?? "";
    return undefined;
  }
}

/** True when the project is inside a git work tree. */
export function inGitRepo(project: string): boolean {
  return git(project, ["rev-parse", "--is-inside-work-tree"])?.trim() === "true";
}

/** `git diff HEAD` of the given project paths, new (untracked) files shown as added. */
export function diffOfPaths(project: string, paths: readonly string[]): string {
  if (paths.length === 0) return "";
  const hasHead = git(project, ["rev-parse", "--verify", "-q", "HEAD"]) !== undefined;
  let out = hasHead ? (git(project, ["diff", "--binary", "HEAD", "--", ...paths]) ?? "") : "";
  const untracked = (git(project, ["ls-files", "--others", "--", ...paths]) ?? "")
    .split("\n")
    .filter(Boolean);
  const tracked = hasHead ? "" : (git(project, ["ls-files", "--", ...paths]) ?? "");
  const fresh = [...untracked, ...tracked.split("\n").filter(Boolean)];
  for (const rel of fresh)
    out += git(project, ["diff", "--binary", "--no-index", "--", "/dev/null", rel], [1]) ?? "";
  return out;
}
