// security/shell-wrappers.ts — programs and builtins whose job is to run another program.
// `sudo`, `env`, `timeout`, `xargs`, `sh -c`, `eval` and friends are how a command hides
// inside another, so each is described here: which of its arguments is the command it will
// run (or the sh code it will run), and what it adds (privilege, arguments known only at
// run time, a working directory). Shells are parsed in their own dialect: sh and dash code
// is POSIX and is analysed; every other shell (bash, zsh, ksh, busybox sh...) is refused,
// because its language is not the one the analyzer reads.

import { CLEARED_ENVIRONMENT } from "./policy-variables.js";
import { dot, isShellName, OTHER_SHELLS, otherShellRefusal, POSIX_SHELLS, posixShell } from "./shell-sh.js";
import {
  type Arg,
  basename,
  itself,
  type OptionFile,
  type OptionSpec,
  refuse,
  runRest,
  scanOptions,
  type Unfolder,
  type UnfoldStep,
} from "./shell-unfold.js";
import { WRAPPER_OPTIONS } from "./shell-wrapper-options.js";

/** What env and sudo take as NAME=value: any name without "=" (env passes `BASH_FUNC_f%%=...` too). */
const ASSIGNMENT = /^[^=]+=/;

function takeAssignments(args: Arg[], from: number): { next: number; assigns: string[] } {
  const assigns: string[] = [];
  let i = from;
  while (i < args.length && !args[i]!.dynamic && ASSIGNMENT.test(args[i]!.value))
    assigns.push(args[i++]!.value);
  return { next: i, assigns };
}

function simple(spec: OptionSpec, extra: Partial<UnfoldStep> = {}): Unfolder {
  return (args) => runRest(args, scanOptions(args, 1, spec), extra);
}

/** `prog [opts] FIXED... cmd...`: `fixed` operands (a priority, a CPU mask) come before the command. */
function afterOperands(spec: OptionSpec, fixed: number): Unfolder {
  return (args) => {
    const scan = scanOptions(args, 1, spec);
    if (scan.dynamicAt !== undefined) return runRest(args, scan);
    return runRest(args, { ...scan, next: Math.min(args.length, scan.next + fixed) });
  };
}

