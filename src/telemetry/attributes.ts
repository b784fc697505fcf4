// telemetry/attributes.ts — the one place span attribute names are spelled: the GenAI
// semantic conventions' (gen_ai.*, server.*, error.type) and Aido's own (aido.*), and the
// JSON shapes message content takes when the operator opted in
// (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true). Content is bounded (each text
// part, and each attribute as a whole, oldest messages dropped first) and scrubbed of the
// secrets the runtime knows (provider API keys, external MCP servers' header values)
// before it leaves: a model can be talked into repeating a key it should never have seen.
// Every other string attribute is scrubbed of them too, content on or off (a tool's name is
// the model's choice, and can be a key). The gate's reason for a denial names the path,
// command or host the call targeted: content, so on a span only when content is on; with
// it off aido.gate.reason carries the denial's code alone (gateReason). A tool's name is
// the model's choice too, and can be any text: with content off, a span names a tool (its
// name, gen_ai.tool.name) only when it is one the runtime knows, and `unknown` otherwise
// (tracedToolName); so does a model a child's manifest named past a models.allowed glob
// (tracedModel).

import type { Config } from "../config.js";
import { MAX_ARGUMENT_DEPTH, nestsDeeperThan } from "../gate/argument-depth.js";
import { secretsOf } from "../llm/record.js";
import type { ContentBlock, LlmResponse, Message } from "../llm/types.js";
import { auditCallId, auditText } from "../security/audit-text.js";
import { blankSecrets } from "../security/blank-secrets.js";

export type AttributeValue = string | number | boolean | string[];

export const Attr = {
  operation: "gen_ai.operation.name",
  provider: "gen_ai.provider.name",
  agentName: "gen_ai.agent.name",
  agentId: "gen_ai.agent.id",
  conversationId: "gen_ai.conversation.id",
  requestModel: "gen_ai.request.model",
  requestMaxTokens: "gen_ai.request.max_tokens",
  responseModel: "gen_ai.response.model",
  responseId: "gen_ai.response.id",
  finishReasons: "gen_ai.response.finish_reasons",
  inputTokens: "gen_ai.usage.input_tokens",
  outputTokens: "gen_ai.usage.output_tokens",
  serverAddress: "server.address",
  serverPort: "server.port",
  errorType: "error.type",
  toolName: "gen_ai.tool.name",
  toolCallId: "gen_ai.tool.call.id",
  toolType: "gen_ai.tool.type",
  toolArguments: "gen_ai.tool.call.arguments",
  toolResult: "gen_ai.tool.call.result",
  systemInstructions: "gen_ai.system_instructions",
  inputMessages: "gen_ai.input.messages",
  outputMessages: "gen_ai.output.messages",
  // Aido's own
  agentParentId: "aido.agent.parent_id",
  agentDepth: "aido.agent.depth",
  stopReason: "aido.agent.stop_reason",
  queueWaitMs: "aido.inference.queue_wait_ms",
  budgetReserved: "aido.budget.reserved",
  budgetCommitted: "aido.budget.committed",
  gateVerdict: "aido.gate.verdict",
  gateStage: "aido.gate.stage",
  gateReason: "aido.gate.reason",
  approvalDecision: "aido.approval.decision",
  approvalVia: "aido.approval.via",
  approvalId: "aido.approval.id",
  snapshotId: "aido.snapshot.id",
  exitCode: "aido.exit_code",
} as const;

export const Operation = { agent: "invoke_agent", chat: "chat", tool: "execute_tool" } as const;

/** External MCP tools (mcp__server__tool) extend the agent; built-in tools are functions. */
export function toolType(name: string): "function" | "extension" {
  return name.startsWith("mcp__") ? "extension" : "function";
}

/** server.address / server.port of a provider's base URL. */
export function serverOf(baseURL: string | undefined): { address?: string; port?: number } {
  if (!baseURL) return {};
  try {
    const u = new URL(baseURL);
    const port = u.port !== "" ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
    return { address: u.hostname, port };
  } catch {
    return {};
  }
}

