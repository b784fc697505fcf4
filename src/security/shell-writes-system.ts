// security/shell-writes-system.ts — what the image's file-system and loader tools write, read
// as each reads its arguments (e2fsprogs 1.47, glibc's ldconfig, util-linux's blkid, gpgv;
// checked against the image), for a file-system image the agent keeps in a regular file:
// e2fsck (the image, unless -n), resize2fs, tune2fs, e2label IMG LABEL, e2image (IMG OUT; -I
// writes IMG), badblocks (-o F; -w and -n write the image) and each one's `-z UNDO` file;
// `ldconfig` (links in each folder operand, beside each -l library; its cache, -C F, else
// /etc/ld.so.cache under -r ROOT); `blkid -c/-w F` (its cache); `gpgv -o/--output F`.
// debugfs is refused (shell-programs.ts): its requests (-R, -f, stdin) dump files anywhere.
// shell-writes.ts dispatches.

import { posix } from "node:path";
import type { SimpleCommand } from "./shell.js";
import { type Getopt, getopt, has, longs, type Read, values } from "./shell-getopt.js";
import type { ProgramWrite } from "./shell-writes.js";

/** A system file the program writes by default: the policy's system-path rule refuses it. */
const implied = (value: string): ProgramWrite => ({ value, at: -1 });

/** Each program's getopt letters that take a value. */
const E2FS: Record<string, string> = {
  e2fsck: "CBEMbIjPlLNz",
  "fsck.ext2": "CBEMbIjPlLNz",
  "fsck.ext3": "CBEMbIjPlLNz",
  "fsck.ext4": "CBEMbIjPlLNz",
  resize2fs: "dSz",
  tune2fs: "cegimorsuCEIJLMOTUzQ",
  e2image: "bBoO",
  badblocks: "bcdeiopt",
  e2label: "",
};

function e2fsWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const r: Read = getopt(argv, 1, { short: E2FS[name]!, long: {} });
  const undo = values(r, "z");
  const [img, second] = r.operands;
  const out: ProgramWrite[] = [...undo];
  switch (name) {
    case "resize2fs":
      if (img && !has(r, "P")) out.push(img);
      break;
    case "tune2fs":
      if (img && !(has(r, "l") && r.opts.length === 1)) out.push(img);
      break;
    case "e2label":
      if (img && second) out.push(img);
      break;
    case "e2image":
      // e2image IMG OUT; -I IMG OUT puts the metadata saved in OUT back into IMG.
      if (has(r, "I")) out.push(...(img ? [img] : []));
      else if (second && second.value !== "-") out.push(second);
      break;
    case "badblocks":
      out.push(...values(r, "o"));
      if (img && has(r, "w", "n")) out.push(img);
      break;
    default:
      // e2fsck: -n opens the file system read-only.
      if (img && !has(r, "n")) out.push(img);
  }
  return out;
}

const LDCONFIG: Getopt = {
  short: "CfrcS",
  long: longs(["format"], ["print-cache", "verbose", "version", "help", "usage"]),
};
/**
 * glibc's ldconfig: -l links each library given beside it and exits (no cache). Else links
 * in each folder given and, unless -n, in the system's folders and those ld.so.conf lists
 * (under -r ROOT: in ROOT, whose ld.so.conf it reads), unless -X; and unless -N or -n its
 * cache (-C F, else /etc/ld.so.cache) and aux-cache (/var/cache/ldconfig, not with -i), under
 * ROOT too. -C F alone still links in the system's folders. Under -r ROOT every path it is
 * given is ROOT's, relative or not (chroot(), or chroot_canon() when it may not): `-r R -l
 * lib/x.so` links in R/lib, `-r R -C c` writes R/c, wherever the command starts.
 */
