// tools/exec-substitutions.ts — what a removed word that holds a command substitution
// (`rm -rf "$(echo $HOME)"`, `rm -f $(ls *.o)`) removes, for exec-paths.ts to judge. Its value
// is computed where the substitution only prints words the judge knows (echo, printf %s,
// dirname, basename, pwd after a cd, realpath, readlink -f): judged as that path. One it cannot
// compute could be any path, the caller's private folder among them; it runs only when it
// lists names the command cannot spell the folder with (a fresh name from mktemp; ls or find
// of relative names without `..`, outside the private folder and its parents); any other is
// refused as unjudgeable (docs/security.md). The same holds for a variable whose value is a
// substitution (`d=$(echo ~)`), for what xargs hands a removal (`echo ~ | xargs rm -rf`) and for
// a variable `read` sets from a pipe (`echo ~ | { read d; rm -rf "$d"; }`). In the private folder,
// rm -f of the entries ls lists runs (`cd ~ && rm -f $(ls *.o)`: entriesOnly).

import { posix } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { isWithin } from "../fs/within.js";
import { analyzeCommand, type CommandAnalysis } from "../security/shell.js";
import type { SimpleCommand } from "../security/shell-analysis.js";
import { commandName, removedOperands } from "../security/shell-operands.js";
import { type KnownVars, knownPart, wholeVariable } from "./exec-known.js";

/** A word that is one substitution whole (double-quoted or not), then a fixed rest: `"$(C)/x"`, `$(C)/x`. */
const SUBSTITUTION = /^(?:"\$\((.*)\)(\/[^"$`\\]*)?"|\$\((.*)\))(\/[^$`*?[\]~\\'"]*)?$/s;
/** How many substitutions deep a value is computed (`$(dirname "$(echo ~)")`). */
const MAX_DEPTH = 4;

/** Whether a word (as written) runs a command substitution. */
export function hasSubstitution(written: string): boolean {
  return /\$\(|`/.test(written.replace(/'[^']*'/g, ""));
}

/**
 * What the judge knows of a word's value before it runs: `~`/$HOME/$TMPDIR (vars), and the values
 * the command gives a variable (`f=/workspace/out/x; rm -rf "$(dirname "$f")"`: exec-removals.ts
 * assignedPaths).
 */
export interface WordValues {
  vars: KnownVars;
  assigned: (written: string) => readonly string[];
}

/** The path a substitution word prints, where the judge can compute it; undefined when it cannot. */
export function substitutionValue(written: string, known: WordValues, depth = 0): string | undefined {
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
    const to = wordPath(c, 1, known, depth);
    if (to === undefined) return undefined;
    cwd = posix.isAbsolute(to) || cwd === "." ? to : posix.join(cwd, to);
  }
  const value = printed(cmds.at(-1)!, cwd, known, depth);
  return value === undefined ? undefined : value + (m[2] ?? "") + (m[4] ?? "");
}

/** What the last command of a substitution prints, as a path (one word). */
function printed(c: SimpleCommand, cwd: string, known: WordValues, depth: number): string | undefined {
  const name = commandName(c);
  const args = c.argv.slice(1);
  const one = (k: number) => (c.argv.length === k + 1 ? wordPath(c, k, known, depth) : undefined);
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

/**
 * The path word k of `c` is before it runs: fixed text, `~`/$HOME/$TMPDIR where known, a
 * variable the command gives one value, a computable substitution.
 */
function wordPath(c: SimpleCommand, k: number, known: WordValues, depth: number): string | undefined {
  const w = c.argv[k]!;
  if (!c.argDynamic[k]) return w;
  const bare = w.replace(/^"([^"$`\\]*)"$/, "$1");
  if (bare !== w) return bare;
  const start = knownPart(w, known.vars);
  if (start?.whole) return start.path;
  const values = known.assigned(w);
  // One value only: a substitution prints one path (several are refused by the caller).
  if (values.length === 1) {
    const value = values[0]!;
    return hasSubstitution(value) ? substitutionValue(value, known, depth + 1) : value;
  }
  return substitutionValue(w, known, depth + 1);
}

/** Programs whose output is only names: a fresh one (mktemp), or entries of the folders their words name. */
const LISTERS: ReadonlySet<string> = new Set(["ls", "find"]);

/**
 * Where a removal runs: the folders it may start in (undefined: not known), the caller's private
 * folder, and the command that removes (`remover`: rm -f of files may take ls's names there).
 */
export interface RemovalPlace {
  dirs: readonly string[] | undefined;
  privateTmp: string | undefined;
  remover?: SimpleCommand;
}

