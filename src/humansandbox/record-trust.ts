// humansandbox/record-trust.ts — what a root aido takes from a sandbox's record. Run as root
// in someone else's project (`sudo aido …`), sandbox.json is the person's file (given to
// them, in their folder): each field root acts on is a field they can edit. spec_file is
// read as root (its env values scrub messages; `run` parses it and prints its errors): set
// to /etc/shadow, root read it and a parse error printed its first bytes. `user` is whom
// root gives each run's stream files: set to another uid, root made files of that person's
// in the store. (inputs: container.ts attach re-checks the container's own mounts, not the
// record's list.)

import { closeSync, constants, fstatSync, openSync, readFileSync, realpathSync } from "node:fs";
import { isAbsolute } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { isWithin } from "../fs/within.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import { containerUser } from "./container.js";
import { type Project, type ProjectOwner, projectReal } from "./project.js";
import { MAX_SANDBOX_FILE_BYTES } from "./spec.js";
import type { SandboxRecord } from "./state.js";

/**
 * The text of the record's sandbox file (null when it has none), read as
 * ownersSandboxText reads it; a file refused is named with the record changed on the host.
 */
export function recordSpecText(project: Project, record: SandboxRecord): string | null {
  const file = record.spec_file;
  if (file === null) return null;
  return ownersSandboxText(
    project,
    file,
    file,
    `sandbox ${record.id}'s sandbox.json was changed on the host`,
    {
      id: record.id,
    },
  );
}

/**
 * The text of the sandbox file `file`, opened at `open` (the same path, or its name through
 * the project held open). Under root in someone else's project (or in a folder of root's
 * others can write: project.readable), only the project's own file is read: opened without
 * following a link, a regular file of the project's owner, lying in the project by the real
 * path of what was opened; else it is refused, naming the file, why, and `changed` (what
 * the person must have done). Read as root, any other file's parse error printed its lines.
 */
export function ownersSandboxText(
  project: Project,
  file: string,
  open: string,
  changed: string,
  details: Record<string, unknown> = {},
): string {
  const owner = project.readable;
  const cannot = (why: string) =>
    new AidoError(ErrorCode.configInvalid, `cannot read sandbox file ${file}: ${why}`, { ...details, file });
  const refuse = (why: string) =>
    cannot(`it ${why}; a root aido reads only the project's own sandbox file (${changed})`);
  if (owner !== undefined && !isAbsolute(file)) throw refuse("is not an absolute path");
  let fd: number;
  try {
    fd = openSync(open, constants.O_RDONLY | constants.O_NONBLOCK | (owner ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (owner && code === "ELOOP") throw refuse("is a link");
    throw cannot((e as Error).message.replace(open, file));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw cannot("not a regular file");
    const why = owner ? ownersFileProblem(project, fd, owner) : undefined;
    if (why !== undefined) throw refuse(why);
    if (st.size > MAX_SANDBOX_FILE_BYTES) throw cannot(`larger than ${MAX_SANDBOX_FILE_BYTES} bytes`);
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/**
 * Why the file open at `fd` is not the project owner's own regular file lying in the
 * project held open (by the real paths of both now); undefined when it is. What a
 * root aido reads of the person's choosing (their sandbox file, their task script) must
 * be this: a file of theirs, which they can read anyway.
 */
export function ownersFileProblem(project: Project, fd: number, owner: { uid: number }): string | undefined {
  const st = fstatSync(fd);
  if (!st.isFile()) return "is not a regular file";
  if (st.uid !== owner.uid) return `is not the project owner's (uid ${st.uid})`;
  if (!isWithin(projectReal(project), realpathSync(fdPath(fd)))) return "lies outside the project";
  return undefined;
}

/**
 * A record `run` may act on as this process: run as root, its user is the one `up` gives
 * every sandbox made as root (containerUser); another is refused. Root cannot tell a sandbox
 * the project's owner made themselves (`aido sandbox up` without sudo: their own uid) from a
 * record edited to name it, so the refusal says both, the first with what to do: it said
 * only that sandbox.json was changed on the host, to a person who had changed nothing.
 */
export function assertRecordUser(record: SandboxRecord, owner?: ProjectOwner): void {
  const want = containerUser().user;
  if (process.geteuid?.() !== 0 || record.user === want) return;
  const uid = /^(\d+):\d+$/.exec(record.user)?.[1];
  const theirs =
    owner !== undefined && uid === String(owner.uid)
      ? `it was made by the project's owner (uid ${uid}) with \`aido sandbox up\` without sudo: run it without sudo too, or start a new one with \`sudo aido sandbox up\`; or its sandbox.json was changed on the host`
      : "sandbox.json was changed on the host";
  throw new AidoError(
    ErrorCode.sandboxFailed,
    `sandbox ${record.id}'s record names user ${JSON.stringify(record.user)}; sandboxes made as root run as ${want} (${theirs}): nothing is run`,
    { id: record.id, user: record.user },
  );
}
