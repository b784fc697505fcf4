// llm/openai-chat.ts — the Chat Completions adapter over the official OpenAI SDK, used for
// openai/, deepseek/, ollama/ and openai-compat/. Tool calls stream as fragments keyed by
// index (id and name first, arguments in pieces); we assemble them here rather than use a
// helper that throws on broken JSON, so a bad call becomes input_error the model can fix.
// Usage comes in a final chunk because we ask for stream_options.include_usage.

import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions/completions.js";
import type { ProviderName } from "../config.js";
import { classifySdkError } from "./failure.js";
import { httpFetch } from "./http-fetch.js";
import { normalizeAnswer, parseToolArguments, tokenCount } from "./normalize.js";
import { callWithRetries } from "./retry.js";
import type {
  AdapterOptions,
  CompletionRequest,
  LlmClient,
  LlmResponse,
  Message,
  ResponseBlock,
  StopReason,
  Usage,
} from "./types.js";

/** The openai SDK's error classes, as failure.ts classifies them (the embedder's calls too). */
export const OPENAI_SDK_ERRORS = {
  APIError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
};

export class OpenAIChatClient implements LlmClient {
  readonly provider: ProviderName;
  readonly model: string;
  readonly baseURL: string;
  readonly #sdk: OpenAI;
  readonly #opts: AdapterOptions;

  constructor(opts: AdapterOptions) {
    this.#opts = opts;
    this.provider = opts.site.provider;
    this.model = opts.site.model;
    this.baseURL = opts.site.baseURL;
    // Explicit everything: the SDK would otherwise read OPENAI_* variables itself.
    this.#sdk = new OpenAI({
      apiKey: opts.apiKey,
      organization: null,
      project: null,
      baseURL: opts.site.baseURL,
      maxRetries: 0,
      timeout: opts.retry.timeoutMs,
      logLevel: "off",
      fetch: httpFetch,
    });
  }

  async complete(req: CompletionRequest): Promise<LlmResponse> {
    const params = toChatParams(req, req.model ?? this.model, this.provider);
    const response = await callWithRetries(
      this.#opts.site,
      this.#opts.retry,
      (e) => classifySdkError(e, OPENAI_SDK_ERRORS),
      (signal) => (req.stream ? this.#streamOnce(params, req, signal) : this.#createOnce(params, signal)),
      { signal: req.signal, onRetry: this.#opts.onRetry, resending: req.resending },
    );
    this.#opts.onUsage?.(response.usage, { provider: this.provider, model: response.model });
    return response;
  }

  async #createOnce(
    params: ChatCompletionCreateParamsNonStreaming,
    signal: AbortSignal,
  ): Promise<LlmResponse> {
    const completion = await this.#sdk.chat.completions.create(params, {
      signal,
      timeout: this.#opts.retry.timeoutMs,
    });
    return fromCompletion(completion, params.model);
  }

  async #streamOnce(
    params: ChatCompletionCreateParamsNonStreaming,
    req: CompletionRequest,
    signal: AbortSignal,
  ): Promise<LlmResponse> {
    const stream = await this.#sdk.chat.completions.create(
      { ...params, stream: true, stream_options: { include_usage: true } },
      { signal, timeout: this.#opts.retry.timeoutMs },
    );
    let text = "";
    let finish: string | null = null;
    let model = params.model;
    let id: string | undefined;
    let usage: Usage = { input_tokens: 0, output_tokens: 0 };
    const calls = new Map<number, { id: string; name: string; args: string }>();
    for await (const chunk of stream) {
      if (chunk.model) model = chunk.model;
      if (chunk.id) id = chunk.id;
      if (chunk.usage) usage = usageOf(chunk.usage);
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      const delta = choice.delta;
      if (delta?.content) {
        text += delta.content;
        req.onText?.(delta.content);
      }
      for (const tc of delta?.tool_calls ?? []) {
        const call = calls.get(tc.index) ?? { id: "", name: "", args: "" };
        if (tc.id) call.id = tc.id;
        if (tc.function?.name) call.name += tc.function.name;
        if (tc.function?.arguments) call.args += tc.function.arguments;
        calls.set(tc.index, call);
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    // The SDK ends iteration quietly when the request is aborted (our timeout included), and
    // a dropped connection can end it early too: an answer without a finish reason is cut
    // off, never complete, so it goes back to the retry policy instead of to the agent.
    if (signal.aborted) throw new APIUserAbortError();
    if (finish === null)
      throw new APIConnectionError({ message: "the stream ended before the answer was complete" });
    const content: ResponseBlock[] = text === "" ? [] : [{ type: "text", text }];
    for (const [index, call] of [...calls.entries()].sort((a, b) => a[0] - b[0])) {
      content.push(toolUse(call.id || `call_${index}`, call.name, call.args));
    }
    return normalizeAnswer({ content, stop: stopOf(finish), rawStop: finish ?? "none", usage, model, id });
  }
}

/** OpenAI's own models take max_completion_tokens; compatible servers know max_tokens. */
export function toChatParams(
  req: CompletionRequest,
  model: string,
  provider: ProviderName,
): ChatCompletionCreateParamsNonStreaming {
  const messages: ChatCompletionMessageParam[] = [];
  if (req.system !== "") messages.push({ role: "system", content: req.system });
  for (const m of req.messages) messages.push(...toChatMessages(m));
  const params: ChatCompletionCreateParamsNonStreaming = { model, messages };
  if (provider === "openai") params.max_completion_tokens = req.max_tokens;
  else params.max_tokens = req.max_tokens;
  if (req.tools && req.tools.length > 0) {
    params.tools = req.tools.map(
      (t): ChatCompletionTool => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: t.input_schema },
      }),
    );
  }
  return params;
}