/**
 * The path a removed word with a command substitution names, where the judge can compute it
 * (substitutionValue); undefined when it only lists names and is left to the domain; refused
 * otherwise (refuseUnknownSubstitution). The word may be a variable's value (`d=$(echo ~)`).
 */
export function substitutionRemoval(
  written: string,
  known: WordValues,
  via: string,
  place: RemovalPlace,
): string | undefined {
  const value = substitutionValue(written, known);
  if (value === undefined) refuseUnknownSubstitution(written, via, place);
  return value;
}

/**
 * Refuse a removed word with a substitution the judge cannot compute (`rm -rf $(cat list)`,
 * `rm -rf "$(find ~ -maxdepth 0)"`): it could print the private folder's path. One that runs
 * mktemp, or ls/find of relative names (no `..`, no `~`, no variable), prints no folder a word
 * of it names whole above the one it runs in, and is left to the domain, unless that folder is
 * the private folder or holds it (`cd ~ && rm -rf $(ls -A)` emptied it; `cd /tmp && rm -rf
 * $(ls -d agent-*)`), or is not known.
 */
function refuseUnknownSubstitution(written: string, via: string, place: RemovalPlace): void {
  refuseUnknownListing(written, "the command substitution", substitutionsOf(written), via, place);
}

/** Programs that remove the words xargs appends to them. */
const REMOVERS: ReadonlySet<string> = new Set(["rm", "rmdir", "unlink"]);

/**
 * The path a removal xargs runs is handed (`echo ~ | xargs rm -rf`: what the stage before it
 * prints, where it is one command the judge computes); undefined when that stage only lists
 * names and is left to the domain; refused otherwise (as a removed `$(STAGE)`). Not a removal
 * xargs runs: undefined.
 */
export function xargsRemoval(
  analysis: CommandAnalysis,
  index: number,
  known: WordValues,
  via: string,
  place: RemovalPlace,
): string | undefined {
  const c = analysis.commands[index]!;
  if (!c.wrappers.includes("xargs") || !(REMOVERS.has(commandName(c)) || movesFed(c))) return undefined;
  return fedValue(analysis, index, `xargs ${c.argv.join(" ")}`, "what xargs reads", known, via, place);
}

/**
 * mv run by xargs moves away what xargs hands it when every operand is a source (`-t D`) or
 * xargs puts it in a source's place (`-I{} mv {} D`: a run-time word among mv's sources).
 */
function movesFed(c: SimpleCommand): boolean {
  if (commandName(c) !== "mv") return false;
  const end = c.argv.indexOf("--");
  const options = c.argv.slice(1, end < 0 ? undefined : end);
  return (
    options.some((a) => /^-[A-Za-z]*t/.test(a) || a.startsWith("--target-directory")) ||
    removedOperands(c).some((k) => c.argDynamic[k])
  );
}

/**
 * What command `index` reads on its stdin from the stage before it in a pipeline, as a path,
 * where that stage is one command the judge computes (`echo ~ | ...`); undefined when it only
 * lists names and is left to the domain; refused otherwise (from a file, the terminal, `cat`).
 */
function fedValue(
  analysis: CommandAnalysis,
  index: number,
  written: string,
  source: string,
  known: WordValues,
  via: string,
  place: RemovalPlace,
): string | undefined {
  const stages = analysis.pipelines.find((p) => p.some((stage) => stage.includes(index))) ?? [];
  const feeding = stages
    .slice(
      0,
      Math.max(
        0,
        stages.findIndex((stage) => stage.includes(index)),
      ),
    )
    .flat();
  const fed = feeding.map((k) => analysis.commands[k]!);
  const value = fed.length === 1 ? printed(fed[0]!, ".", known, 0) : undefined;
  if (value === undefined) refuseUnknownListing(written, source, fed, via, place);
  return value;
}

/**
 * The paths a removed variable that `read` gives a value names (`echo ~ | { read d; rm -rf
 * "$d"; }`): what the stage piped into that read prints (fedValue), the fixed rest after it.
 * Read from anywhere else (`while read d; do ... done < list`), it is refused as unjudgeable.
 */
export function readRemoval(
  written: string,
  analysis: CommandAnalysis,
  known: WordValues,
  via: string,
  place: RemovalPlace,
): string[] {
  const v = wholeVariable(written);
  if (v === undefined) return [];
  return analysis.commands.flatMap((c, i) => {
    if (commandName(c) !== "read" || !readNames(c).includes(v.name)) return [];
    const value = fedValue(analysis, i, written, `what read reads (into ${v.name})`, known, via, place);
    return value === undefined ? [] : [value + v.rest];
  });
}

