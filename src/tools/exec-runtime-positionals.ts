// tools/exec-runtime-positionals.ts — a script whose positional parameters come from input the
// judge never saw. exec-scripts.ts binds a script's `$1`, `$2`, `"$@"` to the words written
// after it (`sh s.sh ~`: exec-removals.ts scriptPositionals), but xargs and find -exec (and any
// program that appends words to what it runs) fill them in at run time: `echo ~ | xargs sh
// s.sh` and `find P -exec sh s.sh {} \;` with `rm -rf "$1"` in s.sh each emptied the caller's
// private folder, judged as `rm -rf ""`. Such a script that uses one of those parameters where
// the judge reads words (a command's words, a redirection, an assignment, a cd) is refused as
// unjudgeable; written out in the command instead (`xargs sh -c 'rm -rf "$@"' sh`), what it
// does with them is judged with what the runner reads (exec-substitutions.ts xargsRemoval,
// exec-removals.ts runsRuntimeRemoval).

import { AidoError, ErrorCode } from "../errors.js";
import type { CommandAnalysis, SimpleCommand } from "../security/shell-analysis.js";
import { commandName } from "../security/shell-operands.js";

/** The positional parameters a site's script gets at run time: those numbered in `at`, and every one from `from` on. */
export interface RunTimePositionals {
  at: number[];
  from: number | undefined;
  /** What hands them over, for the message (`xargs`, `find`; for a sourced script, what may rebind them). */
  runner: string;
}

/**
 * Which positional parameters of the script a command runs (its words after the script:
 * `words`) are filled in at run time: none unless the command is run by a program that adds
 * arguments (SimpleCommand.openArgs: xargs, find -exec). Then a word with find's `{}` (xargs's
 * -I replace string is judged as one: shell-wrappers.ts) is the runner's input, and every
 * parameter after the words written may be appended (xargs without -I, find -exec ... +; taken
 * so for `find -exec ... \;` and `xargs -I` too, which append none).
 */
export function runTimePositionals(
  c: SimpleCommand,
  words: readonly { value: string; dynamic: boolean }[],
): RunTimePositionals | undefined {
  if (!c.openArgs) return undefined;
  const at = words.flatMap((w, n) => (w.dynamic && w.value.includes("{}") ? [n + 1] : []));
  const runner = c.wrappers.findLast((w) => w === "xargs" || w === "find") ?? "the program that runs it";
  return { at, from: words.length + 1, runner };
}

/** Programs whose words are printed or tested, never opened, written or run (their redirections still count). */
const NOT_JUDGED: ReadonlySet<string> = new Set(["echo", "printf", "test", "[", ":", "true", "false"]);

/** A positional parameter in a word as written: `$1`, `${12}`, `${1:-x}`, `$@`, `"${*}"`. */
const POSITIONAL = /\$(?:([1-9])|\{([0-9]+)[}:#%=?+-]|([@*])|\{([@*])[}:#%=?+-])/g;

/**
 * Refuse a script (`path`, analysed as `analysis`) run with positional parameters known only at
 * run time (`runtime`) when a word the judge reads uses one of them: the first such word is named.
 */
export function refuseRunTimePositionals(
  analysis: CommandAnalysis,
  runtime: RunTimePositionals,
  path: string,
  where: string,
  shown: string,
): void {
  // After shift (or set with words), any parameter may be one the runner handed over.
  const rebinds = analysis.commands.some((c) => ["shift", "set"].includes(commandName(c)));
  const isRunTime = (n: number): boolean =>
    rebinds || runtime.at.includes(n) || (runtime.from !== undefined && n >= runtime.from);
  const uses = (word: string): boolean => {
    for (const m of word.matchAll(POSITIONAL)) {
      const n = m[1] ?? m[2];
      if (n === undefined || isRunTime(Number(n))) return true;
    }
    return false;
  };
  const used = judgedWords(analysis).find(uses);
  if (used === undefined) return;
  const reads = runtime.runner === "xargs" || runtime.runner === "find";
  const advice = reads
    ? ` (the words it reads, never seen by the judge), and uses them ("${used}"); write the command out instead of the script (${runtime.runner} sh -c 'CODE' sh ...), so what it does with them is judged`
    : `, and uses them ("${used}"); give the paths in the script, or source it where they are known`;
  throw new AidoError(
    ErrorCode.policyDenied,
    `${where}: "${shown}" runs the script ${path}, which gets its positional parameters at run time from ${runtime.runner}${advice}`,
    { rule: "unjudgeable" },
  );
}

/** Every run-time word of a script the judge reads: command words, assignments, redirections, files, folders. */
function judgedWords(analysis: CommandAnalysis): string[] {
  const words: string[] = [
    ...analysis.assignedValues,
    ...analysis.dirs.filter((d) => d.dynamic).map((d) => d.target),
    ...analysis.redirects.filter((r) => r.dynamic).map((r) => r.target),
    ...analysis.wrapperFiles.filter((f) => f.dynamic).map((f) => f.path),
  ];
  for (const c of analysis.commands) {
    words.push(...c.assigns);
    words.push(...c.redirects.filter((r) => r.dynamic).map((r) => r.target));
    words.push(...c.files.filter((f) => f.dynamic).map((f) => f.path));
    words.push(...c.localDirs.filter((d) => d.dynamic).map((d) => d.path));
    const skip = NOT_JUDGED.has(commandName(c));
    for (const [k, w] of c.argv.entries()) {
      if (c.argDynamic[k] && (k === 0 || (!skip && !c.dataArgs.includes(k)))) words.push(w);
    }
  }
  return words;
}
