// security/shell-programs.ts — programs that are commands in their own right but can be
// told, by an option, to run another program: `sort --compress-program=sh`, `tar
// --to-command=...`, `rsync -e`, `ssh -o ProxyCommand=...`, `less +!cmd`, `vim -c`,
// `man -P`, `zip -TT`, `ldd`, package managers... Each entry unfolds what the option runs
// (judged like any command: grants, rules) or refuses the command, naming the option.
// The programs whose arguments are data, not paths (a pattern, a program's code), are in
// shell-data-args.ts. Interpreters (python3, node, perl, make...) run whatever their program
// says: their exec grant decides, and Landlock bounds them.

import { awk } from "./shell-awk.js";
import { curl } from "./shell-curl.js";
import { DATA_ONLY, DATA_PROGRAMS } from "./shell-data-args.js";
import { git } from "./shell-git.js";
import { REFUSED_NAMES, REFUSING } from "./shell-refused.js";
import { sed } from "./shell-sed.js";
import { tar } from "./shell-tar.js";
import {
  type Arg,
  basename,
  itself,
  refuse,
  scanOptions,
  splitProgram,
  type Unfolder,
  type UnfoldStep,
} from "./shell-unfold.js";
import { WRAPPERS } from "./shell-wrappers.js";

/** The program an option names: its words, or a refusal when quoting or expansions would matter. */
function programStep(option: string, value: string, extra: Partial<UnfoldStep> = {}): UnfoldStep {
  const words = splitProgram(value);
  if (!words) return refuse(`${option} names a program with quoting or expansions (${value})`);
  return { keepSelf: true, run: [words], code: [], ...extra };
}

const sort: Unfolder = (args) => {
  const scan = scanOptions(args, 1, {
    value: ["k", "t", "o", "T", "S", "key", "field-separator", "output", "temporary-directory"].concat([
      "buffer-size",
      "parallel",
      "batch-size",
      "compress-program",
      "files0-from",
      "random-source",
      "sort",
    ]),
    permute: true,
  });
  const prog = scan.seen.get("compress-program");
  if (typeof prog !== "string") return itself();
  // sort execs PROG as one file name (no splitting), writes its temporary data to its stdin
  // and reads it back with `PROG -d`.
  const program = { value: prog, dynamic: false };
  return {
    keepSelf: true,
    run: [[program], [program, { value: "-d", dynamic: false }]],
    code: [],
    feedsRun: true,
  };
};

const zip: Unfolder = (args) => {
  for (const a of args.slice(1)) {
    if (a.dynamic) continue;
    // zip takes `-TTcmd` attached and any prefix of --unzip-command (`--unzip-c cmd`).
    const long = a.value.startsWith("--") ? a.value.slice(2).split("=")[0]! : undefined;
    if (a.value.startsWith("-TT") || (long && long !== "" && "unzip-command".startsWith(long))) {
      return refuse("zip -TT/--unzip-command names a program to test the archive with");
    }
  }
  const tests = args.some((a) => !a.dynamic && (a.value === "--test" || /^-[A-Za-z]*T/.test(a.value)));
  return itself(tests ? { helpers: ["unzip"] } : {});
};

const rsync: Unfolder = (args) => {
  const scan = scanOptions(args, 1, { value: ["e", "rsh", "rsync-path", "M", "remote-option", "T", "f"] });
  for (const o of scan.all) {
    if (o.name === "rsync-path") return refuse("rsync --rsync-path names the program run on the other side");
    if (o.name === "M" || o.name === "remote-option")
      return refuse("rsync --remote-option passes options to the other side");
    if (o.name === "daemon" || o.name === "config")
      return refuse("rsync --daemon runs a server with its own configuration");
  }
  const rsh = scan.seen.get("e") ?? scan.seen.get("rsh");
  if (typeof rsh === "string") return programStep("rsync -e", rsh, { openArgs: true });
  const remote = args
    .slice(1)
    .some((a) => !a.dynamic && /^[^/-][^/]*:/.test(a.value) && !a.value.startsWith("rsync://"));
  return remote
    ? { keepSelf: true, run: [[{ value: "ssh", dynamic: false }]], code: [], openArgs: true }
    : itself();
};

