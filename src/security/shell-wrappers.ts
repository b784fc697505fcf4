// security/shell-wrappers.ts — programs whose job is to run another program. `sudo`,
// `env`, `timeout`, `xargs`, `sh -c` and friends are how a command hides inside another,
// so each is described here: which of its arguments is the command it will run (or the
// shell code it will run), and what it adds (privilege, arguments known only at run time).
// shell.ts applies these steps recursively; policy rules judge the commands they reveal.

export interface Arg {
  value: string;
  /** The value is only known at run time (an expansion, or a glob). */
  dynamic: boolean;
}

/** What one wrapper invocation runs. */
export interface UnfoldStep {
  /** The wrapper is a command in its own right (find, su without -c, a shell running a script file). */
  keepSelf: boolean;
  /** Commands it runs, each an argv. */
  run: Arg[][];
  /** Shell code it runs (`sh -c CODE`, `eval`, `trap`, `su -c`). */
  code: Arg[];
  /** A shell with no -c and no script operand: its program is whatever arrives on stdin. */
  stdinProgram?: boolean;
  privileged?: boolean;
  /** The commands it runs get more arguments at run time (xargs, find -exec ... {}). */
  openArgs?: boolean;
  /** VAR=value settings it applies to what it runs. */
  assigns?: string[];
}

type Wrapper = (args: Arg[]) => UnfoldStep | undefined;

interface OptionSpec {
  /** Short letters and long names that take a value. */
  value: readonly string[];
  /** Long names (or letters) whose presence changes what the wrapper does. */
}

interface ScannedOptions {
  /** Index of the first argument after the options. */
  next: number;
  seen: Map<string, string | true>;
  /** A run-time value stood where an option or the command could be: the command is unknowable. */
  dynamicAt?: number;
}

/** getopt-style scan: clusters (`-abc`), attached or separate values, `--long[=v]`, `--`. */
export function scanOptions(args: Arg[], from: number, spec: OptionSpec): ScannedOptions {
  const seen = new Map<string, string | true>();
  let i = from;
  while (i < args.length) {
    const a = args[i]!;
    if (a.dynamic) return { next: i, seen, dynamicAt: i };
    const v = a.value;
    if (v === "--") return { next: i + 1, seen };
    if (v.startsWith("--")) {
      const eq = v.indexOf("=");
      const name = eq < 0 ? v.slice(2) : v.slice(2, eq);
      if (eq >= 0) seen.set(name, v.slice(eq + 1));
      else if (spec.value.includes(name)) {
        const val = args[i + 1];
        if (val?.dynamic) return { next: i + 1, seen, dynamicAt: i + 1 };
        seen.set(name, val?.value ?? "");
        i++;
      } else seen.set(name, true);
      i++;
      continue;
    }
    if (!(v.startsWith("-") || v.startsWith("+")) || v.length < 2) return { next: i, seen };
    for (let k = 1; k < v.length; k++) {
      const letter = v[k]!;
      if (spec.value.includes(letter)) {
        if (k + 1 < v.length) seen.set(letter, v.slice(k + 1));
        else {
          const val = args[i + 1];
          if (val?.dynamic) return { next: i + 1, seen, dynamicAt: i + 1 };
          seen.set(letter, val?.value ?? "");
          i++;
        }
        break;
      }
      seen.set(letter, true);
    }
    i++;
  }
  return { next: i, seen };
}

const none = (): UnfoldStep => ({ keepSelf: true, run: [], code: [] });

/** Run args[next..]; a run-time value in the option zone makes the command itself run-time. */
function runRest(args: Arg[], scan: ScannedOptions, extra: Partial<UnfoldStep> = {}): UnfoldStep {
  const rest = scan.dynamicAt !== undefined ? args.slice(scan.dynamicAt) : args.slice(scan.next);
  if (rest.length === 0) return { ...none(), ...extra, run: [], code: [] };
  return { keepSelf: false, run: [rest], code: [], ...extra };
}

/** What env and sudo take as NAME=value: any name without "=" (env passes `BASH_FUNC_f%%=...` too). */
const ASSIGNMENT = /^[^=]+=/;

function takeAssignments(args: Arg[], from: number): { next: number; assigns: string[] } {
  const assigns: string[] = [];
  let i = from;
  while (i < args.length && !args[i]!.dynamic && ASSIGNMENT.test(args[i]!.value))
    assigns.push(args[i++]!.value);
  return { next: i, assigns };
}

function simple(spec: OptionSpec, extra: Partial<UnfoldStep> = {}): Wrapper {
  return (args) => runRest(args, scanOptions(args, 1, spec), extra);
}

