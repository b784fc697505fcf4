// cli/commands/index.ts — the list of commands `aido` knows, in help order.

import type { Command } from "../command.js";
import { auditQuery, auditTail, auditVerify } from "./audit.js";
import { imageBuild } from "./image.js";
import { manifestValidate } from "./manifest.js";
import { memoryDelete, memoryList, memoryReset, memorySearch } from "./memory.js";
import { sandboxDestroy, sandboxList, sandboxUpCommand } from "./sandbox.js";
import { logsCommand, runCommand } from "./sandbox-run.js";

export const commands: readonly Command[] = [
  manifestValidate,
  auditVerify,
  auditTail,
  auditQuery,
  imageBuild,
  memoryList,
  memorySearch,
  memoryDelete,
  memoryReset,
  sandboxUpCommand,
  sandboxList,
  sandboxDestroy,
  runCommand,
  logsCommand,
];