/**
 * One internal message can become several chat messages: tool results are separate
 * "tool" messages that must come right after the assistant's tool calls, so they go
 * first and any user text follows. Chat has no error flag on a tool result; an error is
 * marked in its text.
 */
function toChatMessages(m: Message): ChatCompletionMessageParam[] {
  if (typeof m.content === "string") {
    if (m.role === "assistant") return [{ role: "assistant", content: m.content }];
    return [{ role: m.role, content: m.content }];
  }
  const text = m.content
    .filter((b) => b.type === "text")
    .map((b) => b.text)
    .join("");
  if (m.role === "assistant") {
    const toolCalls = m.content.flatMap((b) =>
      b.type === "tool_use"
        ? [
            {
              id: b.id,
              type: "function" as const,
              function: { name: b.name, arguments: JSON.stringify(b.input) },
            },
          ]
        : [],
    );
    if (toolCalls.length === 0) return [{ role: "assistant", content: text }];
    return [{ role: "assistant", content: text === "" ? null : text, tool_calls: toolCalls }];
  }
  const out: ChatCompletionMessageParam[] = m.content.flatMap((b) =>
    b.type === "tool_result"
      ? [
          {
            role: "tool" as const,
            tool_call_id: b.tool_use_id,
            content: b.is_error ? `Error: ${b.content}` : b.content,
          },
        ]
      : [],
  );
  if (text !== "" || out.length === 0) out.push({ role: m.role, content: text });
  return out;
}

function fromCompletion(c: ChatCompletion, requested: string): LlmResponse {
  const choice = c.choices?.[0];
  const msg = choice?.message;
  const content: ResponseBlock[] = msg?.content ? [{ type: "text", text: msg.content }] : [];
  (msg?.tool_calls ?? []).forEach((tc, i) => {
    if (tc.type === "function")
      content.push(toolUse(tc.id || `call_${i}`, tc.function.name, tc.function.arguments));
  });
  const finish = choice?.finish_reason ?? null;
  return normalizeAnswer({
    content,
    stop: stopOf(finish),
    rawStop: finish ?? "none",
    usage: c.usage ? usageOf(c.usage) : { input_tokens: 0, output_tokens: 0 },
    model: c.model || requested,
    id: c.id,
  });
}

function toolUse(id: string, name: string, args: string): ResponseBlock {
  return { type: "tool_use", id, name, ...parseToolArguments(args) };
}

function stopOf(finish: string | null): StopReason {
  switch (finish) {
    case "stop":
      return "end_turn";
    case "tool_calls":
    case "function_call":
      return "tool_use";
    case "length":
      return "max_tokens";
    default:
      return "other";
  }
}

function usageOf(u: { prompt_tokens?: number; completion_tokens?: number }): Usage {
  return { input_tokens: tokenCount(u.prompt_tokens), output_tokens: tokenCount(u.completion_tokens) };
}
