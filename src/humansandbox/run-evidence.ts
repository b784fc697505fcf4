// humansandbox/run-evidence.ts — what a run leaves in .aido/sandboxes/<id>/: its folder
// (runs/run-NNN, numbered in order), summary.json (written whole or not at all) and the
// links at the sandbox's top that point at the latest run's files. The summary's shape is
// here, and the exit status `aido run` derives from it.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import type { NetworkCounts } from "./egress.js";
import type { SandboxPaths, SandboxRecord } from "./state.js";
import { openRunsDir, removeIn, sandboxDir, withDir } from "./store-dirs.js";

export interface RunSummary {
  sandbox_id: string;
  run_id: string;
  task: { kind: "script" | "command"; argv: string[]; file?: string };
  started_at: string;
  ended_at: string;
  duration_ms: number;
  exit_code: number | null;
  signal: string | null;
  timed_out: boolean;
  /**
   * What stopped it: the run timeout, what was left of the sandbox's TTL, or a signal to
   * `aido run` itself (Ctrl-C, a supervisor; which one in `stop_signal`).
   */
  stopped_by: "timeout" | "ttl" | "signal" | null;
  /** With stopped_by "signal": the signal `aido run` got. The task's end is then unknown. */
  stop_signal?: NodeJS.Signals;
  oom_killed: boolean;
  timeout_ms: number;
  limits: SandboxRecord["limits"];
  permissions: SandboxRecord["permissions"];
  flags: SandboxRecord["flags"];
  image: string;
  runtime: SandboxRecord["runtime"];
  env_names: string[];
  stdout_bytes: number;
  stderr_bytes: number;
  logs_truncated: boolean;
  outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
  outputs_diff: string | null;
  /** With a host list: the run's connections (network.log). */
  network?: NetworkCounts;
  error?: string;
}

/** The exit status `aido run` reports for a run (timeout(1)'s 124; 128+N for a signal). */
export function exitStatusOf(s: Pick<RunSummary, "exit_code" | "signal" | "timed_out">): number {
  if (s.timed_out) return 124;
  if (s.exit_code !== null) return s.exit_code;
  const n = s.signal ? (osConstants.signals as Record<string, number>)[s.signal] : undefined;
  return n === undefined ? 1 : 128 + n;
}

/**
 * The next run's folder, runs/run-NNN, made here (a number another run took is skipped),
 * and held open: `dir` is the descriptor's path (/proc/self/fd/N), what the run's files are
 * written through (close `fd` when the run is over). Run as root, runs/ is the person's
 * (state.ts ownEvidence): by its name, a folder they renamed away and replaced by a link
 * (to /etc/logrotate.d, say) had root write the task's stdout.log there.
 */
export function newRunDir(paths: SandboxPaths): { runId: string; dir: string; fd: number } {
  // runs/ reached folder by folder, never through a link (store-dirs.ts); the run's folder made in it.
  const runs = withDir(
    sandboxDir(paths.project, paths.id),
    (d) => openRunsDir(paths.project, d, paths.runs) ?? missing(paths.runs),
  );
  return withDir(runs, (r) => newRunDirIn(r, paths));
}

function missing(path: string): never {
  throw new AidoError(ErrorCode.sandboxFailed, `${path} is gone: the run has nowhere to be recorded`, {
    path,
  });
}

function newRunDirIn(runs: number, paths: SandboxPaths): { runId: string; dir: string; fd: number } {
  for (let n = 1; ; n++) {
    const runId = `run-${String(n).padStart(3, "0")}`;
    const dir = join(paths.runs, runId);
    try {
      mkdirSync(fdPath(runs, runId));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      continue;
    }
    const replaced = () =>
      new AidoError(
        ErrorCode.sandboxFailed,
        `${dir} was replaced as it was made (by a link or another folder, on the host): nothing of the run is written through it`,
        { path: dir },
      );
    let fd: number;
    try {
      fd = openSync(fdPath(runs, runId), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch {
      throw replaced();
    }
    // The folder made just now: this process's, and empty (not one put in its place).
    if (
      fstatSync(fd).uid !== (process.geteuid?.() ?? fstatSync(fd).uid) ||
      readdirSync(fdPath(fd)).length > 0
    ) {
      closeSync(fd);
      throw replaced();
    }
    return { runId, dir: fdPath(fd), fd };
  }
}

/** summary.json written whole or not at all (a reader never sees half of one), and linked as the latest. */
export function writeSummary(paths: SandboxPaths, dir: string, runId: string, summary: RunSummary): void {
  writeRunFile(dir, "summary.json", `${JSON.stringify(summary, null, 2)}\n`);
  pointLatest(paths, runId, "summary.json");
}

/**
 * `text` as the file `name` of the run's folder (`dir`, held open), written whole: a temp
 * of a name no one can guess, made new (O_EXCL | O_NOFOLLOW), renamed over `name` (which
 * replaces whatever is there, never writing through it). Run as root, the run's folder is
 * the person's as soon as another root command on the sandbox gives the evidence away (a
 * second `aido run`, a destroy, the TTL sweep): by name, a summary.json, its temp,
 * run.json or outputs.diff they made a link had root write it over the file linked to.
 */
export function writeRunFile(dir: string, name: string, text: string): void {
  const tmp = join(dir, `.${name}.tmp-${randomBytes(6).toString("hex")}`);
  const fd = openSync(tmp, NEW_FILE, 0o644);
  try {
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
}

/** A file made new, never through a link or over anything put at its name. */
export const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Point root/<name> at runs/<run>/<name> (a relative link, replaced atomically), made and
 * renamed through the sandbox's folder reached without following a link (store-dirs.ts):
 * by path, a sandbox folder the person swapped for a link had root put the link and its
 * temp (removed first, whatever it was) in the folder it pointed at.
 */
export function pointLatest(paths: SandboxPaths, runId: string, name: string): void {
  withDir(sandboxDir(paths.project, paths.id), (dir) => {
    const tmp = `${name}.tmp-${process.pid}`;
    removeIn(dir, tmp, join(paths.root, tmp));
    symlinkSync(join("runs", runId, name), fdPath(dir, tmp));
    renameSync(fdPath(dir, tmp), fdPath(dir, name));
  });
}
