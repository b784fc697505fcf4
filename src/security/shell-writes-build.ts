// security/shell-writes-build.ts — what the image's compilers and build tools write: gcc
// (cc, c99, cpp...) its `-o F`, `-MF F`, `-aux-info F`, else a.out or NAME.o in the cwd, and
// its side files (-save-temps, -MD, --coverage...) next to the output or in the cwd, its dump
// files (`-fdump-*=F`), and what the options it passes on to ld, as and cc1 write; `cpp IN
// OUT`; `as` and `ld` their `-o F` or a.out in the cwd (ld's -Map, --out-implib,
// --dependency-file too); `dwp -o`, `rpcgen -o`, `utmpdump -o`; `gencat CATALOG`; `hardlink`
// and `c_rehash`, which replace or make files in their operands; `lto-dump` (its assembler
// output beside each input, even for -list, and its dump files). shell-writes.ts dispatches.

import { posix } from "node:path";
import type { ProgramWrite } from "./shell-writes.js";

const PREFIX = /^x86_64-linux-gnu-/;

/** gcc's options whose value is the next word when not attached (gcc.cc, c.opt: those that may come apart). */
const GCC_SEPARATE = new Set(
  (
    "-o -x -I -L -l -D -U -A -T -u -z -include -imacros -idirafter -iprefix -iwithprefix -iwithprefixbefore " +
    "-isystem -isysroot -imultilib -iquote -MF -MT -MQ -Xlinker -Xassembler -Xpreprocessor -aux-info " +
    "-dumpdir -dumpbase -dumpbase-ext --param -e --entry --output"
  ).split(" "),
);
/** Options after which gcc makes side files next to its output, or in the cwd without -o. */
const GCC_SIDE =
  /^(-save-temps|-MD$|-MMD$|--coverage$|-ftest-coverage$|-fstack-usage$|-fdump-|-fcallgraph-info|-gsplit-dwarf$|-fprofile-arcs$|-fprofile-generate|-fopt-info|-fsave-optimization-record$)/;

export const COMPILER_NAMES = ["gcc", "gcc-12", "cc", "c89", "c99", "c89-gcc", "c99-gcc", "cpp", "cpp-12"];
export const BUILD_NAMES = [...COMPILER_NAMES, "as", "ld", "ld.bfd", "ld.gold", "gold", "dwp", "rpcgen"];
BUILD_NAMES.push("utmpdump", "gencat", "hardlink", "c_rehash", "lto-dump", "lto-dump-12");
for (const n of [
  "gcc",
  "gcc-12",
  "cpp",
  "cpp-12",
  "as",
  "ld",
  "ld.bfd",
  "ld.gold",
  "gold",
  "dwp",
  "lto-dump",
  "lto-dump-12",
])
  BUILD_NAMES.push(`x86_64-linux-gnu-${n}`);

/** The value of `-o F`, `-oF`, `--output=F` and the like: each option of `names`, attached, after `=`, or the next word. */
function optionValues(argv: readonly string[], names: readonly string[]): ProgramWrite[] {
  return itemValues(
    argv.slice(1).map((value, k) => ({ value, at: k + 1 })),
    names,
  );
}

/** optionValues over words that each carry where they are in the command (pieces of `-Wl,A,B` too). */
function itemValues(words: readonly ProgramWrite[], names: readonly string[]): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  for (let k = 0; k < words.length; k++) {
    const { value: a, at } = words[k]!;
    if (a === "--") break;
    for (const n of names) {
      if (a === n && k + 1 < words.length) out.push(words[k + 1]!);
      else if (a.startsWith(`${n}=`) && n.length > 2) out.push({ value: a.slice(n.length + 1), at });
      else if (a.startsWith(n) && a !== n && !n.startsWith("--")) out.push({ value: a.slice(n.length), at });
      else continue;
      break;
    }
  }
  return out;
}

/**
 * ld's options that write a file, as ld reads them: `-o F`, and any prefix (two letters or
 * more, after one dash or two) of `--output`, `-Map`, `--out-implib` and `--dependency-file`,
 * its value after `=` or in the next word (`--outp=F`, seen in the image).
 */
function linkerFiles(words: readonly ProgramWrite[]): ProgramWrite[] {
  const out = linkerOutputs(words);
  const longs = ["output", "Map", "out-implib", "dependency-file"];
  for (let k = 0; k < words.length; k++) {
    const m = /^--?([A-Za-z][A-Za-z-]+)(=(.*))?$/s.exec(words[k]!.value);
    if (!m || !longs.some((l) => l.startsWith(m[1]!))) continue;
    if (m[2] !== undefined) out.push({ value: m[3]!, at: words[k]!.at });
    else if (k + 1 < words.length) out.push(words[++k]!);
  }
  return out;
}

/**
 * ld's own options that begin `-o` but are no `-o FILE`: ld reads one dash as a long option
 * first (getopt_long_only), and of its long options starting with "o" only --orphan-handling
 * and --out-implib take one dash (`-orph=place`, `-out-i=F`); --output, --omagic and --oformat
 * need two, so `-omagic` is `-o magic` (each seen with the image's ld).
 */
