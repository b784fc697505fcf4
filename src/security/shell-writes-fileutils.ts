// security/shell-writes-fileutils.ts — what the small file utilities write beyond their plain
// operands, read as each reads its arguments (coreutils 9.1, util-linux, e2fsprogs, tree
// 2.1): the programs whose operands are written (rm, touch, chmod's files after its MODE, cp's
// destination: fileOperands), `split IN PREFIX`, `csplit -f PREFIX`, `uniq IN OUT`, `shuf
// -o`, `mktemp`, `install -d`, `link F1 F2`, `rename.ul`, `tree -o` and `-R`, `ptx -G IN OUT`
// and `mklost+found`. shell-writes.ts dispatches.

import { type Getopt, getopt, has, longs, values } from "./shell-getopt.js";
import { basename } from "./shell-unfold.js";
import type { ProgramWrite } from "./shell-writes.js";

const SPLIT: Getopt = {
  short: "abClnt",
  long: longs(
    ["suffix-length", "additional-suffix", "bytes", "line-bytes", "lines", "number", "separator", "filter"],
    ["numeric-suffixes", "hex-suffixes", "elide-empty-files", "unbuffered", "verbose", "help", "version"],
  ),
};
const CSPLIT: Getopt = {
  short: "bfn",
  long: longs(["suffix-format", "prefix", "digits"], ["keep-files", "suppress-matched", "quiet", "silent"]),
};
const UNIQ: Getopt = {
  short: "fsw",
  long: longs(["skip-fields", "skip-chars", "check-chars"], ["all-repeated", "group", "count", "repeated"]),
};
const SHUF: Getopt = {
  short: "ino",
  long: longs(
    ["head-count", "input-range", "output", "random-source"],
    ["echo", "repeat", "zero-terminated"],
  ),
};

const MKTEMP: Getopt = {
  short: "p",
  long: longs(["suffix"], ["directory", "dry-run", "quiet", "tmpdir"]),
};
const INSTALL: Getopt = {
  short: "gmoSt",
  long: longs(["group", "mode", "owner", "suffix", "target-directory", "strip-program"], ["directory"]),
};

const operandsOf = (argv: readonly string[]) => getopt(argv, 1, { short: "", long: {} }).operands;

const PTX: Getopt = {
  short: "FMSWbgiow",
  long: longs(["flag-truncation", "macro-name", "sentence-regexp", "word-regexp", "break-file"], []),
};
Object.assign(PTX.long, {
  "gap-size": true,
  "ignore-file": true,
  "only-file": true,
  width: true,
  format: true,
});
// Its flags too: getopt_long takes any unique prefix (`--tr` is --traditional, -G).
for (const f of [
  "auto-reference",
  "traditional",
  "right-side-refs",
  "ignore-case",
  "references",
  "typeset-mode",
])
  PTX.long[f] = false;

/** rename.ul EXPR REPL FILE...: each FILE, and its name with EXPR replaced (REPL may hold a `/`). Nothing with -n. */
function renameWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, { short: "", long: {} });
  if (has(r, "n", "no-act", "h", "help", "V", "version")) return [];
  const [expr, repl, ...files] = r.operands;
  if (!expr || !repl) return [];
  // The first occurrence, the last (-l) or all (-a): each may lead elsewhere when REPL holds a `/`.
  return files.flatMap((f) => {
    const v = f.value;
    const last = v.lastIndexOf(expr.value);
    const names = [v.replace(expr.value, () => repl.value), v.replaceAll(expr.value, () => repl.value)];
    if (last >= 0) names.push(v.slice(0, last) + repl.value + v.slice(last + expr.value.length));
    return [f, ...[...new Set(names)].map((value) => ({ value, at: repl.at }))];
  });
}

/** tree 2.1's long options that take the next word when not given `=V`. */
const TREE_VALUED = ["--charset", "--filelimit", "--timefmt", "--sort", "--hintro", "--houtro"];
TREE_VALUED.push("--gitfile", "--infofile");

