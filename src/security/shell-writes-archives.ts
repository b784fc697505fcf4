// security/shell-writes-archives.ts — what archivers and compressors write, read as each
// reads its arguments: `tar` (-c/-r/-u/-A/--delete -f F, -x into its -C folders), `unzip`
// (its own option reader, not getopt), gzip/bzip2/xz and their un- and lzma forms (F.gz made
// next to F, F removed), `zip` (its archive; -m removes what it archives), `ar` (its archive,
// `ar x` into the cwd). shell-writes.ts dispatches to them.

import { type Getopt, getopt, has, longs, type Read, values } from "./shell-getopt.js";
import type { ProgramWrite } from "./shell-writes.js";

/** GNU tar 1.34: letters that take a value (shell-tar.ts reads the same), and the long names this reads. */
const TAR_VALUE = "fbCFgHIKLNTVX";
const TAR: Getopt = {
  short: TAR_VALUE,
  long: longs(
    ["file", "directory", "listed-incremental", "index-file", "volno-file", "files-from", "exclude-from"],
    ["create", "append", "update", "catenate", "concatenate", "delete", "extract", "get", "to-stdout"],
  ),
};
TAR.long["to-command"] = true;
TAR.long["remove-files"] = false;
// Its DIR only after `=` (optional).
TAR.long["one-top-level"] = false;
TAR.long["absolute-names"] = false;
TAR.long["use-compress-program"] = true;
TAR.long["info-script"] = true;
TAR.long["new-volume-script"] = true;
TAR.long["checkpoint-action"] = true;
TAR.long.format = true;
TAR.long.label = true;
TAR.long["blocking-factor"] = true;

export function tarWrites(argv: readonly string[]): ProgramWrite[] {
  const first = argv[1];
  if (first === undefined || first.startsWith("-")) return tarJudge(getopt(argv, 1, TAR));
  // Old style `tar cf ARCHIVE DIR`: the bundle's value letters take the next words in order.
  const bundle: Read["opts"] = [];
  let next = 2;
  for (const l of first) {
    if (!TAR_VALUE.includes(l)) bundle.push({ name: l, at: 1 });
    else if (next < argv.length) bundle.push({ name: l, value: argv[next]!, at: next++ });
  }
  const rest = getopt(argv, next, TAR);
  return tarJudge({ opts: [...bundle, ...rest.opts], operands: rest.operands });
}

function tarJudge(r: Read): ProgramWrite[] {
  const is = (...n: string[]) => r.opts.some((o) => n.includes(o.name));
  const out: ProgramWrite[] = [];
  const archive = r.opts.filter((o) => (o.name === "f" || o.name === "file") && o.value !== undefined);
  if (is("c", "r", "u", "A", "create", "append", "update", "catenate", "concatenate", "delete")) {
    for (const f of archive) if (f.value !== "-") out.push({ value: f.value!, at: f.at });
  }
  for (const o of r.opts) {
    // The incremental snapshot, the index and the volume-number files are written.
    if (["g", "listed-incremental", "index-file", "volno-file"].includes(o.name) && o.value !== undefined) {
      out.push({ value: o.value, at: o.at });
    }
  }
  // --remove-files deletes what it archived: each operand's name is removed (a removal).
  if (is("remove-files")) out.push(...r.operands.map((o) => ({ ...o, removes: true as const })));
  if (is("x", "extract", "get") && !is("O", "to-stdout", "to-command")) {
    // Member names come from the archive: the folder extracted into is written. -C is
    // order-sensitive and relative to the one before it; a member named before the first
    // -C goes to the folder tar started in.
    const dirs = r.opts.filter((o) => (o.name === "C" || o.name === "directory") && o.value !== undefined);
    let cur = ".";
    for (const d of dirs) {
      // As text, `..` kept: tar chdir()s to each, so a `..` is taken after the folder
      // before it, which may be a link (`-C l/..` is l's real parent, not the cwd).
      cur = d.value!.startsWith("/") || cur === "." ? d.value! : `${cur}/${d.value!}`;
      out.push({ value: cur, at: d.at });
    }
    // -P keeps members' leading / and their ..: any folder may be written.
    if (is("P", "absolute-names")) out.push({ value: "/", at: -1 });
    const firstC = dirs[0]?.at ?? Number.POSITIVE_INFINITY;
    if (dirs.length === 0 || r.operands.some((p) => p.at < firstC)) out.push({ value: ".", at: -1 });
    // --one-top-level=DIR puts every member under DIR, from the folder extracted into: an
    // absolute DIR is kept as it is (`--one-top-level=/workspace/pub/t`).
    const folders = out.filter((w) => w.at === -1 || dirs.some((d) => d.at === w.at));
    for (const t of values(r, "one-top-level")) {
      if (t.value.startsWith("/")) out.push(t);
      else for (const f of folders) out.push({ value: `${f.value}/${t.value}`, at: f.at < 0 ? -1 : t.at });
    }
  }
  return out;
}

