// security/shell-sh.ts — sh and dash as programs a command runs: which shells there are (sh
// and dash are read; every other shell's language is refused), the options that make dash
// read code from somewhere the analysis cannot see (-i, -l, -o interactive), where a shell
// or `.` takes its program from (-c code, a script file pinned by tools/exec-scripts.ts,
// or stdin), and the paths that are a descriptor rather than a file.

import {
  type Arg,
  itself,
  type OptionSpec,
  refuse,
  type ScannedOptions,
  scanOptions,
  type Unfolder,
} from "./shell-unfold.js";

export const POSIX_SHELLS: ReadonlySet<string> = new Set(["sh", "dash"]);

/** Shells whose language is not POSIX sh as dash reads it: refused wherever they appear. */
export const OTHER_SHELLS = new Set<string>([
  "bash",
  "rbash",
  "zsh",
  "ksh",
  "ksh93",
  "mksh",
  "lksh",
  "pdksh",
  "oksh",
]);
for (const s of [
  "ash",
  "hush",
  "yash",
  "posh",
  "fish",
  "csh",
  "tcsh",
  "bsh",
  "rc",
  "es",
  "elvish",
  "xonsh",
]) {
  OTHER_SHELLS.add(s);
}
for (const s of ["nu", "pwsh", "ion", "murex", "oil", "osh", "ysh", "scsh"]) OTHER_SHELLS.add(s);

export function isShellName(name: string): boolean {
  return POSIX_SHELLS.has(name) || OTHER_SHELLS.has(name);
}

export function otherShellRefusal(name: string): string {
  return `it runs ${name}, whose language is not POSIX sh; only sh (dash) code can be judged: write it for sh and run it with sh`;
}

/** Options of dash: -o takes a value; everything else is a flag (also as +x). */
const DASH_OPTIONS: OptionSpec = { value: ["o"] };

/** Read the options of sh/dash; undefined when one of them makes the shell read code we cannot judge. */
export function dashOptions(args: Arg[]): ScannedOptions | string {
  const scan = scanOptions(args, 1, DASH_OPTIONS, true);
  for (const o of scan.all) {
    if (o.name === "i" || o.name === "l") {
      return `sh -${o.name} reads startup files ($ENV, ~/.profile) as code`;
    }
    if (o.name === "o" && o.value === "interactive") return "sh -o interactive reads $ENV as code";
  }
  return scan;
}

/** sh/dash: `-c CODE` runs CODE; a script operand runs a file (pinned by tools/exec-scripts.ts); neither reads stdin. */
export const posixShell: Unfolder = (args) => {
  const scan = dashOptions(args);
  if (typeof scan === "string") return refuse(scan);
  if (scan.dynamicAt !== undefined) return { keepSelf: false, run: [], code: [args[scan.dynamicAt]!] };
  if (scan.seen.has("c")) {
    const code = args[scan.next];
    if (code === undefined) return itself();
    // find -exec sh -c '... {}' pastes a file name into the code: that code is run-time text.
    return {
      keepSelf: false,
      run: [],
      code: [code.value.includes("{}") ? { ...code, dynamic: true } : code],
      // `sh -c CODE NAME A B`: the code's $0, $1, $2.
      positional: args.slice(scan.next + 1),
    };
  }
  const script = args[scan.next];
  if (scan.seen.has("s") || script === undefined || (!script.dynamic && STDIN_PATHS.has(script.value))) {
    return itself({ stdinProgram: true });
  }
  if (script.dynamic)
    return refuse(`sh runs the script ${script.value}, whose path is only known at run time`);
  if (isDescriptorPath(script.value)) return refuse(`sh reads its program from ${script.value}`);
  return itself();
};

/** Paths through which a shell reads its program from stdin (`sh /dev/stdin`, `. /dev/fd/0`). */
export const STDIN_PATHS = new Set(["-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"]);
/** A descriptor or process file, read as a program: what it holds is decided at run time. */
export function isDescriptorPath(path: string): boolean {
  return /^\/(dev\/(fd|stdin|stdout|stderr|tcp|udp)|proc\/)/.test(path);
}

/** `. FILE`: a file that is stdin reads the program from stdin; any other file is pinned by exec-scripts. */
export const dot: Unfolder = (args) => {
  const file = args[1];
  if (file === undefined) return itself();
  if (file.dynamic) return refuse(`. runs the script ${file.value}, whose path is only known at run time`);
  if (STDIN_PATHS.has(file.value)) return itself({ stdinProgram: true });
  if (isDescriptorPath(file.value)) return refuse(`. reads its program from ${file.value}`);
  return itself();
};
