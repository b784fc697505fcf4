#!/usr/bin/env node
// cli/main.ts — the `aido` command: finds the command named by the leading words of
// argv, runs it, and turns errors into a message and an exit code (0 done, 1 failed,
// 2 usage or configuration). Commands live one per module in cli/commands/.
// Start-up is on every command's path, so this module loads only the command table and
// the errors: a command's module, the config's parsers and the sandbox sweeper's Docker
// client are imported when they are needed (`aido goals` must not pay for the kernel).

import { realpathSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { aidoHome, socketPathIn } from "../home.js";
import { expiredRecords } from "../humansandbox/state.js";
import { inertLines } from "../security/terminal-text.js";
import type { CliIo } from "./command.js";
import { type CommandEntry, commands } from "./commands/index.js";

function findCommand(argv: string[]): { cmd: CommandEntry; rest: string[] } | undefined {
  let best: { cmd: CommandEntry; rest: string[] } | undefined;
  for (const cmd of commands) {
    const words = cmd.name.split(" ");
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.cmd.name.split(" ").length)) {
      best = { cmd, rest: argv.slice(words.length) };
    }
  }
  return best;
}

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "aido — a secure runtime for swarms of LLM agents",
    "",
    "usage: aido <command> [options]    (aido <command> --help for details and an example)",
    "",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join("\n");
}

function help(cmd: CommandEntry): string {
  return `${cmd.summary}\n\nusage: ${cmd.usage}\n\nexample:\n  ${cmd.example}`;
}

export async function runCli(argv: string[], io: CliIo, env = process.env): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    io.out(overview());
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
  if (!found) {
    io.err(`aido: unknown command "${argv.join(" ")}"\n\n${overview()}`);
    return 2;
  }
  if (found.rest.includes("--help") || found.rest.includes("-h")) {
    io.out(help(found.cmd));
    return 0;
  }
  // Human sandboxes whose TTL ran out go away before any command does its work.
  try {
    if (expiredRecords(process.cwd()).length > 0) {
      const { sweepExpiredSandboxes } = await import("../humansandbox/lifecycle.js");
      const { swept, failed } = await sweepExpiredSandboxes(process.cwd());
      for (const id of swept)
        io.err(`aido: sandbox ${id} expired and was destroyed (evidence kept in .aido/sandboxes/${id})`);
      for (const f of failed)
        io.err(
          `aido: warning: sandbox ${f.id} expired but could not be destroyed (tried again by the next aido command): ${f.error}`,
        );
    }
  } catch (e) {
    io.err(`aido: warning: could not sweep expired sandboxes: ${errorMessage(e)}`);
  }
  let config: Promise<Config> | undefined;
  try {
    const cmd = await found.cmd.load();
    return await cmd.run({
      argv: found.rest,
      io,
      config: () => {
        config ??= import("../config.js").then(({ loadConfig }) => loadConfig({ env }));
        return config;
      },
      socketPath: () => socketPathIn(aidoHome(env)),
      env,
    });
  } catch (e) {
    if (e instanceof AidoError) {
      // A refusal may echo what the caller typed or a model wrote (a goal id, a name): inert.
      io.err(`aido ${found.cmd.name}: ${inertLines(e.message)}`);
      return e.code === ErrorCode.usage || e.code === ErrorCode.configInvalid ? 2 : 1;
    }
    io.err(`aido ${found.cmd.name}: unexpected error: ${inertLines((e as Error).stack ?? String(e))}`);
    return 1;
  }
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  const io: CliIo = {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
    interactive: Boolean(process.stdin.isTTY),
    prompt: (question) =>
      new Promise((resolve) => {
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        let answered = false;
        rl.question(question, (answer) => {
          answered = true;
          rl.close();
          resolve(answer);
        });
        rl.once("close", () => {
          if (!answered) resolve(undefined);
        });
      }),
    screen: {
      write: (t) => process.stdout.write(t),
      isTTY: Boolean(process.stdout.isTTY),
      ...(process.stdout.columns ? { columns: process.stdout.columns } : {}),
    },
  };
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`${(e as Error).stack}\n`);
      process.exitCode = 1;
    },
  );
}
