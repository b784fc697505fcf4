// llm/normalize.ts — the quirks every provider answer goes through on its way in, in one
// place so both adapters agree: tool arguments that are not JSON become `{}` plus an
// `input_error` the model can be told about; "tool_use" with no tool calls is an end of
// turn (the loop would otherwise wait for calls that never come); tool calls under a
// "stop" finish reason are still tool calls; an empty answer is one empty text block.

import type { LlmResponse, ResponseBlock, StopReason, ToolUseBlock, Usage } from "./types.js";

const RAW_PREVIEW = 200;

/** Parse a tool call's arguments as sent on the wire (a JSON string). */
export function parseToolArguments(raw: string): Pick<ToolUseBlock, "input" | "input_error"> {
  if (raw.trim() === "") return { input: {} };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    return {
      input: {},
      input_error: `arguments are not valid JSON (${(e as Error).message}): ${preview(raw)}`,
    };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { input: {}, input_error: `arguments must be a JSON object, got: ${preview(raw)}` };
  }
  return { input: value as Record<string, unknown> };
}

function preview(raw: string): string {
  return raw.length > RAW_PREVIEW ? `${raw.slice(0, RAW_PREVIEW)}…` : raw;
}

/** Non-negative integer token count from whatever the provider sent (absent → 0). */
export function tokenCount(n: unknown): number {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}

export interface RawAnswer {
  content: ResponseBlock[];
  stop: StopReason;
  rawStop: string | null | undefined;
  usage: Usage;
  model: string;
  /** The provider's id of the answer. */
  id?: string | undefined;
}

export function normalizeAnswer(a: RawAnswer): LlmResponse {
  const content = a.content.filter((b) => b.type !== "text" || b.text !== "" || a.content.length === 1);
  const hasToolUse = content.some((b) => b.type === "tool_use");
  let stop = a.stop;
  if (stop === "tool_use" && !hasToolUse) stop = "end_turn";
  else if (hasToolUse && (stop === "end_turn" || stop === "stop_sequence")) stop = "tool_use";
  if (content.length === 0) content.push({ type: "text", text: "" });
  const out: LlmResponse = { content, stop_reason: stop, usage: a.usage, model: a.model };
  if (stop === "other" && a.rawStop) out.raw_stop_reason = a.rawStop;
  if (a.rawStop) out.finish_reason = a.rawStop;
  if (a.id) out.id = a.id;
  return out;
}