const SSH_PROGRAM_OPTIONS =
  /^(proxycommand|localcommand|permitlocalcommand|knownhostscommand|proxyusefdpass|match|include|remotecommand)/i;

function ssh(args: Arg[]): UnfoldStep {
  const name = basename(args[0]!.value);
  const scan = scanOptions(args, 1, {
    value: [
      "o",
      "F",
      "S",
      "J",
      "D",
      "s",
      "i",
      "p",
      "P",
      "l",
      "L",
      "R",
      "W",
      "b",
      "c",
      "E",
      "e",
      "I",
      "m",
      "O",
      "Q",
      "w",
      "B",
    ],
  });
  if (scan.dynamicAt !== undefined)
    return refuse(`${name} with a run-time option (${args[scan.dynamicAt]!.value})`);
  const run: Arg[][] = [];
  for (const o of scan.all) {
    const value = typeof o.value === "string" ? o.value : "";
    if (o.name === "o" && SSH_PROGRAM_OPTIONS.test(value.trim()))
      return refuse(`${name} -o ${value} runs a local program`);
    if (o.name === "F") return refuse(`${name} -F reads a configuration file that can run programs`);
    if (o.name === "S") return refuse(`${name} -S names a program or control socket`);
    if (name === "sftp" && (o.name === "D" || o.name === "s"))
      return refuse(`sftp -${o.name} names a server program`);
    if (o.name === "J") run.push([{ value: "ssh", dynamic: false }]);
  }
  // What follows the host runs on the other machine: data here, never local paths.
  const data = name === "ssh" ? args.map((_, k) => k).filter((k) => k > scan.next) : [];
  return { keepSelf: true, run, code: [], data, openArgs: run.length > 0 };
}

/** less and more: `+cmd` runs a pager command (`+!cmd` a shell); lesskey files bind keys to commands. */
const pager: Unfolder = (args) => {
  for (const a of args.slice(1)) {
    if (a.dynamic) continue;
    const v = a.value;
    if (v.startsWith("+") && !/^\+(\d+|G|g|\/[^!|]*)$/.test(v))
      return refuse(`${basename(args[0]!.value)} ${v} runs a pager command`);
    if (/^(-k|--lesskey)/.test(v)) return refuse("less --lesskey files bind keys to commands");
  }
  return itself();
};

const vim: Unfolder = (args) => {
  const name = basename(args[0]!.value);
  if (name === "ex") return refuse("ex reads editor commands, which can run programs, from its input");
  for (const a of args.slice(1)) {
    const v = a.value;
    if (a.dynamic) return refuse(`${name} with a run-time argument (${v})`);
    if (
      /^(-c|--cmd|-S|-s|-e|-E|-es|-Es|-U)$/.test(v) ||
      v.startsWith("+") ||
      (v.startsWith("-u") && !/^-u(\s*|NONE|NORC)$/.test(v))
    ) {
      return refuse(`${name} ${v} runs editor commands, which can run programs`);
    }
  }
  return itself();
};

const man: Unfolder = (args) => {
  for (const a of args.slice(1)) {
    if (!a.dynamic && /^(-P|--pager|-H|--html|-X|--gxditview|-p|--preprocessor)/.test(a.value)) {
      return refuse(`man ${a.value} names a program to run`);
    }
  }
  return itself({ helpers: ["pager", "less", "groff", "nroff", "preconv", "tbl", "col"] });
};

const DPKG_QUERIES =
  /^(-l|--list|-L|--listfiles|-s|--status|-S|--search|-p|--print-avail|--print-architecture|--print-foreign-architectures|--version|--help|--get-selections|-C|--audit|--compare-versions)$/;

const dpkg: Unfolder = (args) => {
  const action = args.slice(1).find((a) => a.dynamic || a.value.startsWith("-"));
  if (action && !action.dynamic && DPKG_QUERIES.test(action.value)) return itself();
  return refuse("dpkg, other than its queries, runs package scripts and hooks");
};

/** ldd may run the program it inspects (its own loader); ld.so runs a program directly. */
const ldd: Unfolder = (args) => {
  const scan = scanOptions(args, 1, { value: [] });
  const run = args.slice(scan.next).map((a) => [a]);
  return { keepSelf: true, run, code: [], helpers: ["bash", "ld-linux-x86-64.so.2"] };
};

