// tools/exec-scripts.ts — the script files an exec command runs. The shell analysis reads
// the command text only, so `sh /workspace/x.sh` would hide whatever x.sh holds (a sudo, a
// fork bomb, an rm -rf /). Here every script a command hands to a shell — `sh x.sh`,
// `dash -e x.sh args`, `. x.sh`, and `./x.sh` or `/workspace/x.sh` when the file starts
// with a `#!` naming sh or dash, or with no `#!` at all (dash then runs it itself) — is read
// through the sandbox (size-capped; only once the agent's grants and the policy say it may
// read it: a script it may not read is refused naming its path alone), analysed as POSIX sh
// like a command (recursively,
// depth-limited) and judged with it: its commands become exec needs, its redirections and
// path arguments file needs, the file a file_read need, and its analysis is merged into
// the one the policy judges. A script whose `#!` names another shell (bash, zsh,
// `/usr/bin/env bash`...) is refused: it would run in a language the analyzer does not read.
//
// Then the command is pinned: each script operand is replaced by the judged text as a
// quoted `-c` argument (`sh x.sh a` runs as `sh -c '<judged text>' x.sh a`), so what runs
// is byte for byte what was judged, by dash. A script rewritten between the check and the
// run, by a parallel exec or by the command itself, changes nothing. A script run that
// cannot be pinned this way (inside `sh -c '...'`, eval, a here-document) is refused.

import { AidoError, ErrorCode, errorMessage, isAidoError } from "../errors.js";
import { SCRIPT_VIA } from "../gate/needs.js";
import type { Need, NeedsContext } from "../gate/types.js";
import type { SandboxHandle } from "../sandbox/types.js";
import { execNeeds } from "../security/policy.js";
import { isSystemPath } from "../security/policy-rules.js";
import { CLEARED_ENVIRONMENT } from "../security/policy-variables.js";
import {
  analyzeCommandUncached,
  basename,
  type CommandAnalysis,
  type SharedShellCode,
} from "../security/shell.js";
import { commandName } from "../security/shell-operands.js";
import { isDescriptorPath } from "../security/shell-sh.js";
import { WRAPPERS } from "../security/shell-wrappers.js";
import { knownVars, type StartVars, scriptStartVars } from "./exec-known.js";
import { movedBySourced, runTimeNamed } from "./exec-merge.js";
import { type ExecPlace, execPaths, startDirs } from "./exec-paths.js";
import { rebindsPositionals } from "./exec-rebound.js";
import { scriptPositionals } from "./exec-removals.js";
import {
  type RunTimePositionals,
  refuseRunTimePositionals,
  runTimePositionals,
} from "./exec-runtime-positionals.js";
import type { ScopeWord } from "./exec-scope.js";
import { argsOf, linkedProgram, refuse, type Site, shebangShell, siteOf } from "./exec-script-sites.js";

/** A script larger than this is refused (parsing costs ~13 ms per KB, synchronously). */
export const SCRIPT_MAX_BYTES = 64 * 1024;
/** Scripts that run scripts: deeper than this is refused. */
export const SCRIPT_MAX_DEPTH = 4;
/** Distinct scripts one exec call may run. */
export const SCRIPTS_MAX = 16;
/** The pinned command is one argv string for /bin/sh -c: it must stay under Linux's MAX_ARG_STRLEN (128 KiB). */
export const PINNED_MAX_BYTES = 120 * 1024;

/** A script as judged: its canonical path, its (already pinned) text, the shell that runs it. */
interface Judged {
  path: string;
  text: string;
  /** For `./x.sh`: the shebang's shell as argv (or /bin/sh when there is no shebang). */
  interpreter: string[];
  /** It changes directory (a cd of its own or in a script it sources): sourced, it moves the code after it. */
  movesDir: boolean;
  /** Sourced, the code that then shares the shell: the script as judged, and the scripts it sources. */
  shared: SharedShellCode[];
}

export interface ScriptPlan {
  /** file_read of each script, and the exec and redirection needs of what it runs. */
  needs: Need[];
  /** The analysis of every script, in the order they were judged. */
  analyses: CommandAnalysis[];
  /** The command to run: every script operand replaced by the text that was judged. */
  command: string;
  /** Indices of the command's `. s.sh` whose script changes directory (exec-merge.ts movedBySourced). */
  movedBySourced: number[];
  /** The scripts the command sources, which set variables for its words (CommandAnalysis.sharedShell). */
  sharedShell: SharedShellCode[];
  /** The words of the scripts' commands that could name files (exec-scope.ts). */
  words: ScopeWord[];
}

