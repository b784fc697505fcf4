// humansandbox/logs.ts — `aido logs`: a run's recorded output and (with a host list) its
// network log, read from the evidence (already scrubbed of env values), and --follow, which keeps reading while the run is
// still going (its run.json names the `aido run` process; the run is over when its
// summary.json appears or that process is gone).

import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import type { NetworkLine } from "./egress.js";
import type { RunSummary } from "./run-evidence.js";
import { activeRecord, type SandboxRecord, sandboxPaths } from "./state.js";

export interface RunLogs {
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

function runIds(runsDir: string): string[] {
  return existsSync(runsDir)
    ? readdirSync(runsDir)
        .filter((n) => /^run-\d+$/.test(n))
        .sort()
    : [];
}

export function locateRun(
  cwd: string,
  sandboxId?: string,
  runId?: string,
): { sandbox: SandboxRecord; runId: string; dir: string } {
  const sandbox = activeRecord(cwd, sandboxId);
  const runs = sandboxPaths(cwd, sandbox.id).runs;
  const ids = runIds(runs);
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
  return { sandbox, runId: id, dir: join(runs, id) };
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

function summaryOf(dir: string): RunSummary | null {
  const text = readOr(join(dir, "summary.json"), "");
  return text === "" ? null : (JSON.parse(text) as RunSummary);
}

export function readRunLogs(cwd: string, sandboxId?: string, runId?: string): RunLogs {
  const at = locateRun(cwd, sandboxId, runId);
  return {
    ...at,
    stdout: readOr(join(at.dir, "stdout.log"), ""),
    stderr: readOr(join(at.dir, "stderr.log"), ""),
    summary: summaryOf(at.dir),
    network: readOr(join(at.dir, "network.log"), "")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as NetworkLine & { time: string }),
  };
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
  dir: string,
  onStdout: (text: string) => void,
  onStderr: (text: string) => void,
  pollMs = 50,
): Promise<RunSummary | null> {
  const pos = { out: 0, err: 0 };
  const pull = (file: string, key: "out" | "err", emit: (t: string) => void): void => {
    let fd: number;
    try {
      fd = openSync(join(dir, file), "r");
    } catch {
      return;
    }
    try {
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
  const pid = (JSON.parse(readOr(join(dir, "run.json"), "{}")) as { pid?: number }).pid;
  for (;;) {
    const done = summaryOf(dir);
    pull("stdout.log", "out", onStdout);
    pull("stderr.log", "err", onStderr);
    if (done) return done;
    if (pid === undefined || !processAlive(pid)) return summaryOf(dir);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