/**
 * aido.gate.reason for a denial: the gate's text (which names the call's target, e.g. a
 * secret-looking path) when message content is on, only the denial's code when it is off.
 */
export function gateReason(content: ContentRedactor | undefined, code: string, reason: string): string {
  // Inert and bounded as the audit keeps it: the text quotes what the model chose (a tool name, argument keys).
  return content === undefined ? code : auditText(reason);
}

/** What a span says for a tool name no known tool has, with content off. */
export const UNKNOWN_TOOL = "unknown";

/**
 * The tool name a span carries: a model can put any text in a call's name (a path it
 * probes, a secret it was talked into repeating), so with content off a name that is no
 * known tool (`known`: the gate's tools, an approved MCP server's pinned ones) is
 * UNKNOWN_TOOL; known names, and any name with content on, stay.
 */
export function tracedToolName(content: ContentRedactor | undefined, name: string, known: boolean): string {
  if (known) return name;
  // Content on: the model's text all the same, inert and bounded as the audit keeps it (a megabyte
  // of name with terminal controls was a megabyte span name and attribute).
  return content === undefined ? UNKNOWN_TOOL : auditText(name);
}

/** What a call id looks like from the providers (toolu_…, call_…): short, no spaces. */
const PLAIN_CALL_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * An id of the provider's a span carries (gen_ai.tool.call.id, gen_ai.response.id), which a
 * self-hosted compatible server may let the model shape, so with content off an id that
 * does not look like one (spaces, a path, past 64 characters) is UNKNOWN_TOOL.
 */
export function tracedId(content: ContentRedactor | undefined, id: string): string {
  if (PLAIN_CALL_ID.test(id)) return id;
  // Content on: the id all the same, inert and at most AUDIT_CALL_ID_MAX characters, as the audit
  // keeps it (before, a 1 MiB id went on the span whole, terminal controls included).
  return content === undefined ? UNKNOWN_TOOL : auditCallId(id);
}

/** What the providers send as a stop (finish) reason: Anthropic's, then OpenAI's. */
const PROVIDER_FINISH = new Set([
  "end_turn",
  "max_tokens",
  "stop_sequence",
  "tool_use",
  "pause_turn",
  "refusal",
  "stop",
  "length",
  "tool_calls",
  "content_filter",
  "function_call",
]);

/**
 * The finish reason a chat span carries (`gen_ai.response.finish_reasons`): the provider's
 * own text, which a self-hosted compatible server may let the model shape, so with content
 * off one no provider sends is the runtime's normalized stop reason instead.
 */
export function tracedFinish(content: ContentRedactor | undefined, raw: string, normalized: string): string {
  if (PROVIDER_FINISH.has(raw)) return raw;
  // Content on: the provider's text all the same, inert and bounded as the audit keeps it.
  return content === undefined ? normalized : auditText(raw);
}

/**
 * The model a span names (`gen_ai.request.model`, `gen_ai.response.model`, a chat span's
 * name): a child's manifest is a model's writing, and past a models.allowed glob
 * (`anthropic/*`) its `model:` can be any text, so with content off a model the operator
 * did not choose (`named`: AgentRecord.modelNamedByOperator) is UNKNOWN_MODEL.
 */
export function tracedModel(content: ContentRedactor | undefined, model: string, named: boolean): string {
  // A named model's response still carries the provider's text (gen_ai.response.model): bounded and inert.
  return content === undefined && !named ? UNKNOWN_MODEL : auditText(model);
}

/** What a span says for a model the operator did not choose, with content off. */
export const UNKNOWN_MODEL = "unknown";

/**
 * The agent name a span carries (`gen_ai.agent.name`, an invoke_agent span's name): under
 * `spawn_child: [*]` a child's manifest name is a model's writing (64 characters it may fill
 * with what it read), so with content off a name the operator did not choose (`named`:
 * AgentRecord.nameByOperator) is UNKNOWN_AGENT.
 */
export function tracedAgentName(content: ContentRedactor | undefined, name: string, named: boolean): string {
  return content === undefined && !named ? UNKNOWN_AGENT : name;
}

