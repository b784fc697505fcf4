// test/support/provider-wire.ts — the two wire formats the scripted provider server speaks,
// byte for byte as the real APIs send them: Anthropic Messages (JSON, and SSE with
// message_start / content_block_* / message_delta / message_stop) and OpenAI Chat
// Completions (JSON, and SSE chunks with tool_call deltas, a usage chunk and [DONE]).
// Kept apart from the server so the formats can be read on their own.

export interface WireCall {
  id: string;
  name: string;
  /** Arguments exactly as sent (JSON text; may be broken on purpose). */
  args: string;
}

/** One answer, provider-neutral; stop names are Anthropic's ("end_turn", "tool_use", ...). */
export interface WireAnswer {
  id: string;
  model: string;
  text: string;
  calls: WireCall[];
  stop: string;
  usage: { input_tokens: number; output_tokens: number };
}

/** Pieces of at most n characters (at least one piece, possibly empty). */
export function chunks(s: string, n: number): string[] {
  if (s === "") return [];
  const out: string[] = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out;
}

function parsedInput(args: string): unknown {
  try {
    return JSON.parse(args);
  } catch {
    return {};
  }
}

// ---- Anthropic Messages ----------------------------------------------------------------

export function anthropicJson(a: WireAnswer): unknown {
  const content: unknown[] = [];
  if (a.text !== "") content.push({ type: "text", text: a.text });
  for (const c of a.calls)
    content.push({ type: "tool_use", id: c.id, name: c.name, input: parsedInput(c.args) });
  return {
    id: a.id,
    type: "message",
    role: "assistant",
    model: a.model,
    content,
    stop_reason: a.stop,
    stop_sequence: null,
    usage: { input_tokens: a.usage.input_tokens, output_tokens: a.usage.output_tokens },
  };
}

export function anthropicSse(a: WireAnswer): string[] {
  const ev = (type: string, data: Record<string, unknown>) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const out: string[] = [];
  out.push(
    ev("message_start", {
      message: {
        id: a.id,
        type: "message",
        role: "assistant",
        model: a.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: a.usage.input_tokens, output_tokens: 1 },
      },
    }),
  );
  let index = 0;
  if (a.text !== "") {
    out.push(ev("content_block_start", { index, content_block: { type: "text", text: "" } }));
    out.push(ev("ping", {}));
    for (const piece of chunks(a.text, 7)) {
      out.push(ev("content_block_delta", { index, delta: { type: "text_delta", text: piece } }));
    }
    out.push(ev("content_block_stop", { index }));
    index++;
  }
  for (const c of a.calls) {
    out.push(
      ev("content_block_start", {
        index,
        content_block: { type: "tool_use", id: c.id, name: c.name, input: {} },
      }),
    );
    for (const piece of chunks(c.args, 9)) {
      out.push(
        ev("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: piece } }),
      );
    }
    out.push(ev("content_block_stop", { index }));
    index++;
  }
  out.push(
    ev("message_delta", {
      delta: { stop_reason: a.stop, stop_sequence: null },
      usage: { output_tokens: a.usage.output_tokens },
    }),
  );
  out.push(ev("message_stop", {}));
  return out;
}

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};

export function anthropicError(status: number, message: string): unknown {
  return { type: "error", error: { type: ANTHROPIC_ERROR_TYPES[status] ?? "api_error", message } };
}

// ---- OpenAI Chat Completions -----------------------------------------------------------

const FINISH: Record<string, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  tool_use: "tool_calls",
  max_tokens: "length",
};

export function finishReason(stop: string): string {
  return FINISH[stop] ?? stop;
}

function openaiUsage(a: WireAnswer) {
  return {
    prompt_tokens: a.usage.input_tokens,
    completion_tokens: a.usage.output_tokens,
    total_tokens: a.usage.input_tokens + a.usage.output_tokens,
  };
}

export function openaiJson(a: WireAnswer, created: number): unknown {
  const message: Record<string, unknown> = {
    role: "assistant",
    content: a.text === "" && a.calls.length > 0 ? null : a.text,
    refusal: null,
  };
  if (a.calls.length > 0) {
    message.tool_calls = a.calls.map((c) => ({
      id: c.id,
      type: "function",
      function: { name: c.name, arguments: c.args },
    }));
  }
  return {
    id: a.id,
    object: "chat.completion",
    created,
    model: a.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(a.stop) }],
    usage: openaiUsage(a),
  };
}

export function openaiSse(a: WireAnswer, created: number, includeUsage: boolean): string[] {
  const base = { id: a.id, object: "chat.completion.chunk", created, model: a.model };
  const extra = includeUsage ? { usage: null } : {};
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra })}\n\n`;
  const out: string[] = [chunk({ role: "assistant", content: "", refusal: null })];
  for (const piece of chunks(a.text, 7)) out.push(chunk({ content: piece }));
  a.calls.forEach((c, index) => {
    out.push(
      chunk({
        tool_calls: [{ index, id: c.id, type: "function", function: { name: c.name, arguments: "" } }],
      }),
    );
    for (const piece of chunks(c.args, 9))
      out.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
  });
  out.push(chunk({}, finishReason(a.stop)));
  if (includeUsage) out.push(`data: ${JSON.stringify({ ...base, choices: [], usage: openaiUsage(a) })}\n\n`);
  out.push("data: [DONE]\n\n");
  return out;
}

const OPENAI_ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "invalid_request_error",
  403: "permission_denied",
  404: "invalid_request_error",
  429: "rate_limit_exceeded",
};

export function openaiError(status: number, message: string): unknown {
  return {
    error: {
      message,
      type: OPENAI_ERROR_TYPES[status] ?? "server_error",
      param: null,
      code: status === 401 ? "invalid_api_key" : status === 404 ? "model_not_found" : null,
    },
  };
}