/**
 * tree 2.1: `-o F` (a cluster's letters L P I o H T each take the next word, in order); `-R`
 * (with -L) writes 00Tree.html into every folder under each FOLDER (the cwd without one).
 * tree reads all its arguments before it writes anything, and an unknown letter ends it.
 */
function treeWrites(argv: readonly string[]): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  const dirs: ProgramWrite[] = [];
  let recurse = false;
  let options = true;
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    if (!options || !a.startsWith("-") || a === "-") {
      dirs.push({ value: a, at });
      continue;
    }
    if (a === "--") options = false;
    else if (a.startsWith("--")) {
      if (TREE_VALUED.includes(a) && at + 1 < argv.length) at++;
      continue;
    }
    let next = at;
    for (const l of a.slice(1)) {
      // No option of tree is a digit: `-RL1` makes it print its usage and exit, writing nothing.
      if (/[0-9]/.test(l)) return [];
      if (l === "R") recurse = true;
      if (!"LPIoHT".includes(l)) continue;
      next++;
      if (l === "o" && next < argv.length) out.push({ value: argv[next]!, at: next });
    }
    at = next;
  }
  if (!recurse) return out;
  return [...out, ...(dirs.length > 0 ? dirs : [{ value: ".", at: -1 }])];
}

/**
 * The options that take a value of the programs whose operands are written (coreutils 9.1,
 * e2fsprogs, acl), and how many leading operands are not files (chmod's MODE, chown's OWNER,
 * chattr's +i): read as the program does, so `chmod 644 f` writes f, not a file named 644.
 */
const OPERAND_PROGRAMS: Record<string, Getopt & { skip?: number; onlyFirst?: boolean }> = {
  rm: { short: "", long: {} },
  rmdir: { short: "", long: {} },
  unlink: { short: "", long: {} },
  tee: { short: "", long: {} },
  shred: { short: "ns", long: longs(["iterations", "size", "random-source"], []) },
  touch: { short: "drt", long: longs(["date", "reference", "time"], []) },
  mkdir: { short: "m", long: longs(["mode"], []) },
  mkfifo: { short: "m", long: longs(["mode"], []) },
  mknod: { short: "m", long: longs(["mode"], []), onlyFirst: true },
  truncate: { short: "rs", long: longs(["reference", "size"], []) },
  fallocate: { short: "lo", long: longs(["length", "offset"], []) },
  mv: { short: "St", long: longs(["suffix", "target-directory"], []) },
  chmod: { short: "", long: longs(["reference"], []), skip: 1 },
  chown: { short: "", long: longs(["reference", "from"], []), skip: 1 },
  chgrp: { short: "", long: longs(["reference"], []), skip: 1 },
  chattr: { short: "vp", long: {} },
  chcon: { short: "urtl", long: longs(["reference", "user", "role", "type", "range"], []), skip: 1 },
  setfacl: {
    short: "mxMX",
    long: longs(["modify", "remove", "set", "modify-file", "remove-file", "set-file"], []),
  },
  cp: { short: "St", long: longs(["suffix", "target-directory", "no-preserve"], ["sparse"]) },
  ln: { short: "St", long: longs(["suffix", "target-directory"], []) },
  install: { short: "gmoSt", long: longs(["group", "mode", "owner", "suffix", "target-directory"], []) },
};
OPERAND_PROGRAMS.cp!.long.sparse = true;
OPERAND_PROGRAMS.install!.long["strip-program"] = true;

/**
 * The operands of a program that writes its operands (rm, touch, chmod...) or names its
 * destination last (cp, ln, install), without option values and what is not a file.
 * Undefined for a program not in the table.
 */
