// test/cli/io.ts — a CliIo that records what a command printed, for runCli tests.

import type { CliIo } from "../../src/cli/command.js";

export interface CapturedIo {
  io: CliIo;
  out: string[];
  err: string[];
  /** Everything printed to stdout, joined by newlines. */
  text(): string;
}

export function captureIo(interactive = false): CapturedIo {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (l) => out.push(l), err: (l) => err.push(l), interactive },
    out,
    err,
    text: () => out.join("\n"),
  };
}
