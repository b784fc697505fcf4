// humansandbox/state.ts — where a human sandbox lives on disk and what is recorded about
// it. Everything sits under the project's .aido/sandboxes/<id>/ (see docs/sandbox-cli.md
// for the layout): sandbox.json is the record (never an env value, only env names),
// events.log the append-only JSON lines of what happened. Ids are 12 hex characters and
// become path components and container names, so they are validated here, once.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchownSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { isWithin } from "../fs/within.js";
import { fdEntryPath, fdPath } from "../sandbox/untrusted-files.js";
import type { NetworkLine } from "./egress.js";
import { type Project, type ProjectOwner, type ProjectRef, projectReal, withProject } from "./project.js";
import {
  openRunsDir,
  openSandboxDir,
  openSandboxes,
  readPlainIn,
  sandboxDir,
  withDir,
} from "./store-dirs.js";

export type { ProjectOwner };

export const SANDBOX_ID = /^[0-9a-f]{12}$/;

export function newSandboxId(): string {
  return randomBytes(6).toString("hex");
}

export function assertSandboxId(id: string): void {
  if (!SANDBOX_ID.test(id))
    throw new AidoError(ErrorCode.usage, `sandbox id ${JSON.stringify(id)} is not valid: 12 hex characters`, {
      id,
    });
}

export function sandboxesDir(cwd: string): string {
  return join(cwd, ".aido", "sandboxes");
}

/** Where a sandbox's files are, as paths to show (never acted on: SandboxPaths). */
export interface StorePaths {
  id: string;
  root: string;
  record: string;
  events: string;
  /** Mounted at /workspace (absent when filesystem is none). */
  work: string;
  /** Mounted at /output; declared outputs are collected from here into the project. */
  output: string;
  /** Mounted at /aido/stream: the running task's raw stdout/stderr, read live by the host. */
  stream: string;
  runs: string;
  /** With a host list: the folder shared with the relay (the proxy's socket), 0700. */
  egress: string;
}

export interface SandboxPaths extends StorePaths {
  /** The project held open for the command: the store is reached from it folder by folder (store-dirs.ts). */
  project: Project;
}

export function storePaths(cwd: string, id: string): StorePaths {
  assertSandboxId(id);
  const root = join(sandboxesDir(cwd), id);
  return {
    id,
    root,
    record: join(root, "sandbox.json"),
    events: join(root, "events.log"),
    work: join(root, "work"),
    output: join(root, "output"),
    stream: join(root, "stream"),
    runs: join(root, "runs"),
    egress: join(root, "egress"),
  };
}

export function sandboxPaths(project: Project, id: string): SandboxPaths {
  return { project, ...storePaths(project.path, id) };
}

export interface InputMount {
  /** As declared in sandbox.yaml. */
  pattern: string;
  /** Host path (resolved, no symlinks). */
  source: string;
  /** Path inside the container, under /inputs. */
  target: string;
  /** Container paths under target covered by an empty read-only tmpfs: the evidence store (evidence-guard.ts). */
  hidden?: string[];
}

export interface RuntimeChoice {
  requested: string;
  image: string;
  /** What the image provides for the runtime, e.g. "Python 3.11.2"; printed with the mapping. */
  provides?: string;
  /** Why the requested runtime maps to this image (printed, recorded). */
  note?: string;
}

