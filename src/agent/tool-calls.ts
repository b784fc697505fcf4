// agent/tool-calls.ts — running the tool calls of one model response. All calls of a
// response run in parallel, each through the gate (the only path to a tool); results
// come back in the model's order as tool_result blocks. Whatever a tool returns is
// wrapped as untrusted data. A refusal (GateDenied) or a tool failure becomes an error
// result the model can act on, never an exception that ends the agent.
//
// The repeat guard: the same tool with the same arguments (canonical JSON) a third time
// in one run is not executed; the model is told why instead. Models stuck in a loop
// otherwise burn their whole budget re-reading one file. The loop's own refusals (the
// guard's, and arguments that are not a JSON object) are audited as tool.denied, as the
// gate's are.

import { AidoError, errorMessage } from "../errors.js";
import { MAX_ARGUMENT_DEPTH, nestsDeeperThan } from "../gate/argument-depth.js";
import { GateDenied, type Principal, type ToolCall } from "../gate/invoke.js";
import { stageFailureOf } from "../gate/stage-failure.js";
import type { ToolServices } from "../gate/types.js";
import type { AgentRecord } from "../kernel/registry.js";
import type { ToolResultBlock, ToolUseBlock } from "../llm/types.js";
import { memoryIdentity } from "../memory/types.js";
import { auditCallId, auditErrorText, auditText } from "../security/audit-text.js";
import { canonicalJson } from "../security/canonical-json.js";
import { Attr, gateReason, toolType, tracedId, tracedToolName } from "../telemetry/attributes.js";
import type { AgentEnv } from "./env.js";
import { episodicOn } from "./prompt.js";
import { wrapUntrusted } from "./untrusted.js";

/** The Nth identical call (same tool, same arguments) is refused by the guard. */
export const REPEAT_LIMIT = 3;

export class RepeatGuard {
  private readonly seen = new Map<string, number>();

  /**
   * Count the call; true when it has now been made REPEAT_LIMIT times or more. Arguments
   * nested too deep to encode are not counted: the gate refuses them, naming the depth.
   */
  isRepeat(call: ToolUseBlock): boolean {
    if (nestsDeeperThan(call.input, MAX_ARGUMENT_DEPTH)) return false;
    const key = `${call.name}\u0000${canonicalJson(call.input)}`;
    const n = (this.seen.get(key) ?? 0) + 1;
    this.seen.set(key, n);
    return n >= REPEAT_LIMIT;
  }
}

/** What a principal takes from the agent's manifest and the env, kept across its turns. */
interface Derived {
  env: AgentEnv;
  manifest: AgentRecord["manifest"];
  identity: string;
  approvalRequired: ReadonlySet<string>;
  services: ToolServices;
}

const derivedByAgent = new WeakMap<AgentRecord, Derived>();

function derivedOf(env: AgentEnv, agent: AgentRecord): Derived {
  const kept = derivedByAgent.get(agent);
  if (kept && kept.env === env && kept.manifest === agent.manifest && kept.identity === agent.identity)
    return kept;
  const services: ToolServices = { skills: { registry: env.skills } };
  if (agent.manifest.skills) services.skills = { registry: env.skills, allowed: agent.manifest.skills };
  if (env.memory)
    services.memory = {
      store: env.memory,
      // A goal an MCP session submitted keeps its memories apart from the user's (memoryIdentity).
      identity: memoryIdentity(agent.identity, env.projectOf?.(agent.goalId).submitted_by),
      episodic: episodicOn(agent.manifest),
    };
  const derived: Derived = {
    env,
    manifest: agent.manifest,
    identity: agent.identity,
    approvalRequired: new Set(agent.manifest.approval_required),
    services,
  };
  derivedByAgent.set(agent, derived);
  return derived;
}

export function principalOf(env: AgentEnv, agent: AgentRecord, turn?: number): Principal {
  const { approvalRequired, services } = derivedOf(env, agent);
  // An agent in a world (kernel/worlds.ts) acts on the world's throwaway copy: its calls
  // are judged and audited under the world's pseudo-goal, with no snapshot before mutation.
  const p: Principal = {
    agentId: agent.id,
    goalId: agent.sandboxGoal ?? agent.goalId,
    identity: agent.identity,
    token: agent.token,
    approvalRequired,
    budgetAccount: agent.budgetAccount,
    services,
  };
  // The project of the goal the agent was spawned in (a world's copy is of that goal's folders).
  const project = env.projectOf?.(agent.goalId);
  if (project !== undefined) p.project = project;
  if (turn !== undefined) p.turn = turn;
  if (agent.sandboxGoal !== undefined) p.scratch = true;
  return p;
}

export async function runToolCalls(
  env: AgentEnv,
  agent: AgentRecord,
  calls: readonly ToolUseBlock[],
  turn: number,
  guard: RepeatGuard,
  signal: AbortSignal,
): Promise<ToolResultBlock[]> {
  const principal = principalOf(env, agent, turn);
  return Promise.all(calls.map((call) => runOne(env, agent, principal, call, guard, signal)));
}