const loader: Unfolder = (args) => {
  const scan = scanOptions(args, 1, {
    value: ["library-path", "inhibit-rpath", "audit", "preload", "argv0", "glibc-hwcaps-prefix"],
  });
  for (const o of scan.all) {
    if (o.name === "audit" || o.name === "preload")
      return refuse(`the loader --${o.name} loads libraries into the program`);
    if (o.name === "argv0") return refuse("the loader --argv0 sets the name the program sees");
  }
  return {
    ...itself(),
    ...(args.length > scan.next ? { keepSelf: false, run: [args.slice(scan.next)] } : {}),
  };
};

const programOption =
  (option: string): Unfolder =>
  (args) => {
    const scan = scanOptions(args, 1, { value: [option], permute: true });
    const value = scan.seen.get(option);
    return typeof value === "string" ? programStep(`--${option}`, value, { openArgs: true }) : itself();
  };

/** split --filter=CMD runs CMD with $SHELL -c (sh), fed each chunk. */
const split: Unfolder = (args) => {
  const scan = scanOptions(args, 1, {
    value: ["a", "b", "C", "l", "n", "t", "filter", "additional-suffix"],
    permute: true,
  });
  const filter = scan.seen.get("filter");
  if (typeof filter !== "string") return itself();
  return { keepSelf: true, run: [], code: [{ value: filter, dynamic: false }], feedsRun: true };
};

/** openssl loads engines, providers and configuration (which can name them) as shared objects. */
const openssl: Unfolder = (args) => {
  for (const a of args.slice(1)) {
    if (a.dynamic) continue;
    if (/^-(keygen_)?engine$|^-provider(-path)?$|^-config$/.test(a.value) || a.value === "engine") {
      return refuse(`openssl ${a.value} loads a shared object (an engine or provider) into openssl`);
    }
  }
  return itself();
};

/**
 * gcc (and cc, cpp, c89, c99...) runs its compilers, assembler and linker as programs: under
 * a wrapper program (`-wrapper sh,-c,CMD`), found in a folder the command names (`-B DIR`),
 * through spec files (`-specs=`), with plugins loaded into them (`-fplugin=`, ld's `-plugin`),
 * by ld on a link error (`--error-handling-script`: any prefix ld takes holds "error-h"), and
 * with options read from a file (`@FILE`, `-Wl,@F`), which cannot be judged. The binutils
 * (ld, ar, nm, ranlib...) load `--plugin` shared objects and read `@FILE` too; lto-dump (lto1)
 * loads `-fplugin=` ones, as the compilers gcc runs do.
 */
const compiler: Unfolder = (args) => {
  const name = basename(args[0]!.value);
  for (const [k, a] of args.entries()) {
    if (k === 0 || a.dynamic) continue;
    const v = a.value;
    if (/^@|^-W[lap],(.*,)?@|^--for-linker=@/s.test(v))
      return refuse(`${name} ${v} reads options from a file, which cannot be judged`);
    // lto-dump is lto1, a compiler proper: `-fplugin=F.so` loads F into it (seen in the image).
    const base = name.replace(/^x86_64-linux-gnu-/, "");
    const driver = COMPILERS.includes(base) || base.startsWith("lto-dump");
    const runs = driver
      ? /^--?(wrapper|B|specs|fplugin|iplugindir)|^(-W[la],|--for-linker=).*(plugin|error-h)/s
      : /^--?(plugin|error-h)/;
    if (runs.test(v)) return refuse(`${name} ${v} runs or loads a program the command does not name`);
    const next = args[k + 1]?.value ?? "";
    if (["-Xlinker", "-Xassembler", "--for-linker"].includes(v) && /plugin|error-h|^@/.test(next))
      return refuse(`${name} ${v} ${next} loads a program into the linker`);
  }
  return itself();
};

