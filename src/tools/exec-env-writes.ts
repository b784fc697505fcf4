// tools/exec-env-writes.ts — variables that decide what a program writes (`TMPDIR=D mktemp`,
// `UNZIP="-d D" unzip`, `POSIXLY_CORRECT=1 gzip F -c`): the analysis reads a program's writes
// from its command line, so a command that sets one for a program it would judge is refused
// (exec-paths.ts asks before judging each command's words).

import { AidoError, ErrorCode } from "../errors.js";
import { COMPILER_NAMES } from "../security/shell-writes-build.js";

/**
 * Variables from which a program reads options or the folder it writes in (`UNZIP="-d D"`,
 * `TMPDIR=D mktemp`, `GIT_DIR=D git init`): set by the command, its writes are not those judged.
 * (GZIP is not: gzip 1.12 refuses -c, -S and -d there.)
 */
const WRITE_ENV: Record<string, readonly string[]> = {
  unzip: ["UNZIP", "UNZIPOPT"],
  bzip2: ["BZIP", "BZIP2"],
  bunzip2: ["BZIP", "BZIP2"],
  xz: ["XZ_OPT", "XZ_DEFAULTS"],
  unxz: ["XZ_OPT", "XZ_DEFAULTS"],
  lzma: ["XZ_OPT", "XZ_DEFAULTS"],
  unlzma: ["XZ_OPT", "XZ_DEFAULTS"],
  mktemp: ["TMPDIR"],
  tempfile: ["TMPDIR"],
  lesskey: ["LESSKEY", "HOME"],
  py3compile: ["PYTHONPYCACHEPREFIX"],
  tar: ["TAPE", "TAR_OPTIONS"],
  git: ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"],
  // Dir::Cache in the configuration APT_CONFIG names: apt-cache writes its caches there.
  "apt-cache": ["APT_CONFIG"],
};
// e2fsck's configuration file names a log it writes (log_filename, log_dir), and e2fsprogs'
// undo files go to E2FSPROGS_UNDO_DIR (`tune2fs -I` makes one unasked); fsck passes both on.
for (const e of ["e2fsck", "fsck.ext2", "fsck.ext3", "fsck.ext4", "fsck"])
  WRITE_ENV[e] = ["E2FSCK_CONFIG", "E2FSPROGS_UNDO_DIR"];
for (const e of ["tune2fs", "resize2fs", "e2undo"]) WRITE_ENV[e] = ["E2FSPROGS_UNDO_DIR"];

/**
 * Where the variable can make a command that writes nothing write: `TAPE=F tar -c DIR` writes
 * F (stdout without it), `UNZIP=-- unzip -l A` extracts (a `-` negates the -l after it),
 * `APT_CONFIG=F apt-cache policy` writes its caches, `E2FSCK_CONFIG=F e2fsck -n IMG` its log.
 */
const ENV_TURNS_WRITES_ON = new Set(["tar", "unzip", "apt-cache", "e2fsck", "fsck.ext2", "fsck.ext3"]);
ENV_TURNS_WRITES_ON.add("fsck.ext4");
// gcc and cpp write the dependency file DEPENDENCIES_OUTPUT / SUNPRO_DEPENDENCIES names (`-E` too).
for (const c of [...COMPILER_NAMES, ...COMPILER_NAMES.map((n) => `x86_64-linux-gnu-${n}`)]) {
  WRITE_ENV[c] = ["DEPENDENCIES_OUTPUT", "SUNPRO_DEPENDENCIES"];
  ENV_TURNS_WRITES_ON.add(c);
}

/**
 * Programs whose options turn their writes off (`gzip -c`, `patch --dry-run`, `mktemp -u`).
 * POSIXLY_CORRECT makes getopt stop at the first operand: `POSIXLY_CORRECT=1 gzip F -c`
 * compresses F (and a file named -c), `touch F -d X` makes ./-d and ./X. A command that sets
 * it is refused where the program writes or is one of these.
 */
const WRITES_OFF_BY_OPTION = new Set(["gzip", "gunzip", "uncompress", "xz", "unxz", "lzma", "unlzma"]);
WRITES_OFF_BY_OPTION.add("patch").add("mktemp");

/**
 * Refuse command `name` (which writes what the analysis judges when `writes`) when the command
 * sets a variable that moves or turns on its writes, or POSIXLY_CORRECT where it matters.
 */
export function refuseEnvWrites(name: string, writes: boolean, assignedNames: readonly string[]): void {
  const env = WRITE_ENV[name]?.find((v) => assignedNames.includes(v));
  if (env && (writes || ENV_TURNS_WRITES_ON.has(name))) {
    throw new AidoError(
      ErrorCode.policyDenied,
      `cannot judge what ${name} writes: the command sets ${env}, which gives ${name} options or a folder the analysis does not read; give them on its command line`,
      { rule: "unjudgeable" },
    );
  }
  if (assignedNames.includes("POSIXLY_CORRECT") && (writes || WRITES_OFF_BY_OPTION.has(name))) {
    throw new AidoError(
      ErrorCode.policyDenied,
      `cannot judge what ${name} writes: the command sets POSIXLY_CORRECT, which makes ${name} take options after its first operand for files`,
      { rule: "unjudgeable" },
    );
  }
}
