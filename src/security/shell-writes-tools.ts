// security/shell-writes-tools.ts — what the image's other writing tools write, read as each
// reads its arguments: binutils that rewrite their operands (`strip F`, `objcopy IN [OUT]`,
// `ranlib A`, `elfedit F`) or write an option's file (`-o F`, `--dump-section S=F`), `tic -o
// DIR`, the zip utilities (`zipnote -w Z`, `zipsplit -b DIR`, `zipcloak Z`), gzip's scripts
// (`gzexe F` and bzip2's `bzexe F` and their F~, `zforce F` renamed F.gz, `znew F.Z` made
// F.gz) and `bzip2recover F`
// (recNNNNNF next to F), and the files `perl -i` edits in place. shell-writes.ts dispatches.

import { posix } from "node:path";
import { type Getopt, getopt, has, longs, values } from "./shell-getopt.js";
import type { ProgramWrite } from "./shell-writes.js";

/** binutils 2.40 strip: the options that take a value. */
const STRIP: Getopt = {
  short: "FIOKNRo",
  long: longs(
    ["target", "input-target", "output-target", "keep-symbol", "strip-symbol", "remove-section"],
    [
      "strip-all",
      "strip-debug",
      "strip-dwo",
      "strip-unneeded",
      "preserve-dates",
      "enable-deterministic-archives",
    ],
  ),
};
Object.assign(STRIP.long, {
  "remove-relocations": true,
  "keep-section": true,
  plugin: true,
  "output-file": true,
});

/** binutils 2.40 objcopy (objcopy.c copy_options): the options that take a value. */
const OBJCOPY: Getopt = {
  short: "bBiIjKNsOdFLGRW",
  long: longs(
    ["add-gnu-debuglink", "add-section", "add-symbol", "adjust-start", "adjust-vma", "adjust-section-vma"],
    ["adjust-warnings", "change-leading-char", "debugging", "decompress-debug-sections", "extract-dwo"],
  ),
};
for (const o of [
  "alt-machine-code binary-architecture byte change-addresses change-section-address change-section-lma",
  "change-section-vma change-start dump-section file-alignment gap-fill globalize-symbol globalize-symbols",
  "heap image-base input-target interleave-width keep-global-symbol keep-global-symbols keep-section",
  "keep-symbol keep-symbols localize-symbol localize-symbols major-image-version major-os-version",
  "major-subsystem-version minor-image-version minor-os-version minor-subsystem-version only-section",
  "output-target pad-to plugin prefix-alloc-sections prefix-sections prefix-symbols redefine-sym",
  "redefine-syms remove-relocations remove-section rename-section reverse-bytes section-alignment",
  "set-section-alignment set-section-flags set-start srec-len stack strip-symbol strip-symbols",
  "strip-unneeded-symbol strip-unneeded-symbols subsystem target update-section verilog-data-width",
  "weaken-symbol weaken-symbols keep-section-symbols add-gnu-debuglink long-section-names elf-stt-common",
].flatMap((s) => s.split(" ")))
  OBJCOPY.long[o] = true;
for (const o of ["keep-section-symbols", "compress-debug-sections", "interleave"]) OBJCOPY.long[o] = false;

/** The files a binutils program rewrites in place, or writes through an option. */
function binutilsWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  if (name === "strip") {
    const r = getopt(argv, 1, STRIP);
    const out = values(r, "o", "output-file");
    return out.length > 0 ? out : r.operands;
  }
  if (name === "objcopy") {
    const r = getopt(argv, 1, OBJCOPY);
    // --dump-section NAME=FILE writes FILE (a relative one from the cwd).
    const dumps = values(r, "dump-section").flatMap((d) => {
      const eq = d.value.indexOf("=");
      return eq < 0 ? [] : [{ value: d.value.slice(eq + 1), at: d.at }];
    });
    // The output is OUT, else IN rewritten; --extract-symbol and the like do not change that.
    const [input, output] = r.operands;
    return [...(output ? [output] : input ? [input] : []), ...dumps];
  }
  // ranlib and elfedit rewrite every file they are given.
  return getopt(argv, 1, name === "ranlib" ? RANLIB : ELFEDIT).operands;
}

