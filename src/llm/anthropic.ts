// llm/anthropic.ts — the Anthropic Messages API adapter over the official SDK. It only
// translates: internal messages to Messages API params, the SDK's Message (or its stream
// helper's final message) back to an LlmResponse. Retries, timeouts and error wording are
// the shared policy's (retry.ts, failure.ts); the SDK's own retries are off.

import Anthropic, {
  AnthropicError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from "@anthropic-ai/sdk";
import type {
  Message as AnthropicMessage,
  ContentBlockParam,
  MessageCreateParamsNonStreaming,
  MessageParam,
  RawMessageStreamEvent,
  Tool,
} from "@anthropic-ai/sdk/resources/messages/messages.js";
import type { ProviderName } from "../config.js";
import { classifySdkError } from "./failure.js";
import { httpFetch } from "./http-fetch.js";
import { normalizeAnswer, parseToolArguments, tokenCount } from "./normalize.js";
import { callWithRetries } from "./retry.js";
import type {
  AdapterOptions,
  CompletionRequest,
  ContentBlock,
  LlmClient,
  LlmResponse,
  Message,
  ResponseBlock,
  StopReason,
  ToolSpec,
} from "./types.js";

const SDK_ERRORS = { APIError, APIConnectionError, APIConnectionTimeoutError, APIUserAbortError };

export class AnthropicClient implements LlmClient {
  readonly provider: ProviderName;
  readonly model: string;
  readonly baseURL: string;
  readonly #sdk: Anthropic;
  readonly #opts: AdapterOptions;

  constructor(opts: AdapterOptions) {
    this.#opts = opts;
    this.provider = opts.site.provider;
    this.model = opts.site.model;
    this.baseURL = opts.site.baseURL;
    // Everything explicit: the SDK would otherwise read ANTHROPIC_* from the environment,
    // and only config.ts may do that.
    this.#sdk = new Anthropic({
      apiKey: opts.apiKey,
      authToken: null,
      baseURL: opts.site.baseURL,
      maxRetries: 0,
      timeout: opts.retry.timeoutMs,
      openTelemetry: false,
      logLevel: "off",
      fetch: httpFetch,
    });
  }

  async complete(req: CompletionRequest): Promise<LlmResponse> {
    const params = toAnthropicParams(req, req.model ?? this.model);
    const response = await callWithRetries(
      this.#opts.site,
      this.#opts.retry,
      (e) => classifySdkError(e, SDK_ERRORS),
      (signal) => (req.stream ? this.#streamOnce(params, req, signal) : this.#createOnce(params, signal)),
      { signal: req.signal, onRetry: this.#opts.onRetry, resending: req.resending },
    );
    this.#opts.onUsage?.(response.usage, { provider: this.provider, model: response.model });
    return response;
  }

  async #createOnce(params: MessageCreateParamsNonStreaming, signal: AbortSignal): Promise<LlmResponse> {
    const message = await this.#sdk.messages.create(params, { signal, timeout: this.#opts.retry.timeoutMs });
    return fromAnthropicMessage(message, new Map());
  }

  async #streamOnce(
    params: MessageCreateParamsNonStreaming,
    req: CompletionRequest,
    signal: AbortSignal,
  ): Promise<LlmResponse> {
    const stream = this.#sdk.messages.stream(params, { signal, timeout: this.#opts.retry.timeoutMs });
    // Tool input arrives as JSON fragments; we keep the raw text per block so a model that
    // sends broken JSON yields input_error instead of an exception from a partial parser.
    const toolJson = new Map<number, string>();
    stream.on("streamEvent", (event: RawMessageStreamEvent) => {
      if (event.type === "content_block_delta" && event.delta.type === "input_json_delta") {
        toolJson.set(event.index, (toolJson.get(event.index) ?? "") + event.delta.partial_json);
      }
    });
    if (req.onText) {
      const onText = req.onText;
      stream.on("text", (delta: string) => onText(delta));
    }
    let message: AnthropicMessage;
    try {
      message = await stream.finalMessage();
    } catch (e) {
      // The helper reports a stream that ended before message_stop as a plain AnthropicError;
      // it is a dropped connection, which a retry can fix.
      if (e instanceof AnthropicError && !(e instanceof APIError)) {
        throw new APIConnectionError({ message: e.message, cause: e });
      }
      throw e;
    }
    // A stream cut before message_delta has no stop reason: the answer is incomplete.
    if (message.stop_reason === null) {
      throw new APIConnectionError({ message: "the stream ended before the answer was complete" });
    }
    return fromAnthropicMessage(message, toolJson);
  }
}

