// humansandbox/store-dirs.ts — the evidence store (<project>/.aido/sandboxes/<id>/…) reached
// folder by folder, never through a link. Run as root in someone else's project (`sudo aido
// …`), the store is the person's: any of its folders can be renamed away and replaced by a
// link between root's look and root's use, or a link planted before. So root never acts on
// a store path: it opens the project, then each level (.aido, sandboxes, <id>, runs, a run)
// with O_DIRECTORY | O_NOFOLLOW through the descriptor of the level above, and makes,
// reads, writes, renames and removes entries through the descriptor of the folder they are
// in. Node has no openat/unlinkat, but a name under /proc/self/fd/N/ is resolved by the
// kernel in the folder held open at N (the magic link is that folder, not a path looked up
// again), which is what openat(N, name) and unlinkat(N, name) do.
//
// The project folder itself is opened once per command, as given (project.ts), and every
// level is reached from that descriptor. Its .aido and .aido/sandboxes are followed when
// they are links only when nobody else can put them there (project.ts followStore: not
// under root in someone else's project nor in a folder of root's others can write); every
// level below, and every level in such a project, is refused as a link.

import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { removeTreeNoFollow } from "../sandbox/folders.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import type { Project, ProjectOwner } from "./project.js";

export type { ProjectOwner };

const DIR = constants.O_RDONLY | constants.O_DIRECTORY;

/** The error for a store folder that is not one (a link, a file) where `shown` should be. */
export function notStoreFolder(shown: string): AidoError {
  return new AidoError(
    ErrorCode.sandboxFailed,
    `${shown} is not a folder of the evidence store (a link, or something else put there on the host): nothing is done through it`,
    { path: shown },
  );
}

/**
 * The folder `name` inside the open folder `parent`, opened without following a link
 * (`follow`: as the person's own store allows, see the header). `make`: made first (0755)
 * and, when made here and `give` is set, given to that owner on its descriptor.
 * Undefined when it is absent and not to be made.
 */