/** The files objcopy reads from its `--add-section NAME=FILE` and `--update-section NAME=FILE` (FILE from the cwd). */
export function objcopyReads(argv: readonly string[]): ProgramWrite[] {
  return values(getopt(argv, 1, OBJCOPY), "add-section", "update-section").flatMap((d) => {
    const eq = d.value.indexOf("=");
    return eq < 0 ? [] : [{ value: d.value.slice(eq + 1), at: d.at }];
  });
}

const RANLIB: Getopt = { short: "", long: longs(["plugin"], ["help", "version"]) };
const ELFEDIT: Getopt = { short: "", long: {} };
for (const io of ["input", "output"]) {
  for (const v of ["mach", "type", "osabi", "abiversion"]) ELFEDIT.long[`${io}-${v}`] = true;
}
Object.assign(ELFEDIT.long, { "enable-x86-feature": true, "disable-x86-feature": true });

/** ncurses 6.4 tic: the letters that take a value ("0123456789CDIKLNQR:TUVWace:fGgo:rstvwx"). */
const TIC: Getopt = { short: "Reo", long: {} };

/**
 * tic writes its compiled entries under `-o DIR`, or (without) under $TERMINFO, ~/.terminfo
 * or the system's database: a folder the analysis does not know, so `/` (the system-path rule
 * refuses it). -c only checks; -C, -I, -L and -D print.
 */
function ticWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, TIC);
  if (has(r, "c", "C", "I", "L", "D")) return [];
  const out = values(r, "o");
  return out.length > 0 ? out : [{ value: "/", at: -1 }];
}

/** The zip utilities 3.0 (zipnote, zipsplit, zipcloak): their own option reading, values in the next word. */
function zipToolWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const valued: Record<string, string> = { zipnote: "b", zipsplit: "nrb", zipcloak: "bO" };
  const longValued = ["temp-path", "output-file"];
  const opts: { name: string; value?: string; at: number }[] = [];
  const operands: ProgramWrite[] = [];
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    if (a === "--") {
      for (let k = at + 1; k < argv.length; k++) operands.push({ value: argv[k]!, at: k });
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const long = a.slice(2, eq < 0 ? undefined : eq);
      const full = longValued.find((l) => l.startsWith(long) && long.length > 0);
      if (eq >= 0) opts.push({ name: full ?? long, value: a.slice(eq + 1), at });
      else if (full) opts.push({ name: full, value: argv[at + 1], at: ++at });
      else opts.push({ name: long, at });
      continue;
    }
    if (!a.startsWith("-") || a === "-") {
      operands.push({ value: a, at });
      continue;
    }
    for (let k = 1; k < a.length; k++) {
      const l = a[k]!;
      if (!valued[name]!.includes(l)) opts.push({ name: l, at });
      else if (k + 1 < a.length) opts.push({ name: l, value: a.slice(k + 1), at });
      else opts.push({ name: l, value: argv[at + 1], at: ++at });
      if (valued[name]!.includes(l)) break;
    }
  }
  const is = (...n: string[]) => opts.some((o) => n.includes(o.name));
  const vals = (...n: string[]) =>
    opts.flatMap((o) => (n.includes(o.name) && o.value !== undefined ? [{ value: o.value, at: o.at }] : []));
  const zip = operands.slice(0, 1);
  // -b is the folder the temporary (zipnote, zipcloak) or the split (zipsplit) files go in.
  const temp = vals("b", "temp-path");
  if (name === "zipnote") return is("w", "write") ? [...zip, ...temp] : [];
  if (name === "zipcloak") {
    const out = vals("O", "output-file");
    return [...(out.length > 0 ? out : zip), ...temp];
  }
  // zipsplit: the pieces (and -i's zipsplit.idx) go to -b, else the cwd; -t only reports.
  if (is("t")) return [];
  return temp.length > 0 ? temp : [{ value: ".", at: -1 }];
}

