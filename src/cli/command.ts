// cli/command.ts — what a CLI command is, and the errors that pick its exit code.
// Exit codes (DESIGN.md): 0 done, 1 the thing asked failed, 2 usage or configuration.

import { type ParseArgsConfig, parseArgs } from "node:util";
import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** Is standard input a terminal (interactive prompts allowed)? */
  interactive: boolean;
  /** Ask a question and read one line of answer (undefined at end of input). Interactive only. */
  prompt?(question: string): Promise<string | undefined>;
  /** The raw output for live views (`aido watch`): text without added newlines, and whether it is a terminal. */
  screen?: { write(text: string): void; isTTY: boolean; columns?: number };
}

export interface CommandContext {
  argv: string[];
  io: CliIo;
  /**
   * Built (and its parsers loaded) on first call: `aido --help` must work with a broken
   * config, and a daemon client needs none of it.
   */
  config(): Promise<Config>;
  /** The daemon's socket ($AIDO_HOME/agentd.sock), known without reading the config. */
  socketPath(): string;
  /**
   * The environment the CLI was started with (runCli's `env`): what a command hands to a
   * process it starts. Settings come from config(), never from here.
   */
  env: Readonly<Record<string, string | undefined>>;
}

export interface Command {
  /** "manifest validate", "audit verify", "submit", ... */
  name: string;
  summary: string;
  usage: string;
  example: string;
  run(ctx: CommandContext): Promise<number>;
}

export class UsageError extends AidoError {
  constructor(message: string) {
    super(ErrorCode.usage, message);
  }
}

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with errors that say which command was misused. */
export function parseCommandArgs<O extends Options>(
  cmd: Pick<Command, "name" | "usage">,
  argv: string[],
  options: O,
  allowPositionals = true,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError(`aido ${cmd.name}: ${(e as Error).message}\nusage: ${cmd.usage}`);
  }
}

export const jsonOption = { json: { type: "boolean" } } as const;

export function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