function ldconfigWrites(c: SimpleCommand): ProgramWrite[] {
  const r = getopt(c.argv, 1, LDCONFIG);
  if (has(r, "p", "print-cache", "V", "version", "?", "help", "usage")) return [];
  const root = values(r, "r").at(-1);
  const under = (w: ProgramWrite): ProgramWrite =>
    root ? { value: `${root.value}/${w.value}`, at: c.argDynamic[w.at] ? w.at : root.at } : w;
  if (has(r, "l")) return r.operands.map((o) => under({ value: posix.dirname(o.value), at: o.at }));
  const out: ProgramWrite[] = [];
  if (!has(r, "X")) {
    out.push(...r.operands.map(under));
    if (!has(r, "n")) out.push(root ?? implied("/"));
  }
  if (!has(r, "N") && !has(r, "n")) {
    const cache = values(r, "C").at(-1);
    if (cache) out.push(under(cache));
    else
      out.push(root ? { value: `${root.value}/etc/ld.so.cache`, at: root.at } : implied("/etc/ld.so.cache"));
    const aux = root
      ? { value: `${root.value}/var/cache/ldconfig`, at: root.at }
      : implied("/var/cache/ldconfig");
    if (!has(r, "i")) out.push(aux);
  }
  return out;
}

/** blkid's getopt letters that take a value; -c and -w name its cache file (/dev/null: none). */
const BLKID: Getopt = { short: "cHLnoOsStuUw", long: {} };

/** gpgv's options that take a value (gpg's argparse: `--opt V` or `--opt=V`, any unique prefix). */
const GPGV: Getopt = {
  short: "o",
  long: longs(
    [
      "keyring",
      "output",
      "status-fd",
      "logger-fd",
      "log-file",
      "homedir",
      "weak-digest",
      "assert-pubkey-algo",
    ],
    ["quiet", "verbose", "ignore-time-conflict", "enable-special-filenames"],
  ),
};

/** The letters of util-linux fsck's own options: every other letter of a cluster goes to the checker. */
const FSCK_OWN = "ACNTMPRVlrst?-";

/**
 * util-linux fsck runs fsck.TYPE on each file system it is given: a word that begins with `/`
 * (before `--`) or holds `=` (a TAG=VALUE spec, or any word: `--extract=DIR` reaches
 * fsck.cramfs so). Every other word, and all after `--`, it passes to each checker, and so
 * the letters of a cluster that are not its own (`-yz/F` passes `-yz/F`; after a `-` in the
 * cluster, all: `--N X` passes e2fsck `-N X`, a device name, not fsck's -N): their files
 * (e2fsck's -z UNDO and -j JOURNAL, any operand) are written too. Without a file system (or
 * with -A) it checks those /etc/fstab or $LIBMOUNT_FSTAB lists: `/`. -N runs nothing.
 */
function fsckWrites(argv: readonly string[]): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  const passed: string[] = ["fsck.TYPE"];
  const passedAt: number[] = [0];
  let devices = 0;
  let all = false;
  let passOn = false;
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    if ((a.startsWith("/") && !passOn) || a.includes("=")) {
      devices++;
      out.push({ value: a, at });
      if (a.includes("=")) out.push({ value: a.slice(a.indexOf("=") + 1), at });
      continue;
    }
    if (passOn || !a.startsWith("-")) {
      passed.push(a);
      passedAt.push(at);
      continue;
    }
    if (a === "--help" || a === "--version") return [];
    const word = at;
    let theirs = "";
    for (let j = 1; j < a.length; j++) {
      const l = a[j]!;
      if (passOn || !FSCK_OWN.includes(l)) {
        theirs += l;
        continue;
      }
      if (l === "N") return [];
      if (l === "A") all = true;
      if (l === "-") passOn = true;
      const rest = a.slice(j + 1);
      const next = argv[at + 1] ?? "";
      if (l === "t") {
        if (rest === "") at++; // -t TYPE
        break;
      }
      // -C FD and -r FD: a number attached, or the next word when it is one.
      if (l === "C" && /^[0-9]+$/.test(rest)) break;
      if (l === "r" && rest !== "") break;
      if ((l === "C" || l === "r") && rest === "" && /^[0-9]+$/.test(next)) at++;
    }
    if (theirs !== "") {
      passed.push(`-${theirs}`);
      passedAt.push(word);
    }
  }
  const r = getopt(passed, 1, { short: E2FS.e2fsck!, long: {} });
  for (const w of [...values(r, "z", "j"), ...r.operands]) out.push({ value: w.value, at: passedAt[w.at]! });
  if (all || devices === 0) out.push(implied("/"));
  return out;
}

