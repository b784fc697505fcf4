// security/shell-writes.ts — the files programs write that only the program knows the
// direction of: archives (`tar -cf F`, `tar -x` into its folder), compressors (`gzip F`
// writes F.gz and removes F), `unzip -d DIR`, `patch -o`, git's new repositories and
// worktrees, openssl's `-out`, and through the tables of the files below, many more. writeTargets (shell-operands.ts) adds them,
// so the exec tool asks file_write for each and the system-path rule sees them.
//
// Where the written name comes from the data (a tar or zip archive's members, a patch's
// file names, a clone's folder named after its URL, split's default `xaa`), the folder the
// files are made in is judged as written (`implied`: a path that is no argument: judged
// from every folder the command may start in). Where the names may lead anywhere (`tar -xP`,
// `unzip -:`, `xz --files=F`), `/` is written: the policy's system-path rule refuses it.
// Archivers and compressors are read in shell-writes-archives.ts; the small file utilities
// (split, csplit, uniq, shuf, mktemp, install -d, link, rename.ul, tree, ptx, the programs
// whose operands are written) in shell-writes-fileutils.ts; binutils, tic, the zip
// utilities and gzip's scripts in shell-writes-tools.ts; compilers and build tools in
// shell-writes-build.ts; perl's, python's and dpkg's tools, gcov, gprof, tempfile, savelog,
// localedef, lesskey and setterm in shell-writes-devtools.ts; e2fsprogs, ldconfig, blkid
// and gpgv in shell-writes-system.ts.

import { posix } from "node:path";
import type { SimpleCommand } from "./shell.js";
import { type Getopt, getopt, has, longs, values } from "./shell-getopt.js";
import { gitSubcommandArgv } from "./shell-git.js";
import {
  arWrites,
  COMPRESSOR_NAMES,
  compressorWrites,
  tarWrites,
  unzipWrites,
  zipWrites,
} from "./shell-writes-archives.js";
import { BUILD_NAMES, buildWrites } from "./shell-writes-build.js";
import { DEVTOOL_NAMES, devtoolWrites } from "./shell-writes-devtools.js";
import { FILE_UTIL_NAMES, fileUtilWrites } from "./shell-writes-fileutils.js";
import { SYSTEM_TOOL_NAMES, systemToolWrites } from "./shell-writes-system.js";
import { objcopyReads, TOOL_NAMES, toolWrites } from "./shell-writes-tools.js";

/** A written path: `at` is the argv index holding it (-1: implied, no argument names it). */
export interface ProgramWrite {
  value: string;
  at: number;
  /**
   * The path lies in $TMPDIR, `value` spelling it with /tmp (the default when TMPDIR is not
   * set): the exec tool puts it in the caller's private folder when its exec runs with
   * TMPDIR there (tools/exec-paths.ts). Only on a path no argument holds (`at` -1).
   */
  inTmpdir?: true;
  /** The word's name is removed (`tar --remove-files`, `zip -m`): security/shell-operands.ts removedOperands. */
  removes?: true;
}

const PATCH: Getopt = {
  short: "BdDFgiopVYzrx",
  long: longs(
    ["prefix", "directory", "ifdef", "fuzz", "get", "input", "output", "strip", "version-control"],
    ["dry-run", "backup", "reverse", "forward", "batch", "force"],
  ),
};
Object.assign(PATCH.long, {
  "basename-prefix": true,
  suffix: true,
  "reject-file": true,
  "reject-format": true,
});
Object.assign(PATCH.long, { quoting: true, "read-only": true, debug: true });
/**
 * patch's writes. It moves to each `-d DIR` as it reads the option (patch.c), so every
 * relative name it writes — `-o`, `-r`, the file patched — lies under the folders `-d`
 * composes (not under the cwd; under a run-time `-d "$D"` the name is a run-time one). It
 * backs a file up (with -b, and by default when a hunk does not match exactly) to `-B
 * PREFIX` + its name, which may be any folder, or to DIR/`-Y PREFIX`BASENAME.
 */
