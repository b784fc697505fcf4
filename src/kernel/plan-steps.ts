// kernel/plan-steps.ts — one step of an executed plan: run through the gate, its output
// bounded, its failure reported without the host details an unexpected error may carry.
// Shared by plan.execute (kernel/plans.ts) and shadow runs (kernel/shadow.ts).

import { AidoError, ErrorCode } from "../errors.js";
import type { BeforeRun, ToolResult } from "../gate/types.js";
import { boundOutput } from "../tools/output.js";
import type { PlanStep } from "./plan-store.js";

/** What the result of a plan shows of one step's output. */
const PLAN_STEP_OUTPUT_MAX = 8 * 1024;

export interface PlanStepError {
  code: string;
  message: string;
  /** The gate's stage, when the gate refused the step. */
  stage?: string;
}

export interface PlanStepResult {
  index: number;
  ok: boolean;
  /** The tool's output, bounded to PLAN_STEP_OUTPUT_MAX bytes. */
  output: string;
  error?: PlanStepError;
}

/**
 * Runs one step through the gate for an agent (the daemon's adds the events watchers see).
 * `beforeRun`: handed to the gate as the call's hook (ToolCall.beforeRun), awaited right
 * before the tool runs; a plan's frame before the step (kernel/plan-undo.ts).
 */
export type InvokeStep = (
  agentId: string,
  tool: string,
  input: unknown,
  signal?: AbortSignal,
  beforeRun?: (run: BeforeRun) => Promise<void>,
) => Promise<ToolResult>;

export function cancelledBefore(index: number): PlanStepError {
  return { code: ErrorCode.cancelled, message: `the plan was cancelled before step ${index} started` };
}

export async function runStep(
  invoke: InvokeStep,
  agentId: string,
  index: number,
  step: PlanStep,
  signal: AbortSignal | undefined,
  log: (message: string) => void,
  beforeRun?: (run: BeforeRun) => Promise<void>,
): Promise<{ result: PlanStepResult; wrote?: string }> {
  try {
    const r = await invoke(agentId, step.tool, step.input, signal, beforeRun);
    const wrote = (r.data as { path?: unknown } | undefined)?.path;
    return {
      result: { index, ok: r.isError !== true, output: boundOutput(r.output, PLAN_STEP_OUTPUT_MAX) },
      ...(typeof wrote === "string" ? { wrote } : {}),
    };
  } catch (e) {
    return { result: { index, ok: false, output: "", error: stepError(e, log) } };
  }
}

/** The path a file step names (when it reports none it wrote). */
export function stepPath(step: PlanStep): string | undefined {
  const path = (step.input as { path?: unknown } | null)?.path;
  return typeof path === "string" ? path : undefined;
}

/**
 * How a step's failure is reported: an AidoError as it is (its code, message and the gate's
 * stage); anything else is a bug or an environment failure whose message may carry host
 * paths, so the caller gets a fixed text and the daemon's log the rest.
 */
export function stepError(e: unknown, log: (message: string) => void): PlanStepError {
  if (e instanceof AidoError) {
    const stage = typeof e.details.stage === "string" ? e.details.stage : undefined;
    return { code: e.code, message: e.message, ...(stage ? { stage } : {}) };
  }
  log(`a plan step failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return { code: ErrorCode.internal, message: "internal error in the Aido daemon (details are in its log)" };
}
