// tools/exec-rebound.ts — words of an exec command bound only at run time, which the judge
// refuses wherever it would judge a path (what is removed, written, or cd'd into): a positional
// parameter after `shift` or `set -- W` (the judge binds $1... to the words after `sh -c CODE`
// only), one in a function's body (its arguments), and $OPTARG where getopts sets it. Judged
// without their value, each was a path nobody checked: `f() { rm -rf "$1"; }; f ~` emptied the
// private folder; `sh -c 'getopts d: o; cp e "$OPTARG"' sh -d D`, `f() { echo x > "$1"; }; f
// D` and `set -- D; cd "$1"` wrote or moved where no grant was asked for, stopped only by the
// Landlock domain, which the gate must not rely on. One rule for every site (exec-paths.ts).

import type { CommandAnalysis } from "../security/shell.js";
import type { SimpleCommand } from "../security/shell-analysis.js";
import { commandName } from "../security/shell-operands.js";
import { unjudgeable, valuesOf } from "./exec-values.js";

/**
 * A positional parameter anywhere in a word: `$1`, `${2}`, `"$@"`, `${1:-x}`, and inside
 * another expansion or after a fixed part (`${d:-$1}`, `"$HOME/$1"`: with $1 empty or `..`
 * each names the private folder; matched only at the start of the word, `f() { rm -rf
 * "$HOME/$1"; }; f` emptied it). Not `$0`: neither shift, set nor a function call changes it.
 */
const POSITIONAL_IN = /(?<!\\)\$(?:[1-9@*]|\{(?:[0-9]*[1-9][0-9]*|[@*])[}:#%=?+-])/;

/** $OPTARG, which getopts sets, anywhere in a word (`"$OPTARG"`, `"${x:-$OPTARG}"`). */
const OPTARG_IN = /(?<!\\)\$(?:OPTARG(?![A-Za-z0-9_])|\{OPTARG[}:#%=?+-])/;

/** The shell variables a word expands (`$d`, `${d:-x}`). */
const VARIABLE_USE = /(?<!\\)\$\{?([A-Za-z_][A-Za-z0-9_]*)/g;

/** Where a judged word stands, for the refusal: `argument 2 of cp` `writes`, `the cd target` `names`. */
export interface ReboundSite {
  via: string;
  acts: "removes" | "writes" | "names";
}

/**
 * Refuse a word that names a path (`site`) of command `index` (undefined: a redirection with no
 * command, which may stand in any function) when it is bound only at run time: a positional
 * parameter when the command rebinds them (`set -- ~; rm -rf "$1"`, `sh -c 'shift; echo x >
 * "$1"' _ x D`), or stands in a function's body (`f() { cp e "$1"; }; f D`: its arguments, not
 * the shell's $1); $OPTARG where getopts sets it (`sh -c 'getopts d: o; cd "$OPTARG"' sh -d
 * D`: a positional parameter, or the part of one after its option letter, picked at run
 * time). A variable given such a value (`d=$1`) is followed.
 */
export function refuseRebound(
  written: string,
  analysis: CommandAnalysis,
  site: ReboundSite,
  index: number | undefined,
): void {
  const c = analysis.commands.find(rebindsPositionals);
  const getopts = analysis.commands.find((g) => commandName(g) === "getopts");
  const fn = analysis.functions.find((f) => index === undefined || f.body.includes(index));
  const positional = holds(written, POSITIONAL_IN, analysis);
  const why =
    c !== undefined && positional
      ? `${commandName(c)} rebinds the positional parameters at run time`
      : fn !== undefined && positional
        ? `in the function ${fn.name} the positional parameters are its arguments, known only at run time`
        : getopts !== undefined && holds(written, OPTARG_IN, analysis)
          ? "getopts sets OPTARG at run time from the positional parameters"
          : undefined;
  if (why === undefined) return;
  throw unjudgeable(`what ${site.via} ${site.acts}`, written, why);
}

/**
 * Whether `written`, or a value the command gives a variable it expands (`d=$1; rm -rf "$d"`,
 * `d=$1; rm -rf "$HOME/$d"`), holds `bound`.
 */
function holds(
  written: string,
  bound: RegExp,
  analysis: CommandAnalysis,
  /** Variables whose values were looked through already (none held it): each once, not once per path to it. */
  seen = new Set<string>(),
): boolean {
  if (bound.test(written.replaceAll('"', ""))) return true;
  // Each variable is looked through once (seen), however deep the chain: no depth bound needed.
  for (const [, name] of written.matchAll(VARIABLE_USE)) {
    if (seen.has(name!)) continue;
    seen.add(name!);
    if (valuesOf(name!, analysis).some((v) => holds(v, bound, analysis, seen))) return true;
  }
  return false;
}

/** `shift`, or `set` with words after its options (`set -- a b`, `set a`; not `set -e`, `set -o pipefail`). */
export function rebindsPositionals(c: SimpleCommand): boolean {
  const name = commandName(c);
  if (name === "shift") return true;
  if (name !== "set") return false;
  const args = c.argv.slice(1);
  for (let k = 0; k < args.length; k++) {
    const a = args[k]!;
    if (a === "--" || a === "-" || !/^[-+]/.test(a)) return true;
    if (/^[-+]o$/.test(a)) k++;
  }
  return false;
}