const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

class Planner {
  readonly needs: Need[] = [];
  readonly analyses: CommandAnalysis[] = [];
  readonly words: ScopeWord[] = [];
  /** kind + path as written -> the judged script, or null when the file is not a shell script. */
  private readonly judged = new Map<string, Judged | null>();
  /** kind + path as written -> the directories it was judged from. */
  private readonly judgedFrom = new Map<string, string>();
  private bytes = 0;

  /** HOME, TMPDIR, IFS or a cleared environment that a sourced script assigns, for the code after it. */
  readonly sourcedAssigns = new Set<string>();

  /**
   * `privateTmp`: the caller's private folder when the exec runs confined with it (a path in it
   * needs no grant, scripts included). `alsoAssigned`: names sourced scripts assign (an earlier
   * pass): they hold for every script, as a sourced script's assignments hold for what follows.
   */
  constructor(
    private readonly sandbox: SandboxHandle,
    private readonly readRefusal: NeedsContext["readRefusal"],
    private readonly privateTmp: string | undefined,
    private readonly alsoAssigned: readonly string[],
  ) {}

  /**
   * `code` (analysed as `analysis`, started in `cwd` with `start`) with every script it runs
   * judged and pinned, and the indices of its `. s.sh` whose script changes directory (`moved`).
   * `own`: the positional parameters `code` itself runs with (a script's, as judged; none for
   * the command), which a script it sources (`. s.sh`) sees as its own. `inherited`: the code
   * that shares the shell `code` runs in (it is sourced: what sources it), whose variables it sees.
   */
  async pin(
    code: string,
    analysis: CommandAnalysis,
    depth: number,
    where: string,
    cwd: string,
    start: StartVars,
    own: Positionals = { bound: [], runtime: undefined },
    inherited: readonly SharedShellCode[] = [],
  ): Promise<{ code: string; moved: number[]; shared: SharedShellCode[] }> {
    const movesDir = analysis.dirs.length > 0 || analysis.commands.some((c) => c.localDirs.length > 0);
    if (analysis.assignedNames.includes("PATH")) {
      throw refuse(`${where} sets PATH, which decides what file a command name runs; refused`);
    }
    let runs = 0;
    const moved: number[] = [];
    const shared: SharedShellCode[] = [];
    const started: { i: number; shown: string; dirs: string; key: string; bound: string }[] = [];
    const named = runTimeNamed(analysis);
    let assigned = { ...named, assignedNames: [...named.assignedNames, ...this.alsoAssigned] };
    // A script's positional parameters take the values this code's variables have, those the
    // scripts it sourced so far give them included (`. ./env.sh; sh s.sh "$d"`).
    const positionals = () => this.positionals(withShared(assigned, shared), start);
    for (const [i, c] of analysis.commands.entries()) {
      const site = siteOf(argsOf(c));
      if (site === undefined) continue;
      const shown = c.argv.join(" ");
      if (site === "dynamic") {
        throw refuse(
          `${where}: "${shown}" runs a script whose path is only known at run time; cannot judge it`,
        );
      }
      if (site === "stdin") {
        if (c.redirects.some((r) => !r.write && r.op === "<")) {
          throw refuse(`${where}: "${shown}" reads its program from a file redirection; run it as "sh FILE"`);
        }
        continue;
      }
      const dirs = await startDirs(this.sandbox, assigned, i, cwd, start);
      if (dirs === undefined) {
        throw refuse(`${where}: "${shown}" runs a script after moving to a directory known only at run time`);
      }
      // The script's `~`, $HOME, $TMPDIR and mktemp: what this code gave it (`HOME=D sh s.sh`: D).
      const vars = scriptStartVars(start, assigned.assignedNames, c.assigns, site.kind === "source");
      // A sourced script runs with the positional parameters of the code that sources it (`echo
      // ~ | xargs sh a.sh`, a.sh `. b.sh`, b.sh `rm -rf "$1"` emptied the private folder).
      const sourced = site.kind === "source" ? sourcedPositionals(analysis, i, own, shown) : undefined;
      const key = `${site.kind}\0${site.path}`;
      const bound = sourced?.bound ?? positionals().get(key) ?? [];
      started.push({
        i,
        shown,
        dirs: JSON.stringify(dirs),
        key,
        bound: JSON.stringify(sourced ? [] : bound),
      });
      // Run by xargs or find: the parameters they fill in at run time (exec-runtime-positionals.ts).
      const words = argsOf(c).slice(site.at + 1);
      const given = runTimePositionals(c, words) ?? functionPositionals(analysis, i, words);
      const runtime = sourced ? sourced.runtime : given && { ...given, shown };
      // A sourced script sees this code's variables, those of the scripts it sourced, and what it sees.
      const callers =
        site.kind === "source"
          ? [{ analysis, what: `${where} that sources it` }, ...shared, ...inherited]
          : [];
      const judged = await this.judge(site, depth, where, movesDir, dirs, vars, bound, runtime, callers);
      if (!judged) continue;
      // `. s.sh` runs s.sh in this shell: what it assigns or reads into a variable holds after it.
      if (site.kind === "source") shared.push(...judged.shared.filter((s) => !shared.includes(s)));
      // `. s.sh` runs s.sh in this shell: a cd in it moves what comes after (scripts included).
      if (site.kind === "source" && judged.movesDir) {
        moved.push(i);
        assigned = movedBySourced(assigned, [i]);
      }
      // Pinning rewrites the words of the command that runs the script; a program that runs
      // it on its own (ldd, tar -I, install --strip-program) would run the file, not the text.
      const runner = c.wrappers.find((w) => !WRAPPERS.has(w));
      if (runner) {
        throw refuse(
          `${where}: "${shown}" runs the script ${site.path} through ${runner}, which cannot be pinned`,
        );
      }
      runs++;
    }
    // A `. s.sh` that moves the shell, in a loop, moves a script run before it in the body too (the
    // next pass): each is judged again from the folders it may start in once every such `.` is known.
    for (const site of moved.length === 0 ? [] : started) {
      const dirs = await startDirs(this.sandbox, assigned, site.i, cwd, start);
      if (dirs === undefined || JSON.stringify(dirs) !== site.dirs) {
        throw refuse(
          `${where}: "${site.shown}" runs a script where a sourced script that changes directory may have moved it (a loop runs it again); give absolute paths or run the script before the loop`,
        );
      }
    }
    // A `. s.sh` in a loop may set a variable a script run before it in the body is handed (the next pass).
    const last = shared.length === 0 ? undefined : positionals();
    for (const site of last === undefined ? [] : started) {
      if (site.bound !== "[]" && JSON.stringify(last!.get(site.key) ?? []) !== site.bound) {
        throw refuse(
          `${where}: "${site.shown}" runs a script with variables a script sourced after it may set (a loop runs it again); source it first`,
        );
      }
    }
    if (runs === 0) return { code, moved, shared };
    return { code: this.rewrite(code, analysis, runs, where), moved, shared };
  }

