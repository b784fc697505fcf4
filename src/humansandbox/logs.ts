// humansandbox/logs.ts — `aido logs`: a run's recorded output and (with a host list) its
// network log, read from the evidence (already scrubbed of env values), and --follow, which keeps reading while the run is
// still going (its run.json names the `aido run` process; the run is over when its
// summary.json appears or that process is gone). Run as root in someone else's project the
// store is the person's: the run's folder is reached folder by folder and its files read
// only when each is a plain file of one name (store-dirs.ts), never through a link they put
// there (runs/run-001/stdout.log -> /etc/shadow had root print the file to them). Each run
// folder and each file read must be the store keeper's (storeKeeper: the person's, root's), for
// a non-root `aido logs` too: in a runs/ the person left writable to others, a third user's
// run-NNN, or their log in a run folder left so, was shown as the person's own run.

import { closeSync, constants, fstatSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import type { NetworkLine } from "./egress.js";
import type { Project } from "./project.js";
import type { RunSummary } from "./run-evidence.js";
import { activeRecord, appendEvent, type SandboxRecord, sandboxPaths } from "./state.js";
import {
  notPlainFile,
  openRunIn,
  openRunsDir,
  openSandboxDir,
  plainFileProblem,
  readPlainIn,
  sandboxDir,
  storeKeeper,
  withDir,
} from "./store-dirs.js";

/** A run located in the project held open: `dir` is its folder's path, as shown (never read by it). */
export interface LocatedRun {
  project: Project;
  sandbox: SandboxRecord;
  runId: string;
  dir: string;
}

export interface RunLogs extends LocatedRun {
  sandbox: SandboxRecord;
  runId: string;
  dir: string;
  stdout: string;
  stderr: string;
  /** null while the run is still going. */
  summary: RunSummary | null;
  /** With a host list: network.log's records (open, close, denied), in order; else empty. */
  network: Array<NetworkLine & { time: string }>;
}

/** The sandbox's runs (run-NNN), oldest first, read through the project held open. */
export function runIds(project: Project, id: string): string[] {
  const sandbox = openSandboxDir(project, id);
  if (sandbox === undefined) return [];
  const runs = withDir(sandbox, (d) => openRunsDir(project, d, sandboxPaths(project, id).runs));
  if (runs === undefined) return [];
  return withDir(runs, (r) => readdirSync(fdPath(r)))
    .filter((n) => /^run-\d+$/.test(n))
    .sort();
}

/** The run's folder, reached folder by folder without following a link, open (close it). */
function openRun(at: LocatedRun): number {
  const paths = sandboxPaths(at.project, at.sandbox.id);
  const runs = withDir(sandboxDir(at.project, at.sandbox.id), (d) => openRunsDir(at.project, d, paths.runs));
  const run =
    runs === undefined ? undefined : withDir(runs, (r) => openRunIn(at.project, r, at.runId, at.dir));
  if (run === undefined)
    throw new AidoError(ErrorCode.notFound, `${at.dir} is gone`, { id: at.sandbox.id, run_id: at.runId });
  return run;
}

/**
 * A refusal of `aido logs` (a link, a hard link or another user's file where a log is, a
 * folder of the store that is not one) put in the sandbox's events.log as logs_refused,
 * then thrown: it was said only to whoever ran the command.
 */
function audited<T>(project: Project, sandbox: SandboxRecord, runId: string | undefined, f: () => T): T {
  try {
    return f();
  } catch (e) {
    auditRefusal(project, sandbox, runId, e);
    throw e;
  }
}

function auditRefusal(project: Project, sandbox: SandboxRecord, runId: string | undefined, e: unknown): void {
  if (!(e instanceof AidoError) || e.code !== ErrorCode.sandboxFailed) return;
  try {
    appendEvent(sandboxPaths(project, sandbox.id), {
      event: "logs_refused",
      ...(runId === undefined ? {} : { run_id: runId }),
      reason: e.message,
    });
  } catch {
    // events.log itself refused (a link put there): the error thrown still says what is wrong
  }
}

export function locateRun(project: Project, sandboxId?: string, runId?: string): LocatedRun {
  const sandbox = activeRecord(project, sandboxId);
  const runs = sandboxPaths(project, sandbox.id).runs;
  const ids = audited(project, sandbox, runId, () => runIds(project, sandbox.id));
  const id = runId ?? ids.at(-1);
  if (id === undefined)
    throw new AidoError(
      ErrorCode.notFound,
      `sandbox ${sandbox.id} has no runs yet: start one with \`aido run TASK\``,
      {
        id: sandbox.id,
      },
    );
  if (!ids.includes(id))
    throw new AidoError(
      ErrorCode.notFound,
      `sandbox ${sandbox.id} has no run ${id} (runs: ${ids.join(", ") || "none"})`,
      {
        id: sandbox.id,
        run_id: id,
      },
    );
  return { project, sandbox, runId: id, dir: join(runs, id) };
}

/** The run's file `name` (open folder `run`), "" when it is not there yet; a link, a hard link or another user's file is refused. */
function readIn(run: number, at: LocatedRun, name: string): string {
  return readPlainIn(run, name, join(at.dir, name), storeKeeper(at.project)) ?? "";
}

function summaryOf(run: number, at: LocatedRun): RunSummary | null {
  const text = readIn(run, at, "summary.json");
  return text === "" ? null : (JSON.parse(text) as RunSummary);
}

export function readRunLogs(project: Project, sandboxId?: string, runId?: string): RunLogs {
  const at = locateRun(project, sandboxId, runId);
  return audited(project, at.sandbox, at.runId, () =>
    withDir(openRun(at), (run) => ({
      ...at,
      stdout: readIn(run, at, "stdout.log"),
      stderr: readIn(run, at, "stderr.log"),
      summary: summaryOf(run, at),
      network: readIn(run, at, "network.log")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as NetworkLine & { time: string }),
    })),
  );
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Print a run's output as it is written until the run ends; returns its summary (null if it died unfinished). */
export async function followRun(
  at: LocatedRun,
  onStdout: (text: string) => void,
  onStderr: (text: string) => void,
  pollMs = 50,
): Promise<RunSummary | null> {
  const run = audited(at.project, at.sandbox, at.runId, () => openRun(at));
  try {
    return await follow(run, at, onStdout, onStderr, pollMs);
  } catch (e) {
    auditRefusal(at.project, at.sandbox, at.runId, e);
    throw e;
  } finally {
    closeSync(run);
  }
}

async function follow(
  run: number,
  at: LocatedRun,
  onStdout: (text: string) => void,
  onStderr: (text: string) => void,
  pollMs: number,
): Promise<RunSummary | null> {
  const pos = { out: 0, err: 0 };
  const owner = storeKeeper(at.project);
  const pull = (file: string, key: "out" | "err", emit: (t: string) => void): void => {
    let fd: number;
    try {
      fd = openSync(fdPath(run, file), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      throw code === "ELOOP" ? notPlainFile(join(at.dir, file), "a link") : e;
    }
    try {
      const why = plainFileProblem(fstatSync(fd), owner);
      if (why !== undefined) throw notPlainFile(join(at.dir, file), why);
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, pos[key]);
        if (n <= 0) break;
        pos[key] += n;
        emit(buf.subarray(0, n).toString("utf8"));
      }
    } finally {
      closeSync(fd);
    }
  };
  const pid = (JSON.parse(readIn(run, at, "run.json") || "{}") as { pid?: number }).pid;
  for (;;) {
    const done = summaryOf(run, at);
    pull("stdout.log", "out", onStdout);
    pull("stderr.log", "err", onStderr);
    if (done) return done;
    if (pid === undefined || !processAlive(pid)) return summaryOf(run, at);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
