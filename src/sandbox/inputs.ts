// sandbox/inputs.ts — what `inputs` (goal.submit) may bring into a goal's /inputs. The
// daemon reads them with its own rights, so the paths are confined before anything is
// copied: nothing inside AIDO_HOME (its keys, its database, other goals' folders) except
// the inbox/ folder run-aido.sh stages files into, and nothing that contains AIDO_HOME. A
// named path is resolved once (the user named it, links in it included); inside it a
// symbolic link is never followed: it is copied as a link, whose text resolves inside the
// container, never on the host. Fifos, sockets and devices are refused. The total size and
// the number of entries are capped (sandbox.inputs_max_mb, sandbox.inputs_max_files).
// Kernel pseudo-filesystems (/proc, /sys, cgroup, debugfs...) are refused: /proc/self is
// the daemon itself (its environment holds the provider API keys, its maps, its fds).
// checkInputs() walks everything at submit time, so a refused goal is refused before a
// byte is copied; copyInputs() walks again as it copies (the tree may have changed since),
// into a staging folder that is moved into place only once complete. The copy never looks
// a path up twice: each folder is opened once (O_NOFOLLOW), checked to be the entry it
// lstat'ed, and its entries are reached through /proc/self/fd/<fd>/<name>, so a folder of
// the tree swapped for a link while it is copied (by whoever can write the tree) cannot
// send the daemon into AIDO_HOME: the copy carries on in the folder it opened.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  promises as fsp,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  type Stats,
  statfsSync,
} from "node:fs";
import { basename, dirname, isAbsolute, join, sep } from "node:path";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { isStrictlyWithin, isWithin } from "../fs/within.js";
import { removeTreeNoFollow } from "./folders.js";
import { type InputReader, unreadableBy } from "./input-reader.js";
import { fdPath } from "./untrusted-files.js";

export type { InputReader } from "./input-reader.js";

/** One checked input: the resolved path copied from, the name it gets under /inputs. */
export interface CheckedInput {
  path: string;
  name: string;
  /** The folder the input must lie in (InputRules.within), checked again on the opened entry as it is copied. */
  within?: string;
  /** What of it may be copied (InputRules.reader), checked again on every entry as it is copied. */
  reader?: InputReader;
}

export interface InputRules {
  /** AIDO_HOME. */
  home: string;
  maxBytes: number;
  /** Files, folders and links, all inputs together. */
  maxEntries: number;
  /**
   * The real path of a folder every input must lie in (goal.submit `inputs_within`: an MCP
   * session's project folder). Checked on the resolved path and again on the entry opened
   * for the copy, so a folder of the path swapped for a link meanwhile cannot lead out of it.
   */
  within?: string;
  /** Every entry, at submit and as it is copied, must be one this session may read (within its root). */
  reader?: InputReader;
}

/** The folder under AIDO_HOME from which inputs may come (run-aido.sh stages files there). */
export const INBOX = "inbox";

const CHUNK = 1 << 20;
const MIB = 1024 * 1024;
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** O_NONBLOCK: a fifo swapped in for a file must not hang the daemon on open. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** statfs f_type of the kernel's pseudo-filesystems: the daemon's own state, never user files. */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, "proc"],
  [0x62656572, "sysfs"],
  [0x64626720, "debugfs"],
  [0x74726163, "tracefs"],
  [0x73636673, "securityfs"],
  [0x27e0eb, "cgroup"],
  [0x63677270, "cgroup2"],
  [0x62656570, "configfs"],
  [0xcafe4a11, "bpf"],
  [0xde5e81e4, "efivarfs"],
  [0x6165676c, "pstore"],
]);

/** The rules of a config: AIDO_HOME, sandbox.inputs_max_mb and sandbox.inputs_max_files. */
export function inputRules(config: Pick<Config, "home" | "sandbox">): InputRules {
  return {
    home: config.home,
    maxBytes: config.sandbox.inputsMaxMb * MIB,
    maxEntries: config.sandbox.inputsMaxFiles,
  };
}