const env: Unfolder = (args) => {
  let from = 1;
  const dash = args[1]?.value === "-" && !args[1].dynamic;
  if (dash) from = 2;
  const scan = scanOptions(args, from, WRAPPER_OPTIONS.env);
  if (scan.dynamicAt !== undefined) return runRest(args, scan);
  if (scan.seen.has("a") || scan.seen.has("argv0"))
    return refuse("env -a sets the name a program sees as argv[0]");
  const dir = scan.seen.get("C") ?? scan.seen.get("chdir");
  const dirs = typeof dir === "string" ? [{ value: dir, dynamic: false }] : [];
  let tail = args.slice(scan.next);
  const split = scan.seen.get("S") ?? scan.seen.get("split-string");
  if (typeof split === "string") {
    // env -S has quoting, escapes and ${VAR} of its own: only plain words are followed.
    if (/["'\\$`#]/.test(split)) return refuse("env -S with quotes, escapes or variables in its string");
    const words = split.split(/\s+/).filter((w) => w !== "");
    // env reads options at the start of the string too (`env -S'-u LESSSECURE less f'`).
    if (words[0]?.startsWith("-"))
      return refuse("env -S with options in its string; give them to env itself");
    tail = [...words.map((value) => ({ value, dynamic: false })), ...tail];
  }
  // What env removes from the environment of what it runs: -u NAME, or everything (-i, -).
  const cleared = dash || scan.seen.has("i") || scan.seen.has("ignore-environment");
  const unsets = cleared
    ? [CLEARED_ENVIRONMENT]
    : scan.all.flatMap((o) => (o.name === "u" || o.name === "unset" ? [String(o.value)] : []));
  const { next, assigns } = takeAssignments(tail, 0);
  const step = runRest(tail, { next, seen: scan.seen, all: scan.all }, { assigns, dirs });
  return step.run.length > 0 ? { ...step, unsets } : step;
};

/** setpriv --reset-env runs its command with a fresh environment (PATH, HOME, SHELL, USER...). */
const setpriv: Unfolder = (args) => {
  const scan = scanOptions(args, 1, WRAPPER_OPTIONS.setpriv);
  return runRest(args, scan, scan.seen.has("reset-env") ? { unsets: [CLEARED_ENVIRONMENT] } : {});
};

const sudo: Unfolder = (args) => {
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
  return runRest(args, { ...scan, next }, { privileged: true, assigns });
};

const suLike: Unfolder = (args) => {
  const scan = scanOptions(args, 1, {
    value: ["c", "s", "g", "G", "w", "command", "shell", "group", "supp-group", "whitelist-environment"],
  });
  if (scan.dynamicAt !== undefined) {
    return { keepSelf: false, run: [], code: [args[scan.dynamicAt]!], privileged: true };
  }
  const code = scan.seen.get("c") ?? scan.seen.get("command");
  if (typeof code === "string")
    return { keepSelf: false, run: [], code: [{ value: code, dynamic: false }], privileged: true };
  return itself({ privileged: true });
};

const xargs: Unfolder = (args) => {
  // GNU xargs: -e, -l, -i and --eof, --max-lines, --replace take a value only when attached
  // (`--max-lines touch x` runs touch x).
  const scan = scanOptions(args, 1, WRAPPER_OPTIONS.xargs);
  const given = scan.seen.get("I") ?? scan.seen.get("replace") ?? scan.seen.get("i");
  const replace = given === undefined ? undefined : given === true || given === "" ? "{}" : given;
  let rest = scan.dynamicAt !== undefined ? args.slice(scan.dynamicAt) : args.slice(scan.next);
  // With no command xargs runs echo, unless arguments are appended to it (`xargs xargs`).
  const implicitCommand = rest.length === 0;
  if (implicitCommand) rest = [{ value: "echo", dynamic: false }];
  if (typeof replace === "string" && replace !== "") {
    // What xargs reads goes where the replace string stands: judged as find's {} (a word the
    // runner fills in at run time), never as a file named like the replace string
    // (`xargs -I% sh -c 'rm -f "$1"' _ %` was refused as removing a file named % where it ran).
    rest = rest.map((a) =>
      a.value.includes(replace) ? { ...a, value: a.value.replaceAll(replace, "{}"), dynamic: true } : a,
    );
  }
  const file = scan.seen.get("a") ?? scan.seen.get("arg-file");
  const files = typeof file === "string" ? [{ arg: { value: file, dynamic: false }, write: false }] : [];
  return {
    keepSelf: false,
    run: [rest],
    code: [],
    openArgs: true,
    files,
    ...(implicitCommand ? { implicitCommand } : {}),
  };
};

/** Tests whose value is a pattern, not a path. */
const FIND_PATTERNS = new Set(["-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename"]);
for (const t of ["-regex", "-iregex", "-lname", "-ilname", "-regextype", "-printf", "-fstype", "-user"]) {
  FIND_PATTERNS.add(t);
}
const FIND_WRITES = new Set(["-fprint", "-fprint0", "-fls", "-fprintf"]);

const find: Unfolder = (args) => {
  const run: Arg[][] = [];
  const files: UnfoldStep["files"] = [];
  const data: number[] = [];
  let dirs: Arg[] | undefined;
  for (let i = 1; i < args.length; i++) {
    const v = args[i]!.value;
    if (FIND_PATTERNS.has(v)) data.push(++i);
    else if (FIND_WRITES.has(v) && args[i + 1]) {
      files.push({ arg: args[++i]!, write: true });
      if (v === "-fprintf") data.push(++i);
    } else if (v === "-exec" || v === "-execdir" || v === "-ok" || v === "-okdir") {
      const inner: Arg[] = [];
      for (i++; i < args.length; i++) {
        const a = args[i]!;
        if (!a.dynamic && (a.value === ";" || a.value === "+")) break;
        // find puts a file name where {} stands: that argument is only known at run time. It
        // starts with a starting point, which never starts with - (find would read an option).
        inner.push(
          a.value.includes("{}")
            ? { value: a.value, dynamic: true, optionSafe: a.value.startsWith("{}") }
            : a,
        );
        data.push(i);
      }
      if (inner.length > 0) run.push(inner);
      // -execdir runs in each found file's folder: a relative path in it is anyone's guess.
      if (v.endsWith("dir")) dirs = [{ value: "{}", dynamic: true }];
    }
  }
  return { keepSelf: true, run, code: [], openArgs: true, files, data, ...(dirs ? { runDirs: dirs } : {}) };
};

/** script's options that name a log file it writes. */
const SCRIPT_LOGS = new Set(["t", "T", "timing", "log-io", "log-in", "log-out", "log-timing", "I", "O", "B"]);

/** `script -c CMD`, `flock [opts] FILE -c CMD` / `flock FILE CMD...`: -c runs $SHELL -c, which is sh here. */

const scriptLike: Unfolder = (args) => {
  const isFlock = basename(args[0]!.value) === "flock";
  // script's getopt permutes (`script -a F -c CMD` is `script -a -c CMD F`); flock's stops at its
  // lock file, after which come its command and the command's own options.
  const scan = scanOptions(args, 1, {
    permute: !isFlock,
    value: [
      "c",
      "command",
      "E",
      "echo",
      "t",
      "T",
      "timing",
      "w",
      "conflict-exit-code",
      "log-io",
      "log-in",
    ].concat([
      "log-out",
      "log-timing",
      "I",
      "O",
      "B",
      "logging-format",
      "output-limit",
      "m",
      "wait",
      "timeout",
    ]),
  });
  const code = scan.seen.get("c") ?? scan.seen.get("command");
  // Files it opens: flock's lock file (made if missing; a number is a descriptor), script's
  // typescript and its log options. Written: judged where it runs (Analyzer.wrapperFiles).
  const operand = scan.dynamicAt === undefined ? args[scan.next] : undefined;
  const files: OptionFile[] = [];
  if (operand && !(isFlock && /^\d+$/.test(operand.value))) files.push({ arg: operand, write: true });
  for (const o of scan.all) {
    if (!isFlock && typeof o.value === "string" && SCRIPT_LOGS.has(o.name) && o.value !== "") {
      files.push({ arg: { value: o.value, dynamic: false }, write: true });
    }
  }
  if (typeof code === "string")
    return { keepSelf: false, run: [], code: [{ value: code, dynamic: false }], files };
  if (scan.dynamicAt !== undefined) return runRest(args, scan);
  const rest = args.slice(scan.next + 1);
  if (isFlock) {
    // `flock FILE -c CMD`: -c after the lock file, where flock itself looks for it.
    const flag = rest[0];
    if (flag && !flag.dynamic && (flag.value === "-c" || flag.value === "--command")) {
      const cmd = rest[1];
      return cmd ? { keepSelf: false, run: [], code: [cmd], files } : itself();
    }
    return rest.length > 0 ? { keepSelf: false, run: [rest], code: [], files } : itself();
  }
  // script without -c starts an interactive shell on its stdin.
  return itself({ stdinProgram: true });
};

const evalCode: Unfolder = (args) => {
  if (args.length < 2) return itself();
  const rest = args.slice(1);
  return {
    keepSelf: false,
    run: [],
    code: [{ value: rest.map((a) => a.value).join(" "), dynamic: rest.some((a) => a.dynamic) }],
  };
};

const trap: Unfolder = (args) => {
  let i = 1;
  if (args[i]?.value === "--" && !args[i]!.dynamic) i++;
  const action = args[i];
  // `trap`, `trap -p`, `trap - INT`, `trap 0 1` (all conditions: reset) run nothing.
  if (action === undefined) return itself();
  if (!action.dynamic && (action.value.startsWith("-") || /^\d+$/.test(action.value))) return itself();
  return { keepSelf: false, run: [], code: [action], deferred: true };
};

const watch: Unfolder = (args) => {
  const scan = scanOptions(args, 1, WRAPPER_OPTIONS.watch);
  const rest = scan.dynamicAt !== undefined ? args.slice(scan.dynamicAt) : args.slice(scan.next);
  if (rest.length === 0) return itself();
  if (scan.seen.has("x") || scan.seen.has("exec")) return { keepSelf: false, run: [rest], code: [] };
  return {
    keepSelf: false,
    run: [],
    code: [{ value: rest.map((a) => a.value).join(" "), dynamic: rest.some((a) => a.dynamic) }],
  };
};

const command: Unfolder = (args) => {
  const scan = scanOptions(args, 1, { value: [] });
  if (scan.seen.has("v") || scan.seen.has("V")) return itself();
  return runRest(args, scan);
};

const timeout: Unfolder = (args) => {
  const scan = scanOptions(args, 1, WRAPPER_OPTIONS.timeout);
  if (scan.dynamicAt !== undefined) return runRest(args, scan);
  const duration = args[scan.next];
  if (duration === undefined) return itself();
  if (duration.dynamic) return runRest(args, { ...scan, dynamicAt: scan.next });
  return runRest(args, { ...scan, next: scan.next + 1 });
};

const busybox: Unfolder = (args) => {
  const applet = args[1];
  if (applet && !applet.dynamic && isShellName(basename(applet.value))) {
    return refuse(otherShellRefusal(`busybox ${applet.value}`));
  }
  return runRest(args, { next: 1, seen: new Map(), all: [] });
};

/** setarch/linux32/...: with no command they start /bin/sh on their stdin. */
function personality(fixed: number): Unfolder {
  return (args) => {
    const scan = scanOptions(args, 1 + fixed, WRAPPER_OPTIONS.setarch);
    const step = runRest(args, scan);
    return step.run.length === 0 ? itself({ stdinProgram: true }) : step;
  };
}

const noCommand =
  (what: string): Unfolder =>
  () =>
    refuse(what);

function afterOperandsWithFile(args: Arg[]): UnfoldStep {
  const scan = scanOptions(args, 1, { value: [] });
  if (scan.dynamicAt !== undefined) return runRest(args, scan);
  const log = args[scan.next];
  const step = runRest(args, { ...scan, next: scan.next + 1 });
  return log ? { ...step, files: [{ arg: log, write: true }], keepSelf: true } : step;
}

/**
 * strace/ltrace run their command; attaching to a running process (-p) is refused: it may be
 * the executor. strace's `-o |CMD` (or `!CMD`) pipes its output into CMD run by a shell, and
 * `-E NAME=VALUE` sets a variable for the command it runs (judged like env's).
 */
function tracer(spec: OptionSpec): Unfolder {
  return (args) => {
    const name = basename(args[0]!.value);
    const scan = scanOptions(args, 1, spec);
    // Its own options only: `--` ends them, and the command's (`strace -- grep --color x`) are the command's.
    for (const a of args.slice(1, scan.next)) {
      if (a.dynamic || !a.value.startsWith("--") || a.value.includes("=") || a.value === "--") continue;
      if (!spec.flags?.includes(a.value.slice(2))) {
        return refuse(`${name} ${a.value}: write its long options as --name=value`);
      }
    }
    if (scan.seen.has("p") || scan.seen.has("attach")) {
      return refuse(`${name} -p attaches to a process the command did not start`);
    }
    const assigns: string[] = [];
    for (const o of scan.all) {
      const value = typeof o.value === "string" ? o.value : "";
      if ((o.name === "o" || o.name === "output") && /^\s*[|!]/.test(value)) {
        return refuse(`${name} -o ${value} pipes its output into a command run by a shell`);
      }
      if (o.name === "E" || o.name === "env") {
        if (!value.includes("="))
          return refuse(`${name} -E ${value} removes a variable from the command's environment`);
        assigns.push(value);
      }
    }
    // -o FILE: the trace is written there (judged where the tracer runs, Analyzer.wrapperFiles).
    const files: OptionFile[] = [];
    for (const o of scan.all) {
      if ((o.name === "o" || o.name === "output") && typeof o.value === "string" && o.value !== "") {
        files.push({ arg: { value: o.value, dynamic: false }, write: true });
      }
    }
    return runRest(args, scan, { assigns, files });
  };
}

/** Wrapper behaviour by command basename. */
export const WRAPPERS: ReadonlyMap<string, Unfolder> = new Map<string, Unfolder>([
  ...[...POSIX_SHELLS].map((s): [string, Unfolder] => [s, posixShell]),
  ...[...OTHER_SHELLS].map((s): [string, Unfolder] => [s, () => refuse(otherShellRefusal(s))]),
  ["env", env],
  ["sudo", sudo],
  ["doas", simple({ value: ["a", "C", "u"] }, { privileged: true })],
  ["pkexec", simple({ value: ["user"] }, { privileged: true })],
  ["su", suLike],
  ["runuser", suLike],
  ["xargs", xargs],
  ["find", find],
  ["timeout", timeout],
  ["nice", simple(WRAPPER_OPTIONS.nice)],
  ["ionice", simple(WRAPPER_OPTIONS.ionice)],
  ["nohup", simple(WRAPPER_OPTIONS.nohup)],
  ["stdbuf", simple(WRAPPER_OPTIONS.stdbuf)],
  ["setsid", simple(WRAPPER_OPTIONS.setsid)],
  ["command", command],
  ["exec", simple({ value: ["a"] })],
  ["time", simple({ value: ["f", "o", "format", "output"] })],
  ["busybox", busybox],
  ["eval", evalCode],
  [".", dot],
  ["script", scriptLike],
  ["flock", scriptLike],
  ["strace", tracer(WRAPPER_OPTIONS.strace)],
  ["ltrace", tracer({ value: ["e", "o", "p", "s", "u", "n", "a", "A", "D", "F", "l", "x"] })],
  ["unbuffer", simple({ value: [] })],
  ["trap", trap],
  ["watch", watch],
  ["chrt", afterOperands(WRAPPER_OPTIONS.chrt, 1)],
  ["taskset", afterOperands(WRAPPER_OPTIONS.taskset, 1)],
  ["prlimit", simple(WRAPPER_OPTIONS.prlimit)],
  ["choom", simple(WRAPPER_OPTIONS.choom)],
  ["runcon", simple(WRAPPER_OPTIONS.runcon)],
  ["setpriv", setpriv],
  ["uclampset", simple(WRAPPER_OPTIONS.uclampset)],
  ["setarch", personality(1)],
  ...["linux32", "linux64", "i386", "x86_64"].map((s): [string, Unfolder] => [s, personality(0)]),
  ["nsenter", simple({ value: ["t", "S", "G", "target", "setuid", "setgid", "root", "wd", "env"] })],
  ["unshare", simple({ value: ["setuid", "setgid", "map-user", "map-group", "propagation", "root", "wd"] })],
  ["chroot", afterOperands({ value: ["userspec", "groups"] }, 1)],
  // logsave [-asv] LOGFILE CMD...: the log file is written, CMD run.
  ["logsave", (args) => afterOperandsWithFile(args)],
  ["fstab-decode", (args) => runRest(args, { next: 1, seen: new Map(), all: [] })],
  ["sg", noCommand("sg runs its command through a shell as another group")],
  ["service", noCommand("service runs init scripts")],
  ["invoke-rc.d", noCommand("invoke-rc.d runs init scripts")],
  ["installkernel", noCommand("installkernel runs the kernel's install hooks")],
  ["newgrp", noCommand("newgrp starts a new shell")],
  ["start-stop-daemon", noCommand("start-stop-daemon starts programs named in its options")],
  ["run-parts", noCommand("run-parts runs every program in a folder, which the command does not name")],
  ["parallel", noCommand("parallel builds its commands from its input at run time")],
  ["scriptlive", noCommand("scriptlive replays a recorded session through a shell")],
  ["debconf-apt-progress", noCommand("debconf-apt-progress runs a package manager")],
]);