const COMPRESS_FLAGS = ["stdout", "to-stdout", "decompress", "uncompress", "compress", "force", "keep"];
COMPRESS_FLAGS.push("list", "test", "recursive");
/** gzip, bzip2 and xz: `F` becomes F.gz (F.bz2, F.xz) next to it and F is removed; -d the other way. */
const COMPRESSORS: Record<string, { spec: Getopt; suffix: string; decompress: boolean }> = {
  gzip: { spec: { short: "S", long: longs(["suffix"], COMPRESS_FLAGS) }, suffix: ".gz", decompress: false },
  bzip2: { spec: { short: "", long: longs([], COMPRESS_FLAGS) }, suffix: ".bz2", decompress: false },
  xz: {
    spec: {
      short: "SFCTM",
      long: longs(
        ["suffix", "format", "check", "threads", "memlimit", "block-size", "block-list"],
        COMPRESS_FLAGS,
      ),
    },
    suffix: ".xz",
    decompress: false,
  },
};
for (const k of ["memlimit-compress", "memlimit-decompress", "filters", "lzma1", "lzma2", "delta"]) {
  COMPRESSORS.xz!.spec.long[k] = true;
}
COMPRESSORS.xz!.spec.long.files = false;
COMPRESSORS.xz!.spec.long.files0 = false;
COMPRESSORS.gunzip = { ...COMPRESSORS.gzip!, decompress: true };
COMPRESSORS.bunzip2 = { ...COMPRESSORS.bzip2!, decompress: true };
COMPRESSORS.unxz = { ...COMPRESSORS.xz!, decompress: true };
// xz under its lzma names (F.lzma), and gzip's `uncompress` script (gunzip).
COMPRESSORS.lzma = { ...COMPRESSORS.xz!, suffix: ".lzma" };
COMPRESSORS.unlzma = { ...COMPRESSORS.xz!, suffix: ".lzma", decompress: true };
COMPRESSORS.uncompress = { ...COMPRESSORS.gunzip! };

/** The names compressorWrites reads. */
export const COMPRESSOR_NAMES: readonly string[] = Object.keys(COMPRESSORS);

const UNZIP: Getopt = { short: "dx", long: {} };

const UNZIP_NO_FILES = "lptcvzZ";

/**
 * Whether unzip only lists, tests or prints, read as unzip 6.0's own parser does (not
 * getopt): its options end at the zip file (`unzip a.zip -l` extracts, -l is a member
 * name), and a `-` inside them negates the next letter (`-l-l`, `--l`, `-l -- -l` extract).
 * A negation anywhere among the options: not judged as listing.
 */
