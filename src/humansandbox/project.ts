// humansandbox/project.ts — the project folder, resolved once per command. Run as root in
// someone else's project (`sudo aido sandbox …`), the folder is the person's to rename: by
// its path, each step of one command (is it someone else's? the store, the record's
// sandbox file, the task file, the collection) looked it up again, and a folder swapped for
// a link to a folder of root's between two steps had the later ones take it for root's own
// project and skip their checks (a task file named ../../etc/shadow was staged). So a
// command opens the folder once, decides whose it is from that descriptor (fstat), and
// every step reaches the project through it (store-dirs.ts, record-trust.ts, run-stage.ts).

import { closeSync, constants, fstatSync, openSync, realpathSync } from "node:fs";
import { fdPath } from "../sandbox/untrusted-files.js";

/** Whom what the host makes in the project belongs to; undefined: whoever runs aido. */
export type ProjectOwner = { uid: number; gid: number } | undefined;

/** The project folder held open for one command (close it with closeProject). */
export interface Project {
  /** The folder as the command was given it (what messages show, what labels hash). */
  readonly path: string;
  /** The folder itself, open: everything in the project is reached through it. */
  readonly fd: number;
  /**
   * Its owner when aido runs as root and the folder is someone else's: what aido makes in
   * the project (outputs, the evidence store) is given to them. Undefined otherwise.
   */
  readonly owner: ProjectOwner;
  /**
   * Whose own files alone a root aido reads when the person names them (the sandbox file a
   * record names, the task file of `aido run`): the owner's, and in a folder of root's that
   * others can write (a shared 1777 or 2775 folder) root's. Taken for root's own, such a
   * folder had root read any file anyone put a link to there. Undefined: any file.
   */
  readonly readable: ProjectOwner;
  /**
   * Whether the project's .aido and .aido/sandboxes are followed when they are links (a
   * person's own store on another disk): only when nobody else can put them there, that is
   * not under root in someone else's project nor in a folder of root's others can write.
   */
  readonly followStore: boolean;
}

/**
 * The project folder at `cwd` opened (links in `cwd` followed). Given the process's working
 * folder (process.cwd(), as the commands give it), the folder itself is opened ("."), not
 * its path: Node keeps the path it read first (process.cwd() is cached until a chdir), and
 * the folder renamed since (by the person, under `sudo aido`) with a link to a folder of
 * root's put at its old name had the command open that folder and take it for root's own.
 */
export function openProject(cwd: string): Project {
  const fd = openSync(cwd === process.cwd() ? "." : cwd, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const st = fstatSync(fd);
    const root = process.geteuid?.() === 0;
    const owner = root && st.uid !== 0 ? { uid: st.uid, gid: st.gid } : undefined;
    const shared = root && st.uid === 0 && (st.mode & 0o022) !== 0;
    const readable = owner ?? (shared ? { uid: 0, gid: st.gid } : undefined);
    return { path: cwd, fd, owner, readable, followStore: readable === undefined };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

export function closeProject(project: Project): void {
  closeSync(project.fd);
}

/** A project as a caller gives it: held open already, or a folder's path to open for the call. */
export type ProjectRef = string | Project;

/** `f` with the project `ref`: held by the caller, else opened for `f` and closed after it settles. */
export function withProject<T>(ref: ProjectRef, f: (project: Project) => T): T {
  if (typeof ref !== "string") return f(ref);
  const project = openProject(ref);
  let result: T;
  try {
    result = f(project);
  } catch (e) {
    closeProject(project);
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => closeProject(project)) as T;
  closeProject(project);
  return result;
}

/** The real path of the folder held open now (where it lies, whatever its path became). */
export function projectReal(project: Project): string {
  return realpathSync(fdPath(project.fd));
}

/** The path of `name` in the project through its held folder: resolved there, never by the project's path. */
export function inProject(project: Project, name: string): string {
  return fdPath(project.fd, name);
}
