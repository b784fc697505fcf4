// sandbox/workspace-binds.ts — host folders bound as a goal's /workspace. An MCP session
// (kernel/sessions.ts) may guard an agent working on the user's own project: its
// pseudo-goal's container then mounts that folder read-write as /workspace instead of
// $AIDO_HOME/goals/<id>/workspace. Every part that reaches a goal's host folders (the
// container, the quota walk, snapshots and their restore, the setid sweep) asks
// folders() here, so none of them can miss the bind. Binds live in memory only: after a
// restart no session survives, so no bind does.
//
// checkHostWorkspace judges the folder a client names as an attacker would choose it:
// absolute, existing, a directory, resolved through symlinks (the real path is what is
// bound and judged), and never `/`, a pseudo-filesystem (/proc, /sys, /dev), a system
// folder (/etc, /boot, /run, /usr/bin, … and /usr, /var, /home, /tmp themselves), a folder
// holding the Docker socket (a container with it is root on the host), nor $AIDO_HOME, a
// folder inside it or a folder that contains it (the agent would reach the runtime's
// keys, database and audit). Every refusal names the path and the reason. checkBindSource
// is the part of those checks any bind needs, even a read-only one (an MCP server's code,
// sandbox/mcp-container.ts): no `/`, pseudo-filesystem, AIDO_HOME or Docker socket.

import { realpathSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { isWithin } from "../fs/within.js";
import { type GoalFolders, goalFolders } from "./folders.js";

const PSEUDO_FS = ["/proc", "/sys", "/dev"];
/**
 * Host system folders no project lives in. /run (and /var/run) hold the Docker socket: a
 * container that mounted it could start containers of its own, as root, with the host's
 * filesystem. /var/lib/docker holds every container's files.
 */
const SYSTEM = [
  "/etc",
  "/boot",
  "/run",
  "/var/run",
  "/var/lib/docker",
  "/bin",
  "/sbin",
  "/lib",
  "/lib64",
  "/usr/bin",
  "/usr/sbin",
  "/usr/lib",
];
const SYSTEM_ROOTS = ["/usr", "/var", "/home", "/opt", "/srv", "/mnt", "/media", "/tmp"];
const DOCKER_SOCKETS = ["/var/run/docker.sock", "/run/docker.sock"];

/** The real path, or the path itself when it does not exist here. */
function realOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function refuse(path: string, reason: string, field = "workspace"): never {
  throw new AidoError(ErrorCode.invalidInput, `${field}: ${JSON.stringify(path)} ${reason}`, {
    field,
    path,
  });
}

/** The real path of a host folder fit to be bound as a session's /workspace, or a refusal. */
export function checkHostWorkspace(path: string, home: string): string {
  return checkBind(
    path,
    home,
    "workspace",
    (real, no) => {
      if (!statSync(real).isDirectory()) no("is not a directory");
    },
    (real, no) => {
      const system = SYSTEM.map((p) => [p, realOr(p)] as const).find(([, r]) => isWithin(r, real));
      if (system) no(`is or lies inside the system folder ${system[1]}`);
      if (SYSTEM_ROOTS.some((p) => real === p)) no(`is the system folder ${real} itself, not a project`);
    },
  );
}

/**
 * The real path of a host file or folder fit to be bind-mounted into a container at all,
 * even read-only (an MCP server's code), or a refusal naming `field`: absolute, existing,
 * and never `/`, a pseudo-filesystem, AIDO_HOME (or inside it, or containing it), nor
 * anything holding the Docker socket (read-only does not stop a connect() on a socket).
 */
export function checkBindSource(path: string, home: string, field: string): string {
  return checkBind(
    path,
    home,
    field,
    () => {},
    () => {},
  );
}

type Refuse = (reason: string) => never;

/** The checks both kinds of bind share, in order; `first` and `beforeSocket` add their own. */
function checkBind(
  path: string,
  home: string,
  field: string,
  first: (real: string, no: Refuse) => void,
  beforeSocket: (real: string, no: Refuse) => void,
): string {
  if (path.includes("\0")) refuse(path, "contains a NUL byte", field);
  if (!isAbsolute(path)) refuse(path, "is not an absolute path", field);
  let real = path;
  try {
    real = realpathSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    refuse(path, code === "ENOENT" ? "does not exist" : `cannot be resolved (${code})`, field);
  }
  const shown = real === path ? "" : ` (resolves to ${real})`;
  const no: Refuse = (reason) => refuse(path, `${reason}${shown}`, field);
  first(real, no);
  if (real === "/") no("is the root of the filesystem");
  const pseudo = PSEUDO_FS.find((p) => isWithin(p, real));
  if (pseudo) no(`is on the pseudo-filesystem ${pseudo}`);
  const realHome = realOr(home); // a home not created yet is judged by its configured path
  if (isWithin(realHome, real)) no(`is or lies inside AIDO_HOME (${realHome})`);
  if (isWithin(real, realHome)) no(`contains AIDO_HOME (${realHome})`);
  beforeSocket(real, no);
  const socket = DOCKER_SOCKETS.map(realOr).find((sock) => isWithin(real, sock));
  if (socket) no(`contains the Docker socket ${socket}`);
  return real;
}

export class WorkspaceBinds {
  private readonly binds = new Map<string, string>();

  constructor(private readonly goalsDir: string) {}

  /** Bind a checked host folder (checkHostWorkspace) as `goalId`'s /workspace. */
  bind(goalId: string, hostDir: string): void {
    this.binds.set(goalId, hostDir);
  }

  unbind(goalId: string): void {
    this.binds.delete(goalId);
  }

  /** The host folder bound as the goal's /workspace, if any. */
  of(goalId: string): string | undefined {
    return this.binds.get(goalId);
  }

  /** The goal's host folders, with its bound workspace when it has one. */
  folders(goalId: string): GoalFolders {
    const f = goalFolders(this.goalsDir, goalId);
    const bound = this.binds.get(goalId);
    return bound === undefined ? f : { ...f, workspace: bound, hostWorkspace: true };
  }
}