function patchWrites(c: SimpleCommand): ProgramWrite[] {
  const r = getopt(c.argv, 1, PATCH);
  if (has(r, "dry-run")) return [];
  const under = underPatchDirs(c, r);
  // `-o -` prints, but through a temporary file made beside `-`: in the (-d) folder.
  const out = values(r, "o", "output", "r", "reject-file").map((o) =>
    o.value === "-" ? { value: "./-", at: o.at } : o,
  );
  const file = r.operands[0];
  // Without -o it edits the file named, or the files the patch names: the -d folder or the cwd.
  if (!has(r, "o", "output")) out.push(file ?? { value: ".", at: -1 });
  for (const b of values(r, "B", "prefix")) {
    // The name comes from the patch without an operand: the folder PREFIX leads to.
    out.push({ value: file ? b.value + file.value : posix.dirname(`${b.value}x`), at: b.at });
  }
  for (const y of values(r, "Y", "basename-prefix")) {
    if (y.value.includes("/")) out.push({ value: "/", at: -1 });
  }
  return out.map(under);
}

/** A relative name patch opens, under the folders its -d options compose. */
function underPatchDirs(c: SimpleCommand, r: ReturnType<typeof getopt>): (w: ProgramWrite) => ProgramWrite {
  const dirs = values(r, "d", "directory");
  return (w) => {
    let { value, at } = w;
    for (const d of [...dirs].reverse()) {
      if (value.startsWith("/")) break;
      value = `${d.value}/${value}`;
      if (c.argDynamic[d.at]) at = d.at;
    }
    return { value, at };
  };
}

/**
 * The files a program reads from a folder other than where it starts: patch reads its `-i
 * PATCHFILE` and its second operand (the patch) after moving to each `-d DIR`. Empty without -d.
 * And the files a program reads after `NAME=` in an option's value, where the word is not a
 * path (objcopy `--add-section .x=F`).
 */
export function programReads(c: SimpleCommand, name: string): ProgramWrite[] {
  if (/^(x86_64-linux-gnu-)?objcopy$/.test(name)) return objcopyReads(c.argv);
  if (name !== "patch" || c.dynamic) return [];
  const r = getopt(c.argv, 1, PATCH);
  if (values(r, "d", "directory").length === 0) return [];
  return [...values(r, "i", "input"), ...r.operands.slice(1, 2)].map(underPatchDirs(c, r));
}

/** git's subcommands that make a repository or worktree in a folder an operand names (or its default). */
function gitWrites(argv: readonly string[]): ProgramWrite[] {
  const sub = gitSubcommandArgv(argv);
  if (!sub) return [];
  const shift = argv.length - sub.length;
  const at = (w: ProgramWrite): ProgramWrite => ({ value: w.value, at: w.at < 0 ? -1 : w.at + shift });
  const clone: Getopt = {
    short: "obujc",
    long: longs(
      ["origin", "branch", "upload-pack", "reference", "reference-if-able", "separate-git-dir", "depth"],
      ["bare", "mirror", "no-checkout", "recurse-submodules", "quiet", "local", "shared", "dissociate"],
    ),
  };
  for (const o of ["shallow-since", "shallow-exclude", "config", "server-option", "jobs", "template"])
    clone.long[o] = true;
  for (const o of ["filter", "bundle-uri", "ref-format", "object-format", "shared"]) clone.long[o] = true;
  clone.long.shared = false;
  const out: ProgramWrite[] = [];
  if (sub[1] === "clone") {
    const r = getopt(sub, 2, clone);
    out.push(...values(r, "separate-git-dir"));
    const [src, dest] = r.operands;
    if (dest) out.push(dest);
    else if (src) {
      // The folder git names after the URL (`git clone ../r` makes ./r): made in the cwd.
      const human = humanish(src.value, has(r, "bare", "mirror"));
      out.push({ value: human ?? ".", at: -1 });
    }
  } else if (sub[1] === "init") {
    const init: Getopt = {
      short: "b",
      long: longs(
        ["template", "separate-git-dir", "initial-branch", "object-format", "ref-format"],
        ["bare"],
      ),
    };
    init.long.shared = false;
    const r = getopt(sub, 2, init);
    out.push(...values(r, "separate-git-dir"));
    const dir = r.operands[0];
    out.push(dir ?? { value: has(r, "bare") ? "." : ".git", at: -1 });
  } else if (sub[1] === "worktree" && ["add", "move", "remove"].includes(sub[2] ?? "")) {
    const r = getopt(sub, 3, { short: "bB", long: longs(["reason"], ["force", "detach", "lock"]) });
    const ops = r.operands;
    out.push(...(sub[2] === "add" ? ops.slice(0, 1) : ops.slice(0, 2)));
  }
  const writes = out.map(at);
  if (out.length > 0) {
    // `git --git-dir=D init` makes the repository in D, --work-tree its files.
    for (let k = 1; k <= shift; k++) {
      const m = /^--(git-dir|work-tree)(=|$)/.exec(argv[k]!);
      if (m?.[2] === "=") writes.push({ value: argv[k]!.slice(m[0].length), at: k });
      else if (m && k + 1 <= shift) writes.push({ value: argv[k + 1]!, at: ++k });
    }
  }
  return writes;
}