export function toAnthropicParams(req: CompletionRequest, model: string): MessageCreateParamsNonStreaming {
  const systemParts = [
    req.system,
    ...req.messages.filter((m) => m.role === "system").map((m) => textOfMessage(m)),
  ];
  const system = systemParts.filter((s) => s !== "").join("\n\n");
  const params: MessageCreateParamsNonStreaming = {
    model,
    max_tokens: req.max_tokens,
    messages: req.messages.filter((m) => m.role !== "system").map(toMessageParam),
  };
  if (system !== "") params.system = system;
  if (req.tools && req.tools.length > 0) params.tools = req.tools.map(toTool);
  return params;
}

function textOfMessage(m: Message): string {
  return typeof m.content === "string"
    ? m.content
    : m.content.map((b) => (b.type === "text" ? b.text : "")).join("");
}

function toMessageParam(m: Message): MessageParam {
  const role = m.role === "assistant" ? "assistant" : "user";
  if (typeof m.content === "string") return { role, content: m.content === "" ? EMPTY : m.content };
  // The API refuses empty text blocks and empty messages.
  const blocks = m.content.map(toBlockParam).filter((b): b is ContentBlockParam => b !== null);
  return { role, content: blocks.length > 0 ? blocks : EMPTY };
}

/** Stands in for an empty message, which the Messages API refuses. */
const EMPTY = "(empty)";

function toBlockParam(b: ContentBlock): ContentBlockParam | null {
  switch (b.type) {
    case "text":
      return b.text === "" ? null : { type: "text", text: b.text };
    case "tool_use":
      return { type: "tool_use", id: b.id, name: b.name, input: b.input };
    case "tool_result": {
      const r: ContentBlockParam = { type: "tool_result", tool_use_id: b.tool_use_id, content: b.content };
      if (b.is_error) r.is_error = true;
      return r;
    }
  }
}

function toTool(t: ToolSpec): Tool {
  return { name: t.name, description: t.description, input_schema: t.input_schema as Tool["input_schema"] };
}

const STOPS: Record<string, StopReason> = {
  end_turn: "end_turn",
  tool_use: "tool_use",
  max_tokens: "max_tokens",
  stop_sequence: "stop_sequence",
};

function fromAnthropicMessage(message: AnthropicMessage, toolJson: Map<number, string>): LlmResponse {
  const content: ResponseBlock[] = [];
  message.content.forEach((block, index) => {
    if (block.type === "text") content.push({ type: "text", text: block.text });
    else if (block.type === "tool_use") {
      const raw = toolJson.get(index);
      const parsed =
        raw !== undefined
          ? parseToolArguments(raw)
          : isObject(block.input)
            ? { input: block.input }
            : parseToolArguments(JSON.stringify(block.input ?? null));
      content.push({ type: "tool_use", id: block.id, name: block.name, ...parsed });
    }
    // thinking, server tool blocks and the like are not part of Aido's format.
  });
  const u = message.usage;
  const stop = message.stop_reason ?? "";
  return normalizeAnswer({
    content,
    stop: STOPS[stop] ?? "other",
    rawStop: message.stop_reason,
    usage: {
      input_tokens:
        tokenCount(u?.input_tokens) +
        tokenCount(u?.cache_creation_input_tokens) +
        tokenCount(u?.cache_read_input_tokens),
      output_tokens: tokenCount(u?.output_tokens),
    },
    model: message.model,
    id: message.id,
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