/** fsck.cramfs extracts into --extract=DIR (any prefix of the name; the value only after `=`). */
function cramfsWrites(argv: readonly string[]): ProgramWrite[] {
  return argv.flatMap((a, at) => {
    const m = /^--(e[a-z]*)=/.exec(a);
    return m && "extract".startsWith(m[1]!) ? [{ value: a.slice(m[0].length), at }] : [];
  });
}

/**
 * dpkg-divert (dpkg's own option reading: whole long names, `--opt V` or `--opt=V`). Adding
 * or removing a diversion rewrites the diversions file in --admindir (ROOT/var/lib/dpkg with
 * --root; else $DPKG_ADMINDIR or /var/lib/dpkg: `/`); --rename moves FILE to its diverted
 * name (--divert, else FILE.distrib; on --remove, the one the database holds) under --instdir
 * or --root (else $DPKG_ROOT: `/`). --test and the queries write nothing.
 */
function dpkgDivertWrites(c: SimpleCommand): ProgramWrite[] {
  const argv = c.argv;
  const opts: Record<string, ProgramWrite[]> = { admindir: [], instdir: [], root: [], divert: [] };
  const files: ProgramWrite[] = [];
  let action = "add";
  let rename = false;
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    if (a === "--") {
      for (let k = at + 1; k < argv.length; k++) files.push({ value: argv[k]!, at: k });
      break;
    }
    const m = /^--([a-z-]+)(=(.*))?$/s.exec(a);
    if (!m) {
      if (!a.startsWith("-") || a === "-") files.push({ value: a, at });
      else if (a === "-?") action = "help";
      continue;
    }
    const name = m[1]!;
    if (["package", "admindir", "instdir", "root", "divert"].includes(name)) {
      const value = m[2] !== undefined ? { value: m[3]!, at } : { value: argv[at + 1] ?? "", at: ++at };
      opts[name]?.push(value);
    } else if (name === "rename" || name === "no-rename") rename = name === "rename";
    else if (name === "test") return [];
    else if (!["local", "quiet"].includes(name)) action = name;
  }
  if (action !== "add" && action !== "remove") return [];
  const roots = opts.root!;
  const admin = [...opts.admindir!, ...roots.map((r) => ({ value: `${r.value}/var/lib/dpkg`, at: r.at }))];
  const out: ProgramWrite[] = admin.length > 0 ? admin : [implied("/")];
  if (!rename) return out;
  const insts = [...opts.instdir!, ...roots];
  if (insts.length === 0) return [...out, implied("/")];
  const under = (base: ProgramWrite, w: ProgramWrite): ProgramWrite => ({
    value: `${base.value}${w.value}`,
    at: c.argDynamic[w.at] ? w.at : base.at,
  });
  for (const inst of insts) {
    for (const f of files) {
      out.push(under(inst, f));
      const diverted = opts.divert!.map((d) => under(inst, d));
      if (diverted.length > 0) out.push(...diverted);
      else if (action === "add") out.push(under(inst, { value: `${f.value}.distrib`, at: f.at }));
      else out.push(inst);
    }
  }
  return out;
}

/**
 * The tools that make a file system or swap area, or rewrite one's signatures and labels,
 * in the image a regular file holds: mke2fs (mkfs.ext2/3/4; the image unless -n, and -z
 * UNDO), mkfs.minix, mkfs.bfs, mkswap (the image), mkfs.cramfs DIR OUT (OUT), util-linux's
 * mkfs (every word it passes to mkfs.TYPE but -t's), `wipefs -a/-o` (not -n) and `swaplabel
 * -L/-U`. Each one's getopt letters that take a value.
 */