const COMPILERS = ["gcc", "gcc-12", "cc", "c89", "c99", "c89-gcc", "c99-gcc", "cpp", "cpp-12", "g++", "c++"];
const BINUTILS = [
  "ld",
  "ld.bfd",
  "ld.gold",
  "gold",
  "as",
  "ar",
  "nm",
  "ranlib",
  "objcopy",
  "objdump",
  "strip",
];
for (const b of [
  "gcc-ar",
  "gcc-nm",
  "gcc-ranlib",
  "gcc-ar-12",
  "gcc-nm-12",
  "gcc-ranlib-12",
  "lto-dump",
  "lto-dump-12",
])
  BINUTILS.push(b);

const PROGRAMS: ReadonlyMap<string, Unfolder> = new Map<string, Unfolder>([
  ["sort", sort],
  ["tar", tar],
  ["zip", zip],
  ["rsync", rsync],
  ...["ssh", "scp", "sftp", "slogin"].map((s): [string, Unfolder] => [s, ssh]),
  // zless and xzless (lzless) run `less "$@"` with a LESSOPEN that decompresses.
  ...["less", "more", "most", "pager", "zless", "xzless", "lzless"].map((s): [string, Unfolder] => [
    s,
    pager,
  ]),
  ...["vi", "vim", "view", "ex", "rvim", "rview", "vimdiff", "nvim", "gvim", "evim"].map(
    (s): [string, Unfolder] => [s, vim],
  ),
  ["man", man],
  ["dpkg", dpkg],
  ["ldd", ldd],
  ...["ld.so", "ld-linux-x86-64.so.2", "ld-linux.so.2", "ld-linux-aarch64.so.1"].map(
    (s): [string, Unfolder] => [s, loader],
  ),
  ...["awk", "gawk", "mawk", "nawk", "original-awk"].map((s): [string, Unfolder] => [s, awk]),
  ["sed", sed],
  ["git", git],
  ["split", split],
  ["openssl", openssl],
  ...[...COMPILERS, ...BINUTILS].flatMap((c): [string, Unfolder][] => [
    [c, compiler],
    [`x86_64-linux-gnu-${c}`, compiler],
  ]),
  [
    "savelog",
    (args) =>
      args.some((a) => /^-[^-]*x/.test(a.value))
        ? refuse("savelog -x runs its hook, shell code, on each rotated file")
        : itself(),
  ],
  ["install", programOption("strip-program")],
  ["diff3", programOption("diff-program")],
  ["sdiff", programOption("diff-program")],
  ["curl", curl],
  [
    "wget",
    (args) =>
      args.some((a) => a.value.startsWith("--use-askpass"))
        ? refuse("wget --use-askpass runs a program")
        : itself(),
  ],
  ...DATA_PROGRAMS,
  ...REFUSING,
]);

/**
 * Whether what this program runs is judged by its name: the analysis unfolds it (a wrapper,
 * a shell, a program whose options run programs) or the rules read its arguments. Interpreters
 * and the data-only entries are not: their grant decides whatever they are called.
 */
export function judgedByName(name: string): boolean {
  return unfolderFor(name) !== undefined && !DATA_ONLY.has(name);
}

/** An interpreter or another program whose table only marks data (python3, node, grep...). */
export const isDataOnly = (name: string): boolean => DATA_ONLY.has(name);

/**
 * Whether some option of this program runs or loads a program (the tables here, find's
 * -exec): a run-time argument that may turn out to be an option is then refused (shell-visitor.ts).
 */
export function optionsRunPrograms(name: string): boolean {
  return name === "find" || (PROGRAMS.has(name) && !DATA_ONLY.has(name) && !REFUSED_NAMES.has(name));
}

/** How a command name is unfolded: a wrapper (runs something instead) or a program with options that run programs. */
export function unfolderFor(name: string): Unfolder | undefined {
  return WRAPPERS.get(name) ?? PROGRAMS.get(name) ?? (isDashedGit(name) ? dashedGit : undefined);
}

/**
 * `git-push` (/usr/lib/git-core/git-push, or a copy of git by that name) is `git push`: git
 * runs the subcommand its argv[0] names after "git-". Judged as that git command.
 */
export function isDashedGit(name: string): boolean {
  return /^git-[a-z]/.test(name) && name !== "git-shell";
}

const dashedGit: Unfolder = (args) => {
  const sub = basename(args[0]!.value).slice("git-".length);
  return git([{ value: "git", dynamic: false }, { value: sub, dynamic: false }, ...args.slice(1)]);
};