  /**
   * For each script the code runs (kind + path as written), the values its positional parameters
   * take from the words after it, at every site that runs it (exec-removals.ts scriptPositionals).
   */
  private positionals(analysis: CommandAnalysis, start: StartVars): Map<string, string[]> {
    const vars = knownVars(start, analysis.assignedNames);
    const bound = new Map<string, string[]>();
    for (const c of analysis.commands) {
      const site = siteOf(argsOf(c));
      if (site === undefined || typeof site === "string") continue;
      const key = `${site.kind}\0${site.path}`;
      const words = argsOf(c).slice(site.at + 1);
      const values = scriptPositionals(site.path, words, analysis, vars);
      bound.set(key, [...new Set([...(bound.get(key) ?? []), ...values])]);
    }
    return bound;
  }

  /**
   * Judge the script a site runs, from the directories it starts in (`dirs`: where its relative
   * paths resolve), its positional parameters bound to `bound` (`1=/workspace/x`), those
   * filled in at run time (`runtime`: by xargs or find, from the command `shown`) refused if used,
   * sourced, sharing the shell of `inherited` (the code that sources it: its variables' values).
   */
  private async judge(
    site: Site,
    depth: number,
    where: string,
    movesDir: boolean,
    dirs: string[],
    start: StartVars,
    bound: readonly string[],
    runtime: (RunTimePositionals & { shown: string }) | undefined,
    inherited: readonly SharedShellCode[],
  ): Promise<Judged | null> {
    const key = `${site.kind}\0${site.path}`;
    const known = this.judged.get(key);
    const from = JSON.stringify([
      dirs,
      start.home,
      start.tmpdir,
      start.splits === true,
      bound,
      runtime?.at,
      runtime?.from,
      inherited.map((s) => s.analysis.source),
    ]);
    if (known !== undefined && this.judgedFrom.get(key) === from) return known;
    if (known !== undefined) {
      throw refuse(
        `${where} runs the script ${site.path} from different directories, with a different HOME or TMPDIR, with other arguments, or sourced by other code; run it once, or from one script`,
      );
    }
    if (!site.path.startsWith("/") && (movesDir || dirs.length !== 1)) {
      throw refuse(`${where} changes directory and runs the script ${site.path}: give its absolute path`);
    }
    if (isDescriptorPath(site.path)) throw refuse(`${where} runs a program read from ${site.path}`);
    this.judgedFrom.set(key, from);
    const path = await this.sandbox.realpath(
      site.path.startsWith("/") ? site.path : `${dirs[0]}/${site.path}`,
    );
    // A program under a system path (`/usr/bin/x`) is not something the agent can write.
    if (site.kind === "path" && isSystemPath(path)) {
      linkedProgram(site.path, path, where);
      this.judged.set(key, null);
      return null;
    }
    if (depth >= SCRIPT_MAX_DEPTH) throw refuse(`scripts run scripts deeper than ${SCRIPT_MAX_DEPTH} levels`);
    if (this.analyses.length >= SCRIPTS_MAX) throw refuse(`one exec may run at most ${SCRIPTS_MAX} scripts`);
    const refused = this.readRefusal(path);
    if (refused) {
      throw new AidoError(
        refused.code,
        `${where} runs the script ${path}, which it may not read: ${refused.message}`,
        {
          ...refused.details,
        },
      );
    }
    let file: { content: string; size: number };
    try {
      file = await this.sandbox.readFile(path, { maxBytes: SCRIPT_MAX_BYTES + 1, expect: path });
    } catch (e) {
      throw refuse(
        `cannot read the script ${path} (${errorMessage(e)}); a script that cannot be read cannot be judged`,
      );
    }
    if (file.size > SCRIPT_MAX_BYTES) {
      throw refuse(
        `the script ${path} is ${file.size} bytes, more than the ${SCRIPT_MAX_BYTES} that can be judged`,
      );
    }
    this.bytes += file.size;
    if (this.bytes > SCRIPT_MAX_BYTES) {
      throw refuse(`the scripts of one exec hold more than ${SCRIPT_MAX_BYTES} bytes together`);
    }
    // Only an ELF file is a program the kernel runs itself. Any other file run by path is a
    // script: its `#!` names the interpreter, or dash runs it; dash drops NUL bytes from what it
    // reads, so a NUL does not make a script a binary (`#!/bin/sh`, a NUL, then any command ran
    // unjudged when a NUL meant "binary"); the analysis refuses a script holding one.
    const binary = site.kind === "path" ? file.content.startsWith("\x7fELF") : file.content.includes("\0");
    const interpreter = site.kind === "path" && !binary ? shebangShell(file.content, path) : ["/bin/sh"];
    if (site.kind === "path" && (binary || interpreter === null)) {
      // A binary, or a script for another interpreter (python, node): the container is the boundary.
      this.judged.set(key, null);
      return null;
    }
    if (binary) throw refuse(`${path} is a binary file, not a script that can be judged`);
    let analysis: CommandAnalysis;
    try {
      analysis = analyzeCommandUncached(file.content, SCRIPT_MAX_BYTES);
    } catch (e) {
      if (isAidoError(e, ErrorCode.policyDenied)) throw refuse(`script ${path}: ${e.message}`);
      throw e;
    }
    if (runtime) refuseRunTimePositionals(analysis, runtime, path, where, runtime.shown);
    const place: ExecPlace = {
      start,
      ...(this.privateTmp === undefined ? {} : { privateTmp: this.privateTmp }),
    };
    if (site.kind === "source") {
      for (const n of analysis.assignedNames) if (ENV_NAMES.has(n)) this.sourcedAssigns.add(n);
    }
    if (dirs.length !== 1 && analysis.commands.some((c) => siteOf(argsOf(c)) !== undefined)) {
      throw refuse(`the script ${path} runs scripts and may start in several directories`);
    }
    // Its scripts first: one it sources that changes directory moves its commands after it.
    const pinned = await this.pin(
      file.content,
      analysis,
      depth + 1,
      `the script ${path}`,
      dirs[0]!,
      start,
      { bound, runtime },
      inherited,
    );
    const moved = movedBySourced(analysis, pinned.moved);
    const judgedAs: CommandAnalysis = {
      ...moved,
      assignedValues: [...moved.assignedValues, ...bound],
      ...(pinned.shared.length + inherited.length > 0
        ? { sharedShell: [...pinned.shared, ...inherited] }
        : {}),
    };
    const files = await execPaths(this.sandbox, judgedAs, dirs, place);
    this.needs.push({ kind: "file_read", path, via: SCRIPT_VIA }, ...execNeeds(analysis), ...files.needs);
    this.words.push(...files.words);
    // `./x.sh` runs its interpreter (dash), which the pinned command names.
    const helpers =
      site.kind === "path" && interpreter
        ? [...analysis.helpers, basename(interpreter[0]!)]
        : analysis.helpers;
    const { sharedShell: _, ...own } = judgedAs;
    this.analyses.push({ ...own, paths: files.paths, helpers });
    const judged: Judged = {
      path,
      text: pinned.code,
      interpreter: interpreter ?? ["/bin/sh"],
      movesDir: analysis.dirs.length > 0 || pinned.moved.length > 0,
      shared: [{ analysis: own, what: `the sourced script ${path}` }, ...pinned.shared],
    };
    this.judged.set(key, judged);
    return judged;
  }

