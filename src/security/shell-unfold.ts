// security/shell-unfold.ts — the vocabulary shared by every table of programs that run
// other programs (shell-wrappers.ts, shell-programs.ts, shell-git.ts): one argument as the
// analyzer sees it, what one invocation runs (UnfoldStep), and the getopt-style option
// scanner they all use. A table entry describes one program; shell.ts applies the steps
// recursively and the policy rules judge what they reveal.

import { cannotJudge } from "./shell-ast.js";

export interface Arg {
  value: string;
  /** The value is only known at run time (an expansion, or a glob). */
  dynamic: boolean;
  /** A run-time value that is one argument not starting with `-` or `+` (shell-words.ts): never an option. */
  optionSafe?: boolean;
  /** For a run-time value: how many arguments it becomes (shell-words.ts WordValue.fields). */
  fields?: "one" | "glob" | "split";
  /** Byte span of the word in the exec's own command text; absent for words of nested code. */
  span?: { start: number; end: number };
}

/** A file an option names (sed's `w FILE`, find's `-fprint FILE`), judged like a redirection. */
export interface OptionFile {
  arg: Arg;
  write: boolean;
}

/** What one invocation of a program runs, besides itself. */
export interface UnfoldStep {
  /** The program is a command in its own right (find, sort, a shell running a script file). */
  keepSelf: boolean;
  /** Commands it runs, each an argv. */
  run: Arg[][];
  /** POSIX sh code it runs with /bin/sh -c (`sh -c CODE`, eval, trap, watch, tar --to-command). */
  code: Arg[];
  /** The words the code's positional parameters ($0, $1, ...) are bound to (`sh -c CODE NAME A`). */
  positional?: Arg[];
  /** The code runs later, at any point (a trap action): it sees every directory change. */
  deferred?: boolean;
  /** It reads its program from stdin (a shell with no -c and no script operand). */
  stdinProgram?: boolean;
  privileged?: boolean;
  /** The commands it runs get more arguments at run time (xargs, find -exec ... {}). */
  openArgs?: boolean;
  /** `run` is what it runs when given no command (xargs: echo); arguments appended to it would be the command. */
  implicitCommand?: boolean;
  /** VAR=value settings it applies to what it runs. */
  assigns?: string[];
  /** Variables it removes from the environment of what it runs (env -u); `*`: all of them (env -i). */
  unsets?: string[];
  /** The commands in `run` read data this program writes to them (sort's compressor). */
  feedsRun?: boolean;
  /** Refuse the whole command, with this reason: an option runs something that cannot be judged. */
  refuse?: string;
  /** Fixed system programs it may start on its own, not named by the command (tar's gzip). */
  helpers?: readonly string[];
  /** Files its options name besides its operands. */
  files?: OptionFile[];
  /** Directories it (and what it runs) works in: env -C, git -C, tar -C. */
  dirs?: Arg[];
  /** Directories only what it runs works in (find -execdir: each found file's folder). */
  runDirs?: Arg[];
  /** Indices of its own arguments that are never paths (patterns, programs, code). */
  data?: number[];
}

export type Unfolder = (args: Arg[]) => UnfoldStep | undefined;

export interface OptionSpec {
  /** Short letters and long names that take a value. */
  value: readonly string[];
  /** Short letters and long names whose value is optional and only ever attached (`--exec-path[=dir]`, `-e[END]`). */
  optional?: readonly string[];
  /** The program's other options (flags). With `strict`, value + optional + flags is its complete list. */
  flags?: readonly string[];
  /** An option not listed is refused: its arity is unknown, so what follows it cannot be read. */
  strict?: boolean;
  /** GNU getopt permutes: options after operands count too (`sort FILE --compress-program=sh`); only `--` ends them. */
  permute?: boolean;
}

export interface ScannedOptions {
  /** Index of the first argument after the options. */
  next: number;
  /** Last value of each option (true for a flag). */
  seen: Map<string, string | true>;
  /** Every option in order, with its value and the index of the argument holding the value. */
  all: { name: string; value: string | true; at: number }[];
  /** A run-time value stood where an option or the command could be: the command is unknowable. */
  dynamicAt?: number;
}

/**
 * GNU getopt_long (and git, zip, less) take any unambiguous prefix of a long option:
 * `--to-com=CMD` is `--to-command=CMD`. A proper prefix of a long name `known` lists is
 * refused, so an option is always judged by its full name (an abbreviation the table does
 * not recognise would pass unjudged).
 */
export function checkAbbreviation(name: string, known: readonly string[]): void {
  if (name === "" || known.includes(name)) return;
  const full = known.filter((k) => k.length > name.length && k.startsWith(name));
  if (full.length > 0) {
    throw cannotJudge(
      `--${name} abbreviates --${full.join(" or --")} (programs take any prefix of a long option); write long options out in full`,
    );
  }
}