const MKFS: Record<string, string> = {
  mke2fs: "bdegilmorstCEGIJLMNORTUz",
  "mkfs.minix": "nil",
  "mkfs.bfs": "NVFl",
  mkswap: "pLUeo",
  "mkfs.cramfs": "beinN",
  wipefs: "boOt",
  swaplabel: "LU",
};
for (const e of ["mkfs.ext2", "mkfs.ext3", "mkfs.ext4"]) MKFS[e] = MKFS.mke2fs!;

function mkfsWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  if (name === "mkfs") {
    return argv.flatMap((a, at) =>
      at > 0 && !a.startsWith("-") && argv[at - 1] !== "-t" ? [{ value: a, at }] : [],
    );
  }
  const r = getopt(argv, 1, { short: MKFS[name]!, long: {} });
  const [img, out] = r.operands;
  if (name === "mkfs.cramfs") return out ? [out] : [];
  if (name === "wipefs") return has(r, "a", "o") && !has(r, "n") ? r.operands : [];
  if (name === "swaplabel") return has(r, "L", "U") ? r.operands : [];
  if (name.startsWith("mkfs.ext") || name === "mke2fs")
    return has(r, "n") ? [] : [...values(r, "z"), ...(img ? [img] : [])];
  return img ? [img] : [];
}

/** faillock --reset rewrites the user's tally in --dir DIR (else /var/run/faillock). */
function faillockWrites(argv: readonly string[]): ProgramWrite[] {
  if (!argv.includes("--reset")) return [];
  const dirs = argv.flatMap((a, at) =>
    a === "--dir" && at + 1 < argv.length ? [{ value: argv[at + 1]!, at: at + 1 }] : [],
  );
  return dirs.length > 0 ? dirs : [implied("/var/run/faillock")];
}

export const SYSTEM_TOOL_NAMES = [...Object.keys(E2FS), "ldconfig", "blkid", "gpgv"];
SYSTEM_TOOL_NAMES.push("fsck", "fsck.cramfs", "fsck.minix", "e2undo", "e4defrag", "dpkg-divert");
SYSTEM_TOOL_NAMES.push(...Object.keys(MKFS), "mkfs", "faillock", "e4crypt");

export function systemToolWrites(name: string, c: SimpleCommand): ProgramWrite[] {
  const argv = c.argv;
  if (name in E2FS) return e2fsWrites(name, argv);
  if (name in MKFS || name === "mkfs") return mkfsWrites(name, argv);
  switch (name) {
    case "faillock":
      return faillockWrites(argv);
    case "e4crypt": {
      // e4crypt set_policy [-v] POLICY DIR...: each DIR's encryption policy is set.
      const ops = getopt(argv, 1, { short: "", long: {} }).operands;
      return ops[0]?.value === "set_policy" ? ops.slice(2) : [];
    }
    case "ldconfig":
      return ldconfigWrites(c);
    case "blkid":
      return values(getopt(argv, 1, BLKID), "c", "w").filter((c) => c.value !== "/dev/null");
    case "gpgv":
      return values(getopt(argv, 1, GPGV), "o", "output").filter((o) => o.value !== "-");
    case "fsck":
      return fsckWrites(argv);
    case "fsck.cramfs":
      return cramfsWrites(argv);
    case "fsck.minix": {
      // It opens the image for writing only to repair it (-a, -r).
      const r = getopt(argv, 1, { short: "", long: longs([], ["auto", "repair", "list", "super"]) });
      return has(r, "a", "r", "auto", "repair") ? r.operands : [];
    }
    case "e2undo": {
      // e2undo [-fhnv] [-o OFFSET] [-z UNDO] TRANSACTION FS: replays into FS (and the
      // transaction file's header) unless -n.
      const r = getopt(argv, 1, { short: "oz", long: {} });
      return [...values(r, "z"), ...(has(r, "n", "h") ? [] : r.operands.slice(0, 2))];
    }
    case "e4defrag": {
      // Each file, or every file under a folder, is rewritten in place; -c only reports.
      const r = getopt(argv, 1, { short: "", long: {} });
      return has(r, "c") ? [] : r.operands;
    }
    default:
      return dpkgDivertWrites(c);
  }
}