/** What a span says for an agent name the operator did not choose, with content off. */
export const UNKNOWN_AGENT = "unknown";

/** Longest text part kept; longer ones end in a note of how much was cut. */
const CONTENT_PART_MAX = 4096;
/** Longest content attribute (its JSON); the oldest messages are dropped to fit. */
const CONTENT_ATTRIBUTE_MAX = 64 * 1024;
const REDACTED = "[redacted]";

/** Shapes opted-in content: bounded, secrets removed, in the semconv JSON forms. */
export class ContentRedactor {
  constructor(private readonly secrets: readonly string[]) {}

  /** `s` with every secret replaced, uncut: applied to every string attribute of every span. */
  scrub(s: string): string {
    return blankSecrets(s, this.secrets, REDACTED);
  }

  /** One text: secrets replaced, cut at CONTENT_PART_MAX. */
  text(s: string): string {
    const out = this.scrub(s);
    if (out.length <= CONTENT_PART_MAX) return out;
    return `${out.slice(0, CONTENT_PART_MAX)}…[${out.length - CONTENT_PART_MAX} more characters]`;
  }

  /** gen_ai.system_instructions */
  system(system: string): string {
    return JSON.stringify([{ type: "text", content: this.text(system) }]);
  }

  /** gen_ai.input.messages: the conversation sent, newest kept when it is too long. */
  input(messages: readonly Message[]): string {
    const shaped = messages.map((m) => this.message(m.role, m.content));
    let start = 0;
    let json = JSON.stringify(shaped);
    while (json.length > CONTENT_ATTRIBUTE_MAX && start < shaped.length - 1) {
      start++;
      json = JSON.stringify(shaped.slice(start));
    }
    return json.length > CONTENT_ATTRIBUTE_MAX ? "[]" : json;
  }

  /** gen_ai.output.messages: the model's answer. */
  output(response: LlmResponse, finishReason: string): string {
    return JSON.stringify([
      { ...this.message("assistant", response.content), finish_reason: auditText(finishReason) },
    ]);
  }

  /**
   * gen_ai.tool.call.arguments. Arguments nested deeper than the gate allows are not
   * encoded: the span is opened before the gate refuses them, and JSON.stringify would
   * overflow the stack on them (and with it the call, before it is judged and audited).
   */
  arguments(input: unknown): string {
    if (nestsDeeperThan(input, MAX_ARGUMENT_DEPTH))
      return `[not recorded: nested deeper than ${MAX_ARGUMENT_DEPTH} levels]`;
    return this.text(JSON.stringify(input ?? null));
  }

  private message(role: Message["role"], content: string | readonly ContentBlock[]) {
    if (typeof content === "string") return { role, parts: [{ type: "text", content: this.text(content) }] };
    const parts = content.map((b) => {
      if (b.type === "text") return { type: "text", content: this.text(b.text) };
      if (b.type === "tool_use")
        return {
          type: "tool_call",
          id: auditCallId(b.id),
          name: auditText(b.name),
          arguments: this.arguments(b.input),
        };
      // The ids and names are the provider's text: bounded as the audit keeps them (a 1 MiB id went
      // whole into gen_ai.output.messages, which has no bound of its own).
      return { type: "tool_call_response", id: auditCallId(b.tool_use_id), response: this.text(b.content) };
    });
    // Tool results travel in a user message here; the conventions give them the tool role.
    const allResults = content.length > 0 && content.every((b) => b.type === "tool_result");
    return { role: allResults ? "tool" : role, parts };
  }
}

/** The redactor for this config: API keys and external MCP servers' header values. */
export function redactorFor(config: Config): ContentRedactor {
  const secrets = new Set(secretsOf(config));
  for (const s of Object.values(config.mcp.servers)) {
    if (s.transport !== "http") continue;
    for (const variable of Object.values(s.headers)) {
      const v = config.mcp.headerValue(variable);
      if (v) secrets.add(v);
    }
  }
  // Longest first, so a key that contains another is replaced whole.
  return new ContentRedactor([...secrets].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length));
}