  /**
   * Replace each script operand in `code` by its judged text; every run found must be
   * pinned. The words to replace are found by their spans in `code`, which the analysis
   * records for the words of the command's own text (not for nested sh -c or eval code).
   */
  private rewrite(code: string, analysis: CommandAnalysis, runs: number, where: string): string {
    const cannotPin = (why: string) =>
      refuse(
        `${where}: ${why}; a script must be run by a command written out in the exec command itself (for example "sh /workspace/x.sh args"), so the text that was checked is the text that runs`,
      );
    const edits = new Map<number, { start: number; end: number; text: string }>();
    for (const c of analysis.commands) {
      const site = siteOf(argsOf(c));
      if (site === undefined || typeof site === "string") continue;
      const judged = this.judged.get(`${site.kind}\0${site.path}`);
      if (judged === undefined) throw cannotPin(`the script ${site.path} was not judged`);
      if (judged === null) continue;
      const first = c.spans[site.from];
      const file = c.spans[site.at];
      if (!first || !file) throw cannotPin("it runs a script from inside sh -c, eval or a here-document");
      const body = `-c ${quote(judged.text)} ${quote(site.path)}`;
      let text: string;
      if (site.kind === "shell") text = body;
      else if (site.kind === "path") text = `${judged.interpreter.map(quote).join(" ")} ${body}`;
      else if (c.argv.length === 2) text = `eval ${quote(judged.text)}`;
      else throw cannotPin(`sourcing ${site.path} with arguments cannot be pinned`);
      edits.set(first.start, { start: first.start, end: file.end, text });
    }
    if (edits.size !== runs) throw cannotPin("it runs a script from inside sh -c, eval or a here-document");
    const sorted = [...edits.values()].sort((a, b) => b.start - a.start);
    let bytes = Buffer.from(code, "utf8");
    let limit = Number.POSITIVE_INFINITY;
    for (const e of sorted) {
      if (e.end > limit) throw cannotPin("two script runs overlap");
      bytes = Buffer.concat([bytes.subarray(0, e.start), Buffer.from(e.text, "utf8"), bytes.subarray(e.end)]);
      limit = e.start;
    }
    return bytes.toString("utf8");
  }
}