/** Check every input against the rules, walking each tree; throws naming the input and path. */
export function checkInputs(paths: readonly unknown[], rules: InputRules): CheckedInput[] {
  const tally = new Tally(rules);
  const names = new Set<string>();
  return paths.map((p, i) => {
    const field = `inputs.${i}`;
    if (typeof p !== "string" || !isAbsolute(p))
      refuse(ErrorCode.invalidInput, field, "must be an absolute path");
    const named = p as string;
    let real: string;
    try {
      real = realpathSync(named);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") refuse(ErrorCode.notFound, field, `${named} does not exist`, named);
      refuse(ErrorCode.invalidInput, field, `${named} cannot be read: ${errorMessage(e)}`, named);
    }
    confine(field, named, real, rules.home);
    if (rules.within !== undefined) confineWithin(field, named, real, rules.within);
    refusePseudoFs(field, real, named);
    const name = inputName(named, real);
    if (names.has(name))
      refuse(ErrorCode.invalidInput, field, `a second input named "${name}" (${named})`, named);
    names.add(name);
    walkSync(real, field, tally, rules.reader);
    return {
      path: real,
      name,
      ...(rules.within !== undefined ? { within: rules.within } : {}),
      ...(rules.reader !== undefined ? { reader: rules.reader } : {}),
    };
  });
}

/**
 * Copy checked inputs into `inputsDir` (it must exist). Everything is copied into a staging
 * folder beside it, walking with lstat again and enforcing the same rules; only a complete
 * copy is moved in. On any refusal nothing lands in `inputsDir`.
 */
export async function copyInputs(
  inputs: readonly CheckedInput[],
  inputsDir: string,
  rules: InputRules,
): Promise<void> {
  if (inputs.length === 0) return;
  const staging = join(dirname(inputsDir), `.inputs-${randomBytes(6).toString("hex")}`);
  await fsp.mkdir(staging, { mode: 0o755 });
  try {
    const tally = new Tally(rules);
    for (const [i, input] of inputs.entries()) {
      const field = `inputs.${i}`;
      await copyTop(input, join(staging, input.name), field, tally, rules.home);
    }
    for (const input of inputs) await fsp.rename(join(staging, input.name), join(inputsDir, input.name));
  } finally {
    removeTreeNoFollow(staging);
  }
}

/** Running totals of one submission, refused the moment a cap is passed. */
class Tally {
  private bytes = 0;
  private entries = 0;
  constructor(private readonly rules: InputRules) {}

  /** Count `entries` more (a file, folder or link: 1; more bytes of one already counted: 0). */
  add(field: string, path: string, bytes: number, entries = 1): void {
    this.entries += entries;
    this.bytes += bytes;
    if (this.entries > this.rules.maxEntries) {
      refuse(
        ErrorCode.limitExceeded,
        field,
        `the inputs hold more than ${this.rules.maxEntries} files, folders and links (sandbox.inputs_max_files); ${path} is past it`,
        path,
      );
    }
    if (this.bytes > this.rules.maxBytes) {
      const mb = Math.floor(this.rules.maxBytes / MIB);
      refuse(
        ErrorCode.limitExceeded,
        field,
        `the inputs total more than ${mb} MiB (sandbox.inputs_max_mb); ${path} goes past it`,
        path,
      );
    }
  }
}

/**
 * The name an input gets under /inputs: the last name the user gave, or, where that is no
 * name (a trailing "/", "." or ".."), the resolved folder's (else "dir/.." copied onto the
 * goal's own folder and failed it with EEXIST).
 */
function inputName(named: string, real: string): string {
  const given = basename(named);
  return given === "" || given === "." || given === ".." ? basename(real) : given;
}

/** Inside the folder `within` (a real path), or refused naming it. */
function confineWithin(field: string, named: string, real: string, folder: string): void {
  if (!isWithin(folder, real))
    refuse(
      ErrorCode.policyDenied,
      field,
      `${named} is outside ${folder}, the folder the inputs must come from`,
      named,
    );
}