const env: Wrapper = (args) => {
  let rest = args.slice(1);
  if (rest[0]?.value === "-" && !rest[0].dynamic) rest = rest.slice(1);
  const scan = scanOptions(rest, 0, { value: ["u", "C", "S", "P", "unset", "chdir", "split-string"] });
  if (scan.dynamicAt !== undefined) return runRest(rest, scan);
  let tail = rest.slice(scan.next);
  const split = scan.seen.get("S") ?? scan.seen.get("split-string");
  if (typeof split === "string") {
    // env -S splits its string into words itself; quoting or expansions in it are not followed here.
    const words = split.split(/\s+/).filter((w) => w !== "");
    const opaque = /["'\\$`]/.test(split);
    tail = [...words.map((value) => ({ value, dynamic: opaque })), ...tail];
  }
  const { next, assigns } = takeAssignments(tail, 0);
  return runRest(tail, { next, seen: scan.seen }, { assigns });
};

const sudo: Wrapper = (args) => {
  const scan = scanOptions(args, 1, {
    value: [
      "u",
      "g",
      "C",
      "D",
      "h",
      "p",
      "r",
      "t",
      "U",
      "T",
      "R",
      "user",
      "group",
      "close-from",
      "chdir",
    ].concat(["host", "prompt", "role", "type", "other-user", "command-timeout", "chroot"]),
  });
  if (scan.dynamicAt !== undefined) return runRest(args, scan, { privileged: true });
  const { next, assigns } = takeAssignments(args, scan.next);
  const step = runRest(args, { next, seen: scan.seen }, { privileged: true, assigns });
  return step;
};

const suLike: Wrapper = (args) => {
  const scan = scanOptions(args, 1, {
    value: ["c", "s", "g", "G", "w", "command", "shell", "group", "supp-group", "whitelist-environment"],
  });
  const code = scan.seen.get("c") ?? scan.seen.get("command");
  if (scan.dynamicAt !== undefined) {
    return {
      keepSelf: false,
      run: [],
      code: [{ value: args[scan.dynamicAt]!.value, dynamic: true }],
      privileged: true,
    };
  }
  if (typeof code === "string")
    return { keepSelf: false, run: [], code: [{ value: code, dynamic: false }], privileged: true };
  return { ...none(), privileged: true };
};

const xargs: Wrapper = (args) => {
  const scan = scanOptions(args, 1, {
    value: ["a", "d", "E", "I", "L", "n", "P", "s"].concat([
      "arg-file",
      "delimiter",
      "eof",
      "max-lines",
      "max-args",
      "max-procs",
      "max-chars",
      "process-slot-var",
    ]),
  });
  const replace = scan.seen.get("I") ?? scan.seen.get("replace") ?? (scan.seen.has("i") ? "{}" : undefined);
  let rest = scan.dynamicAt !== undefined ? args.slice(scan.dynamicAt) : args.slice(scan.next);
  if (rest.length === 0) rest = [{ value: "echo", dynamic: false }];
  if (typeof replace === "string" && replace !== "") {
    rest = rest.map((a) => (a.value.includes(replace) ? { value: a.value, dynamic: true } : a));
  }
  return { keepSelf: false, run: [rest], code: [], openArgs: true };
};

const find: Wrapper = (args) => {
  const run: Arg[][] = [];
  for (let i = 1; i < args.length; i++) {
    const v = args[i]!.value;
    if (v !== "-exec" && v !== "-execdir" && v !== "-ok" && v !== "-okdir") continue;
    const inner: Arg[] = [];
    for (i++; i < args.length; i++) {
      const a = args[i]!;
      if (!a.dynamic && (a.value === ";" || a.value === "+")) break;
      // find puts a file name where {} stands: that argument is only known at run time.
      inner.push(a.value.includes("{}") ? { value: a.value, dynamic: true } : a);
    }
    if (inner.length > 0) run.push(inner);
  }
  return { keepSelf: true, run, code: [], openArgs: true };
};

/** sh/bash/...: `-c CODE` runs CODE; a script operand runs a file; neither reads stdin. */
const shell: Wrapper = (args) => {
  const scan = scanOptions(args, 1, { value: ["o", "O", "rcfile", "init-file"] });
  if (scan.dynamicAt !== undefined) {
    return { keepSelf: false, run: [], code: [{ value: args[scan.dynamicAt]!.value, dynamic: true }] };
  }
  if (scan.seen.has("c")) {
    const code = args[scan.next];
    if (code === undefined) return none();
    // find -exec sh -c '... {}' pastes a file name into the code: that code is run-time text.
    return {
      keepSelf: false,
      run: [],
      code: [code.value.includes("{}") ? { ...code, dynamic: true } : code],
    };
  }
  const script = args[scan.next];
  if (scan.seen.has("s") || script === undefined || (!script.dynamic && STDIN_PATHS.has(script.value))) {
    return { keepSelf: true, run: [], code: [], stdinProgram: true };
  }
  return none();
};

/** Paths through which a shell reads its program from stdin (`bash /dev/stdin`, `. /dev/fd/0`). */
const STDIN_PATHS = new Set(["-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"]);

/** `source FILE` / `. FILE`: only a file that is really stdin can be followed. */
const source: Wrapper = (args) => {
  const file = args[1];
  if (file !== undefined && !file.dynamic && STDIN_PATHS.has(file.value)) {
    return { keepSelf: true, run: [], code: [], stdinProgram: true };
  }
  return none();
};

/** `script -c CMD`, `flock [opts] FILE -c CMD` / `flock FILE CMD...`. */
const scriptLike: Wrapper = (args) => {
  const scan = scanOptions(args, 1, {
    value: ["c", "command", "E", "echo", "t", "T", "timing", "w", "conflict-exit-code"],
  });
  const code = scan.seen.get("c") ?? scan.seen.get("command");
  if (typeof code === "string") return { keepSelf: false, run: [], code: [{ value: code, dynamic: false }] };
  if (scan.dynamicAt !== undefined) return runRest(args, scan);
  // flock FILE CMD...: the first operand is the lock file; script FILE runs no command.
  const rest = args.slice(scan.next + 1);
  const isFlock = args[0]!.value.slice(args[0]!.value.lastIndexOf("/") + 1) === "flock";
  return rest.length > 0 && isFlock ? { keepSelf: false, run: [rest], code: [] } : none();
};

const evalCode: Wrapper = (args) => {
  if (args.length < 2) return none();
  const rest = args.slice(1);
  return {
    keepSelf: false,
    run: [],
    code: [{ value: rest.map((a) => a.value).join(" "), dynamic: rest.some((a) => a.dynamic) }],
  };
};

const trap: Wrapper = (args) => {
  const action = args[1];
  if (action === undefined || (!action.dynamic && (action.value.startsWith("-") || action.value === "")))
    return none();
  return { keepSelf: true, run: [], code: [action] };
};

const alias: Wrapper = (args) => {
  const code: Arg[] = [];
  for (const a of args.slice(1)) {
    const eq = a.value.indexOf("=");
    if (a.dynamic) code.push(a);
    else if (eq > 0) code.push({ value: a.value.slice(eq + 1), dynamic: false });
  }
  return { keepSelf: true, run: [], code };
};

const watch: Wrapper = (args) => {
  const scan = scanOptions(args, 1, { value: ["n", "interval", "q", "equexit"] });
  const rest = scan.dynamicAt !== undefined ? args.slice(scan.dynamicAt) : args.slice(scan.next);
  if (rest.length === 0) return none();
  if (scan.seen.has("x") || scan.seen.has("exec")) return { keepSelf: false, run: [rest], code: [] };
  return {
    keepSelf: false,
    run: [],
    code: [{ value: rest.map((a) => a.value).join(" "), dynamic: rest.some((a) => a.dynamic) }],
  };
};

const command: Wrapper = (args) => {
  const scan = scanOptions(args, 1, { value: [] });
  if (scan.seen.has("v") || scan.seen.has("V")) return none();
  return runRest(args, scan);
};

const SHELLS = ["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "posh", "yash", "fish", "rbash"];

/** Wrapper behaviour by command basename. */
export const WRAPPERS: ReadonlyMap<string, Wrapper> = new Map<string, Wrapper>([
  ...SHELLS.map((s): [string, Wrapper] => [s, shell]),
  ["env", env],
  ["sudo", sudo],
  ["doas", simple({ value: ["a", "C", "u"] }, { privileged: true })],
  ["pkexec", simple({ value: ["user"] }, { privileged: true })],
  ["su", suLike],
  ["runuser", suLike],
  ["xargs", xargs],
  ["find", find],
  ["timeout", (args) => timeoutWrapper(args)],
  ["nice", simple({ value: ["n", "adjustment"] })],
  ["ionice", simple({ value: ["c", "n", "p", "P", "u", "class", "classdata"] })],
  ["nohup", simple({ value: [] })],
  ["stdbuf", simple({ value: ["i", "o", "e", "input", "output", "error"] })],
  ["setsid", simple({ value: [] })],
  ["command", command],
  ["builtin", (args) => runRest(args, { next: 1, seen: new Map() })],
  ["exec", simple({ value: ["a"] })],
  ["time", simple({ value: ["f", "o", "format", "output"] })],
  ["busybox", (args) => runRest(args, { next: 1, seen: new Map() })],
  ["eval", evalCode],
  ["source", source],
  [".", source],
  ["script", scriptLike],
  ["flock", scriptLike],
  ["strace", simple({ value: ["e", "o", "p", "s", "u", "E", "I", "P", "X", "a", "b"] })],
  ["ltrace", simple({ value: ["e", "o", "p", "s", "u", "n", "a", "A", "D", "F", "l", "x"] })],
  ["unbuffer", simple({ value: [] })],
  ["trap", trap],
  ["alias", alias],
  ["watch", watch],
]);

function timeoutWrapper(args: Arg[]): UnfoldStep {
  const scan = scanOptions(args, 1, { value: ["s", "k", "signal", "kill-after"] });
  if (scan.dynamicAt !== undefined) return runRest(args, scan);
  const duration = args[scan.next];
  if (duration === undefined) return none();
  if (duration.dynamic) return runRest(args, { next: scan.next, seen: scan.seen, dynamicAt: scan.next });
  return runRest(args, { next: scan.next + 1, seen: scan.seen });
}

export function isShellName(name: string): boolean {
  return SHELLS.includes(name);
}
