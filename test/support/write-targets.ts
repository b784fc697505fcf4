// The paths the gate judges a command's first program to write (writeTargets of its
// analysis), as the shell-writes-*-attack tests compare them.

import { isAidoError } from "../../src/errors.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { writeTargets } from "../../src/security/shell-operands.js";

export const targets = (cmd: string): string[] =>
  writeTargets(analyzeCommand(cmd).commands[0]!).map((t) => t.path);

/** The message of the policy_denied refusal analyzeCommand gives `cmd`; fails when it gives none. */
export function refusalOf(cmd: string): string {
  try {
    analyzeCommand(cmd);
  } catch (e) {
    if (isAidoError(e, "policy_denied")) return (e as Error).message;
    throw e;
  }
  throw new Error(`${cmd} was not refused`);
}