/** The folder `git clone URL` makes: the URL's last part without `/.git` or `.git` (builtin/clone.c). */
function humanish(url: string, bare: boolean): string | undefined {
  let s = url.replace(/\/+$/, "").replace(/\/\.git$/, "");
  s = s.replace(/\.git$/, "").replace(/\/+$/, "");
  const base = s.slice(Math.max(s.lastIndexOf("/"), s.lastIndexOf(":")) + 1);
  if (base === "" || base === "." || base === "..") return undefined;
  return bare ? `${base}.git` : base;
}

/** openssl's options that name a file it writes, one dash or two, value separate or after `=`. */
const OPENSSL_OUT = new RegExp(
  "^--?(out|outdir|keyout|writerand|sigout|CAserial|rev_out|signer_out|out_sig|" +
    "sess_out|reqout|respout|certsout|msgfile|keylogfile)(=|$)",
);

/**
 * openssl's written files; and the serial file `x509 -CA F` reads and rewrites when it
 * exists (or -CAcreateserial makes), named after F: up to its last `.`, then `.srl` (x509.c).
 */
function opensslWrites(argv: readonly string[]): ProgramWrite[] {
  const out: ProgramWrite[] = [];
  let ca: ProgramWrite | undefined;
  for (let at = 1; at < argv.length; at++) {
    const a = argv[at]!;
    const caOpt = /^--?CA(=|$)/.exec(a);
    if (caOpt?.[1] === "=") ca = { value: a.slice(caOpt[0].length), at };
    else if (caOpt && at + 1 < argv.length) ca = { value: argv[at + 1]!, at: at + 1 };
    const m = OPENSSL_OUT.exec(a);
    if (!m) continue;
    if (m[2] === "=") out.push({ value: a.slice(m[0].length), at });
    else if (at + 1 < argv.length) out.push({ value: argv[at + 1]!, at: ++at });
  }
  if (ca && !argv.some((a) => /^--?CAserial(=|$)/.test(a))) {
    const dot = ca.value.lastIndexOf(".");
    out.push({ value: `${dot < 0 ? ca.value : ca.value.slice(0, dot)}.srl`, at: ca.at });
  }
  return out;
}

/** What `name` (a program of the table in the header) writes beyond what shell-operands.ts knows. */
export function programWrites(c: SimpleCommand, name: string): ProgramWrite[] {
  const argv = c.argv;
  if (COMPRESSOR_NAMES.includes(name)) return compressorWrites(name, argv);
  if (TOOL_NAMES.includes(name)) return toolWrites(name, argv);
  if (BUILD_NAMES.includes(name)) return buildWrites(name, argv);
  if (DEVTOOL_NAMES.includes(name)) return devtoolWrites(name, argv);
  if (SYSTEM_TOOL_NAMES.includes(name)) return systemToolWrites(name, c);
  if (FILE_UTIL_NAMES.includes(name)) return fileUtilWrites(name, argv);
  switch (name) {
    case "tar":
      return tarWrites(argv);
    case "patch":
      return patchWrites(c);
    case "unzip":
      return unzipWrites(argv);
    case "zip":
      return zipWrites(argv);
    case "ar":
      return arWrites(argv);
    case "git":
      return gitWrites(argv);
    case "openssl":
      return opensslWrites(argv);
    default:
      return [];
  }
}
