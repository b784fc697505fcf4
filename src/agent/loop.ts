// agent/loop.ts — the tool-use loop of one agent run. Per iteration: keep the context
// within its window (context.ts), make one paid model call (inference.ts), and, when the
// model asked for tools, run them through the gate (tool-calls.ts) and feed the results
// back. The run ends with one of five stop reasons:
//   complete         the model answered without asking for a tool; `text` is the answer
//   max_iterations   manifest limits.max_iterations (else config.limits.maxIterations) ran out
//   budget_exceeded  a reservation was refused (the ledger audited budget.exceeded)
//   cancelled        the agent was stopped (its AbortController fired)
//   error            anything else (provider failure after retries, audit failure, ...)
// The loop never throws for these; the caller decides what a stop means for the goal.
// With tracing on (telemetry/), each run is an invoke_agent span, held on the agent's
// record while it runs so its model calls and tool calls nest under it.

import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { MAX_ARGUMENT_DEPTH, nestsDeeperThan } from "../gate/argument-depth.js";
import type { AgentRecord } from "../kernel/registry.js";
import { type Message, type ResponseBlock, textOf, toolUsesOf, type Usage } from "../llm/types.js";
import { Attr, tracedAgentName, tracedModel } from "../telemetry/attributes.js";
import { manageContext } from "./context.js";
import { type AgentEnv, MAX_OUTPUT_TOKENS } from "./env.js";
import { budgetedComplete } from "./inference.js";
import { buildSystemPrompt, offeredTools, toolSpec } from "./prompt.js";
import { RepeatGuard, runToolCalls } from "./tool-calls.js";

export type StopReason = "complete" | "max_iterations" | "budget_exceeded" | "cancelled" | "error";

export interface LoopResult {
  stopReason: StopReason;
  /** The final answer (complete), else the last text the model wrote. */
  text: string;
  /** The whole conversation after the run (summaries applied). */
  messages: Message[];
  usage: Usage;
  iterations: number;
  error?: { code: string; message: string };
}

export interface LoopOptions {
  maxIterations?: number;
  /** Called after every completed turn with the conversation so far (persistence). */
  onMessages?: (messages: readonly Message[]) => void;
}

export async function runAgentLoop(
  env: AgentEnv,
  agent: AgentRecord,
  initial: readonly Message[],
  opts: LoopOptions = {},
): Promise<LoopResult> {
  if (!env.tracer) return runLoop(env, agent, initial, opts);
  // One invoke_agent span per run; the agent's chat and tool spans find it on the record.
  const slash = agent.model.indexOf("/");
  const name = tracedAgentName(env.tracer.content, agent.manifest.name, agent.nameByOperator);
  const span = env.tracer.startAgent(agent.traceParent, name, {
    [Attr.agentName]: name,
    [Attr.agentId]: agent.id,
    [Attr.conversationId]: agent.goalId,
    [Attr.provider]: slash > 0 ? agent.model.slice(0, slash) : undefined,
    [Attr.requestModel]: tracedModel(
      env.tracer.content,
      slash > 0 ? agent.model.slice(slash + 1) : agent.model,
      agent.modelNamedByOperator,
    ),
    [Attr.agentParentId]: agent.parentId ?? undefined,
    [Attr.agentDepth]: agent.depth,
  });
  agent.span = span;
  try {
    const r = await runLoop(env, agent, initial, opts);
    span.set({
      [Attr.stopReason]: r.stopReason,
      [Attr.inputTokens]: r.usage.input_tokens,
      [Attr.outputTokens]: r.usage.output_tokens,
    });
    span.end(r.stopReason === "complete" ? undefined : (r.error?.code ?? r.stopReason));
    return r;
  } finally {
    if (agent.span === span) delete agent.span;
    span.end();
  }
}

async function runLoop(
  env: AgentEnv,
  agent: AgentRecord,
  initial: readonly Message[],
  opts: LoopOptions,
): Promise<LoopResult> {
  const usage: Usage = { input_tokens: 0, output_tokens: 0 };
  const local: AgentEnv = {
    ...env,
    onUsage(a, u) {
      usage.input_tokens += u.input_tokens;
      usage.output_tokens += u.output_tokens;
      env.onUsage?.(a, u);
    },
  };
  let messages = [...initial];
  let iterations = 0;
  let lastText = "";
  const end = (stopReason: StopReason, error?: unknown): LoopResult => {
    const r: LoopResult = { stopReason, text: lastText, messages, usage, iterations };
    if (error !== undefined) {
      r.error = {
        code: error instanceof AidoError ? error.code : ErrorCode.internal,
        message: errorMessage(error),
      };
    }
    return r;
  };
  const signal = agent.abort.signal;
  try {
    const verified = env.tokens.verify(agent.token);
    const tools = offeredTools(
      await env.gate.toolsFor({ agentId: agent.id, goalId: agent.goalId }, verified.grants),
      verified.grants,
      agent.manifest,
    );
    const specs = tools.map(toolSpec);
    const system = buildSystemPrompt({
      manifest: agent.manifest,
      agentId: agent.id,
      goalId: agent.goalId,
      depth: agent.depth,
      grants: verified.grants,
      tools,
      skills: env.skills,
      roles: env.roles,
    });
    const max =
      opts.maxIterations ?? agent.manifest.limits?.max_iterations ?? env.config.limits.maxIterations;
    const guard = new RepeatGuard();
    while (iterations < max) {
      if (signal.aborted) return end("cancelled", signal.reason);
      messages = await manageContext(local, agent, messages, { system, tools: specs, signal });
      iterations++;
      const response = await budgetedComplete(local, agent, {
        system,
        messages,
        tools: specs,
        max_tokens: MAX_OUTPUT_TOKENS,
        signal,
      });
      messages.push({ role: "assistant", content: response.content.map(keptInHistory) });
      const text = textOf(response.content).trim();
      if (text !== "") lastText = text;
      const calls = toolUsesOf(response);
      if (calls.length === 0) {
        opts.onMessages?.(messages);
        return end("complete");
      }
      const results = await runToolCalls(local, agent, calls, iterations, guard, signal);
      messages.push({ role: "user", content: results });
      opts.onMessages?.(messages);
    }
    return end("max_iterations");
  } catch (e) {
    if (signal.aborted) return end("cancelled", signal.reason ?? e);
    if (e instanceof AidoError && e.code === ErrorCode.budgetExceeded) return end("budget_exceeded", e);
    if (e instanceof AidoError && e.code === ErrorCode.cancelled) return end("cancelled", e);
    if (e instanceof AidoError && e.code === ErrorCode.tokenInvalid) return end("cancelled", e);
    return end("error", e);
  }
}

/**
 * What the conversation keeps of a response block. Arguments nested deeper than the gate
 * allows are refused (gate/argument-depth.ts); kept in the history they would overflow the
 * stack of every later walk of it (the context's size estimate, the request to the
 * provider, the saved conversation) and end the run. The history keeps `{}` in their place;
 * the refusal's tool_result tells the model why. The call itself is judged as sent.
 */
function keptInHistory(block: ResponseBlock): ResponseBlock {
  if (block.type !== "tool_use" || !nestsDeeperThan(block.input, MAX_ARGUMENT_DEPTH)) return block;
  return { ...block, input: {} };
}
