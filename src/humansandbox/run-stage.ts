// humansandbox/run-stage.ts — how `aido run TASK` becomes what runs: a file of the project
// is copied into the sandbox's workspace (never through a link a script left at its name)
// and run with the interpreter its extension names; anything else runs as a command.

import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, extname, isAbsolute, resolve } from "node:path";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { DockerSandbox } from "../sandbox/docker-sandbox.js";
import { removeTreeNoFollow, restoreOwnerAccess } from "../sandbox/folders.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import { inProject, type Project } from "./project.js";
import { ownersFileProblem } from "./record-trust.js";
import type { RunSummary } from "./run-evidence.js";
import { type SandboxPaths, type SandboxRecord, storePaths } from "./state.js";

const INTERPRETERS: Record<string, string> = {
  ".py": "python3",
  ".js": "node",
  ".mjs": "node",
  ".cjs": "node",
  ".sh": "sh",
};

/**
 * Stage the task: a project file is copied into the workspace, anything else runs as a
 * command. `warn` says what a task did that staging had to undo. A relative task file is
 * found in the project held open (project.ts), never by the project's path again.
 */
export async function stageTask(
  project: Project,
  record: SandboxRecord,
  paths: SandboxPaths,
  sb: DockerSandbox,
  task: string[],
  warn: (message: string) => void,
): Promise<RunSummary["task"]> {
  const [first, ...args] = task as [string, ...string[]];
  const host = isAbsolute(first) ? first : inProject(project, first);
  if (!existsSync(host) || !statSync(host).isFile()) return { kind: "command", argv: task };
  const name = basename(host);
  const inBox = `/workspace/${name}`;
  const interpreter = INTERPRETERS[extname(name).toLowerCase()];
  const script = readTaskFile(project, host, first);
  if (record.permissions.filesystem === "none") {
    await sb.writeFile(inBox, script.toString("utf8"));
    // No known interpreter: run it as a program (its shebang line decides).
    if (!interpreter)
      await sb.exec({ argv: ["chmod", "755", inBox], timeoutMs: 10_000, confinement: "unconfined" });
  } else {
    // A task of the person's own uid can take the work folder's write permission from its
    // owner (chmod 555 /workspace): the next script could not be staged. Given back as the
    // stream folder's is (through a descriptor, never following a link), and said.
    const was = restoreOwnerAccess(paths.work);
    if (was !== undefined)
      warn(
        `the work folder had its owner's access taken (mode ${was.toString(8).padStart(3, "0")}, by a task); it was given back (u+rwx)`,
      );
    stageFile(
      script,
      paths.work,
      storePaths(project.path, record.id).work,
      name,
      interpreter ? 0o644 : 0o755,
    );
  }
  const argv = interpreter ? [interpreter, inBox, ...args] : [inBox, ...args];
  return { kind: "script", file: first, argv };
}

/**
 * The task file's bytes. Run as root in someone else's project (`sudo aido run task.sh`),
 * the file is the person's to make: only their own regular file, lying in the project by
 * the real path of what was opened, opened without following a link (record-trust.ts
 * ownersFileProblem; in a shared folder of root's, root's own: store-dirs.ts
 * readableOwner). A task.sh they made a link to /etc/shadow (or a file in a folder linked
 * out of the project) had root copy it into the work folder, the container user's to
 * read, and run it, its lines in the errors the run printed.
 */
function readTaskFile(project: Project, host: string, shown: string): Buffer {
  const owner = project.readable;
  if (owner === undefined) return readFileSync(host);
  const refuse = (why: string) =>
    new AidoError(
      ErrorCode.sandboxFailed,
      `cannot stage ${shown}: it ${why}; a root aido stages only the project owner's own file from the project (nothing is run)`,
      { path: resolve(project.path, shown) },
    );
  let fd: number;
  try {
    fd = openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw (e as NodeJS.ErrnoException).code === "ELOOP" ? refuse("is a link") : e;
  }
  try {
    const why = ownersFileProblem(project, fd, owner);
    if (why !== undefined) throw refuse(why);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Put a copy of `src` at work/<name> without following anything there: the work folder is
 * writable by the script (filesystem: readwrite), which may have left a symlink named like
 * the next task pointing at a host file. A temp file is created (O_EXCL | O_NOFOLLOW) and
 * renamed over the name, which replaces a link instead of writing through it. The work
 * folder itself is opened without following a link (`shown` is its path as said): run as
 * root, the sandbox's folder is the person's, and a `work` they renamed away and replaced
 * by a link to /etc had root put the task's file there, by the task's name (crontab).
 */
function stageFile(src: Buffer, work: string, shown: string, name: string, mode: number): void {
  let dir: number;
  try {
    dir = openSync(work, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `cannot stage ${name} into the sandbox's work folder ${shown} (${errorMessage(e)}): it is not the folder aido made (a link, put there on the host); destroy the sandbox and start a new one`,
      { path: shown },
      { cause: e },
    );
  }
  try {
    stageFileIn(src, dir, shown, name, mode);
  } finally {
    closeSync(dir);
  }
}

function stageFileIn(src: Buffer, dir: number, work: string, name: string, mode: number): void {
  const tmp = fdPath(dir, `.aido-stage-${process.pid}-${Date.now().toString(36)}`);
  let fd: number;
  try {
    fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      mode,
    );
  } catch (e) {
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `cannot stage ${name} into the sandbox's work folder ${work} (${errorMessage(e)}): a task may have changed the folder's permissions or owner; run the script as a command (\`aido run sh -c ...\`), or destroy the sandbox and start a new one`,
      { path: work },
      { cause: e },
    );
  }
  let open = true;
  try {
    writeFileSync(fd, src);
    fchmodSync(fd, mode);
    closeSync(fd);
    open = false;
    renameSync(tmp, fdPath(dir, name));
  } catch (e) {
    if (open) closeSync(fd);
    removeTreeNoFollow(tmp);
    throw e;
  }
}
