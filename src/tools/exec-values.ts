// tools/exec-values.ts — the values a shell variable of an exec command may hold, as the judge
// knows them before it runs: every value the command gives it (an assignment on its own, one
// before a command, a for loop's words, export/readonly/local, a `sh -c CODE NAME ARGS`
// positional), and the setters whose value is known only at run time (`read d`, `getopts o d`,
// `${d:=V}`). Removals (exec-removals.ts) and every other site a path is judged at (what is
// written, redirected, cd'd into: exec-paths.ts boundWords) take a variable's values from here:
// judged by its fixed prefix only, `sh -c 'cp E "$1"' _ D`, `d=D; cp E "$d"` and `d=V; echo x >
// "$d/f"` wrote past the operator's deny rules and, with `sandbox.landlock: off`, outside every
// grant; `sh -c 'cd "$1" && cat k' _ V` read past them.

import { AidoError, ErrorCode } from "../errors.js";
import type { CommandAnalysis } from "../security/shell.js";
import { commandName } from "../security/shell-operands.js";
import { wholeVariable } from "./exec-known.js";

/** How many variables deep a value is followed (`a=~; b=$a`). */
export const MAX_VAR_CHAIN = 4;

/**
 * Most words one run-time word may stand for through its variables. Each variable may have
 * many values and each value may name it again (`v=$v/a; v=$v/b; …`): followed
 * MAX_VAR_CHAIN deep, 20 such assignments made 3.2 million words and held the daemon's event
 * loop for 9 s, 40 for minutes. Past this the word is refused as unjudgeable.
 */
export const MAX_BOUND_WORDS = 256;

/** The refusal of a word the judge cannot know before the run: `what` it names, the word as written, why. */
export function unjudgeable(what: string, written: string, why: string): AidoError {
  return new AidoError(ErrorCode.policyDenied, `cannot judge ${what} ("${written}"): ${why}; give the path`, {
    rule: "unjudgeable",
  });
}

/** A value as written, its double quotes taken off (`d="$HOME/x"`: `$HOME/x`). */
export const bareValue = (value: string): string => value.replace(/^"([^"]*)"$/, "$1");

/** Counts the words a run-time word stands for; refuses it past MAX_BOUND_WORDS. */
export function boundCounter(written: string, site: string): (n: number) => void {
  let total = 0;
  return (n) => {
    total += n;
    if (total > MAX_BOUND_WORDS)
      throw unjudgeable(site, written, `its variables' values make more than ${MAX_BOUND_WORDS} paths`);
  };
}

/**
 * Every value, as written, the command assigns to the shell variable `name`: CommandAnalysis
 * assignedValues, export/readonly/local arguments, and the settings before a command (`d=D
 * sh -c 'cp E "$d"'` hands the code D; `d=D :` sets the shell's own, a special builtin's).
 */
export function valuesOf(name: string, analysis: CommandAnalysis): string[] {
  const declared = analysis.commands.flatMap((c) =>
    ["export", "readonly", "local"].includes(commandName(c)) ? c.argv.slice(1) : [],
  );
  const before = analysis.commands.flatMap((c) => c.assigns);
  // "$@" and "$*" are every positional parameter from $1 on.
  const all = name === "@" || name === "*";
  const values = [...analysis.assignedValues, ...declared, ...before].flatMap((a) =>
    a.startsWith(`${name}=`) || (all && /^[1-9][0-9]*=/.test(a)) ? [a.slice(a.indexOf("=") + 1)] : [],
  );
  return [...new Set(values)];
}

/**
 * What sets the shell variable `name` to a value known only at run time: `read` (its input),
 * `getopts` (the option letter it finds), `${name:=V}`/`${name=V}` (V only when it was unset or
 * empty, which is not followed); undefined when nothing does.
 */
export function setAtRunTime(name: string, analysis: CommandAnalysis): string | undefined {
  const setter = analysis.commands.find((c) => {
    const program = commandName(c);
    if (program === "read") return c.argv.slice(1).includes(name);
    // getopts sets the variable it names, and OPTARG and OPTIND (`cat "$OPTARG"`).
    return program === "getopts" && (c.argv[2] === name || name === "OPTARG" || name === "OPTIND");
  });
  if (setter !== undefined) return commandName(setter);
  if (/^[A-Za-z_]/.test(name) && new RegExp(`\\$\\{${name}:?=`).test(analysis.source))
    return `\${${name}:=...}`;
  return undefined;
}

/**
 * The words a run-time word stands for through the variable it is whole (`"$d"`, `"$1"`,
 * `${d}/x`): one per value the command may give it (valuesOf), the fixed rest after it kept,
 * followed through another such variable, a value's double quotes taken off (`d="$HOME/x"`:
 * `$HOME/x`, judged where HOME leads). An unquoted use of a value with blanks is also each of
 * its fields. Undefined for a word that is not a variable whole, or one the command gives no
 * value (its text is judged as it is). A variable set at run time (setAtRunTime) is refused as
 * unjudgeable, the word and `site` named.
 */
export function boundWords(
  written: string,
  analysis: CommandAnalysis,
  site: string,
  depth = 0,
  /** The word as the command wrote it, which a refusal names (not the value reached through it). */
  original = written,
  count: (n: number) => void = boundCounter(written, site),
): string[] | undefined {
  const v = wholeVariable(written);
  if (v === undefined) return undefined;
  const setter = setAtRunTime(v.name, analysis);
  if (setter !== undefined) throw unjudgeable(site, original, `${setter} sets ${v.name} at run time`);
  const values = valuesOf(v.name, analysis);
  if (values.length === 0) return undefined;
  // Past the chain a value would be judged as its text, the variable's name: `a=D; b=$a; …`.
  if (depth > MAX_VAR_CHAIN)
    throw unjudgeable(
      site,
      original,
      `its variables name each other (or themselves) more than ${MAX_VAR_CHAIN} deep`,
    );
  count(values.length);
  const unquoted = !written.startsWith('"');
  return values.flatMap((value) => {
    const bare = bareValue(value);
    const word = bare + v.rest;
    const fields = unquoted && /\s/.test(bare) ? word.split(/\s+/).filter((f) => f !== "") : [];
    count(fields.length);
    return [word, ...fields].flatMap((w) => boundWords(w, analysis, site, depth + 1, original, count) ?? [w]);
  });
}
