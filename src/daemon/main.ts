#!/usr/bin/env node
// daemon/main.ts — the agentd entry. `aido daemon start [--foreground]` calls daemonMain;
// the detached mode re-runs this file as a process of its own with --foreground.
// Foreground: serve until SIGTERM/SIGINT, exit 0 after a clean shutdown. Otherwise:
// start a detached daemon, print its pid, exit. Exit 2 for a usage or configuration
// problem (another daemon already running, a bad config file), 1 for anything else.

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Env, loadConfig } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { startDetached } from "./detach.js";
import { startDaemon } from "./server.js";
import { daemonBuiltinTools } from "./tools.js";

export interface DaemonIo {
  out(line: string): void;
  err(line: string): void;
}

const stdio: DaemonIo = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

export async function daemonMain(
  argv: string[],
  env: Env = process.env,
  io: DaemonIo = stdio,
): Promise<number> {
  const unknown = argv.filter((a) => a !== "--foreground");
  if (unknown.length > 0) {
    io.err(`agentd: unknown argument "${unknown[0]}" (usage: aido daemon start [--foreground])`);
    return 2;
  }
  try {
    const config = loadConfig({ env });
    if (argv.includes("--foreground")) {
      const daemon = await startDaemon(config, {
        foreground: true,
        runtime: { builtinTools: daemonBuiltinTools },
      });
      await daemon.closed;
      return 0;
    }
    const { pid, log } = await startDetached(config, { env });
    io.out(`agentd started (pid ${pid}); socket ${config.socketPath}; log ${log}`);
    return 0;
  } catch (e) {
    io.err(`agentd: ${errorMessage(e)}`);
    const usage =
      e instanceof AidoError && (e.code === ErrorCode.usage || e.code === ErrorCode.configInvalid);
    return usage ? 2 : 1;
  }
}

function isEntry(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntry()) {
  daemonMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`agentd: ${errorMessage(e)}\n`);
      process.exit(1);
    },
  );
}
