// tools/exec-removals.ts — which words of an exec command name an entry it takes out of its
// folder (rm, rmdir, unlink, find -delete, mv's sources: security/shell-operands.ts
// removedOperands), for exec-paths.ts to judge as removals: the caller's private folder itself
// needs a grant (exec-resolver.ts). Here: what a command find runs removes of what find found,
// the run-time words that name the shell's folder ($PWD) or the one before it ($OLDPWD), and
// a variable the command gives a known value (`d=$TMPDIR; rm -rf "$d"`), and the values a
// script's positional parameters take from the words after it (`sh s.sh ~`).

import type { CommandAnalysis } from "../security/shell.js";
import { removedOperands } from "../security/shell-operands.js";
import { type KnownVars, knownPart, RUN_TIME_TEXT, wholeVariable } from "./exec-known.js";
import { hasSubstitution, substitutionValue } from "./exec-substitutions.js";
import {
  bareValue,
  boundCounter,
  MAX_VAR_CHAIN,
  setAtRunTime,
  unjudgeable,
  valuesOf,
} from "./exec-values.js";

/** The shell's folder: `$PWD`, `${PWD}`, `$(pwd)`, `` `pwd -P` ``. */
const CWD = String.raw`\$PWD|\$\{PWD\}|\$\(pwd(?: -[LP])?\)|` + "`pwd(?: -[LP])?`";
/** A word (its double quotes taken out) that is the shell's folder, then a fixed rest. */
const CWD_LEAD = new RegExp(`^(?:${CWD})(/[^$\`*?[\\]~\\\\'"]*)?$`);
/** A word that starts with the folder the shell was in before its last cd. */
const OLDPWD_LEAD = /^"?(?:\$OLDPWD|\$\{OLDPWD\})(?![A-Za-z0-9_])/;

/**
 * The path, from the folder the shell is in, that a run-time word names when it is that folder
 * with a fixed rest: `"$PWD"` is `.`, `"$PWD/"` `./`, `"$PWD"/..` `./..`, `$(pwd)/x` `./x`
 * (dash's $PWD is the path cd went to; a program resolves `..` after it physically, as from the
 * real folder). Undefined for any other word.
 */
