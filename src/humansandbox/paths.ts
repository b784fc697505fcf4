// humansandbox/paths.ts — the host side of inputs and outputs: expanding the paths and
// globs of sandbox.yaml ("*" within a segment, "**" across segments) and deciding what a
// declared input mounts. The walk never descends through a symlink, and an input whose
// real path leaves the project is refused: a link planted in a repository must not turn
// "inputs: [data/*]" into a mount of the user's home folder.

import { existsSync, lstatSync, readdirSync, realpathSync } from "node:fs";
import { basename, join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { wildcardMatch } from "../security/glob.js";
import { EVIDENCE_DIR, guardEvidence, isAtOrUnder, isEvidencePath } from "./evidence-guard.js";
import type { InputMount } from "./state.js";

const MAX_MATCHES = 256;

function segmentsOf(pattern: string): string[] {
  return pattern.split("/").filter((s) => s !== "" && s !== ".");
}

/** Paths (relative to root, "/"-separated) matching the pattern; symlinks are matched, never entered. */
export function expandPattern(root: string, pattern: string): string[] {
  const out = new Set<string>();
  const isDir = (rel: string): boolean => {
    try {
      return lstatSync(join(root, rel)).isDirectory();
    } catch {
      return false;
    }
  };
  const exists = (rel: string): boolean => {
    try {
      lstatSync(join(root, rel));
      return true;
    } catch {
      return false;
    }
  };
  const children = (rel: string): string[] => (isDir(rel) ? readdirSync(join(root, rel)).sort() : []);
  const walk = (rel: string, segs: string[]): void => {
    if (out.size > MAX_MATCHES) return;
    if (segs.length === 0) {
      if (rel !== "") out.add(rel);
      return;
    }
    const [seg, ...rest] = segs as [string, ...string[]];
    const at = (name: string) => (rel === "" ? name : `${rel}/${name}`);
    if (seg === "**") {
      walk(rel, rest);
      for (const name of children(rel)) if (isDir(at(name))) walk(at(name), segs);
      return;
    }
    const names = seg.includes("*") ? children(rel).filter((n) => wildcardMatch(seg, n)) : [seg];
    for (const name of names) {
      if (rest.length === 0 ? exists(at(name)) : isDir(at(name))) walk(at(name), rest);
    }
  };
  walk("", segmentsOf(pattern));
  if (out.size > MAX_MATCHES)
    throw new AidoError(ErrorCode.configInvalid, `"${pattern}" matches more than ${MAX_MATCHES} paths`, {
      pattern,
    });
  return [...out].sort();
}

/**
 * The bind mounts for the declared inputs: a project path at /inputs/<same path>, an
 * absolute one at /inputs/<its name>. A pattern that matches nothing is an error (a typo
 * would otherwise run the script against no data). The project's evidence store is kept
 * out (evidence-guard.ts): a wildcard never matches it, naming it is refused, and an input
 * holding it has it covered (`hidden`). `writable`: --dangerous-allow-mutations.
 */
export function resolveInputs(project: string, patterns: readonly string[], writable = false): InputMount[] {
  const projectReal = realpathSync(project);
  const mounts: InputMount[] = [];
  const targets = new Map<string, string>();
  for (const pattern of patterns) {
    const abs = pattern.startsWith("/");
    const root = abs ? "/" : projectReal;
    const all = expandPattern(root, abs ? pattern.slice(1) : pattern);
    // A wildcard's match of .aido is dropped; a pattern naming .aido is refused by the guard.
    const matches =
      abs || segmentsOf(pattern)[0] === EVIDENCE_DIR ? all : all.filter((r) => !isEvidencePath(r));
    if (matches.length === 0)
      throw new AidoError(
        ErrorCode.configInvalid,
        `input "${pattern}" matches nothing in ${root}${all.length > 0 ? ` (a wildcard never matches the evidence store ${EVIDENCE_DIR})` : ""}`,
        { pattern },
      );
    for (const rel of matches) {
      const source = realpathSync(join(root, rel));
      if (!abs && !isAtOrUnder(projectReal, source))
        throw new AidoError(
          ErrorCode.configInvalid,
          `input "${rel}" (from "${pattern}") is a link to ${source}, outside the project: declare that path itself`,
          { pattern, path: rel },
        );
      const target = `/inputs/${abs ? basename(rel) : rel}`;
      const prior = targets.get(target);
      if (prior !== undefined && prior !== source)
        throw new AidoError(
          ErrorCode.configInvalid,
          `inputs ${prior} and ${source} would both mount at ${target}`,
          {
            target,
          },
        );
      if (prior === undefined) mounts.push({ pattern, source, target });
      targets.set(target, source);
    }
  }
  // A mount inside another mount would hide it or be hidden: keep the outer one only.
  const outer = mounts.filter((m) => !mounts.some((o) => o !== m && m.target.startsWith(`${o.target}/`)));
  return guardEvidence(projectReal, outer, writable);
}

/** Regular files under `root` matching any output pattern (symlinks and devices never collected). */
export function collectableOutputs(
  root: string,
  patterns: readonly string[],
): { files: string[]; skipped: string[] } {
  const files = new Set<string>();
  const skipped = new Set<string>();
  if (!existsSync(root)) return { files: [], skipped: [] };
  const addTree = (rel: string): void => {
    const st = lstatSync(join(root, rel));
    if (st.isFile()) files.add(rel);
    else if (st.isDirectory()) for (const n of readdirSync(join(root, rel)).sort()) addTree(`${rel}/${n}`);
    else skipped.add(rel);
  };
  for (const pattern of patterns) for (const rel of expandPattern(root, pattern)) addTree(rel);
  return { files: [...files].sort(), skipped: [...skipped].sort() };
}
