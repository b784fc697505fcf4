// humansandbox/paths.ts — the host side of inputs and outputs: expanding the paths and
// globs of sandbox.yaml ("*" within a segment, "**" across segments) and deciding what a
// declared input mounts, and which paths of /output an output pattern takes (the walk of
// /output itself is sandbox/untrusted-walk.ts's). The walk never descends through a symlink, and an input whose
// real path leaves the project is refused: a link planted in a repository must not turn
// "inputs: [data/*]" into a mount of the user's home folder.

import { lstatSync, readdirSync, realpathSync } from "node:fs";
import { basename, join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { isStrictlyWithin, isWithin } from "../fs/within.js";
import { wildcardMatch } from "../security/glob.js";
import { EVIDENCE_DIR, guardEvidence, isEvidencePath, type RuntimeHome } from "./evidence-guard.js";
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
 * holding it has it covered (`hidden`); so is the runtime's home (`runtime`: AIDO_HOME, its
 * key). A `..` segment is refused: `/tmp/..` would mount "/" at /inputs/.., and a path
 * read through one is not the path it shows. `writable`: --dangerous-allow-mutations.
 */
export function resolveInputs(
  project: string,
  patterns: readonly string[],
  runtime: RuntimeHome,
  writable = false,
): InputMount[] {
  const projectReal = realpathSync(project);
  const mounts: InputMount[] = [];
  const targets = new Map<string, string>();
  for (const pattern of patterns) {
    if (pattern.split("/").includes(".."))
      throw new AidoError(
        ErrorCode.configInvalid,
        `input "${pattern}" has a ".." segment: name the folder by its own path`,
        { pattern },
      );
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
      if (!abs && !isWithin(projectReal, source))
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
  const outer = mounts.filter((m) => !mounts.some((o) => o !== m && isStrictlyWithin(o.target, m.target)));
  return guardEvidence(projectReal, outer, writable, runtime);
}

/**
 * Before each start of a sandbox's container: the recorded inputs are still what `up`
 * resolved. The engine binds a mount's source by its path at every start, following links:
 * a task holding a folder above an input read-write (the project by its path, and data/)
 * that replaced the input's folder with a link to .aido had every sandbox's records and
 * streams mounted at /inputs/data when the container was started again (a reboot, or
 * `aido run` starting a stopped container). Each source must still be its own real path,
 * and the evidence store where `up` found it (the same covers); else nothing is started.
 */
export function recheckInputs(
  project: string,
  id: string,
  inputs: readonly InputMount[],
  writable: boolean,
  runtime: RuntimeHome,
): void {
  const refuse = (m: InputMount, what: string) =>
    new AidoError(
      ErrorCode.sandboxFailed,
      `input "${m.pattern}" mounts ${m.source}, which ${what} since \`aido sandbox up\` (a task holding a folder above it read-write, or someone on the host): the container of sandbox ${id} is not started; destroy it (\`aido sandbox destroy ${id}\`) and start a new one`,
      { id, pattern: m.pattern, path: m.source },
    );
  for (const m of inputs) {
    let real: string;
    try {
      real = realpathSync(m.source);
    } catch (e) {
      throw refuse(m, `is gone (${(e as NodeJS.ErrnoException).code ?? "unreadable"})`);
    }
    if (real !== m.source) throw refuse(m, `is now a link to ${real}`);
  }
  const again = guardEvidence(
    realpathSync(project),
    inputs.map(({ hidden: _, ...m }) => m),
    writable,
    runtime,
  );
  again.forEach((m, i) => {
    if ((m.hidden ?? []).join("\0") !== (inputs[i]?.hidden ?? []).join("\0"))
      throw new AidoError(
        ErrorCode.sandboxFailed,
        `input "${m.pattern}" mounts ${m.source}: the project's evidence store and the runtime's home in it are to be covered at [${(m.hidden ?? []).join(", ")}], sandbox ${id} records [${(inputs[i]?.hidden ?? []).join(", ")}] (the store moved, or the sandbox was made before stores were covered): its container is not started; destroy it (\`aido sandbox destroy ${id}\`) and start a new one`,
        { id, pattern: m.pattern, path: m.source },
      );
  });
}

/** One segment of a pattern against one name: "*" within it, else the name itself. */
function segmentMatches(seg: string, name: string): boolean {
  return seg.includes("*") ? wildcardMatch(seg, name) : seg === name;
}

/**
 * How an output pattern meets a path under /output (its names as shown): "match" when the
 * pattern matches the path or a folder it lies in (a folder output collects what is in it),
 * "below" when it could still match something under the path (a folder worth walking into).
 */
export function outputPatternMeets(pattern: string, names: readonly string[]): "match" | "below" | undefined {
  const p = segmentsOf(pattern);
  const memo = new Map<number, "match" | "below" | undefined>();
  const at = (i: number, j: number): "match" | "below" | undefined => {
    const key = i * (names.length + 1) + j;
    if (memo.has(key)) return memo.get(key);
    let r: "match" | "below" | undefined;
    if (i === p.length) r = j > 0 ? "match" : undefined;
    else if (p[i] === "**") {
      const skip = at(i + 1, j); // "**" as no segment, else as one more
      r = skip === "match" ? skip : j === names.length ? "below" : (at(i, j + 1) ?? skip);
    } else if (j === names.length) r = "below";
    else r = segmentMatches(p[i] as string, names[j] as string) ? at(i + 1, j + 1) : undefined;
    memo.set(key, r);
    return r;
  };
  return at(0, 0);
}