export function openDirIn(
  parent: number,
  name: string,
  shown: string,
  opts: { follow?: boolean; make?: boolean; give?: ProjectOwner } = {},
): number | undefined {
  let made = false;
  if (opts.make) {
    try {
      mkdirSync(fdPath(parent, name), { mode: 0o755 });
      made = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  let fd: number;
  try {
    fd = openSync(fdPath(parent, name), opts.follow ? DIR : DIR | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !opts.make) return undefined;
    if (code === "ELOOP" || code === "ENOTDIR") throw notStoreFolder(shown);
    throw e;
  }
  if (made && opts.give && fstatSync(fd).uid === 0) {
    try {
      // fchown: on the folder opened, never a name the person renamed in between.
      fchownSync(fd, opts.give.uid, opts.give.gid);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }
  return fd;
}

/** `f` with the folder `fd`, closed after (undefined passes through). */
export function withDir<T>(fd: number, f: (fd: number) => T): T {
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The project's .aido/sandboxes opened level by level from the project held open (see the
 * header); undefined when it is not there and `make` is not set. `make`: made as needed,
 * each folder made here given to the project's owner.
 */
export function openSandboxes(project: Project, make = false): number | undefined {
  const { owner, followStore: follow } = project;
  const level = (parent: number, name: string, shown: string) => {
    const fd = openDirIn(parent, name, shown, { follow, make, give: owner });
    if (fd !== undefined) requireStoreOwner(project, parent, name, fd, shown);
    return fd;
  };
  const aido = level(project.fd, ".aido", join(project.path, ".aido"));
  if (aido === undefined) return undefined;
  return withDir(aido, (a) => level(a, "sandboxes", join(project.path, ".aido", "sandboxes")));
}

/**
 * The store's folders (.aido, .aido/sandboxes, a sandbox's <id>) must be of whoever keeps
 * the store: this process's user, or under root in someone else's project the project's owner (root gives
 * them what it makes). In a project folder others can write (a shared /tmp/x, a 0777 or
 * group folder), another user could put their own .aido there, a folder or a link to one,
 * and aido kept the person's evidence in it, for them to read and change (a record naming
 * another sandbox file, inputs the person never gave). A link followed (a person's own
 * store on another disk) must be theirs too. The folder `fd` opened at `name` in `parent`
 * is closed when refused.
 */
function requireStoreOwner(project: Project, parent: number, name: string, fd: number, shown: string): void {
  const mine = new Set([process.geteuid?.() ?? 0]);
  if (project.owner) mine.add(project.owner.uid);
  let why: string | undefined;
  try {
    const st = fstatSync(fd);
    // Looked at after the open, and the name must still lead to the folder opened: a link
    // of someone else's swapped for nothing (or a folder) right after the open passed as
    // the person's own folder it had led to.
    const at = fdPath(parent, name);
    const link = lstatSync(at, { throwIfNoEntry: false });
    const now = link?.isSymbolicLink() ? statSync(at, { throwIfNoEntry: false }) : link;
    const yours = `not yours (uid ${[...mine].join(" or ")})`;
    if (!mine.has(st.uid)) why = `is a folder of uid ${st.uid}, ${yours}`;
    else if (link?.isSymbolicLink() && !mine.has(link.uid))
      why = `is a link made by uid ${link.uid}, ${yours}`;
    else if (now?.dev !== st.dev || now?.ino !== st.ino) why = "changed while aido opened it";
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (why === undefined) return;
  closeSync(fd);
  throw new AidoError(
    ErrorCode.sandboxFailed,
    `${shown} ${why}: aido keeps its evidence only in a store of its own; remove or rename it, or run aido where others cannot write`,
    { path: shown },
  );
}

/** The sandbox's folder .aido/sandboxes/<id> opened level by level, never through a link; undefined when absent. */
export function openSandboxDir(project: Project, id: string, make = false): number | undefined {
  const store = openSandboxes(project, make);
  if (store === undefined) return undefined;
  const shown = join(project.path, ".aido", "sandboxes", id);
  return withDir(store, (s) => {
    const fd = openDirIn(s, id, shown, { make, give: project.owner });
    // The sandbox's own folder too: in a sandboxes folder the person left writable to others,
    // another user's <id> (made before the person's `up`, or in place of one destroyed) held
    // the person's record, inputs and evidence where that user could read and change them.
    if (fd !== undefined) requireStoreOwner(project, s, id, fd, shown);
    return fd;
  });
}

/**
 * The sandbox's runs/ in its open folder `sandbox` (`shown`: its path), held to the store's
 * owner as the levels above: in a sandbox folder the person left writable to others, another
 * user's runs/ held every run's evidence where that user could change it. `make`: made
 * first, as openDirIn; undefined when absent and not to be made.
 */
export function openRunsDir(
  project: Project,
  sandbox: number,
  shown: string,
  make = false,
): number | undefined {
  const fd = openDirIn(sandbox, "runs", shown, { make, give: project.owner });
  if (fd !== undefined) requireStoreOwner(project, sandbox, "runs", fd, shown);
  return fd;
}

/**
 * The run folder `runId` in the sandbox's open runs/ (`shown`: its path), held to the store's
 * owner as the levels above: in a runs/ the person left writable to others, another user's
 * run-NNN (its logs forged) was read by `aido logs` as the person's own run. Undefined when absent.
 */
export function openRunIn(project: Project, runs: number, runId: string, shown: string): number | undefined {
  const fd = openDirIn(runs, runId, shown);
  if (fd !== undefined) requireStoreOwner(project, runs, runId, fd, shown);
  return fd;
}

/**
 * Whose the store's files must be (besides root's): the project's owner under root in someone
 * else's project, else this process's user. Not only under root: a non-root `aido logs` read
 * another user's log put in a run folder the person left writable to others.
 */
export function storeKeeper(project: Project): { uid: number; gid: number } {
  return project.owner ?? { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 };
}

/** openSandboxDir for a sandbox that must be there. */
export function sandboxDir(project: Project, id: string): number {
  const fd = openSandboxDir(project, id);
  if (fd === undefined)
    throw new AidoError(
      ErrorCode.notFound,
      `no sandbox ${id} in ${join(project.path, ".aido", "sandboxes")}`,
      { id },
    );
  return fd;
}

/**
 * The text of the file `name` in the open folder `dir`, opened without following a link
 * (O_NONBLOCK: a FIFO fails instead of hanging) and read only when it is a regular file of
 * one name: run as root, a link or a hard link the person put in the store (stdout.log ->
 * /etc/shadow) had root read the file it reached and print it to them. Undefined when absent.
 */
export function readPlainIn(
  dir: number,
  name: string,
  shown: string,
  owner?: ProjectOwner,
): string | undefined {
  let fd: number;
  try {
    fd = openSync(fdPath(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") throw notPlainFile(shown, "a link");
    if (code === "ENXIO") throw notPlainFile(shown, "a FIFO or a socket");
    throw e;
  }
  try {
    const why = plainFileProblem(fstatSync(fd), owner);
    if (why !== undefined) throw notPlainFile(shown, why);
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/**
 * Why a file opened in the store is not one root may read to the person (undefined: it
 * is): a regular file of one name, and with `owner` (the store's keeper, storeKeeper) root's
 * or the owner's. The run's folders are the person's once given: a file of another
 * user's they moved in (from a shared folder they can write, its mode 0600) had root print
 * it to them.
 */
export function plainFileProblem(
  st: { uid: number; nlink: number; isFile(): boolean },
  owner?: ProjectOwner,
): string | undefined {
  if (!st.isFile()) return "not a file";
  if (st.nlink !== 1) return "a hard link";
  if (owner !== undefined && st.uid !== 0 && st.uid !== owner.uid) return `another user's, uid ${st.uid}`;
  return undefined;
}

export function notPlainFile(shown: string, what: string): AidoError {
  return new AidoError(
    ErrorCode.sandboxFailed,
    `${shown} is not a plain file of its own (${what}): it is not read; it was changed on the host`,
    { path: shown },
  );
}

/** The folder `name` made in the open folder `parent`; refused when something was there before. */
function makeNewDir(parent: number, name: string, shown: string, mode: number): void {
  try {
    mkdirSync(fdPath(parent, name), { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `${shown} was there before aido made it (put there on the host): the sandbox is not made with it`,
      { path: shown },
    );
  }
}

/**
 * A working folder (work/, output/, stream/) made in the sandbox's open folder `sandbox`
 * and held open: it must be new (a name the person put there first, a link say, is
 * refused) and is given to the container's user on its descriptor when aido is root. By
 * path, a sandbox folder swapped for a link between the mkdir and the chown had root give
 * the container's user a folder anywhere on the host.
 */
export function makeWorkingDir(
  sandbox: number,
  name: string,
  shown: string,
  user: { uid: number; gid: number },
): number {
  makeNewDir(sandbox, name, shown, 0o755);
  const fd = openDirIn(sandbox, name, shown) as number;
  try {
    const st = fstatSync(fd);
    if (st.uid !== process.geteuid?.()) throw notStoreFolder(shown);
    if (process.geteuid?.() === 0) fchownSync(fd, user.uid, user.gid);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/**
 * The share folder (egress/, the relay's and the proxy's socket's) made new in the
 * sandbox's open folder `sandbox`, this process's user's and 0700 on its descriptor: it
 * must be new, as makeWorkingDir's folders, and is never given to anyone. By path (as it
 * was made before), a sandbox folder the person swapped for a link had root make the
 * folder in the one it pointed at, or take a folder of theirs put there and chmod it.
 */
export function makeShareFolder(sandbox: number, shown: string): void {
  makeNewDir(sandbox, "egress", shown, 0o700);
  withDir(openDirIn(sandbox, "egress", shown) as number, (fd) => {
    if (fstatSync(fd).uid !== process.geteuid?.()) throw notStoreFolder(shown);
    fchmodSync(fd, 0o700);
  });
}

/**
 * Remove the tree `name` in the open folder `parent` (removeTreeNoFollow through the
 * folder's descriptor: never a path whose folders the person can swap for links), its
 * error naming `shown`.
 */
export function removeIn(parent: number, name: string, shown: string): void {
  const at = fdPath(parent, name);
  try {
    removeTreeNoFollow(at);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(err.message.replace(at, shown)), { code: err.code });
  }
}

/**
 * The share folder `up` made (this process's user's, 0700), opened through the sandbox's
 * folder held open without following a link, and still the folder its path (`shown`, which
 * the engine binds into a relay it makes again) leads to. Run as root, the sandbox's folder
 * is the person's: by its path, an `egress` they replaced by a link had root remove the
 * `proxy.sock` of the folder it pointed at (any folder's) and listen there; a folder of
 * their own put there let them swap the socket for a link before root's chmod of it.
 */
export function openShareFolder(held: string, shown: string): number {
  const refuse = (what: string) =>
    new AidoError(
      ErrorCode.sandboxFailed,
      `${shown} ${what} (changed on the host): the sandbox's egress proxy is not served through it; destroy the sandbox and start a new one`,
      { path: shown },
    );
  let fd: number;
  try {
    fd = openSync(join(held, "egress"), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw refuse(
      code === "ELOOP" || code === "ENOTDIR" ? "is not a folder (a link?)" : `cannot be opened (${code})`,
    );
  }
  const st = fstatSync(fd);
  const by = statSync(shown, { throwIfNoEntry: false });
  let why: string | undefined;
  if (st.uid !== process.geteuid?.() || (st.mode & 0o077) !== 0)
    why = `is not the share folder aido made (uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)})`;
  else if (by?.dev !== st.dev || by?.ino !== st.ino) why = "leads elsewhere than the share folder";
  if (why !== undefined) {
    closeSync(fd);
    throw refuse(why);
  }
  return fd;
}