/** The variables `read [-r] [-p PROMPT] NAME...` sets. */
function readNames(c: SimpleCommand): string[] {
  const args = c.argv.slice(1);
  const names: string[] = [];
  for (let k = 0; k < args.length; k++) {
    if (args[k] === "-p") k++;
    else if (!args[k]!.startsWith("-")) names.push(args[k]!);
  }
  return names;
}

function refuseUnknownListing(
  written: string,
  source: string,
  subs: readonly SimpleCommand[],
  via: string,
  place: RemovalPlace,
): void {
  const listsNames = subs.every((s) => {
    const name = commandName(s);
    if (name === "mktemp") return s.wrappers.length === 0;
    return LISTERS.has(name) && s.wrappers.length === 0 && s.argv.slice(1).every(relativeName);
  });
  const lists = subs.some((s) => LISTERS.has(commandName(s)));
  const held =
    listsNames && lists && place.privateTmp !== undefined
      ? holdingDir(place.dirs, place.privateTmp, entriesOnly(subs, place.remover))
      : undefined;
  if (subs.length > 0 && listsNames && held === undefined) return;
  const why =
    held === undefined
      ? `${source} prints a path known only at run time, which could be the caller's private folder; give the path, or list relative names (ls, find . ...)`
      : `${source} lists names in ${held}, which is or holds the caller's private folder; give the paths`;
  throw new AidoError(ErrorCode.policyDenied, `cannot judge what ${via} removes ("${written}"): ${why}`, {
    rule: "unjudgeable",
  });
}

/**
 * The first folder a removal may run in that is the private folder or holds it ("a folder not
 * known" when unknown); the private folder itself not when the removal takes only its entries
 * (`inFolder`: entriesOnly).
 */
function holdingDir(
  dirs: readonly string[] | undefined,
  privateTmp: string,
  inFolder: boolean,
): string | undefined {
  if (dirs === undefined) return "a folder not known before it runs";
  return dirs.find((d) => isWithin(d, privateTmp) && !(inFolder && d === privateTmp));
}

/**
 * Whether a listing, run in the private folder, hands the remover only entries of it, never the
 * folder: ls of names with no `/` that do not start with `.` (`*.o`; not `.`, `..`, `.*`, `d/x`),
 * without -a (which lists `.` and `..`), to rm without -r, -R or -d, which removes no folder
 * (`cd ~ && rm -f $(ls *.o)`). Recursive removal of what ls lists stays refused, as `rm -r ~/*` is.
 */
function entriesOnly(subs: readonly SimpleCommand[], remover: SimpleCommand | undefined): boolean {
  const lsWord = (w: string) => {
    const bare = w.replace(/^'([^']*)'$/, "$1").replace(/^"([^"$`\\]*)"$/, "$1");
    if (w.startsWith("-")) return /^-[A-Za-z0-9]+$/.test(w) && !w.includes("a");
    return relativeName(w) && !bare.includes("/") && !bare.startsWith(".");
  };
  const listsEntries = subs.every((s) => commandName(s) === "ls" && s.argv.slice(1).every(lsWord));
  return listsEntries && remover !== undefined && removesFilesOnly(remover);
}

/** rm with only options that remove no folder (-f, -i, -I, -v), its run-time words substitutions or what xargs hands it. */
function removesFilesOnly(c: SimpleCommand): boolean {
  if (commandName(c) !== "rm") return false;
  let operands = false;
  return c.argv.slice(1).every((a, k) => {
    if (c.argDynamic[k + 1]) return hasSubstitution(a) || wholeVariable(a) !== undefined;
    if (operands || !a.startsWith("-")) return true;
    if (a === "--") operands = true;
    return a === "--" || /^-[fiIv]+$/.test(a) || a === "--force" || a === "--verbose";
  });
}

/** An option, or a relative name or pattern that stays in the folder it is opened from. */
function relativeName(word: string): boolean {
  if (word.startsWith("-")) return true;
  const bare = word.replace(/^'([^']*)'$/, "$1").replace(/^"([^"$`\\]*)"$/, "$1");
  return !/[$`~\\]/.test(bare) && !bare.startsWith("/") && !bare.split("/").includes("..");
}

/** The commands a word's command substitutions run (nested ones too), the word parsed alone. */
function substitutionsOf(written: string): SimpleCommand[] {
  try {
    return analyzeCommand(`: ${written}`).commands.filter((c) => c.parentGroup !== undefined);
  } catch {
    return [];
  }
}