/** Not inside AIDO_HOME (but its inbox/), and not a folder that contains AIDO_HOME. */
function confine(field: string, named: string, real: string, home: string): void {
  let realHome: string;
  try {
    realHome = realpathSync(home);
  } catch {
    realHome = home;
  }
  const inbox = join(realHome, INBOX);
  const shown = named === real ? named : `${named} (${real})`;
  if (isStrictlyWithin(inbox, real)) return;
  if (isWithin(realHome, real)) {
    refuse(
      ErrorCode.capabilityDenied,
      field,
      `${shown} is inside AIDO_HOME (${realHome}), which holds the runtime's key and database; only files under ${inbox}${sep} may be handed in`,
      named,
    );
  }
  if (isWithin(real, realHome)) {
    refuse(
      ErrorCode.capabilityDenied,
      field,
      `${shown} contains AIDO_HOME (${realHome}); hand in a narrower folder`,
      named,
    );
  }
}

function walkSync(path: string, field: string, tally: Tally, reader: InputReader | undefined): void {
  const st = lstatOrRefuse(path, field);
  if (reader !== undefined) mayRead(field, path, path, st, reader);
  if (st.isSymbolicLink() || st.isFile()) {
    tally.add(field, path, st.isFile() ? st.size : 0);
    return;
  }
  if (!st.isDirectory())
    refuse(
      ErrorCode.invalidInput,
      field,
      `${path} is ${kindOf(st)}; only files, folders and links are copied`,
      path,
    );
  tally.add(field, path, 0);
  let names: string[];
  try {
    names = readdirSync(path);
  } catch (e) {
    refuse(ErrorCode.invalidInput, field, `${path} cannot be read: ${errorMessage(e)}`, path);
  }
  for (const name of names) walkSync(join(path, name), field, tally, reader);
}

/**
 * Copy one checked input. It is opened first (never through a link), and where the opened
 * entry is now is confined again: the path it was checked at may have been swapped since.
 */
async function copyTop(
  input: CheckedInput,
  to: string,
  field: string,
  tally: Tally,
  home: string,
): Promise<void> {
  const { path, within, reader } = input;
  const st = lstatOrRefuse(path, field);
  if (st.isSymbolicLink())
    refuse(ErrorCode.invalidInput, field, `${path} changed into a link since it was checked`, path);
  const fd = openOrRefuse(path, st.isDirectory() ? DIR_FLAGS : READ_FLAGS, field);
  try {
    sameEntry(fd, st, path, field);
    const now = readlinkSync(fdPath(fd));
    confine(field, path, now, home);
    if (within !== undefined) confineWithin(field, path, now, within);
    const read = reader === undefined ? undefined : { reader, at: now };
    refusePseudoFs(field, fdPath(fd), path);
    if (read !== undefined) mayRead(field, path, now, st, read.reader);
    if (st.isDirectory()) await copyDir(fd, path, to, field, tally, read);
    else if (st.isFile()) await copyFile(fd, path, to, field, tally);
    else
      refuse(
        ErrorCode.invalidInput,
        field,
        `${path} is ${kindOf(st)}; only files, folders and links are copied`,
        path,
      );
  } finally {
    closeSync(fd);
  }
}

/** Where a session's reads are checked as a folder is copied: the real path the opened folder is at. */
interface ReadAt {
  reader: InputReader;
  at: string;
}

/**
 * Copy the entries of the open folder `dirFd` (shown as `shown`) into the new folder `to`;
 * with `read`, each only if the session may read it where the opened folder is.
 */
async function copyDir(
  dirFd: number,
  shown: string,
  to: string,
  field: string,
  tally: Tally,
  read?: ReadAt,
): Promise<void> {
  tally.add(field, shown, 0);
  await fsp.mkdir(to, { mode: 0o755 });
  await fsp.chmod(to, 0o755);
  for (const name of readdirSync(fdPath(dirFd))) {
    const at = fdPath(dirFd, name);
    const from = join(shown, name);
    const st = lstatOrRefuse(at, field, from);
    const inner = read === undefined ? undefined : { reader: read.reader, at: join(read.at, name) };
    if (inner !== undefined) mayRead(field, from, inner.at, st, inner.reader);
    if (st.isSymbolicLink()) {
      tally.add(field, from, 0);
      await fsp.symlink(readlinkSync(at), join(to, name));
    } else if (st.isFile() || st.isDirectory()) {
      const fd = openOrRefuse(at, st.isDirectory() ? DIR_FLAGS : READ_FLAGS, field, from);
      try {
        sameEntry(fd, st, from, field);
        if (st.isDirectory()) {
          refusePseudoFs(field, fdPath(fd), from);
          await copyDir(fd, from, join(to, name), field, tally, inner);
        } else await copyFile(fd, from, join(to, name), field, tally);
      } finally {
        closeSync(fd);
      }
    } else {
      refuse(
        ErrorCode.invalidInput,
        field,
        `${from} is ${kindOf(st)}; only files, folders and links are copied`,
        from,
      );
    }
  }
}