/** `analysis` with `shared` as the code sharing its shell (CommandAnalysis.sharedShell). */
function withShared(analysis: CommandAnalysis, shared: readonly SharedShellCode[]): CommandAnalysis {
  return shared.length === 0 ? analysis : { ...analysis, sharedShell: [...shared] };
}

/** The positional parameters a script runs with: known values (`1=/workspace/x`), and those filled in at run time. */
interface Positionals {
  bound: readonly string[];
  runtime: (RunTimePositionals & { shown: string }) | undefined;
}

/** A positional parameter in a word: `$1`, `"$@"`, `${2}`. */
const POSITIONAL_WORD = /\$(?:[0-9@*]|\{[0-9@*])/;

/**
 * The positional parameters of a script that command `i` of `analysis`, in a function's body,
 * runs with words that hold the function's own (`f() { sh s.sh "$1"; }; f ~`: s.sh's $1 is
 * f's argument, not the shell's): every one from the first such word on, known at run time only.
 */
function functionPositionals(
  analysis: CommandAnalysis,
  i: number,
  words: readonly { value: string }[],
): RunTimePositionals | undefined {
  const fn = analysis.functions.find((f) => f.body.includes(i));
  const first = words.findIndex((w) => POSITIONAL_WORD.test(w.value));
  if (fn === undefined || first < 0) return undefined;
  return { at: [], from: first + 1, runner: `the function ${fn.name} that runs it` };
}

/**
 * The positional parameters of the script that command `i` of `analysis` sources: those of the
 * code sourcing it (`own`), unless that code may rebind them first (shift, `set -- ...`) or
 * sources it inside a function (whose arguments they are): then all are taken as known only at
 * run time (`set -- ~; . b.sh` with b.sh `rm -rf "$1"` was judged as `rm -rf ""`).
 */
function sourcedPositionals(
  analysis: CommandAnalysis,
  i: number,
  own: Positionals,
  shown: string,
): Positionals {
  const rebinds = analysis.commands.find(rebindsPositionals);
  const inFunction = analysis.functions.find((f) => f.body.includes(i));
  if (rebinds === undefined && inFunction === undefined) return own;
  const runner = inFunction
    ? `the function ${inFunction.name} that sources it`
    : `${commandName(rebinds!)} in the code that sources it`;
  return { bound: own.bound, runtime: { at: [], from: 1, runner, shown } };
}

/**
 * What a sourced script may assign that changes where another script's `~` and mktemp lead,
 * or how a later sourced script's `$HOME/x` splits (IFS).
 */
const ENV_NAMES: ReadonlySet<string> = new Set(["HOME", "TMPDIR", "IFS", CLEARED_ENVIRONMENT]);

/**
 * Judge the scripts `command` runs and pin them (see the header), as the exec runs it
 * (`place`: its private folder, HOME and TMPDIR). A script's `~`, $HOME, $TMPDIR and mktemp
 * are judged with what the command gives it. A sourced script that sets HOME or TMPDIR sets
 * them for what runs after it, loops and functions included: then the plan is made again with
 * them not known in any script (a second pass; a script that then assigns more is refused).
 */
export async function planScripts(
  sandbox: SandboxHandle,
  readRefusal: NeedsContext["readRefusal"],
  command: string,
  analysis: CommandAnalysis,
  cwd: string,
  place: { privateTmp?: string; start: StartVars },
): Promise<ScriptPlan> {
  let also: string[] = [];
  for (;;) {
    const planner = new Planner(sandbox, readRefusal, place.privateTmp, also);
    const pinned = await planner.pin(command, analysis, 0, "the command", cwd, place.start);
    const more = [...planner.sourcedAssigns].filter((n) => !also.includes(n));
    if (more.length === 0) return finish(planner, pinned);
    if (also.length > 0) throw refuse(`the scripts the command sources changed while they were judged`);
    also = [...planner.sourcedAssigns];
  }
}

function finish(
  planner: Planner,
  pinned: { code: string; moved: number[]; shared: SharedShellCode[] },
): ScriptPlan {
  if (Buffer.byteLength(pinned.code, "utf8") > PINNED_MAX_BYTES) {
    throw refuse(`the command with its scripts written in is more than ${PINNED_MAX_BYTES} bytes`);
  }
  return {
    needs: planner.needs,
    analyses: planner.analyses,
    command: pinned.code,
    words: planner.words,
    movedBySourced: pinned.moved,
    sharedShell: pinned.shared,
  };
}
