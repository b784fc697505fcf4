// security/shell-builtins.ts — dash's builtins, as far as judging a command needs them:
// which change the working directory (cd, chdir), which assign or unset variables (read,
// getopts, export, readonly, local, unset), which only change the shell's own state (and so need no exec
// grant), and which bash builtins dash does not have (refused with a reason, not left to
// fail or, worse, to run a same-named program). `alias` is refused: dash expands an alias
// defined on an earlier line (`alias cat=rm` then `cat f` runs rm), so a command name
// would no longer say what runs. Checked against dash in the sandbox image
// (`type NAME` for each).

import { cannotJudge } from "./shell-ast.js";
import { type Arg, scanOptions } from "./shell-unfold.js";

/** Builtins that only change the shell's own state or control flow: no exec grant needed. */
const SHELL_STATE = new Set([":", "true", "false", "cd", "chdir", "set", "shift", "export", "readonly"]);
for (const b of ["local", "unset", "return", "break", "continue", "exit", "wait", "umask", "getopts"]) {
  SHELL_STATE.add(b);
}
for (const b of ["read", "hash", "times", "jobs", "ulimit", "trap", "eval", "exec", "."]) SHELL_STATE.add(b);

export function isShellStateBuiltin(argv0: string): boolean {
  return SHELL_STATE.has(argv0);
}

/** dash's special builtins and reserved words: dash refuses them as function names. */
const SPECIAL = new Set([
  "break",
  ":",
  ".",
  "continue",
  "eval",
  "exec",
  "exit",
  "export",
  "local",
  "readonly",
]);
for (const b of ["return", "set", "shift", "times", "trap", "unset"]) SPECIAL.add(b);
/** Every builtin dash has (`type NAME` in the image says "shell builtin"). */
const DASH_BUILTINS = new Set([...SPECIAL, "alias", "bg", "cd", "chdir", "command", "echo", "false"]);
for (const b of ["fg", "getopts", "hash", "jobs", "kill", "printf", "pwd", "read", "test", "[", "true"]) {
  DASH_BUILTINS.add(b);
}
for (const b of ["type", "ulimit", "umask", "unalias", "wait"]) DASH_BUILTINS.add(b);

/** bash (and ksh/zsh) builtins and keywords dash does not have. */
const BASH_ONLY = new Set([
  "source",
  "declare",
  "typeset",
  "let",
  "shopt",
  "pushd",
  "popd",
  "dirs",
  "enable",
]);
for (const b of ["mapfile", "readarray", "disown", "suspend", "caller", "compgen", "complete", "compopt"]) {
  BASH_ONLY.add(b);
}
for (const b of ["bind", "history", "fc", "help", "logout", "builtin", "coproc", "select", "function"]) {
  BASH_ONLY.add(b);
}
for (const b of ["[[", "]]", "((", "autoload", "print", "whence", "setopt", "unsetopt", "zmodload"]) {
  BASH_ONLY.add(b);
}

/** What a builtin does that the analysis must know, before it is listed as a command. */
export interface BuiltinEffect {
  /** Variables it assigns (or unsets). */
  assigns: string[];
  /** The directory it moves the shell to (cd, chdir): static text, or a run-time value. */
  chdir?: { target: Arg; physical: boolean };
}

/** The effect of a builtin invocation, or undefined for a command that is not one of these. Throws for refused ones. */
export function builtinEffect(args: readonly Arg[]): BuiltinEffect | undefined {
  const name = args[0]!.value;
  if (BASH_ONLY.has(name)) {
    const hint = name === "source" ? "; use ." : name === "[[" ? "; use [ ... ]" : "";
    throw cannotJudge(`${name} is not a sh (dash) builtin${hint}`);
  }
  switch (name) {
    case "alias":
    case "unalias":
      throw cannotJudge(
        `${name}: dash expands aliases defined on earlier lines, so a command name would no longer say what runs`,
      );
    case "cd":
    case "chdir":
      return { assigns: ["PWD", "OLDPWD"], chdir: cdTarget(args) };
    case "read":
      return { assigns: names(args, scanOptions([...args], 1, { value: ["p"] }).next, name) };
    case "getopts":
      return { assigns: [...names(args.slice(0, 3), 2, name), "OPTARG", "OPTIND"] };
    case "export":
    case "readonly":
    case "local":
      return { assigns: names(args, scanOptions([...args], 1, { value: [] }).next, name) };
    case "unset": {
      // Unsetting a variable changes it as much as setting it (`unset LESSSECURE`); -f names functions.
      const scan = scanOptions([...args], 1, { value: [] });
      return { assigns: scan.seen.has("f") && !scan.seen.has("v") ? [] : names(args, scan.next, name) };
    }
    default:
      return undefined;
  }
}

/** cd's operand; no operand is $HOME and `-` is $OLDPWD: both run-time. The last of -L/-P wins. */
function cdTarget(args: readonly Arg[]): { target: Arg; physical: boolean } {
  const scan = scanOptions([...args], 1, { value: [] });
  const last = scan.all.filter((o) => o.name === "L" || o.name === "P").at(-1);
  const physical = last?.name === "P";
  const target = args[scan.next];
  if (target === undefined) return { target: { value: "~", dynamic: true }, physical };
  if (!target.dynamic && target.value === "-") return { target: { value: "-", dynamic: true }, physical };
  return { target, physical };
}

/** Variable names in `NAME` or `NAME=value` words from `from` on. */
function names(args: readonly Arg[], from: number, builtin: string): string[] {
  const out: string[] = [];
  for (const a of args.slice(from)) {
    const name = a.value.split("=")[0]!;
    if (a.dynamic && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(a.value)) {
      throw cannotJudge(`${builtin} assigns a variable whose name is only known at run time (${a.value})`);
    }
    out.push(name);
  }
  return out;
}

/**
 * A function may not be named like a builtin, a shell or a program the analyzer unfolds:
 * a call to it would be judged as that builtin or program while running the body. Any
 * other name is judged as written (a call needs an exec grant for the name) and its body
 * as commands.
 */
export function checkFunctionName(name: string, isKnownProgram: (n: string) => boolean): void {
  if (DASH_BUILTINS.has(name) || BASH_ONLY.has(name) || isKnownProgram(name)) {
    throw cannotJudge(`a function named ${name}, like a builtin or a program the analysis knows`);
  }
}