/** gzip 1.12's scripts and bzip2recover: the files they rewrite, rename or make next to their operands. */
function scriptWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const ops: ProgramWrite[] = [];
  let options = true;
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    if (options && a === "--") options = false;
    else if (!options || !a.startsWith("-") || a === "-") ops.push({ value: a, at });
  }
  // bzip2recover writes rec00001NAME... in NAME's folder, and reads NAME.
  if (name === "bzip2recover") return ops.map((o) => ({ value: posix.dirname(o.value), at: o.at }));
  const out: ProgramWrite[] = [];
  for (const o of ops) {
    out.push(o);
    if (name === "gzexe" || name === "bzexe") out.push({ value: `${o.value}~`, at: o.at });
    if (name === "zforce" && !/\.(gz|tgz)$/.test(o.value)) out.push({ value: `${o.value}.gz`, at: o.at });
    if (name === "znew") out.push({ value: `${o.value.replace(/\.Z$/, "")}.gz`, at: o.at });
  }
  return out;
}

/**
 * `perl -i[EXT]` edits in place the files its program reads (<>): the arguments after the
 * program (after the first, without -e/-E), and makes the backup F+EXT, or EXT with each `*`
 * the file's name (`-i'bak/*'`). Read as perl.c reads its switches: no permuting, a cluster
 * (`-pi.bak`), -i taking the rest of its cluster as EXT (`-ie` is EXT "e").
 */
function perlWrites(argv: readonly string[]): ProgramWrite[] {
  let ext: string | undefined;
  let code = false;
  let at = 1;
  for (; at < argv.length; at++) {
    const a = argv[at]!;
    if (a === "--") {
      at++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break;
    for (let k = 1; k < a.length; k++) {
      const l = a[k]!;
      const rest = a.slice(k + 1);
      if (l === "i") ext = rest;
      else if ("eEIMm".includes(l)) {
        if (l === "e" || l === "E") code = true;
        if (rest === "") at++; // its value is the next word
      } else if (l === "0" || l === "l") {
        const digits = /^(x[0-9a-fA-F]*|[0-7]*)/.exec(rest)![0];
        k += digits.length;
        continue;
      } else if (!"CdDFx".includes(l)) continue;
      break; // the rest of the cluster was the option's
    }
  }
  if (ext === undefined) return [];
  const files = argv.slice(at).map((value, k) => ({ value, at: at + k }));
  const out: ProgramWrite[] = [];
  for (const f of code ? files : files.slice(1)) {
    if (f.value === "-") continue;
    out.push(f);
    if (ext !== "")
      out.push({ value: ext.includes("*") ? ext.replaceAll("*", f.value) : f.value + ext, at: f.at });
  }
  return out;
}

/** The programs of this file, by the name they run as (binutils' prefixed names too). */
export const TOOL_NAMES = [
  "strip",
  "objcopy",
  "ranlib",
  "elfedit",
  "tic",
  "zipnote",
  "zipsplit",
  "zipcloak",
  "gzexe",
  "bzexe",
  "zforce",
  "znew",
  "bzip2recover",
];
for (const b of ["strip", "objcopy", "ranlib", "elfedit"]) TOOL_NAMES.push(`x86_64-linux-gnu-${b}`);
TOOL_NAMES.push("gcc-ranlib", "gcc-ranlib-12", "perl", "perl5.36.0", "perl5.36-x86_64-linux-gnu");

export function toolWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const base = name.replace(/^x86_64-linux-gnu-/, "").replace(/^gcc-ranlib(-12)?$/, "ranlib");
  if (["strip", "objcopy", "ranlib", "elfedit"].includes(base)) return binutilsWrites(base, argv);
  if (base === "tic") return ticWrites(argv);
  if (base.startsWith("perl")) return perlWrites(argv);
  if (base.startsWith("zip")) return zipToolWrites(base, argv);
  return scriptWrites(base, argv);
}