export function cwdPath(written: string): string | undefined {
  if (/['\\]/.test(written)) return undefined;
  const m = CWD_LEAD.exec(written.replaceAll('"', ""));
  return m ? `.${m[1] ?? ""}` : undefined;
}

/** Refuse a removed word that starts with $OLDPWD: the folder before the last cd, which the judge does not follow. */
export function refuseOldPwd(written: string, via: string): void {
  if (!OLDPWD_LEAD.test(written)) return;
  throw unjudgeable(
    `what ${via} removes`,
    written,
    "$OLDPWD is the folder the shell was in before its last cd, known only at run time",
  );
}

/**
 * Whether a command that find (at `index`) runs removes a word known only at run time that is not
 * a known path whole (`-exec sh -c 'rm -rf "$1"' sh {} \;`, `-exec mv {} D \;`): that word is
 * what find found, its starting points among it, so find is judged as deleting them
 * (findDeletes `runsRemoval`). The commands it runs carry "find" among their wrappers, in its
 * group or in code nested in it (a shell's -c code: a group whose parent chain leads to find's).
 */
export function runsRuntimeRemoval(analysis: CommandAnalysis, index: number, vars: KnownVars): boolean {
  const cmds = analysis.commands;
  const inFind = withinGroup(analysis, cmds[index]!.group);
  return cmds.some(
    (c, j) =>
      j !== index &&
      c.wrappers.includes("find") &&
      inFind(c.group) &&
      removedOperands(c).some(
        (k) =>
          c.argDynamic[k] && knownPart(c.argv[k]!, vars)?.whole !== true && mayBeFound(c.argv[k]!, analysis),
      ),
  );
}

/** Whether a group is `group` or nested in it (code it runs, its substitutions): its parent chain leads there. */
function withinGroup(analysis: CommandAnalysis, group: number): (g: number | undefined) => boolean {
  const parentOf = new Map(analysis.commands.map((c) => [c.group, c.parentGroup]));
  return (g) => {
    const seen = new Set<number>();
    for (; g !== undefined && !seen.has(g); g = parentOf.get(g)) {
      if (g === group) return true;
      seen.add(g);
    }
    return false;
  };
}

/** Positional parameters (`$1`, `"$@"`, `${2}`) and find's `{}`: how find hands a command what it found. */
const FOUND = /\$(?:[0-9@*]|\{[0-9@*])|\{\}/;

/**
 * Whether a removed run-time word may be what find found: any word but a variable the command
 * only gives values (CommandAnalysis.assignedValues, export) none of which is a positional
 * parameter or `{}` (`-exec sh -c 'f=$(mktemp); ...; rm -f "$f"' sh {} \;` removes its own
 * temp file, not what find found); `read` or `getopts` give one any value.
 */
function mayBeFound(
  written: string,
  analysis: CommandAnalysis,
  depth = 0,
  seen = new Set<string>(),
): boolean {
  const name = wholeVariable(written)?.name;
  if (name === undefined || depth > MAX_VAR_CHAIN) return true;
  // Looked through already on another path, and it was not (else the search had ended).
  if (seen.has(name)) return false;
  seen.add(name);
  const values = valuesOf(name, analysis);
  if (values.length === 0 || setAtRunTime(name, analysis) !== undefined) return true;
  return values.some(
    (v) => FOUND.test(v) || (wholeVariable(v) !== undefined && mayBeFound(v, analysis, depth + 1, seen)),
  );
}

/**
 * The paths a removed run-time word names through a variable the command assigns (on its own,
 * in a for loop's words, or by export, readonly or local: CommandAnalysis.assignedValues) a
 * value known before it runs: a fixed path, `~`/$HOME/$TMPDIR where known (knownPart), the
 * shell's folder (`$(pwd)`: cwdPath), or another such variable. Each value it is ever given is
 * one it may have, which is not followed in order: `d=$TMPDIR; rm -rf "$d"` removes the
 * private folder. A value that is a command substitution is returned as written, for the
 * caller to judge like a removed substitution (`d=$(echo ~)`: the private folder; `d=$(mktemp
 * -d)`: left to the domain).
 */
export function assignedPaths(
  written: string,
  analysis: CommandAnalysis,
  vars: KnownVars,
  depth = 0,
  count: (n: number) => void = boundCounter(written, "what is removed"),
): string[] {
  const v = wholeVariable(written);
  if (v === undefined) return [];
  // Past the chain a value was dropped, judged as nothing: `a=$TMPDIR; b=$a; …; g=$f; rm -rf
  // "$g"` emptied the private folder.
  if (depth > MAX_VAR_CHAIN)
    throw unjudgeable(
      "what is removed",
      written,
      `its variables name each other (or themselves) more than ${MAX_VAR_CHAIN} deep`,
    );
  const rest = v.rest;
  const values = valuesOf(v.name, analysis);
  count(values.length);
  return values.flatMap((value) => {
    // find's `{}` is what find found: judged with find's starting points (runsRuntimeRemoval).
    if (value.includes("{}")) return [];
    // A value the text shows whole (double quotes around it taken out).
    const bare = bareValue(value);
    if (bare !== "" && !RUN_TIME_TEXT.test(bare)) return [bare + rest];
    const known = knownPart(value, vars);
    if (known?.whole) return [known.path + rest];
    const cwd = cwdPath(value);
    if (cwd !== undefined) return [cwd + rest];
    // `d=$(echo ~)`, `for f in $(ls)`: the substitution, for the caller to judge (substitutionRemoval).
    if (hasSubstitution(value)) return [value + rest];
    return assignedPaths(value, analysis, vars, depth + 1, count).map((p) => p + rest);
  });
}

/**
 * The values a script's positional parameters take from the words after it (`sh s.sh ~ "$d"`:
 * `1=/tmp/agent-<id>`, `2=` each value the command gives d), as assignments its analysis
 * judges like those of `sh -c CODE NAME A` (CommandAnalysis.assignedValues): each word is
 * resolved where the command runs (its HOME, its variables, a substitution it computes), since
 * the script may start with another HOME; one not known is bound as written (`"$(ls)"`, judged
 * in the script like a removed substitution). `$0` is the script's path.
 */
export function scriptPositionals(
  script: string,
  words: readonly { value: string; dynamic: boolean }[],
  analysis: CommandAnalysis,
  vars: KnownVars,
): string[] {
  const known = { vars, assigned: (w: string) => assignedPaths(w, analysis, vars) };
  const computed = (w: string) => (hasSubstitution(w) ? (substitutionValue(w, known) ?? w) : w);
  const values = (a: { value: string; dynamic: boolean }): string[] => {
    if (!a.dynamic) return [a.value];
    const start = knownPart(a.value, vars);
    if (start?.whole) return [start.path];
    const assigned = known.assigned(a.value);
    return assigned.length > 0 ? assigned.map(computed) : [computed(a.value)];
  };
  return [`0=${script}`, ...words.flatMap((a, n) => values(a).map((v) => `${n + 1}=${v}`))];
}