const ldLongO = (word: string): boolean => {
  const name = /^-(o[^=]+)/.exec(word)?.[1];
  return name !== undefined && ["orphan-handling", "out-implib"].some((l) => l.startsWith(name));
};

/** ld's `-o F` values, without the one-dash long options that begin with "o". */
function linkerOutputs(words: readonly ProgramWrite[]): ProgramWrite[] {
  return itemValues(
    words.map((w) => (ldLongO(w.value) ? { value: "", at: w.at } : w)),
    ["-o", "--output"],
  );
}

/** as's files: `-o F`, `--MD F`, and its listing `-a[cdghlmns]=F`. */
function assemblerFiles(words: readonly ProgramWrite[]): ProgramWrite[] {
  const out = itemValues(words, ["-o", "--MD"]);
  for (const w of words) {
    const m = /^-a[a-z]*=(.*)$/s.exec(w.value);
    if (m) out.push({ value: m[1]!, at: w.at });
  }
  return out;
}

/** The options gcc hands on to ld (`-Wl,A,B`, `-Xlinker A`, `--for-linker=A`), as (`-Wa,`, `-Xassembler`) and cc1 (`-Wp,`, `-Xpreprocessor`). */
function passedOn(argv: readonly string[]): Record<"ld" | "as" | "cpp", ProgramWrite[]> {
  const to = { ld: [] as ProgramWrite[], as: [] as ProgramWrite[], cpp: [] as ProgramWrite[] };
  const wl = { l: to.ld, a: to.as, p: to.cpp };
  const x: Record<string, ProgramWrite[]> = {
    "-Xlinker": to.ld,
    "--for-linker": to.ld,
    "-Xassembler": to.as,
    "-Xpreprocessor": to.cpp,
  };
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    const w = /^-W([lap]),(.*)$/s.exec(a);
    if (w) for (const p of w[2]!.split(",")) wl[w[1] as "l" | "a" | "p"].push({ value: p, at });
    else if (a.startsWith("--for-linker=")) to.ld.push({ value: a.slice(13), at });
    else if (x[a] && at + 1 < argv.length) x[a].push({ value: argv[at + 1]!, at: ++at });
  }
  return to;
}

/** The files the options gcc passes on write (cc1 reads `-MD F` and `-MMD F` with the file apart). */
function passedOnWrites(argv: readonly string[]): ProgramWrite[] {
  const to = passedOn(argv);
  return [
    ...linkerFiles(to.ld),
    ...assemblerFiles(to.as),
    ...itemValues(to.cpp, ["-o", "-MF", "-MD", "-MMD"]),
  ];
}

/**
 * The words gcc hands on in pieces (`-Wl,-T,../F`, `--for-linker=--version-script=../F`): ld,
 * as and cc1 read the files they name as their own words, so the exec tool judges each piece
 * as it judges a word. A whole word gcc passes on (`-Xlinker ../F`) is judged as a word already.
 */
export function passedOnPieces(name: string, argv: readonly string[]): ProgramWrite[] {
  if (!COMPILER_NAMES.includes(name.replace(PREFIX, ""))) return [];
  const to = passedOn(argv);
  return [...to.ld, ...to.as, ...to.cpp].filter((p) => p.value !== argv[p.at]);
}

/** gcc's options whose value is a file it writes: `-fdump-*=F`, `-fopt-info*=F`, `-fprofile-note=F` (not stdout/stderr). */
const GCC_FILE_EQ = /^-f(dump-[^=]*|opt-info[^=]*|profile-note)=(.+)$/s;

/** The words of a gcc, as or ld command line that are input files (not options nor their values). */
function inputs(argv: readonly string[], separate: ReadonlySet<string>): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    if (separate.has(a)) at++;
    else if (!a.startsWith("-") || a === "-") out.push({ value: a, at });
  }
  return out;
}

const informational = (argv: readonly string[]) =>
  argv
    .slice(1)
    .some((a) => /^(--version|--help|-v|-V|-dumpversion|-dumpmachine|-print-.*|--print-.*)$/.test(a));

function compilerWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const out = optionValues(argv, ["-o", "--output"]);
  const files = [...optionValues(argv, ["-MF", "-aux-info"]), ...passedOnWrites(argv)];
  // -dumpdir is a prefix: `-dumpdir d/p` makes d/pNAME.i, so its folder up to the last /.
  for (const d of optionValues(argv, ["-dumpdir"]))
    files.push({ value: d.value.endsWith("/") ? d.value : posix.dirname(d.value), at: d.at });
  for (const [at, a] of argv.entries()) {
    const m = GCC_FILE_EQ.exec(a);
    if (at > 0 && m && !["stdout", "stderr"].includes(m[2]!)) files.push({ value: m[2]!, at });
  }
  const ins = inputs(argv, GCC_SEPARATE);
  const args = argv.slice(1);
  // cpp and -E print; -fsyntax-only makes nothing.
  const stdout = name.startsWith("cpp") || args.some((a) => ["-E", "-fsyntax-only"].includes(a));
  const deps = args.some((a) => a === "-M" || a === "-MM");
  // cpp IN OUT writes OUT.
  if (name.startsWith("cpp") && out.length === 0 && ins.length >= 2) out.push(ins[1]!);
  const written = [...out, ...files];
  if (ins.length === 0 || informational(argv)) return written;
  // No -o: a.out, NAME.o or NAME.s in the cwd.
  if (out.length === 0 && !stdout && !deps) written.push({ value: ".", at: -1 });
  if (args.some((a) => GCC_SIDE.test(a))) {
    written.push({ value: ".", at: -1 });
    for (const o of out) written.push({ value: posix.dirname(o.value), at: o.at });
    // -dumpbase B names them B.i...: B's folder (after -dumpdir P's prefix: `-dumpbase ../b`).
    const dirs = optionValues(argv, ["-dumpdir"]);
    for (const b of optionValues(argv, ["-dumpbase"])) {
      written.push({ value: posix.dirname(b.value), at: b.at });
      for (const d of dirs) written.push({ value: posix.dirname(d.value + b.value), at: b.at });
    }
  }
  return written;
}

/**
 * lto-dump is lto1 run as a dumper, and writes as lto1 does (seen in the image): its assembler
 * output, `-o F`, else beside each input (`lto-dump -list d/x.o` makes d/x.s) or at
 * `-dumpbase B`; its dump files beside each input (`-fdump-tree-all`), under `-dumpdir`, or at
 * `-fdump-*=F`; gccaux.su and .ci in the cwd (-fstack-usage, -fcallgraph-info).
 */
function ltoDumpWrites(argv: readonly string[]): ProgramWrite[] {
  const out = optionValues(argv, ["-o"]);
  const written = [...out];
  for (const d of optionValues(argv, ["-dumpdir"]))
    written.push({ value: d.value.endsWith("/") ? d.value : posix.dirname(d.value), at: d.at });
  for (const b of optionValues(argv, ["-dumpbase"]))
    written.push({ value: posix.dirname(b.value), at: b.at });
  for (const [at, a] of argv.entries()) {
    const m = GCC_FILE_EQ.exec(a);
    if (at > 0 && m && !["stdout", "stderr"].includes(m[2]!)) written.push({ value: m[2]!, at });
  }
  if (informational(argv)) return written;
  const args = argv.slice(1);
  if (out.length === 0 || args.some((a) => /^-fdump-[^=]*$/.test(a)))
    for (const i of inputs(argv, GCC_SEPARATE)) written.push({ value: posix.dirname(i.value), at: i.at });
  if (args.some((a) => GCC_SIDE.test(a))) written.push({ value: ".", at: -1 });
  return written;
}

const AS_SEPARATE = new Set(["-o", "-I", "--defsym", "--MD", "-MD", "--debug-prefix-map"]);
const LD_SEPARATE = new Set(["-o", "-L", "-l", "-T", "-e", "-u", "-z", "-m", "-y", "-Map", "-R", "-h"]);
for (const o of ["--output", "--script", "--entry", "--undefined", "--out-implib", "--dependency-file"])
  LD_SEPARATE.add(o);

function linkerWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const as = name === "as";
  const words = argv.slice(1).map((value, k) => ({ value, at: k + 1 }));
  // ld's -o and the prefixes of --output are in linkerFiles; as's -o in assemblerFiles.
  const files = as
    ? [...assemblerFiles(words), ...optionValues(argv, ["-MD", "--output"])]
    : linkerFiles(words);
  if (informational(argv)) return files;
  // Without -o: a.out in the cwd (as reads its standard input without an input file).
  const out = as ? optionValues(argv, ["-o", "--output"]) : linkerOutputs(words);
  if (out.length === 0 && (as || inputs(argv, as ? AS_SEPARATE : LD_SEPARATE).length > 0))
    files.push({ value: ".", at: -1 });
  return files;
}

export function buildWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const base = name.replace(PREFIX, "");
  if (COMPILER_NAMES.includes(base)) return compilerWrites(base, argv);
  switch (base) {
    case "as":
    case "ld":
    case "ld.bfd":
    case "ld.gold":
    case "gold":
      return linkerWrites(base, argv);
    case "dwp":
    case "rpcgen":
    case "utmpdump":
      return optionValues(argv, ["-o", "--output"]);
    case "gencat": {
      // gencat [-o OUT] CATALOG MSGFILE...: OUT, else CATALOG; -H F writes a header.
      const out = optionValues(argv, ["-o", "--output", "-H", "--header"]);
      const ops = inputs(argv, new Set(["-o", "--output", "-H", "--header"]));
      if (!argv.slice(1).some((a) => /^-o|^--output/.test(a)) && ops[0]) out.push(ops[0]);
      return out;
    }
    case "hardlink":
      // It replaces duplicate files in the folders it is given with links.
      return inputs(argv, new Set(["-x", "--exclude", "-i", "--include", "-s", "--minimum-size"]));
    case "c_rehash":
      return inputs(argv, new Set());
    case "lto-dump":
    case "lto-dump-12":
      return ltoDumpWrites(argv);
    default:
      return [];
  }
}
