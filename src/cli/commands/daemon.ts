// cli/commands/daemon.ts — `aido daemon start [--foreground] | stop | status`. Start is
// agentd's own entry (daemon/main.ts: detached by default, writing $AIDO_HOME/agentd.pid;
// --foreground for containers, supervisors and tests). Stop sends SIGTERM to the pid in
// the pid file and waits for the daemon's clean shutdown (socket and pid file gone).
// Status: running or not, pid, socket; exit 0 when running, 1 when not.

import { existsSync, readFileSync } from "node:fs";
import type { Config } from "../../config.js";
import { daemonMain } from "../../daemon/main.js";
import { socketAnswers } from "../../daemon/socket.js";
import { AidoError, ErrorCode } from "../../errors.js";
import { type Command, jsonOption, parseCommandArgs, printJson } from "../command.js";
import { commandSpec } from "./index.js";

interface DaemonState {
  running: boolean;
  pid: number | null;
  socket: string;
  pid_file: string;
}

function readPid(config: Config): number | null {
  try {
    const pid = Number(readFileSync(config.pidPath, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function daemonState(config: Config): Promise<DaemonState> {
  const pid = readPid(config);
  const running = existsSync(config.socketPath) && (await socketAnswers(config.socketPath));
  return {
    running,
    pid: pid !== null && alive(pid) ? pid : null,
    socket: config.socketPath,
    pid_file: config.pidPath,
  };
}

export const daemonStart: Command = {
  ...commandSpec("daemon start"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, { foreground: { type: "boolean" } }, false);
    const config = await ctx.config();
    const env = { ...ctx.env, AIDO_HOME: config.home };
    const code = await daemonMain(values.foreground ? ["--foreground"] : [], env, ctx.io);
    // The socket answers a moment before agentd writes its pid file; a script that runs
    // `aido daemon start && aido daemon stop` must find it.
    for (let i = 0; code === 0 && !values.foreground && i < 50 && readPid(config) === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return code;
  },
};

export const daemonStop: Command = {
  ...commandSpec("daemon stop"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, { timeout: { type: "string" } }, false);
    const timeoutS = values.timeout === undefined ? 60 : Number(values.timeout);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
      throw new AidoError(
        ErrorCode.usage,
        `--timeout must be a positive number of seconds, got "${values.timeout}"`,
      );
    }
    const config = await ctx.config();
    const state = await daemonState(config);
    if (state.pid === null) {
      ctx.io.out(
        state.running
          ? "agentd answers but its pid file is missing; stop it where it runs"
          : "agentd is not running",
      );
      return state.running ? 1 : 0;
    }
    process.kill(state.pid, "SIGTERM");
    const deadline = Date.now() + timeoutS * 1000;
    while (Date.now() < deadline) {
      if (!alive(state.pid)) {
        ctx.io.out(`agentd stopped (pid ${state.pid})`);
        return 0;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    ctx.io.err(`agentd (pid ${state.pid}) did not stop within ${timeoutS} s`);
    return 1;
  },
};

export const daemonStatus: Command = {
  ...commandSpec("daemon status"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, jsonOption, false);
    const state = await daemonState(await ctx.config());
    if (values.json) printJson(ctx.io, state);
    else if (state.running)
      ctx.io.out(`agentd running${state.pid ? ` (pid ${state.pid})` : ""}; socket ${state.socket}`);
    else
      ctx.io.out(
        `agentd not running (no daemon answers on ${state.socket}); start it with \`aido daemon start\``,
      );
    return state.running ? 0 : 1;
  },
};