function unzipWritesNothing(argv: readonly string[]): boolean {
  let lists = false;
  for (let at = 1; at < argv.length && argv[at]!.startsWith("-"); at++) {
    const a = argv[at]!;
    if (a.slice(1).includes("-")) return false;
    for (let k = 1; k < a.length; k++) {
      if (UNZIP_NO_FILES.includes(a[k]!)) lists = true;
      // -d DIR: the rest of the word or the next one is its value (unzip refuses a next
      // word that starts with `-`, and goes on reading options after DIR).
      if (a[k] === "d") {
        if (k + 1 === a.length && !argv[at + 1]?.startsWith("-")) at++;
        break;
      }
    }
  }
  return lists;
}

export function compressorWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const tool = COMPRESSORS[name]!;
  const r = getopt(argv, 1, tool.spec);
  if (has(r, "c", "stdout", "to-stdout", "t", "test", "l", "list")) return [];
  // xz --files=F: the names come from a file: any file may be replaced.
  if (has(r, "files", "files0")) return [{ value: "/", at: -1 }];
  const decompress = (tool.decompress || has(r, "d", "decompress", "uncompress")) && !has(r, "z", "compress");
  const suffix = values(r, "S", "suffix").at(-1)?.value ?? tool.suffix;
  const out: ProgramWrite[] = [];
  for (const f of r.operands) {
    if (f.value === "-") continue;
    // -r: the operand is a folder whose files are replaced: the folder itself is written.
    if (has(r, "r", "recursive")) {
      out.push(f);
      continue;
    }
    if (!has(r, "k", "keep")) out.push(f);
    if (!decompress) {
      out.push({ value: f.value + suffix, at: f.at });
      continue;
    }
    // Decompressing, the name made is the operand without its suffix: -S's first (gzip's
    // get_suffix), which may hold a `/` and so lead out of the operand's folder
    // (`gunzip -S c/../x.gz pub/src/../x.gz` makes pub/sr), else a known one.
    const custom = f.value.toLowerCase().endsWith(suffix.toLowerCase()) && f.value !== suffix;
    if (custom && suffix !== tool.suffix) out.push({ value: f.value.slice(0, -suffix.length), at: f.at });
    const other = f.value.replace(/\.(gz|z|tgz|taz|bz2|tbz2?|xz|txz|lzma)$/i, "");
    // The other name is made next to the operand (a .tgz becomes a .tar).
    out.push({ value: other === f.value ? `${f.value}.tar` : other, at: f.at });
  }
  return out;
}

/** unzip writes in the cwd or `-d DIR`, unless it only lists, tests or prints. */
export function unzipWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, UNZIP);
  if (unzipWritesNothing(argv)) return [];
  // Every -d: unzip takes the first, and a later one after the zip file is a member name
  // (`unzip -d pub a.zip m -d out` extracts m into pub).
  const dirs = values(r, "d");
  // -: keeps members' ../ (unzip strips it and a leading / otherwise): any folder may be written.
  if (has(r, ":")) return [{ value: "/", at: -1 }];
  return dirs.length > 0 ? dirs : [{ value: ".", at: -1 }];
}

/** zip's options whose value is no path, and those whose value is a path it writes (zip 3.0). */
const ZIP_DATA_VALUE = ["-n", "-t", "-tt", "-P", "-s", "-sp", "-Z", "-ds", "-UN"].concat([
  "--suffixes",
  "--from-date",
  "--before-date",
  "--password",
  "--split-size",
  "--compression-method",
  "--dot-size",
  "--unicode",
]);
const ZIP_LISTS = ["-x", "-i", "--exclude", "--include"];
const ZIP_PATH_VALUE = ["-b", "-O", "-lf", "--temp-path", "--output-file", "--logfile-path"];
const ZIP_LONG_FLAGS = ["recurse-paths", "quiet", "junk-paths", "move", "update", "freshen", "delete"].concat(
  ["grow", "test", "verbose", "symlinks", "no-extra", "encrypt", "filesync", "no-dir-entries", "latest-time"],
);
/** A word of zip's flags only (no letter that takes a value, alone or in a longer option). */
const zipFlags = (w: string): boolean =>
  (/^-[rqjmufdgTvXyDeklLoAJFzRSwc@0-9]+$/.test(w) && !/lf|TT/.test(w)) || ZIP_LONG_FLAGS.includes(w.slice(2));

