// sandbox/folders.ts — a goal's host folders ($AIDO_HOME/goals/<goal_id>/{workspace,
// output,inputs}) and their safe removal. Goal ids become path components and container
// names, so they are validated here, once. Removal never follows a symlink: a link is
// unlinked, never descended into, so a link planted by an agent (or an operator) can
// never make the GC delete files outside the goal's folder.

import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, rmdirSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { ensurePrivateDir } from "../security/private-home.js";

/** workspace/, output/, inputs/ inside the private goal folder. */
const SHARED_DIR_MODE = 0o755;

const GOAL_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function assertGoalId(goalId: string): void {
  if (!GOAL_ID.test(goalId) || goalId.includes("..")) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `goal id ${JSON.stringify(goalId)} is not valid: use letters, digits, "_", "-" or "." (up to 128, no "..")`,
      { goalId },
    );
  }
}

export interface GoalFolders {
  root: string;
  workspace: string;
  output: string;
  inputs: string;
  /**
   * workspace is a host folder an MCP session bound (sandbox/workspace-binds.ts), not one
   * of ours: it is never created, chmod-ed or chown-ed here, and never removed with the goal.
   */
  hostWorkspace?: boolean;
}

export function foldersUnder(root: string): GoalFolders {
  return {
    root,
    workspace: join(root, "workspace"),
    output: join(root, "output"),
    inputs: join(root, "inputs"),
  };
}

export function goalFolders(goalsDir: string, goalId: string): GoalFolders {
  assertGoalId(goalId);
  return foldersUnder(join(goalsDir, goalId));
}

/** The uid:gid the container runs as; its writable folders are handed to it when we are root. */
export interface SandboxUser {
  uid: number;
  gid: number;
}

export function parseUser(user: string): SandboxUser {
  const m = /^(\d+):(\d+)$/.exec(user);
  if (!m)
    throw new AidoError(ErrorCode.configInvalid, `sandbox user "${user}" must be uid:gid (numbers)`, {
      user,
    });
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/**
 * Create the layout. The goal's root (and goals/ above it) is 0700, private to the daemon's
 * user; nothing inside the container depends on it (a bind mount's source is resolved by
 * the engine, and the container sees only the mounted folders themselves). workspace/,
 * output/ and inputs/ are 0755 whatever the umask: the container user must reach /inputs,
 * and the host reads what the container writes.
 */
export function makeGoalFolders(f: GoalFolders): void {
  ensurePrivateDir(dirname(f.root));
  ensurePrivateDir(f.root);
  for (const dir of f.hostWorkspace ? [f.output, f.inputs] : [f.workspace, f.output, f.inputs]) {
    mkdirSync(dir, { recursive: true, mode: SHARED_DIR_MODE });
    chmodSync(dir, SHARED_DIR_MODE);
  }
}

/**
 * The layout for a container: workspace/ and output/ become the container user's when the
 * daemon is root (a container uid 1000 must be able to write them); inputs/ stays the
 * host's and is mounted read-only.
 */
export function prepareFolders(f: GoalFolders, user: SandboxUser): void {
  makeGoalFolders(f);
  if (process.getuid?.() === 0) {
    for (const dir of f.hostWorkspace ? [f.output] : [f.workspace, f.output])
      chownSync(dir, user.uid, user.gid);
  }
}

/**
 * Remove a tree without ever following a symlink: links (the root included) are
 * unlinked, directories are emptied with lstat-guided recursion, then removed.
 */
export function removeTreeNoFollow(path: string): void {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  if (!st.isDirectory()) {
    unlinkSync(path);
    return;
  }
  for (const name of readdirSync(path)) removeTreeNoFollow(join(path, name));
  rmdirSync(path);
}