export function fileOperands(argv: readonly string[], name: string): ProgramWrite[] | undefined {
  const spec = OPERAND_PROGRAMS[name];
  if (!spec) return undefined;
  const r = getopt(argv, 1, spec);
  let ops = r.operands;
  // chmod/chown/chgrp --reference=F take no MODE/OWNER operand.
  // chmod takes a mode spelled like options (`chmod -w f`, `chmod -x,o+r f`): then there is no MODE operand.
  const end = argv.indexOf("--");
  const modeOption =
    name === "chmod" &&
    argv.slice(1, end < 0 ? undefined : end).some((a) => /^-[^-]/.test(a) && /[^cfvR]/.test(a.slice(1)));
  // chcon takes no CONTEXT operand when -u/-r/-t/-l name its parts.
  const parts = name === "chcon" && has(r, "u", "r", "t", "l", "user", "role", "type", "range");
  if (spec.skip && !has(r, "reference") && !modeOption && !parts) ops = ops.slice(spec.skip);
  // chattr's modes (+i, -i, =i): -i reads as an option already.
  if (name === "chattr") ops = ops.filter((o) => !/^[+=]/.test(o.value));
  if (spec.onlyFirst) ops = ops.slice(0, 1);
  return ops;
}

export const FILE_UTIL_NAMES = ["split", "csplit", "uniq", "shuf", "mktemp", "install", "link", "rename.ul"];
FILE_UTIL_NAMES.push("tree", "ptx", "mklost+found");

/** What one of FILE_UTIL_NAMES writes beyond the operands shell-operands.ts reads. */
export function fileUtilWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  switch (name) {
    case "split": {
      const r = getopt(argv, 1, SPLIT);
      return r.operands.length >= 2 ? [r.operands[1]!] : [{ value: "x", at: -1 }];
    }
    case "csplit": {
      const r = getopt(argv, 1, CSPLIT);
      const out: ProgramWrite[] = [];
      const prefixes = values(r, "f", "prefix");
      const written = prefixes.length > 0 ? prefixes : [{ value: "xx", at: -1 }];
      // Each file is PREFIX + the -b format's output: a format with a `/` leads out of the
      // prefix's folder (`-f x -b /../../c%d` writes x/../../c0).
      for (const b of values(r, "b", "suffix-format")) {
        if (!b.value.includes("/")) continue;
        const name = b.value.replace(/%%|%[-+ #0']*[0-9]*(\.[0-9]*)?[a-zA-Z]/g, (m) =>
          m === "%%" ? "%" : "0",
        );
        for (const p of written) out.push({ value: p.value + name, at: p.at < 0 ? -1 : b.at });
      }
      return [...written, ...out];
    }
    case "uniq":
      return getopt(argv, 1, UNIQ).operands.slice(1, 2);
    case "shuf":
      return values(getopt(argv, 1, SHUF), "o", "output");
    case "mktemp": {
      const r = getopt(argv, 1, MKTEMP);
      if (has(r, "u", "dry-run")) return [];
      const dir = values(r, "p", "tmpdir").at(-1);
      const template = r.operands[0];
      const inTmp = dir !== undefined || has(r, "t", "tmpdir") || template === undefined;
      if (!inTmp) return [template];
      // -t refuses a template with a `/`; -p/--tmpdir takes a relative one as it is
      // (`mktemp -p out ../X` makes out/../X).
      const name = template ? (has(r, "t") ? basename(template.value) : template.value) : "tmp.XXXXXXXXXX";
      // Without a folder of its own it writes in $TMPDIR, else /tmp; with -t, coreutils 9
      // prefers $TMPDIR to -p's folder (both judged: which one depends on the environment).
      const inTmpdir: ProgramWrite = { value: `/tmp/${name}`, at: -1, inTmpdir: true };
      if (!dir) return [inTmpdir];
      const named = { value: `${dir.value}/${name}`, at: dir.at };
      return has(r, "t") ? [named, inTmpdir] : [named];
    }
    case "install": {
      const r = getopt(argv, 1, INSTALL);
      return has(r, "d", "directory") ? r.operands : [];
    }
    case "link":
      // link F1 F2 makes F2.
      return operandsOf(argv).slice(1, 2);
    case "rename.ul":
      return renameWrites(argv);
    case "tree":
      return treeWrites(argv);
    case "ptx": {
      // ptx -G IN OUT writes OUT (without -G every operand is an input).
      const r = getopt(argv, 1, PTX);
      return has(r, "G", "traditional") ? r.operands.slice(1, 2) : [];
    }
    case "mklost+found":
      return [{ value: "lost+found", at: -1 }];
    default:
      return [];
  }
}
