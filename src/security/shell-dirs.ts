// security/shell-dirs.ts — the directories a command of an exec may start in, so that a
// relative path in it (`cat ../secret/k`, `> out.txt`) is judged where it will be opened.
// The rule, from the analysis of shell.ts:
//   - every command may run in the exec's cwd, and in every directory a `cd`/`chdir`
//     before it (in text order) moves to, composed in order (`cd a; cd b` -> a, a/b, b);
//   - a `cd X` on the left of `&&` certainly happened for what is on the right;
//   - a loop body sees the changes anywhere in the loop (the next pass starts where the
//     last left off); a function body or trap action sees every change in the command;
//   - a change to a directory known only at run time (`cd $D`, `cd -`; `cd`, `cd ~` unless
//     the caller knows where HOME leads: `known`), or a
//     relative change that may repeat (in a loop or a function), makes the directory
//     unknown: relative paths are then refused rather than guessed;
//   - options that move one program (`env -C`, `git -C`, `tar -C`) add their directory.
// A possible directory is a list of steps from the exec's cwd; the exec tool resolves the
// steps in the container (realpath), policy rules join them as text.

import { posix } from "node:path";
import type { CommandAnalysis, SimpleCommand } from "./shell.js";

/** One step: `cd target` (logical: `..` removed from the text before symlinks; physical: after). */
export interface DirStep {
  target: string;
  physical: boolean;
}

/** Steps from the exec's cwd; [] is the cwd itself. */
export type DirPath = readonly DirStep[];

/** More possible directories than this for one command: treated as unknown. */
const MAX_DIRS = 16;

/**
 * The possible starting directories of command `index` (undefined: a redirection with no
 * command, which may stand anywhere); undefined when one is only known at run time.
 */
export function possibleDirs(
  a: CommandAnalysis,
  index: number | undefined,
  opts: {
    local?: boolean;
    place?: Pick<SimpleCommand, "dirScope" | "localDirs">;
    /** The folder a run-time target names, when the caller knows it (`cd ~`: where HOME leads). */
    known?: (target: string) => string | undefined;
  } = {},
): DirPath[] | undefined {
  // `place`: a wrapper's file (CommandAnalysis.wrapperFiles), placed as a command at `index`.
  const c = opts.place ?? (index === undefined ? undefined : a.commands[index]);
  const scope = c ? c.dirScope : Number.POSITIVE_INFINITY;
  let set: DirPath[] = [[]];
  for (const d of a.dirs) {
    if (d.at > scope) continue;
    const target = d.dynamic ? opts.known?.(d.target) : d.target;
    if (target === undefined) return undefined;
    const absolute = target.startsWith("/");
    if (d.repeats && !absolute) return undefined;
    const step: DirStep = { target, physical: d.physical };
    const moved = set.map((p): DirPath => (absolute ? [step] : [...p, step]));
    const certain = index !== undefined && d.certain.some(([from, to]) => index >= from && index < to);
    set = dedupe(certain ? moved : [...set, ...moved]);
    if (set.length > MAX_DIRS) return undefined;
  }
  for (const l of opts.local === false ? [] : (c?.localDirs ?? [])) {
    if (l.dynamic) return undefined;
    const step: DirStep = { target: l.path, physical: true };
    set = dedupe([...set, ...set.map((p): DirPath => (l.path.startsWith("/") ? [step] : [...p, step]))]);
    if (set.length > MAX_DIRS) return undefined;
  }
  return set;
}

function dedupe(paths: DirPath[]): DirPath[] {
  const seen = new Map<string, DirPath>();
  for (const p of paths) seen.set(JSON.stringify(p), p);
  return [...seen.values()];
}

/** A directory as text, joined lexically onto `cwd` (for rules that judge paths as written). */
export function joinDir(cwd: string, path: DirPath): string {
  let dir = cwd;
  for (const step of path) dir = posix.resolve(dir, step.target);
  return dir;
}
