// daemon/detach.ts — `aido daemon start` without --foreground: start agentd as a detached
// child process (its own session, stdout and stderr appended to $AIDO_HOME/agentd.log,
// no terminal), wait until its socket answers, and report its pid. If the child dies
// before answering, the error carries the end of its log, which says why.

import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Config, Env } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { ensurePrivateDir, ensurePrivateFile } from "../security/private-home.js";
import { socketAnswers } from "./socket.js";

export interface DetachOptions {
  /** Environment of the child (default process.env). */
  env?: Env;
  /** Give up waiting for the socket after this long (default 30 s). */
  timeoutMs?: number;
  /**
   * Working folder of the child (default this process's). A project's .aido/config.yaml
   * there tightens the daemon's config: `aido demo` starts its daemon in the demo's home.
   */
  cwd?: string;
}

export function daemonLogPath(config: Config): string {
  return join(config.home, "agentd.log");
}

/**
 * V8 flags of the detached daemon. `--no-memory-reducer`: no memory-reducing full GC
 * (`Mark-Compact (reduce)`), which V8 schedules when the process allocates little, as a
 * daemon waiting on its models does; it shrinks the young generation to its minimum, and
 * the turns after it paid ~0.4 ms more CPU each (scavenges every 0.1 to 0.3 s instead of
 * ~2 s, more of a turn's objects promoted). The ordinary GCs still shrink the heap.
 * `v8.setFlagsFromString` once started does not stop the reducer (Node 20), and
 * NODE_OPTIONS refuses the flag, so it is given here (docs/agents.md "CPU per turn").
 */
export const DAEMON_V8_FLAGS = ["--no-memory-reducer"];

/** The module to run: main.js next to this file (main.ts when running from source). */
function mainModule(): { file: string; loader: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith(".ts");
  const file = join(dirname(here), ts ? "main.ts" : "main.js");
  const hasLoader = process.execArgv.some((a) => a.includes("tsx"));
  // Resolved here, not by the child: the child's working directory may not see tsx.
  return { file, loader: ts && !hasLoader ? ["--import", import.meta.resolve("tsx")] : [] };
}

function logTail(file: string, bytes = 4000): string {
  try {
    const text = readFileSync(file, "utf8");
    return text.slice(-bytes).trim();
  } catch {
    return "";
  }
}

/** Start a detached daemon for `config`; resolves with its pid once its socket answers. */
export async function startDetached(
  config: Config,
  opts: DetachOptions = {},
): Promise<{ pid: number; log: string }> {
  if (existsSync(config.socketPath) && (await socketAnswers(config.socketPath))) {
    throw new AidoError(ErrorCode.usage, `another Aido daemon is already running on ${config.socketPath}`, {
      socket: config.socketPath,
    });
  }
  ensurePrivateDir(config.home);
  const logFile = daemonLogPath(config);
  ensurePrivateFile(logFile);
  const fd = openSync(logFile, "a");
  const { file, loader } = mainModule();
  const child = spawn(
    process.execPath,
    [...DAEMON_V8_FLAGS, ...process.execArgv, ...loader, file, "--foreground"],
    {
      detached: true,
      stdio: ["ignore", fd, fd],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      env: { ...(opts.env ?? process.env), AIDO_HOME: config.home },
    },
  );
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined)
    throw new AidoError(ErrorCode.internal, "could not start the Aido daemon process", {});
  let exited: number | null | undefined;
  child.once("exit", (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      throw new AidoError(
        ErrorCode.internal,
        `the Aido daemon exited (status ${exited}) before it was ready; the end of ${logFile}:\n${logTail(logFile)}`,
        { log: logFile },
      );
    }
    if (existsSync(config.socketPath) && (await socketAnswers(config.socketPath, 500))) {
      return { pid, log: logFile };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new AidoError(
    ErrorCode.internal,
    `the Aido daemon (pid ${pid}) did not answer on ${config.socketPath} in time; see ${logFile}`,
    { log: logFile, pid },
  );
}
