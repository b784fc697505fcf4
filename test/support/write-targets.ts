// The paths the gate judges a command's first program to write (writeTargets of its
// analysis), as the shell-writes-*-attack tests compare them.

import { analyzeCommand } from "../../src/security/shell.js";
import { writeTargets } from "../../src/security/shell-operands.js";

export const targets = (cmd: string): string[] =>
  writeTargets(analyzeCommand(cmd).commands[0]!).map((t) => t.path);
