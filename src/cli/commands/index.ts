// cli/commands/index.ts — the list of commands `aido` knows, in help order.

import type { Command } from "../command.js";
import { agents } from "./agents.js";
import { approvals, approvalsGrants, approvalsRespond, approvalsRevoke } from "./approvals.js";
import { auditAnchor, auditQuery, auditTail, auditVerify } from "./audit.js";
import { daemonStart, daemonStatus, daemonStop } from "./daemon.js";
import { cancel, goals, status, submit } from "./goals.js";
import { imageBuild } from "./image.js";
import { intentClear, intentSet, intentStatus, intentStep } from "./intent.js";
import { manifestValidate } from "./manifest.js";
import { mcpConfig, mcpServe } from "./mcp.js";
import { mcpApprove, mcpList } from "./mcp-servers.js";
import { memoryDelete, memoryList, memoryReset, memorySearch } from "./memory.js";
import { output } from "./output.js";
import { planCreate, planExecute, planList, planSimulate } from "./plan.js";
import { sandboxDestroy, sandboxList, sandboxUpCommand } from "./sandbox.js";
import { logsCommand, runCommand } from "./sandbox-run.js";
import { watch } from "./watch.js";

export const commands: readonly Command[] = [
  daemonStart,
  daemonStop,
  daemonStatus,
  submit,
  goals,
  status,
  cancel,
  output,
  watch,
  agents,
  approvals,
  approvalsRespond,
  approvalsGrants,
  approvalsRevoke,
  intentSet,
  intentStep,
  intentStatus,
  intentClear,
  planSimulate,
  planCreate,
  planExecute,
  planList,
  manifestValidate,
  auditVerify,
  auditAnchor,
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
  mcpServe,
  mcpConfig,
  mcpList,
  mcpApprove,
];