/** Content only, from the open file `srcFd`; the copy is 0644 (0755 if the owner could execute). */
async function copyFile(srcFd: number, from: string, to: string, field: string, tally: Tally): Promise<void> {
  const st = fstatSync(srcFd);
  tally.add(field, from, st.size);
  const mode = st.mode & 0o100 ? 0o755 : 0o644;
  // Through the open fd's magic link (following it is the point: it is the inode opened).
  const src = await fsp.open(fdPath(srcFd), constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const dst = await fsp.open(to, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    try {
      await dst.chmod(mode);
      const buf = Buffer.allocUnsafe(CHUNK);
      let copied = 0;
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) break;
        copied += bytesRead;
        // A file that grew since it was counted is counted again as it grows.
        if (copied > st.size) tally.add(field, from, Math.min(bytesRead, copied - st.size), 0);
        for (let off = 0; off < bytesRead; ) off += (await dst.write(buf, off, bytesRead - off)).bytesWritten;
      }
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

function openOrRefuse(path: string, flags: number, field: string, shown = path): number {
  try {
    return openSync(path, flags);
  } catch (e) {
    return refuse(ErrorCode.invalidInput, field, `${shown} cannot be read: ${errorMessage(e)}`, shown);
  }
}

/**
 * The session of `reader` may read the host path `real` (inside its root): as its /workspace
 * path, matched by a read glob and by no deny glob; refused naming it otherwise.
 */
function mayRead(field: string, shown: string, real: string, st: Stats, reader: InputReader): void {
  const why = unreadableBy(reader, real, st);
  if (why !== undefined)
    refuse(
      ErrorCode.policyDenied,
      field,
      `${shown} is not readable by the session that hands it in (${why}); a session hands in only what it may read`,
      shown,
    );
}

/** The opened entry is the one lstat saw: not swapped between the two. */
function sameEntry(fd: number, st: Stats, shown: string, field: string): void {
  const now = fstatSync(fd);
  if (now.ino !== st.ino || now.dev !== st.dev || now.isDirectory() !== st.isDirectory())
    refuse(ErrorCode.invalidInput, field, `${shown} changed while being copied`, shown);
}

/** /proc, /sys and their kin hold the daemon's own state (its environment: the provider keys). */
function refusePseudoFs(field: string, path: string, shown: string): void {
  let type: number;
  try {
    type = statfsSync(path).type;
  } catch (e) {
    refuse(ErrorCode.invalidInput, field, `${shown} cannot be read: ${errorMessage(e)}`, shown);
  }
  const fs = PSEUDO_FS.get(type);
  if (fs !== undefined) {
    refuse(
      ErrorCode.capabilityDenied,
      field,
      `${shown} is on the kernel's ${fs} filesystem (the daemon's own state, such as its environment), not a file of yours`,
      shown,
    );
  }
}

function lstatOrRefuse(path: string, field: string, shown = path): Stats {
  try {
    return lstatSync(path);
  } catch (e) {
    return refuse(ErrorCode.invalidInput, field, `${shown} cannot be read: ${errorMessage(e)}`, shown);
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a fifo";
  if (st.isSocket()) return "a socket";
  return "a device";
}

function refuse(code: ErrorCode, field: string, message: string, path?: string): never {
  throw new AidoError(code, `${field}: ${message}`, { field, ...(path ? { path } : {}) });
}
