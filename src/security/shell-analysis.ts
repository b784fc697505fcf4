// security/shell-analysis.ts — what the analysis of an exec command says: the simple
// commands it will run (after quote removal and unfolding), its pipelines, redirections,
// assigned variables, functions, directory changes and helper programs, and (set by the exec
// tool) the canonical paths it names. The policy rules, the exec tool's needs and the
// script pinning read it; security/shell.ts writes it.

import type { Redirect } from "./shell-redirects.js";

export interface SimpleCommand {
  /** Words after quote removal; run-time words are kept as written. */
  argv: string[];
  /** Per argv entry: its value is only known at run time (expansion or glob). */
  argDynamic: boolean[];
  /** Per argv entry: byte span in the exec's own command text (null for words of nested code). */
  spans: ({ start: number; end: number } | null)[];
  /** Per argv entry: never a path (a pattern, code, a program's script): not judged as a file. */
  dataArgs: number[];
  /** The command name itself is only known at run time. */
  dynamic: boolean;
  /** File redirections that apply to it (its own and those of enclosing blocks). */
  redirects: Redirect[];
  /** Files its options name besides its operands (sed `w FILE`, find -fprint FILE). */
  files: { path: string; dynamic: boolean; write: boolean }[];
  /** Directories it works in besides the shell's (env -C, git -C); "" entries are run-time. */
  localDirs: { path: string; dynamic: boolean }[];
  /** `NAME=value` settings it runs with (leading assignments, env, sudo). */
  assigns: string[];
  /** Wrappers it was unfolded from, outermost first, by basename (`["sudo", "env"]`). */
  wrappers: string[];
  /** Reached through sudo, doas, su, runuser or pkexec. */
  privileged: boolean;
  /** More arguments are appended at run time (xargs, find -exec). */
  openArgs: boolean;
  /** Its stdin is the output of an earlier pipeline stage or of the program that runs it. */
  stdinPiped: boolean;
  /** It reads its program from stdin, and that stdin is not a here-document the analysis read. */
  stdinProgram: boolean;
  background: boolean;
  /** Commands unfolded from one written command share a group. */
  group: number;
  /** Group of the command in whose words (or redirections) this one's substitution sits. */
  parentGroup: number | undefined;
  /** Directory changes with `at` up to this index apply to it (a loop body: to the loop's end; a function or trap: all). */
  dirScope: number;
}

/**
 * A file named in the options of a wrapper that is not a command of its own, so no command
 * carries it (`xargs -a F`, `strace -o F`, `flock F`, `script -c CMD F`). It is opened where
 * the wrapper runs: as a command at index `at` would be, before anything the wrapper runs.
 */
export interface WrapperFile {
  program: string;
  path: string;
  dynamic: boolean;
  write: boolean;
  /** The index the wrapper would have among the commands (that of the first command it runs). */
  at: number;
  /** As SimpleCommand.dirScope. */
  dirScope: number;
  /** As SimpleCommand.localDirs: where enclosing wrappers moved it (env -C DIR xargs -a F). */
  localDirs: { path: string; dynamic: boolean }[];
}

export interface FunctionDef {
  name: string;
  /** Indices into `commands` of the commands in its body. */
  body: number[];
}

/** A `cd` or `chdir` that moves the commands after it (in text order) to `target`. */
export interface DirChange {
  target: string;
  dynamic: boolean;
  /** `cd -P`: `..` is resolved after symlinks (dash's default, -L, removes it from the text first). */
  physical: boolean;
  /** It applies to commands with an index >= at. */
  at: number;
  /** Inside a loop, function or trap: it may apply many times. */
  repeats: boolean;
  /** Index ranges [from, to) of commands that run only if it succeeded (`cd X && ...`). */
  certain: [number, number][];
}

/** A path the exec tool resolved in the container: an argument, a redirection target, a cd target. */
export interface ResolvedPath {
  /** Canonical path in the container (symlinks followed, `..` removed). */
  path: string;
  /** What the command does with it; "any" when that is not known (an argument of `cat`, of `python3`). */
  access: "read" | "write" | "any";
  /** Where it came from, for messages: `argument 1 of cat ("../k.txt")`. */
  via: string;
}

export interface CommandAnalysis {
  source: string;
  commands: SimpleCommand[];
  /** Each pipeline as its stages, each stage as indices into `commands`. */
  pipelines: number[][][];
  /** Every file redirection anywhere, including ones with no command (`> /etc/x`). */
  redirects: Redirect[];
  /**
   * Every variable name assigned, exported or unset anywhere (`unset X`, `env -u X`); `*`
   * when a command runs with its environment cleared (`env -i`, policy-variables.ts).
   */
  assignedNames: string[];
  /**
   * `NAME=value` (value as written) for each value the shell's own variable is given by an
   * assignment on its own (`d=$TMPDIR`), a for loop's word (`for d in ~`; `for d; do` is
   * `d="$@"`), or a setting in the environment of code a shell runs (`d=D sh -c CODE`); `export`,
   * `readonly` and `local` keep theirs in their arguments. Not `read`, `getopts`, `${d:=x}`.
   */
  assignedValues: string[];
  functions: FunctionDef[];
  dirs: DirChange[];
  /** Files named in the options of wrappers that are not commands of their own. */
  wrapperFiles: WrapperFile[];
  /** Fixed system programs that commands start on their own (tar's gzip), by name. */
  helpers: string[];
  /** Set by the exec tool (tools/exec-paths.ts) on the analysis it hands the policy. */
  paths?: readonly ResolvedPath[];
  /**
   * Set by the exec tool (tools/exec-scripts.ts): other code that runs in this code's shell —
   * the scripts it sources (`. ./env.sh`) — whose assignments and run-time setters (`read d`)
   * hold for this code's words too (tools/exec-values.ts).
   */
  sharedShell?: readonly SharedShellCode[];
}

/** Code that runs in the same shell as the code analysed: its analysis, and what it is, for messages. */
export interface SharedShellCode {
  analysis: CommandAnalysis;
  /** `the sourced script /workspace/env.sh`. */
  what: string;
}
