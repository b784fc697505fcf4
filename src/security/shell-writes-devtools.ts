// security/shell-writes-devtools.ts — what the image's developer and packaging tools write,
// read as each reads its arguments (checked against the image): debianutils' `tempfile` (-n
// FILE, a file in -d DIR or /tmp) and `savelog` (FILE rotated to FILE.0, FILE.1.gz... beside
// it or in -r DIR); perl's pod2man/pod2text (OUT after IN), `pod2html --outfile` (and its
// pod2htmd.tmp cache in the cwd or --cachedir), `xsubpp -output`, `enc2xs -o`, `h2ph -d DIR`
// (else perl's site folder); python's `pygettext3` (messages.pot, -o, -p, -d) and `py3compile`
// (__pycache__ beside each source); gcc's `gcov` (NAME.gcov in the cwd; its -o is a folder it
// reads), `gcov-tool -o` and `gprof -s` (gmon.sum in the cwd); `dpkg-deb -b/-x/-X/-R/-e`,
// `dpkg-split`; `localedef`'s output path; `lesskey` (-o, else ~/.less) and `setterm --dump`
// (screen.dump in the cwd, or --file F); `zic -d`, `iconvconfig -o`, `ptar`, `h2xs` and
// `pl2pm` (the cwd), `py3clean` (as py3compile). shell-writes.ts dispatches.

import { posix } from "node:path";
import { type Getopt, getopt, has, longs, type Read, values } from "./shell-getopt.js";
import type { ProgramWrite } from "./shell-writes.js";

/** A system folder the program writes by default: the policy's system-path rule refuses it. */
const implied = (value: string): ProgramWrite => ({ value, at: -1 });

/** getopt that stops at the first operand (perl's Getopt::Std, python's getopt, dpkg's myopt). */
function getoptInOrder(argv: readonly string[], spec: Getopt): Read {
  const r = getopt(argv, 1, spec);
  const first = r.operands[0]?.at;
  if (first === undefined) return r;
  const operands = argv.slice(first).map((value, k) => ({ value, at: first + k }));
  return { opts: r.opts.filter((o) => o.at < first), operands };
}

/**
 * An option word as perl's Getopt::Long reads it by default (the scripts here configure no
 * other way): `+` starts a long option as `--` does, and a long name matches whatever its
 * case (`+OUTFILE=F`, `--OutF F` are --outfile). Written `--name` in lower case, `-NAME`
 * as `-name` when `oneDash` (no bundling: one dash is a long option too); others as they are.
 */
function perlOption(a: string, oneDash = false): string {
  const m = /^(--|\+|-)([^=]+)(=.*)?$/s.exec(a);
  if (!m || (m[1] === "-" && !oneDash)) return a;
  return `${m[1] === "-" ? "-" : "--"}${m[2]!.toLowerCase()}${m[3] ?? ""}`;
}

/** Words `--NAME`/`-NAME` (perl's Getopt::Long, getopt_long_only) for any prefix of NAME of at least `min` letters. */
function longOnly(argv: readonly string[], name: string, min: number, valued = true): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  for (let at = 1; at < argv.length; at++) {
    const m = /^--?([A-Za-z][A-Za-z_-]*)(=(.*))?$/s.exec(argv[at]!);
    if (argv[at] === "--") break;
    if (!m || m[1]!.length < min || !name.startsWith(m[1]!)) continue;
    if (m[2] !== undefined) out.push({ value: m[3]!, at });
    else if (!valued) out.push({ value: "", at });
    else if (at + 1 < argv.length) out.push({ value: argv[at + 1]!, at: ++at });
  }
  return out;
}

const TEMPFILE: Getopt = {
  short: "dmnps",
  long: longs(["directory", "mode", "name", "prefix", "suffix"], []),
};
/**
 * tempfile: -n FILE, else a file in $TMPDIR, which tempnam prefers to -d DIR (a command that
 * sets TMPDIR is refused by the exec tool), else in -d DIR, else in /tmp. With -d both are
 * judged: which one depends on the environment. The file is the folder + `-p PREFIX` + six
 * random characters, the prefix taken whole: one with a `/` leads out of the folder
 * (`-p ../../workspace/x` makes $TMPDIR/../../workspace/xAbC123), so it is judged there too.
 */
function tempfileWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, TEMPFILE);
  const named = values(r, "n", "name");
  if (named.length > 0) return named;
  const inTmpdir: ProgramWrite = { value: "/tmp", at: -1, inTmpdir: true };
  const dirs = [...values(r, "d", "directory"), inTmpdir];
  // A run-time prefix is not known here (Landlock is the wall, as for any run-time word).
  const prefixes = values(r, "p", "prefix").filter(
    (p) => p.value.includes("/") && !/[$`"'\\*?[]/.test(p.value),
  );
  const led = prefixes.flatMap((p) =>
    dirs.map(
      (d): ProgramWrite =>
        d === inTmpdir
          ? { ...inTmpdir, value: `/tmp/${p.value}` }
          : { value: `${d.value}/${p.value}`, at: d.at },
    ),
  );
  return [...dirs, ...led];
}

/** savelog's getopts string: m:u:g:c:r:CdD:tlphjJ123456789x:nq. */
const SAVELOG: Getopt = { short: "mugcrDx", long: {} };
/** savelog rotates each FILE: FILE moved to FILE.0, the older ones renamed, in FILE's folder or `-r DIR` (from there). */
function savelogWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getoptInOrder(argv, SAVELOG);
  const roll = values(r, "r").at(-1);
  return r.operands.flatMap((f) => {
    const dir = posix.dirname(f.value);
    const saved = roll
      ? roll.value.startsWith("/")
        ? roll
        : { value: `${dir}/${roll.value}`, at: f.at }
      : undefined;
    return [f, { value: dir, at: f.at }, ...(saved ? [saved] : [])];
  });
}

/**
 * pod2man takes IN OUT pairs, pod2text one. Both read perl's Getopt::Long, permuted: pod2man
 * with bundling_override (one dash and a whole long name is that option, `-center x`; else a
 * cluster, `-cent` is -c "ent"), pod2text with bundling (one dash is always a cluster).
 */
const POD2MAN: Getopt = {
  short: "cdnqrs",
  long: longs(
    ["center", "date", "errors", "fixed", "fixedbold", "fixeditalic", "fixedbolditalic", "lquote", "name"],
    ["help", "lax", "nourls", "official", "stderr", "verbose", "utf8"],
  ),
};
Object.assign(POD2MAN.long, { quotes: true, release: true, rquote: true, section: true });
const POD2TEXT: Getopt = {
  short: "imqw",
  long: longs(["errors", "indent", "margin", "left-margin", "quotes", "width"], []),
};
function podWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const man = name === "pod2man";
  const words = argv.map((a) => {
    const long = perlOption(a);
    // bundling_override: one dash and a whole long name (any case) is that option.
    const name = a.slice(1).split("=")[0]!.toLowerCase();
    return man && /^-[A-Za-z]/.test(a) && name in POD2MAN.long ? `-${perlOption(a, true)}` : long;
  });
  const ops = getopt(words, 1, man ? POD2MAN : POD2TEXT).operands;
  return ops.filter((o, k) => (man ? k % 2 === 1 : k === 1) && o.value !== "-");
}

/** pod2html's Getopt::Long options (Pod::Html 1.33) and whether each takes a value. */
const POD2HTML = longs(
  ["cachedir", "css", "htmldir", "htmlroot", "infile", "outfile", "podpath", "podroot", "title"],
  ["flush", "help", "backlink", "header", "index", "poderrors", "quiet", "recurse", "verbose"],
);
for (const f of ["backlink", "header", "index", "poderrors", "quiet", "recurse", "verbose"])
  POD2HTML[`no${f}`] = POD2HTML[`no-${f}`] = false;

/**
 * pod2html: --outfile, and its cache pod2htmd.tmp (in --cachedir, else the cwd). Getopt::Long:
 * one dash or two, any unique prefix, a valued option takes the next word whatever it is
 * (`--title --outfile` is a title).
 */
function pod2htmlWrites(argv: readonly string[]): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  const caches: ProgramWrite[] = [];
  const names = Object.keys(POD2HTML);
  for (let at = 1; at < argv.length; at++) {
    const m = /^--?([a-z][a-z-]*)(=(.*))?$/s.exec(perlOption(argv[at]!, true));
    if (argv[at] === "--") break;
    if (!m) continue;
    const fits = m[1]! in POD2HTML ? [m[1]!] : names.filter((n) => n.startsWith(m[1]!));
    // An ambiguous prefix is refused by pod2html; read as each it may be, so no write is missed.
    const value = m[2] !== undefined ? { value: m[3]!, at } : undefined;
    const next = fits.some((n) => POD2HTML[n]) && value === undefined && at + 1 < argv.length;
    const v = value ?? (next ? { value: argv[at + 1]!, at: at + 1 } : undefined);
    if (v && fits.includes("outfile")) out.push(v);
    if (v && fits.includes("cachedir")) caches.push({ value: `${v.value}/pod2htmd.tmp`, at: v.at });
    if (next && fits.length === 1) at++;
  }
  return [...out, ...(caches.length > 0 ? caches : [implied(".")])];
}

/** enc2xs (getopts 'CM:SQqOo:f:n:v'): -o F, else its first operand, and F.exh, F.h beside it; -M makes a module in the cwd; -C writes perl's site folder. */
function enc2xsWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getoptInOrder(argv, { short: "Mofn", long: {} });
  if (has(r, "C")) return [implied("/usr/local/lib/x86_64-linux-gnu/perl")];
  if (has(r, "M")) return [implied(".")];
  const c = values(r, "o").at(-1) ?? r.operands[0];
  return c ? [c, { value: posix.dirname(c.value), at: c.at }] : [];
}

/** h2ph (getopts 'Dd:rlhaQe') writes under -d DIR, else perl's site folder. */
function h2phWrites(argv: readonly string[]): ProgramWrite[] {
  const dirs = values(getoptInOrder(argv, { short: "d", long: {} }), "d");
  return dirs.length > 0 ? dirs : [implied("/usr/local/lib/x86_64-linux-gnu/perl/5.36.0")];
}

/** pygettext3 (python getopt 'ad:DEhk:Kno:p:S:Vvw:x:X:'): -p DIR joined with -o FILE, -d DOMAIN's DOMAIN.pot, or messages.pot. */
function pygettextWrites(argv: readonly string[]): ProgramWrite[] {
  const spec: Getopt = {
    short: "dkopSwxX",
    long: longs(["default-domain", "keyword", "output", "output-dir", "style", "width", "exclude-file"], []),
  };
  const r = getoptInOrder(argv, spec);
  let file: ProgramWrite = implied("messages.pot");
  for (const o of r.opts) {
    if ((o.name === "o" || o.name === "output") && o.value !== undefined) file = { value: o.value, at: o.at };
    if ((o.name === "d" || o.name === "default-domain") && o.value !== undefined)
      file = { value: `${o.value}.pot`, at: o.at };
  }
  if (file.value === "-") return [];
  const dir = values(r, "p", "output-dir").at(-1);
  if (!dir || dir.value === "" || file.value.startsWith("/")) return [file];
  return [{ value: `${dir.value}/${file.value}`, at: file.at < 0 ? dir.at : file.at }];
}

/** py3compile: __pycache__ beside each `.py` operand, in every folder under any other; -p PACKAGE compiles a package's system files. */
function py3compileWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, { short: "pVX", long: longs(["package", "exclude"], []) });
  if (has(r, "p", "package")) return [implied("/usr/lib/python3")];
  // A `.py` file is compiled (beside it); anything else is walked as a folder (debpython).
  return r.operands.flatMap((o) =>
    o.value.endsWith(".py") ? [{ value: posix.dirname(o.value), at: o.at }, o] : [o],
  );
}

/** gcov writes NAME.gcov (or .gcov.json.gz) in the cwd, unless -n or -t; -o names a folder or file it reads. */
function gcovWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, {
    short: "os",
    long: longs(["object-directory", "object-file", "source-prefix"], []),
  });
  if (has(r, "n", "no-output", "t", "stdout", "h", "help", "v", "version")) return [];
  return r.operands.length > 0 ? [implied(".")] : [];
}

/** gcov-tool merge and rewrite write -o DIR, else merged_profile / rewrite_profile in the cwd. */
function gcovToolWrites(argv: readonly string[]): ProgramWrite[] {
  const sub = argv.findIndex((a, k) => k > 0 && !a.startsWith("-"));
  if (sub < 0 || !["merge", "rewrite"].includes(argv[sub]!)) return [];
  const spec: Getopt = { short: "ownst", long: longs(["output", "weight", "normalize", "scale"], []) };
  const r = getopt(argv, sub + 1, spec);
  const out = values(r, "o", "output");
  return out.length > 0 ? out : [implied(argv[sub] === "merge" ? "merged_profile" : "rewrite_profile")];
}

/** gprof -s (--sum) writes gmon.sum in the cwd. Its short options: flags, then ones taking the rest or the next word. */
function gprofWrites(argv: readonly string[]): ProgramWrite[] {
  const required = "eEfFIkmnNOrRStw";
  const optional = "ACdJpPqQZ";
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    if (a === "--") break;
    if (a.startsWith("--")) {
      const name = a.slice(2).split("=")[0]!;
      if (name.length >= 2 && "sum".startsWith(name)) return [implied("gmon.sum")];
      continue;
    }
    if (!a.startsWith("-")) continue;
    for (let k = 1; k < a.length; k++) {
      const l = a[k]!;
      if (l === "s") return [implied("gmon.sum")];
      if (optional.includes(l)) break;
      if (required.includes(l)) {
        if (k + 1 === a.length) at++;
        break;
      }
    }
  }
  return [];
}

/** dpkg's option reading (myopt): options first, a long one's value after `=` or in the next word. */
const DPKG_DEB: Getopt = {
  short: "ZzS",
  long: longs(["compression", "compress-level", "compress-strategy", "path-exclude", "threads-max"], []),
};
/** dpkg-deb: -b DIR [OUT] writes OUT (a file, or one in a folder), else DIR.deb; -x/-X/-R DEB DIR and -e DEB [DIR] write DIR. */
function dpkgDebWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getoptInOrder(argv, DPKG_DEB);
  const [first, second] = r.operands;
  if (has(r, "b", "build")) {
    if (second) return [second];
    return first ? [{ value: `${first.value.replace(/\/+$/, "")}.deb`, at: first.at }] : [];
  }
  if (has(r, "x", "extract", "X", "vextract", "R", "raw-extract")) return second ? [second] : [];
  if (has(r, "e", "control")) return [second ?? implied("DEBIAN")];
  return [];
}

const DPKG_SPLIT: Getopt = {
  short: "So",
  long: longs(["partsize", "output", "depotdir", "admindir", "root"], []),
};
/**
 * dpkg-split: -s FULL [PREFIX] writes PREFIX.NofM.deb (PREFIX: FULL without .deb, beside it);
 * -j writes -o OUT, else PACKAGE_VERSION_ARCH.deb in the cwd; -a and -d keep parts in the
 * depot (--depotdir, else dpkg's own folder).
 */
function dpkgSplitWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getoptInOrder(argv, DPKG_SPLIT);
  const out = values(r, "o", "output");
  const depot = values(r, "depotdir");
  if (has(r, "s", "split")) {
    const [full, prefix] = r.operands;
    const p = prefix ?? (full ? { value: full.value.replace(/\.deb$/, ""), at: full.at } : undefined);
    return p ? [{ value: posix.dirname(`${p.value}x`), at: p.at }] : [];
  }
  if (has(r, "j", "join")) return out.length > 0 ? out : [implied(".")];
  if (has(r, "a", "auto", "d", "discard"))
    return [...out, ...(depot.length > 0 ? depot : [implied("/var/lib/dpkg")])];
  return [];
}

const LOCALEDEF: Getopt = {
  short: "fiuA",
  long: longs(
    ["charmap", "inputfile", "repertoire-map", "alias-file", "prefix", "no-warnings", "warnings"],
    [],
  ),
};
/** localedef NAME writes NAME when it holds a `/`, else the locale archive (under --prefix). */
function localedefWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, LOCALEDEF);
  if (has(r, "list-archive", "help", "usage", "version", "V")) return [];
  const name = r.operands[0];
  if (name?.value.includes("/") && !has(r, "add-to-archive", "delete-from-archive")) return [name];
  const prefix = values(r, "prefix").at(-1);
  return [prefix ? { value: `${prefix.value}/usr/lib/locale`, at: prefix.at } : implied("/usr/lib/locale")];
}

/** lesskey 590: `-o F`, `-oF`, `--output=F`, else ~/.less (LESSKEY and HOME are refused by the exec tool). */
function lesskeyWrites(argv: readonly string[]): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    if (a === "--" || !a.startsWith("-")) break;
    const m = /^(-o|--output=?)(.*)$/s.exec(a);
    if (!m) continue;
    if (m[2] !== "" || m[1] === "--output=") out.push({ value: m[2]!, at });
    else if (at + 1 < argv.length) out.push({ value: argv[at + 1]!, at: ++at });
  }
  return out.length > 0 ? out : [implied("~/.less")];
}

/** setterm (getopt_long_only): --dump [N] and --append N write --file F, else screen.dump in the cwd. */
function settermWrites(argv: readonly string[]): ProgramWrite[] {
  const dumps = [...longOnly(argv, "dump", 2, false), ...longOnly(argv, "append", 2, false)];
  if (dumps.length === 0) return [];
  const files = longOnly(argv, "file", 2);
  return files.length > 0 ? files : [implied("screen.dump")];
}

/** zic writes under -d DIR (else the system's zoneinfo) and the link -t names. */
function zicWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, { short: "bdlLprty", long: {} });
  const dirs = values(r, "d");
  return [...(dirs.length > 0 ? dirs : [implied("/usr/share/zoneinfo")]), ...values(r, "t")];
}

/** iconvconfig writes -o F, else its cache in the system's gconv folder (under --prefix). */
function iconvconfigWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, { short: "o", long: longs(["output", "prefix"], ["nostdlib"]) });
  const out = values(r, "o", "output");
  if (out.length > 0 || has(r, "help", "?", "usage", "V", "version")) return out;
  const prefix = values(r, "prefix").at(-1);
  return [prefix ? { value: `${prefix.value}/usr/lib`, at: prefix.at } : implied("/usr/lib")];
}

/** ptar (getopts 'Ddcvzthxf:ICT:'): -c writes -f F; -x extracts into the cwd. */
function ptarWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getoptInOrder(argv, { short: "fT", long: {} });
  if (has(r, "c")) return values(r, "f").filter((f) => f.value !== "-");
  return has(r, "x") ? [implied(".")] : [];
}

export const DEVTOOL_NAMES = ["tempfile", "savelog", "pod2man", "pod2text", "pod2html", "xsubpp", "enc2xs"];
DEVTOOL_NAMES.push("h2ph", "pygettext3", "py3compile", "gcov", "gcov-12", "gcov-tool", "gcov-tool-12");
DEVTOOL_NAMES.push("gprof", "x86_64-linux-gnu-gprof", "x86_64-linux-gnu-gcov", "x86_64-linux-gnu-gcov-12");
DEVTOOL_NAMES.push("x86_64-linux-gnu-gcov-tool", "x86_64-linux-gnu-gcov-tool-12");
DEVTOOL_NAMES.push("dpkg-deb", "dpkg-split", "localedef", "lesskey", "setterm", "pygettext3.11", "py3clean");
DEVTOOL_NAMES.push("zic", "iconvconfig", "ptar", "h2xs", "pl2pm", "streamzip", "ptargrep");
for (const g of ["gp-archive", "gp-display-src"]) DEVTOOL_NAMES.push(g, `x86_64-linux-gnu-${g}`);

export function devtoolWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const base = name.replace(/^x86_64-linux-gnu-/, "").replace(/-12$|\.11$/, "");
  switch (base) {
    case "tempfile":
      return tempfileWrites(argv);
    case "savelog":
      return savelogWrites(argv);
    case "pod2man":
    case "pod2text":
      return podWrites(base, argv);
    case "pod2html":
      return pod2htmlWrites(argv);
    case "xsubpp":
      return longOnly(argv, "output", 6);
    case "enc2xs":
      return enc2xsWrites(argv);
    case "h2ph":
      return h2phWrites(argv);
    case "pygettext3":
      return pygettextWrites(argv);
    case "py3compile":
    case "py3clean":
      return py3compileWrites(argv);
    case "zic":
      return zicWrites(argv);
    case "iconvconfig":
      return iconvconfigWrites(argv);
    case "ptar":
      return ptarWrites(argv);
    case "h2xs":
    case "pl2pm":
      // h2xs makes a module's folder, pl2pm a NAME.pm for each NAME.pl, in the cwd.
      return argv.slice(1).some((a) => a === "-h" || a === "--help") ? [] : [implied(".")];
    case "gcov":
      return gcovWrites(argv);
    case "gcov-tool":
      return gcovToolWrites(argv);
    case "gprof":
      return gprofWrites(argv);
    case "dpkg-deb":
      return dpkgDebWrites(argv);
    case "dpkg-split":
      return dpkgSplitWrites(argv);
    case "localedef":
      return localedefWrites(argv);
    case "lesskey":
      return lesskeyWrites(argv);
    case "gp-display-src":
      // -outfile F (`-` prints), as gprofng matches its commands: one dash or two, any case,
      // any prefix from `-ou` (`--OUTF F` writes F, seen in the image).
      return argv.flatMap((a, at) => {
        const m = /^--?([A-Za-z]{2,})$/.exec(a);
        const outfile = m && "outfile".startsWith(m[1]!.toLowerCase());
        return at > 0 && outfile && at + 1 < argv.length && argv[at + 1] !== "-"
          ? [{ value: argv[at + 1]!, at: at + 1 }]
          : [];
      });
    case "ptargrep": {
      // It extracts each matching member under its archive path in the cwd (a leading `/`
      // made `./`, `..` kept: anywhere), or its base name with --basename; -l lists. Its
      // options end at `--`: `ptargrep -- -l A` extracts what holds "-l".
      const end = argv.indexOf("--");
      const opt = (name: string) =>
        argv
          .slice(1, end < 0 ? undefined : end)
          .map((a) => perlOption(a, true))
          .some((a) => /^--?[a-z-]+$/.test(a) && name.startsWith(a.replace(/^--?/, "")));
      if (opt("list-only") || opt("help")) return [];
      return [implied(opt("basename") ? "." : "/")];
    }
    case "streamzip":
      // Getopt::Long: -zipfile=F by any prefix that is not zip64's (`-zipf`).
      return longOnly(
        argv.map((a) => perlOption(a, true)),
        "zipfile",
        4,
      );
    case "gp-archive": {
      // gprofng archive copies the binaries and sources into each EXPERIMENT, or -d DIR.
      const r = getopt(argv, 1, { short: "adm", long: longs(["verbose"], ["help", "version"]) });
      return has(r, "help", "version") ? [] : [...values(r, "d"), ...r.operands];
    }
    default:
      return settermWrites(argv);
  }
}