export interface SandboxRecord {
  id: string;
  name: string;
  state: "running" | "destroyed";
  created_at: string;
  expires_at: string;
  ttl_ms: number;
  destroyed_at?: string;
  destroy_reason?: "destroyed by the user" | "ttl expired";
  container: string;
  user: string;
  runtime: RuntimeChoice;
  spec_file: string | null;
  spec_sha256: string | null;
  /**
   * network: false, true (all: the default bridge), or the host list (through the proxy).
   * unix_sockets: whether the task may make Unix sockets (spec.ts); absent in a record made
   * before the task was refused them, whose sandbox `run` refuses (its container's helper
   * may not know the refusal).
   */
  permissions: {
    filesystem: "readonly" | "readwrite" | "none";
    network: boolean | string[];
    unix_sockets?: "deny" | "allow";
  };
  /** With a host list: the sandbox's internal network and its relay (humansandbox/egress.ts). */
  egress?: { network: string; relay: string; address: string };
  /** The escape hatches used at `up`, with the confirmation that allowed them. */
  flags: { network: boolean; dangerous_allow_mutations: boolean; confirmed_by: "terminal" | "--yes" | null };
  limits: { cpus: number; memory_mb: number; pids: number; tmpfs_mb: number; timeout_ms: number };
  inputs: InputMount[];
  outputs: string[];
  /** Work-folder paths linked to /output/<same path> for the declared outputs (outputs.ts). */
  output_links?: string[];
  /** Names only: values never reach the evidence. */
  env_names: string[];
}

/**
 * `write` given the path of a name in the sandbox's folder, through that folder opened
 * without following a link: run as root, .aido/sandboxes is the person's, and a sandbox
 * folder they renamed away and replaced by a link had root write its record and events in
 * the folder it pointed at.
 */
function inSandboxFolder<T>(paths: SandboxPaths, write: (at: (name: string) => string) => T): T {
  return withDir(sandboxDir(paths.project, paths.id), (dir) => write((name) => fdPath(dir, name)));
}

/**
 * sandbox.json replaced whole. Its temp is made new (O_EXCL | O_NOFOLLOW, a stale one
 * removed first, never followed): run as root, the sandbox's folder is the person's
 * (ownEvidence), and a link they put at the temp's name (its pid guessed) had root create
 * or truncate the file it pointed at with the record in it.
 */
