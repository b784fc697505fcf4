// security/shell-writes-build.ts — what the image's compilers and build tools write: gcc
// (cc, c99, cpp...) its `-o F`, `-MF F`, `-aux-info F`, else a.out or NAME.o in the cwd, and
// its side files (-save-temps, -MD, --coverage...) next to the output or in the cwd; `cpp IN
// OUT`; `as` and `ld` their `-o F` or a.out in the cwd (ld's -Map, --out-implib,
// --dependency-file too); `dwp -o`, `rpcgen -o`, `utmpdump -o`; `gencat CATALOG`; `hardlink`
// and `c_rehash`, which replace or make files in their operands. shell-writes.ts dispatches.

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
  /^(-save-temps|-MD$|-MMD$|--coverage$|-ftest-coverage$|-fstack-usage$|-fdump-|-fcallgraph-info|-gsplit-dwarf$|-fprofile-arcs$|-fprofile-generate|-fopt-info)/;

export const COMPILER_NAMES = ["gcc", "gcc-12", "cc", "c89", "c99", "c89-gcc", "c99-gcc", "cpp", "cpp-12"];
export const BUILD_NAMES = [...COMPILER_NAMES, "as", "ld", "ld.bfd", "ld.gold", "gold", "dwp", "rpcgen"];
BUILD_NAMES.push("utmpdump", "gencat", "hardlink", "c_rehash");
for (const n of ["gcc", "gcc-12", "cpp", "cpp-12", "as", "ld", "ld.bfd", "ld.gold", "gold", "dwp"])
  BUILD_NAMES.push(`x86_64-linux-gnu-${n}`);

/** The value of `-o F`, `-oF`, `--output=F` and the like: each option of `names`, attached, after `=`, or the next word. */
function optionValues(argv: readonly string[], names: readonly string[]): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    if (a === "--") break;
    for (const n of names) {
      if (a === n && at + 1 < argv.length) out.push({ value: argv[at + 1]!, at: at + 1 });
      else if (a.startsWith(`${n}=`) && n.length > 2) out.push({ value: a.slice(n.length + 1), at });
      else if (a.startsWith(n) && a !== n && !n.startsWith("--")) out.push({ value: a.slice(2), at });
      else continue;
      break;
    }
  }
  return out;
}

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
  const files = optionValues(argv, ["-MF", "-aux-info", "-dumpdir"]);
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
  }
  return written;
}

const AS_SEPARATE = new Set(["-o", "-I", "--defsym", "--MD", "-MD", "--debug-prefix-map"]);
const LD_SEPARATE = new Set(["-o", "-L", "-l", "-T", "-e", "-u", "-z", "-m", "-y", "-Map", "-R", "-h"]);
for (const o of ["--output", "--script", "--entry", "--undefined", "--out-implib", "--dependency-file"])
  LD_SEPARATE.add(o);

function linkerWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const as = name === "as";
  const out = optionValues(argv, ["-o", "--output"]);
  const files = as
    ? optionValues(argv, ["--MD", "-MD"])
    : optionValues(argv, ["-Map", "--Map", "--out-implib", "--dependency-file"]);
  if (informational(argv)) return [...out, ...files];
  // Without -o: a.out in the cwd (as reads its standard input without an input file).
  if (out.length === 0 && (as || inputs(argv, as ? AS_SEPARATE : LD_SEPARATE).length > 0))
    out.push({ value: ".", at: -1 });
  return [...out, ...files];
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
    default:
      return [];
  }
}
