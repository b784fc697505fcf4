// tools/exec-substitutions.ts — what a removed word that holds a command substitution
// (`rm -rf "$(echo $HOME)"`, `rm -f $(ls *.o)`) removes, for exec-paths.ts to judge. Its value
// is computed where the substitution only prints words the judge knows (echo, printf %s,
// dirname, basename, pwd after a cd, realpath, readlink -f): judged as that path. One it cannot
// compute could be any path, the caller's private folder among them; it runs only when it
// lists names the command cannot spell the folder with (a fresh name from mktemp; ls or find
// of relative names without `..`); any other is refused as unjudgeable (docs/security.md).

import { posix } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { analyzeCommand, type CommandAnalysis } from "../security/shell.js";
import type { SimpleCommand } from "../security/shell-analysis.js";
import { commandName } from "../security/shell-operands.js";
import { type KnownVars, knownPart } from "./exec-known.js";
import { withinGroup } from "./exec-removals.js";

/** A word that is one substitution whole (double-quoted or not), then a fixed rest: `"$(C)/x"`, `$(C)/x`. */
const SUBSTITUTION = /^(?:"\$\((.*)\)(\/[^"$`\\]*)?"|\$\((.*)\))(\/[^$`*?[\]~\\'"]*)?$/s;
/** How many substitutions deep a value is computed (`$(dirname "$(echo ~)")`). */
const MAX_DEPTH = 4;

/** Whether a word (as written) runs a command substitution. */
export function hasSubstitution(written: string): boolean {
  return /\$\(|`/.test(written.replace(/'[^']*'/g, ""));
}

/** The path a substitution word prints, where the judge can compute it; undefined when it cannot. */
export function substitutionValue(written: string, vars: KnownVars, depth = 0): string | undefined {
  const m = SUBSTITUTION.exec(written);
  if (!m || depth > MAX_DEPTH) return undefined;
  let inner: CommandAnalysis;
  try {
    inner = analyzeCommand(m[1] ?? m[3] ?? "");
  } catch {
    return undefined;
  }
  // Its own commands (a substitution in their words is computed in turn: wordPath).
  const cmds = inner.commands.filter((c) => c.parentGroup === undefined);
  if (inner.pipelines.length > 0 || inner.assignedValues.length > 0 || cmds.length === 0) return undefined;
  if (cmds.some((c) => c.wrappers.length > 0 || c.background)) return undefined;
  // `cd D && pwd` (`cd D; pwd -P`): a cd in the substitution moves only it.
  let cwd = ".";
  for (const c of cmds.slice(0, -1)) {
    if (!["cd", "chdir"].includes(commandName(c)) || c.argv.length !== 2) return undefined;
    const to = wordPath(c, 1, vars, depth);
    if (to === undefined) return undefined;
    cwd = posix.isAbsolute(to) || cwd === "." ? to : posix.join(cwd, to);
  }
  const value = printed(cmds.at(-1)!, cwd, vars, depth);
  return value === undefined ? undefined : value + (m[2] ?? "") + (m[4] ?? "");
}

/** What the last command of a substitution prints, as a path (one word). */
function printed(c: SimpleCommand, cwd: string, vars: KnownVars, depth: number): string | undefined {
  const name = commandName(c);
  const args = c.argv.slice(1);
  const one = (k: number) => (c.argv.length === k + 1 ? wordPath(c, k, vars, depth) : undefined);
  switch (name) {
    case "echo":
      return args[0]?.startsWith("-") ? undefined : one(1);
    case "printf":
      return ["%s", "'%s'", '"%s"', "'%s\\n'", '"%s\\n"'].includes(args[0] ?? "") ? one(2) : undefined;
    case "dirname": {
      const p = one(1);
      return p === undefined ? undefined : posix.dirname(p);
    }
    case "basename": {
      const p = one(1);
      return p === undefined ? undefined : posix.basename(p);
    }
    case "pwd":
      return args.every((a) => a === "-L" || a === "-P") ? cwd : undefined;
    case "realpath":
      return one(1);
    case "readlink":
      return ["-f", "-e", "-m"].includes(args[0] ?? "") ? one(2) : undefined;
    default:
      return undefined;
  }
}

/** The path word k of `c` is before it runs: fixed text, `~`/$HOME/$TMPDIR where known, a computable substitution. */
function wordPath(c: SimpleCommand, k: number, vars: KnownVars, depth: number): string | undefined {
  const w = c.argv[k]!;
  if (!c.argDynamic[k]) return w;
  const bare = w.replace(/^"([^"$`\\]*)"$/, "$1");
  if (bare !== w) return bare;
  const known = knownPart(w, vars);
  if (known?.whole) return known.path;
  return substitutionValue(w, vars, depth + 1);
}

/** Programs whose output is only names: a fresh one (mktemp), or entries of the folders their words name. */
const LISTERS: ReadonlySet<string> = new Set(["ls", "find"]);

/**
 * Refuse a removed word with a substitution the judge cannot compute (`rm -rf $(cat list)`,
 * `rm -rf "$(find ~ -maxdepth 0)"`): it could print the private folder's path. One that runs
 * mktemp, or ls/find of relative names (no `..`, no `~`, no variable), prints no folder a word
 * of it names whole above the one it runs in, and is left to the domain. `subs`: the commands
 * run in the removing command's substitutions.
 */
export function refuseUnknownSubstitution(
  written: string,
  subs: readonly SimpleCommand[],
  via: string,
): void {
  const listsNames = subs.every((s) => {
    const name = commandName(s);
    if (name === "mktemp") return s.wrappers.length === 0;
    return LISTERS.has(name) && s.wrappers.length === 0 && s.argv.slice(1).every(relativeName);
  });
  if (subs.length > 0 && listsNames) return;
  throw new AidoError(
    ErrorCode.policyDenied,
    `cannot judge what ${via} removes ("${written}"): the command substitution prints a path known only at run time, which could be the caller's private folder; give the path, or list relative names (ls, find . ...)`,
    { rule: "unjudgeable" },
  );
}

/** An option, or a relative name or pattern that stays in the folder it is opened from. */
function relativeName(word: string): boolean {
  if (word.startsWith("-")) return true;
  const bare = word.replace(/^'([^']*)'$/, "$1").replace(/^"([^"$`\\]*)"$/, "$1");
  return !/[$`~\\]/.test(bare) && !bare.startsWith("/") && !bare.split("/").includes("..");
}

/** The commands run in substitutions of command `index` (directly, or nested in them). */
export function substitutionCommands(analysis: CommandAnalysis, index: number): SimpleCommand[] {
  const group = analysis.commands[index]!.group;
  const within = withinGroup(analysis, group);
  return analysis.commands.filter((c) => c.group !== group && within(c.parentGroup));
}