export function writeRecord(paths: SandboxPaths, record: SandboxRecord): void {
  inSandboxFolder(paths, (at) => {
    const tmp = at(`sandbox.json.tmp-${process.pid}`);
    rmSync(tmp, { force: true });
    const fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    );
    try {
      writeFileSync(fd, `${JSON.stringify(record, null, 2)}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, at("sandbox.json"));
  });
}

/**
 * The record, read through the sandbox's folder reached without following a link, and only
 * when it is a plain file of one name (store-dirs.ts readPlainIn): run as root, a
 * sandbox.json the person made a link to /etc/shadow had root parse it and print the parse
 * error, the file's first bytes in it.
 */
export function readRecord(paths: SandboxPaths): SandboxRecord | undefined {
  try {
    const dir = openSandboxDir(paths.project, paths.id);
    if (dir === undefined) return undefined;
    const text = withDir(dir, (d) => readPlainIn(d, "sandbox.json", paths.record, paths.project.owner));
    return text === undefined ? undefined : (JSON.parse(text) as SandboxRecord);
  } catch (e) {
    if (e instanceof AidoError) throw e;
    throw new AidoError(ErrorCode.internal, `cannot read ${paths.record}: ${(e as Error).message}`, {
      path: paths.record,
    });
  }
}

export type SandboxEvent =
  | {
      event: "created";
      id: string;
      name: string;
      image: string;
      runtime: RuntimeChoice;
      expires_at: string;
      unix_sockets: "deny" | "allow";
    }
  | { event: "warning"; message: string; flag?: string }
  | { event: "run_started"; run_id: string; task: string[]; timeout_ms: number }
  | {
      event: "run_completed";
      run_id: string;
      exit_code: number | null;
      timed_out: boolean;
      duration_ms: number;
    }
  /** `aido run` was stopped by a signal before its task ended (summary.json says so too). */
  | { event: "run_stopped"; run_id: string; signal: NodeJS.Signals; duration_ms: number }
  /** `aido run` could not set the run up (its stream files, its logs): the task never started. */
  | { event: "run_failed"; run_id: string; error: string }
  | { event: "run_refused"; reason: string }
  /** `aido logs` refused a file or folder of the run's evidence (a link put there, say). */
  | { event: "logs_refused"; run_id?: string; reason: string }
  | ({ event: "network"; run_id: string } & NetworkLine)
  | { event: "destroyed"; reason: string }
  /** A sweep could not destroy it (tried again at the next); the record stays "running". */
  | { event: "destroy_failed"; reason: string; error: string };

/**
 * One line appended to events.log, opened without following a link (O_NONBLOCK: a FIFO put
 * there fails instead of hanging) and only when it is a file of one name: run as root, the
 * sandbox's folder is the person's, and a link (or a hard link) they put at events.log had
 * root append to the file it reached.
 */
export function appendEvent(paths: SandboxPaths, ev: SandboxEvent): void {
  inSandboxFolder(paths, (at) => appendEventAt(paths, at("events.log"), ev));
}

function appendEventAt(paths: SandboxPaths, events: string, ev: SandboxEvent): void {
  let fd: number;
  try {
    fd = openSync(
      events,
      constants.O_WRONLY |
        constants.O_APPEND |
        constants.O_CREAT |
        constants.O_NOFOLLOW |
        constants.O_NONBLOCK,
      0o644,
    );
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw notPlain(paths.events, "a link");
    if (code === "ENXIO") throw notPlain(paths.events, "a FIFO or a socket");
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1)
      throw notPlain(paths.events, st.isFile() ? "a hard link" : "not a file");
    writeSync(fd, `${JSON.stringify({ time: new Date().toISOString(), ...ev })}\n`);
  } finally {
    closeSync(fd);
  }
}

function notPlain(path: string, what: string): AidoError {
  return new AidoError(
    ErrorCode.internal,
    `${path} is not a plain file of its own (${what}): nothing is written through it; it was changed on the host`,
    { path },
  );
}

export function isExpired(record: SandboxRecord, nowMs = Date.now()): boolean {
  return Date.parse(record.expires_at) <= nowMs;
}

/**
 * The project's running sandboxes whose TTL has run out. A directory read: `aido` checks
 * it before every command and loads the code that destroys them (Docker's client with it)
 * only when the list is not empty.
 */
export function expiredRecords(project: ProjectRef, nowMs = Date.now()): SandboxRecord[] {
  // A refused sandbox folder (another user's <id>, a link) no longer stops the sweep of the others.
  return listRecords(project, true).filter((r) => r.state === "running" && isExpired(r, nowMs));
}

/**
 * Every sandbox recorded in the project, oldest first. A refused sandbox folder (another
 * user's <id>, a link) fails the list naming it, or is left out with `skipRefused`; a record
 * that cannot be read in a folder of the store's own fails it still.
 */
export function listRecords(ref: ProjectRef, skipRefused = false): SandboxRecord[] {
  const out = withProject(ref, (project) => {
    const dir = openSandboxes(project);
    if (dir === undefined) return [];
    const found: SandboxRecord[] = [];
    for (const name of withDir(dir, (d) => readdirSync(fdPath(d)))) {
      if (!SANDBOX_ID.test(name)) continue;
      if (skipRefused)
        try {
          const fd = openSandboxDir(project, name);
          if (fd !== undefined) closeSync(fd);
        } catch (e) {
          if (e instanceof AidoError) continue;
          throw e;
        }
      const r = readRecord(sandboxPaths(project, name));
      if (r) found.push(r);
    }
    return found;
  });
  return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}

/**
 * The sandbox a command acts on: the one named, else the latest created (even when it is
 * destroyed, so that `aido run` right after a TTL expiry says so instead of silently
 * picking an older sandbox).
 */
export function activeRecord(project: Project, id?: string): SandboxRecord {
  if (id !== undefined) {
    const r = readRecord(sandboxPaths(project, id));
    if (!r)
      throw new AidoError(ErrorCode.notFound, `no sandbox ${id} in ${sandboxesDir(project.path)}`, { id });
    return r;
  }
  const latest = listRecords(project).at(-1);
  if (!latest)
    throw new AidoError(
      ErrorCode.notFound,
      `no sandbox in ${project.path}: start one with \`aido sandbox up\``,
      { cwd: project.path },
    );
  return latest;
}

/**
 * The store's folders down to the sandbox's runs/, each made 0755 through the folder above
 * it opened without following a link (store-dirs.ts); those made here are the project
 * owner's, given on their descriptors. Returns the sandbox's folder, open (close it).
 */
export function ensureDirs(paths: SandboxPaths): number {
  const dir = openSandboxDir(paths.project, paths.id, true) as number;
  try {
    const runs = openRunsDir(paths.project, dir, paths.runs, true);
    if (runs !== undefined) closeSync(runs);
  } catch (e) {
    closeSync(dir);
    throw e;
  }
  return dir;
}

/** The folder open at `fd` lies in the project (real path `projectReal`). */
function inProject(projectReal: string, fd: number): boolean {
  return isWithin(projectReal, realpathSync(fdPath(fd)));
}

/**
 * Give `p` to `owner` when it is a folder or a file still root's (made by aido), on a
 * descriptor opened without following a link. The folders it lies in are the person's: by
 * path (lchown), a name they renamed in between was chowned, and a hard link to a root file
 * there (/etc/shadow, where hard links are not restricted) was handed to them. A file with
 * another name (a hard link) is never given; links and other kinds are left as they are.
 * With `projectReal`: only what lies in the project (a .aido that is a link out of it had
 * root make folders wherever it pointed, and give them to the person).
 */
function giveIfRoots(p: string | Buffer, owner: { uid: number; gid: number }, projectReal?: string): void {
  const seen = lstatSync(p, { throwIfNoEntry: false });
  if (seen?.uid !== 0 || !(seen.isFile() || seen.isDirectory())) return;
  let fd: number;
  try {
    fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return; // gone, or a link or a socket now
  }
  try {
    const st = fstatSync(fd);
    if (projectReal !== undefined && !inProject(projectReal, fd)) return;
    if (st.uid === 0 && (st.isDirectory() || (st.isFile() && st.nlink === 1)))
      fchownSync(fd, owner.uid, owner.gid);
  } finally {
    closeSync(fd);
  }
}

/** The working folders: the container's user's, or the relay's; never given to the project owner. */
const WORKING = new Set(["work", "output", "stream", "egress"]);

/**
 * Run as root in someone else's project: the sandbox's evidence (sandbox.json, events.log,
 * runs/ and what is in them) still root's is given to the project
 * owner. After `up`, each run and `destroy`: what a run wrote (its streams, summary, diff)
 * was made by several modules, each as root. Only the store is walked (the task never
 * reaches it), folders opened without following a link, entries given on a descriptor
 * (giveIfRoots: never a hard link, nor the latest-run links themselves).
 */
export function ownEvidence(paths: SandboxPaths): void {
  const owner = paths.project.owner;
  if (!owner) return;
  const walk = (dir: number, depth: number) => {
    for (const name of readdirSync(fdPath(dir))) {
      if (depth === 0 && WORKING.has(name)) continue;
      const p = fdEntryPath(dir, Buffer.from(name));
      giveIfRoots(p, owner);
      if (depth >= 2 || !lstatSync(p, { throwIfNoEntry: false })?.isDirectory()) continue;
      let sub: number;
      try {
        sub = openSync(p, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      } catch {
        continue;
      }
      try {
        walk(sub, depth + 1);
      } finally {
        closeSync(sub);
      }
    }
  };
  // Reached level by level: a store or sandbox folder that is a link gets nothing given.
  let root: number | undefined;
  try {
    root = openSandboxDir(paths.project, paths.id);
  } catch (e) {
    if (e instanceof AidoError) return;
    throw e;
  }
  if (root === undefined) return; // purged, or never made
  try {
    // A store that is a link out of the project: what root made there stays root's.
    if (!inProject(projectReal(paths.project), root)) return;
    if (fstatSync(root).uid === 0) fchownSync(root, owner.uid, owner.gid);
    walk(root, 0);
  } finally {
    closeSync(root);
  }
}

/** ownEvidence, its failure said as a warning: it never hides how the command itself went. */
export function giveEvidence(paths: SandboxPaths, notice: (m: string) => void): void {
  try {
    ownEvidence(paths);
  } catch (e) {
    notice(
      `warning: the sandbox's evidence could not all be given to the project's owner: ${(e as Error).message}`,
    );
  }
}
