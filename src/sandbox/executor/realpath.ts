// sandbox/executor/realpath.ts — canonical paths as the kernel in the container resolves
// them. The gate judges grants on these (sandbox.realpath), so this must agree with what an
// open(2) would reach: symlinks are followed where they are met, component by component.
// Except below /proc: its links are about processes — /proc/self is whoever asks (the
// executor here, the command later), /proc/<pid>/cwd, root, exe and fd/N are magic links
// into other processes' views — so following them here would answer for the executor, and
// would tell a model where another agent's command works and what it holds open. A path
// below /proc is taken as written (. and .. removed lexically) and judged as a /proc path;
// what a command then reaches through it is for its Landlock domain to allow.

import { lstatSync, readlinkSync } from "node:fs";
import { posix } from "node:path";
import { fail } from "./op-error.js";

export const WORKSPACE = "/workspace";
const MAX_LINKS = 40;

/** An absolute path: relative ones are taken from `base` (the workspace). */
export function absolute(p: unknown, base: string = WORKSPACE): string {
  if (typeof p !== "string" || p === "") fail("invalid_input", "path must be a non-empty string");
  if (p.includes("\0")) fail("invalid_input", "path contains a NUL byte");
  return posix.isAbsolute(p) ? p : posix.join(base, p);
}

/**
 * Canonical path with kernel semantics for the part that exists: each component is looked
 * up in turn, symlinks are followed where they are met (so "link/.." is the parent of the
 * link's target, as the kernel sees it), and once a component does not exist the rest is
 * appended with "." and ".." removed lexically.
 */
export function realpathOf(input: unknown, base: string = WORKSPACE): string {
  const queue = absolute(input, base)
    .split("/")
    .filter((c) => c !== "");
  let current = "/";
  let links = 0;
  let missing = false;
  while (queue.length > 0) {
    const comp = queue.shift() as string;
    if (comp === ".") continue;
    if (comp === "..") {
      current = posix.dirname(current);
      continue;
    }
    const next = posix.join(current, comp);
    if (missing || next.startsWith("/proc/")) {
      current = next;
      continue;
    }
    let isLink: boolean;
    try {
      isLink = lstatSync(next).isSymbolicLink();
    } catch {
      missing = true;
      current = next;
      continue;
    }
    if (!isLink) {
      current = next;
      continue;
    }
    if (++links > MAX_LINKS) fail("invalid_input", `${String(input)}: too many levels of symbolic links`);
    let target: string;
    try {
      target = readlinkSync(next);
    } catch {
      // Replaced between lstat and readlink by a command running at the same time.
      fail("not_found", `${String(input)}: changed while it was being resolved`);
    }
    if (target.startsWith("/")) current = "/";
    queue.unshift(...target.split("/").filter((c) => c !== ""));
  }
  return current;
}
