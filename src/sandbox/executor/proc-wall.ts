// sandbox/executor/proc-wall.ts — the executor never reads /proc for an agent. It runs
// outside any Landlock domain, so under /proc it reads as itself: /proc/<pid>/environ of
// another exec holds the agent's proxy password and a running call's own secret, and
// /proc/self is the executor. The gate refuses a file tool's path there (gate/proc-paths.ts);
// this is the wall every road passes in the container itself, whatever the host judged:
// a judged path of a file op (read, write, edit, list, stat, grep's root) under /proc is
// refused before anything is opened (anchored.ts judged()), and a walk (grep over /, a glob
// leading into proc) never enters a folder of the proc file system, wherever it is mounted.
// A symlink into /proc, "..", /dev/fd (a link to /proc/self/fd) all resolve to a path under
// /proc first (realpath.ts takes /proc paths as written), so they meet the same refusal.
// A command (exec) reads /proc in its own Landlock domain: that is the way to /proc.

import { lstatSync, type Stats } from "node:fs";
import { isWithin } from "../../fs/within.js";
import { fail } from "./op-error.js";

const PROC = "/proc";
let procDev: number | bigint | undefined;

/** `path` (canonical, absolute) is /proc or below it. */
export function onProcPath(path: string): boolean {
  return isWithin(PROC, path);
}

/** A folder of the proc file system (its device is /proc's), wherever it is mounted. */
export function isProcFolder(st: Stats): boolean {
  if (procDev === undefined) {
    try {
      procDev = lstatSync(PROC).dev;
    } catch {
      procDev = -1;
    }
  }
  return st.isDirectory() && st.dev === procDev;
}

/** Refuse a judged path under /proc (permission_denied, naming the way there). */
export function refuseProcPath(path: string): void {
  if (onProcPath(path))
    fail(
      "permission_denied",
      `${path} is under /proc, which the executor does not read for an agent (it would read as itself, outside the agent's Landlock domain); read it with exec, confined`,
    );
}
