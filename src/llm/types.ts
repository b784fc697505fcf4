// llm/types.ts — the one message and tool format the rest of Aido speaks. Every provider
// adapter translates to and from these shapes at its edge, so the agent loop, the record
// files and the budget never see a provider's wire format. The shapes follow the Anthropic
// Messages API (content blocks) because it is the richest of the two; OpenAI Chat
// Completions maps onto it without loss for what an agent needs.

import type { ProviderName } from "../config.js";
import type { CallSite } from "./failure.js";
import type { BilledFailure, RetryEvent, RetryPolicy } from "./retry.js";

export interface TextBlock {
  type: "text";
  text: string;
}

export interface ToolUseBlock {
  type: "tool_use";
  id: string;
  name: string;
  input: Record<string, unknown>;
  /**
   * Set when the model's arguments were not a JSON object (OpenAI streams arguments as a
   * string and some servers send broken JSON). `input` is then `{}`; the agent should send
   * this message back as an error tool_result so the model can correct itself.
   */
  input_error?: string;
}

export interface ToolResultBlock {
  type: "tool_result";
  tool_use_id: string;
  content: string;
  is_error?: boolean;
}

export type ContentBlock = TextBlock | ToolUseBlock | ToolResultBlock;
/** What a model can answer with. */
export type ResponseBlock = TextBlock | ToolUseBlock;

/**
 * A system message in `messages` is appended to the request's system prompt by adapters
 * whose API has no system role inside the conversation (Anthropic).
 */
export interface Message {
  role: "system" | "user" | "assistant";
  content: string | ContentBlock[];
}

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the tool's input (an object schema). */
  input_schema: Record<string, unknown>;
}

export type StopReason = "end_turn" | "tool_use" | "max_tokens" | "stop_sequence" | "other";

/** Token counts, integers. input_tokens includes cached prompt tokens (what the budget pays). */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
}

export interface LlmResponse {
  /** Never empty: an answer without content is one empty text block. */
  content: ResponseBlock[];
  stop_reason: StopReason;
  /** The provider's own stop reason, kept when stop_reason is "other" (e.g. "refusal"). */
  raw_stop_reason?: string;
  usage: Usage;
  /** The model that answered, as the provider named it. */
  model: string;
  /** The provider's id of this answer (traces: gen_ai.response.id). */
  id?: string;
  /** The provider's own finish reason, unmapped ("stop", "end_turn", ...; traces). */
  finish_reason?: string;
}

export interface CompletionRequest {
  /** Model id at the provider ("claude-sonnet-4-5"); defaults to the client's model. */
  model?: string;
  system: string;
  messages: Message[];
  tools?: ToolSpec[];
  max_tokens: number;
  signal?: AbortSignal;
  /** Ask the provider to stream; the response is the same, `onText` sees text as it comes. */
  stream?: boolean;
  onText?: (delta: string) => void;
  /**
   * Told before a retry is sent after an attempt the provider may have billed (the
   * connection lost after the request left, no answer in time; llm/retry.ts): the budget
   * charges that attempt and reserves the retry's own bound. A throw (the reservation
   * refused) fails the call with that error and nothing more is sent.
   */
  resending?: (billed: BilledFailure) => void;
}

/** A provider's adapter. Implementations retry on their own; callers never do. */
export interface LlmClient {
  readonly provider: ProviderName;
  /** The model id this client was made for (without the provider prefix). */
  readonly model: string;
  /** Where it calls (traces: server.address / server.port); absent for a replay. */
  readonly baseURL?: string;
  complete(req: CompletionRequest): Promise<LlmResponse>;
}

export type UsageListener = (usage: Usage, info: { provider: ProviderName; model: string }) => void;

/** Text of a message's content, tool blocks left out. */
export function textOf(content: string | readonly ContentBlock[]): string {
  if (typeof content === "string") return content;
  return content
    .filter((b): b is TextBlock => b.type === "text")
    .map((b) => b.text)
    .join("");
}

/** The tool calls in a response, in the order the model made them. */
export function toolUsesOf(response: LlmResponse): ToolUseBlock[] {
  return response.content.filter((b): b is ToolUseBlock => b.type === "tool_use");
}

/** What createClient hands an adapter: where to call, with what, and how to retry. */
export interface AdapterOptions {
  site: CallSite;
  apiKey: string;
  retry: RetryPolicy;
  onUsage?: UsageListener | undefined;
  onRetry?: ((e: RetryEvent) => void) | undefined;
}