const longNames = (spec: OptionSpec): string[] =>
  [...spec.value, ...(spec.optional ?? []), ...(spec.flags ?? [])].filter((n) => n.length > 1);

/** getopt-style scan: clusters (`-abc`), attached or separate values, `--long[=v]`, `--`. */
export function scanOptions(
  args: Arg[],
  from: number,
  spec: OptionSpec,
  plusOptions = false,
): ScannedOptions {
  const seen = new Map<string, string | true>();
  const all: ScannedOptions["all"] = [];
  const note = (name: string, value: string | true, at: number): void => {
    seen.set(name, value);
    all.push({ name, value, at });
  };
  const known = longNames(spec);
  const listed = (name: string): boolean =>
    spec.value.includes(name) ||
    spec.optional?.includes(name) === true ||
    spec.flags?.includes(name) === true;
  const unknown = (option: string): never => {
    throw cannotJudge(`an option the analysis does not know (${option}): what follows it cannot be read`);
  };
  let i = from;
  let operand: number | undefined;
  while (i < args.length) {
    const a = args[i]!;
    if (a.dynamic) {
      // A run-time word that is one argument not starting with - or + is an operand.
      if (spec.permute && a.optionSafe) {
        operand ??= i;
        i++;
        continue;
      }
      return { next: operand ?? i, seen, all, dynamicAt: i };
    }
    const v = a.value;
    if (v === "--") return { next: operand ?? i + 1, seen, all };
    if (v.startsWith("--")) {
      const eq = v.indexOf("=");
      const name = eq < 0 ? v.slice(2) : v.slice(2, eq);
      checkAbbreviation(name, known);
      if (spec.strict && !listed(name)) unknown(`--${name}`);
      if (eq >= 0) note(name, v.slice(eq + 1), i);
      else if (spec.value.includes(name) && !spec.optional?.includes(name)) {
        const val = args[i + 1];
        if (val?.dynamic) return { next: i + 1, seen, all, dynamicAt: i + 1 };
        note(name, val?.value ?? "", i + 1);
        i++;
      } else note(name, true, i);
      i++;
      continue;
    }
    const isOption = v.startsWith("-") || (plusOptions && v.startsWith("+"));
    if (!isOption || v.length < 2) {
      if (!spec.permute) return { next: i, seen, all };
      operand ??= i;
      i++;
      continue;
    }
    for (let k = 1; k < v.length; k++) {
      const letter = v[k]!;
      if (spec.optional?.includes(letter)) {
        note(letter, v.slice(k + 1), i);
        break;
      }
      if (spec.strict && !listed(letter)) unknown(`-${letter}`);
      if (spec.value.includes(letter)) {
        if (k + 1 < v.length) note(letter, v.slice(k + 1), i);
        else {
          const val = args[i + 1];
          if (val?.dynamic) return { next: i + 1, seen, all, dynamicAt: i + 1 };
          note(letter, val?.value ?? "", i + 1);
          i++;
        }
        break;
      }
      note(letter, true, i);
    }
    i++;
  }
  return { next: operand ?? i, seen, all };
}

export const itself = (extra: Partial<UnfoldStep> = {}): UnfoldStep => ({
  keepSelf: true,
  run: [],
  code: [],
  ...extra,
});

export const refuse = (reason: string): UnfoldStep => ({ keepSelf: true, run: [], code: [], refuse: reason });

/** Run args[next..]; a run-time value in the option zone makes the command itself run-time. */
export function runRest(args: Arg[], scan: ScannedOptions, extra: Partial<UnfoldStep> = {}): UnfoldStep {
  const rest = scan.dynamicAt !== undefined ? args.slice(scan.dynamicAt) : args.slice(scan.next);
  if (rest.length === 0) return itself(extra);
  return { keepSelf: false, run: [rest], code: [], ...extra };
}

/** Words of a program named in one option value (`-I 'gzip -9'`), or undefined when quoting or expansions would matter. */
export function splitProgram(value: string): Arg[] | undefined {
  if (/["'\\$`;&|<>(){}*?[\]~#\n]/.test(value)) return undefined;
  const words = value.split(/[ \t]+/).filter((w) => w !== "");
  return words.length === 0 ? undefined : words.map((w) => ({ value: w, dynamic: false }));
}

/** Program folders of the (read-only) system image: a program named by such a path is that program. */
const SYSTEM_BIN = /^\/(usr\/(local\/)?)?(s?bin|lib(32|64|x32)?)\/([^/.][^/]*\/)*[^/]+$/;

export const isSystemProgramPath = (path: string): boolean => SYSTEM_BIN.test(path);

export const basename = (path: string): string => {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? path : path.slice(slash + 1);
};
