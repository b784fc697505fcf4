// gate/proc-paths.ts — what the executor would read as itself stays out of a tool's reach.
// The file tools (file_read, file_read_many, grep, file_list, file_write, file_edit) and the
// reads that judge the scripts a command runs (tools/exec-scripts.ts) are done by the goal's
// executor, which runs outside any Landlock domain. Under /proc it would read as itself:
// /proc/<pid>/environ of another exec holds the agent's proxy password and a running call's
// own secret (egress/callers.ts), another agent's too, in clear, and /proc/self is the
// executor. So a path there that such a tool or script read names is refused (audited as a
// policy denial). The executor holds the same wall itself (sandbox/executor/proc-wall.ts:
// a judged path under /proc refused, a walk never entering a proc folder), so a road the
// gate does not see — grep over / — stops there too. A command (exec) reads /proc in its own domain, whose ptrace scoping keeps
// other processes' entries closed (docs/security.md): that is the way to /proc.

import { isWithin } from "../fs/within.js";
import type { Need } from "./types.js";

const PROC = "/proc";

/** `path` (canonical, absolute) is /proc or below it. */
export function underProc(path: string): boolean {
  return isWithin(PROC, path);
}

/** Why the executor may not reach `path` for an agent; undefined when it may. */
export function procPathRefusal(path: string): string | undefined {
  if (!underProc(path)) return undefined;
  return `${path} is under /proc, which the file tools and script reads reach as the executor, outside the agent's Landlock domain (another process's environment, the executor's own); read it with exec, confined`;
}

/**
 * The refusal for a path need the executor itself would act on: a file tool's own path (a
 * need with no `via`; a command's paths carry where they came from and are reached by the
 * command in its domain).
 */
export function procNeedRefusal(need: Need): string | undefined {
  if (need.kind !== "file_read" && need.kind !== "file_write") return undefined;
  if (need.via !== undefined) return undefined;
  return procPathRefusal(need.path);
}