async function runOne(
  env: AgentEnv,
  agent: AgentRecord,
  principal: Principal,
  call: ToolUseBlock,
  guard: RepeatGuard,
  signal: AbortSignal,
): Promise<ToolResultBlock> {
  const result = (content: string, isError: boolean): ToolResultBlock => ({
    type: "tool_result",
    tool_use_id: call.id,
    content,
    ...(isError ? { is_error: true } : {}),
  });
  // The bus carries the call's id as the log keeps it (inert, bounded): the provider chose it, and
  // watchers print it and match a call's events with its audit entries by it (ui/web/live.ts).
  // The provider gets its own id back whole, in the result.
  // So is its tool name (any text the model wrote), and a denial's reason, which quotes it.
  const ev = { agentId: agent.id, tool: auditText(call.name), callId: auditCallId(call.id) };
  /**
   * A refusal of the loop's own, before the gate: audited, traced and told as the gate's are.
   * One that cannot be audited is still a refusal, told as the gate tells its audit failures
   * (an error result), so the turn's other calls are not cut off by an exception.
   */
  const refuse = (
    refusal: { stage: "schema" | "repeat_guard"; code: string; reason: string },
    told: string,
  ): ToolResultBlock => {
    try {
      env.gate.refusedBeforeGate(principal, { name: call.name, callId: call.id }, refusal);
    } catch (e) {
      const code = e instanceof AidoError ? e.code : "audit_failed";
      return result(wrapUntrusted("tool_output", { tool: call.name, error: code }, errorMessage(e)), true);
    }
    traceRefusal(env, agent, call, refusal.stage, refusal.code, refusal.reason);
    env.events.emit("tool.denied", agent.goalId, { ...ev, ...refusal });
    return result(told, true);
  };
  if (call.input_error !== undefined) {
    return refuse(
      { stage: "schema", code: "invalid_input", reason: "the arguments were not a JSON object" },
      `Not run: the arguments were not a JSON object (${call.input_error}). Send valid JSON arguments.`,
    );
  }
  if (guard.isRepeat(call)) {
    return refuse(
      { stage: "repeat_guard", code: "repeated_call", reason: "identical call repeated" },
      `Not run: this is call number ${REPEAT_LIMIT} or more of ${call.name} with exactly the same arguments. ` +
        "The result will not change. Use the earlier result, change the arguments, or finish with what you have.",
    );
  }
  // A call of an agent that is stopping goes to the gate all the same: it refuses it there as
  // cancelled, audited (gate/cancel.ts), where before the loop dropped it with nothing on record.
  env.events.emit("tool.called", agent.goalId, ev);
  // Kept: the gate says by it whether a stage failed for this very call (stageFailureOf).
  const asked: ToolCall = {
    name: call.name,
    input: call.input,
    callId: call.id,
    signal,
    ...(agent.span ? { trace: agent.span } : {}),
  };
  const started = performance.now();
  try {
    const r = await env.gate.invoke(principal, asked);
    env.events.emit("tool.completed", agent.goalId, {
      ...ev,
      isError: r.isError === true,
      ms: Math.round(performance.now() - started),
    });
    return result(wrapUntrusted("tool_output", { tool: call.name }, r.output), r.isError === true);
  } catch (e) {
    if (e instanceof GateDenied) {
      env.events.emit("tool.denied", agent.goalId, {
        ...ev,
        code: e.code,
        stage: e.stage,
        reason: auditText(e.message),
      });
      return result(`Refused by the runtime (${e.code}, at the ${e.stage} check): ${e.message}`, true);
    }
    const stage = stageFailureOf(e, asked);
    if (stage !== undefined) {
      // Not run: a stage of the gate failed (audited as tool.errored). Watchers see it as such.
      env.events.emit("tool.errored", agent.goalId, {
        ...ev,
        stage,
        ...(e instanceof AidoError ? { code: e.code } : {}),
        error: auditErrorText(e),
      });
    } else {
      env.events.emit("tool.completed", agent.goalId, {
        ...ev,
        isError: true,
        ms: Math.round(performance.now() - started),
      });
    }
    const code = e instanceof AidoError ? e.code : "tool_failed";
    // A failure message may quote what the tool saw (file content, command output).
    return result(wrapUntrusted("tool_output", { tool: call.name, error: code }, errorMessage(e)), true);
  }
}

/** A call refused before it reached the gate still gets its execute_tool span. */
function traceRefusal(
  env: AgentEnv,
  agent: AgentRecord,
  call: ToolUseBlock,
  stage: string,
  code: string,
  reason: string,
): void {
  const tracer = env.tracer;
  if (!tracer) return;
  const name = tracedToolName(tracer.content, call.name, env.gate.knowsTool(call.name));
  tracer
    .startTool(agent.span, name, {
      [Attr.toolName]: name,
      [Attr.toolCallId]: tracedId(tracer.content, call.id),
      [Attr.toolType]: toolType(name),
      [Attr.agentId]: agent.id,
      [Attr.conversationId]: agent.goalId,
      [Attr.gateVerdict]: "denied",
      [Attr.gateStage]: stage,
      [Attr.gateReason]: gateReason(tracer.content, code, reason),
    })
    .end(code);
}