/**
 * What zip writes: its archive (the first operand; options may come anywhere), `-O F`, the
 * temporary folder `-b D`, the log `-lf F`, and with -m the files it archives (removed).
 * zip reads its own options, several letters long: after a word this does not know for
 * flags only, the next operand may be the archive too (the word may have taken the first
 * as its value), and is judged written; so are the words of a -x/-i list before the archive.
 */
export function zipWrites(argv: readonly string[]): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  const files: ProgramWrite[] = [];
  let archive = false;
  let unsure = false;
  let prevUnknown = false;
  let list = false;
  let opts = true;
  let move = false;
  let stdinNames = false;
  for (let at = 1; at < argv.length; at++) {
    const w = argv[at]!;
    if (opts && w === "--") {
      opts = false;
      continue;
    }
    if (opts && w.startsWith("-") && w !== "-") {
      const name = w.split("=")[0]!;
      const attached = w.includes("=");
      list = false;
      prevUnknown = false;
      if (ZIP_DATA_VALUE.includes(name)) {
        if (!attached) at++;
      } else if (ZIP_LISTS.includes(name)) {
        if (!attached) at++;
        list = true;
      } else if (ZIP_PATH_VALUE.includes(name)) {
        if (attached) out.push({ value: w.slice(w.indexOf("=") + 1), at });
        else if (at + 1 < argv.length) out.push({ value: argv[at + 1]!, at: ++at });
      } else {
        if (w === "--move" || (/^-[^-]/.test(w) && zipFlags(w) && w.includes("m"))) move = true;
        if (w === "--names-stdin" || /^-[^-]*@/.test(w)) stdinNames = true;
        prevUnknown = !zipFlags(w) && w !== "--names-stdin";
      }
      continue;
    }
    const word = { value: w, at };
    if (list) {
      // A pattern of the list, or the archive if the list took one value only.
      if (!archive) out.push(word);
      continue;
    }
    if (!archive) {
      archive = true;
      unsure = prevUnknown;
      if (w !== "-") out.push(word);
    } else if (unsure || prevUnknown) {
      unsure = false;
      out.push(word);
    } else files.push(word);
    prevUnknown = false;
  }
  if (move)
    out.push(
      ...(stdinNames ? [{ value: "/", at: -1 }] : files.map((f) => ({ ...f, removes: true as const }))),
    );
  return out;
}

const AR: Getopt = { short: "l", long: longs(["plugin", "target", "output", "record-libdeps"], []) };

/**
 * What ar (binutils 2.40) writes: the archive for d/m/q/r/s, and for x the members into the
 * cwd or `--output DIR` (with P their own paths: any folder). Its key may come without a
 * dash (`ar rc lib.a o`), getopt reads the rest (permuted; -l takes a value); the archive
 * is the operand after the relpos (a/b/i) and count (N) ones.
 */
export function arWrites(argv: readonly string[]): ProgramWrite[] {
  const bare = argv[1] !== undefined && !argv[1].startsWith("-");
  const r = getopt(argv, bare ? 2 : 1, AR);
  const letters = (bare ? argv[1]! : "") + r.opts.map((o) => (o.name.length === 1 ? o.name : "")).join("");
  const skip = (/[abi]/.test(letters) ? 1 : 0) + (letters.includes("N") ? 1 : 0);
  const archive = r.operands[skip];
  const out: ProgramWrite[] = [];
  if (archive && /[dmqrs]/.test(letters)) out.push(archive);
  if (letters.includes("x")) {
    const dirs = values(r, "output");
    out.push(...(dirs.length > 0 ? dirs : [{ value: ".", at: -1 }]));
    if (letters.includes("P")) out.push({ value: "/", at: -1 });
  }
  return out;
}
