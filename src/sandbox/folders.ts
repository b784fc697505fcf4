// sandbox/folders.ts — a goal's host folders ($AIDO_HOME/goals/<goal_id>/{workspace,
// output,inputs}) and their safe removal. Goal ids become path components and container
// names, so they are validated here, once. Removal never follows a symlink: a link is
// unlinked, never descended into, so a link planted by an agent (or an operator) can
// never make the GC delete files outside the goal's folder.

import {
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  rmdirSync,
  unlinkSync,
} from "node:fs";
import { basename, join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";

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
 * Create the layout. workspace/ and output/ become the container user's (the daemon runs
 * as root; a container uid 1000 must be able to write them); inputs/ stays the host's and
 * is mounted read-only. Files the container writes are 0644 by default: the host reads them.
 */
export function prepareFolders(f: GoalFolders, user: SandboxUser): void {
  for (const dir of [f.root, f.workspace, f.output, f.inputs])
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (process.getuid?.() === 0) {
    for (const dir of [f.workspace, f.output]) chownSync(dir, user.uid, user.gid);
  }
}

/** Copy the user's files into inputs/ (copies, never links: /inputs must not reach back). */
export function copyInputs(f: GoalFolders, inputs: readonly string[]): void {
  for (const src of inputs) {
    if (!existsSync(src))
      throw new AidoError(ErrorCode.notFound, `input ${src} does not exist`, { path: src });
    cpSync(src, join(f.inputs, basename(src)), { recursive: true, dereference: true, errorOnExist: false });
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
