// cli/commands/index.ts — the list of commands `aido` knows, in help order.

import type { Command } from "../command.js";
import { auditQuery, auditTail, auditVerify } from "./audit.js";
import { manifestValidate } from "./manifest.js";

export const commands: readonly Command[] = [manifestValidate, auditVerify, auditTail, auditQuery];
