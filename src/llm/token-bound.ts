// llm/token-bound.ts — the most tokens one model call can cost, which is what the budget
// reserves before the call (agent/inference.ts). The reservation used to be an estimate
// (characters / 4 + max_tokens) and the commit charged what the provider reported, so a
// call whose text tokenizes densely (rare CJK characters, base64) cost up to several times
// its reservation: five children in parallel each reserved ~6,500 tokens and were each
// charged ~16,500, and the goal spent twice its cap (test/redteam/budget-bound.test.ts).
//
// The bound: every text sent, counted in UTF-8 bytes — the providers' tokenizers are
// byte-level BPEs, and a token is at least one byte, so a text never makes more tokens
// than it has bytes — plus constants for the tokens a provider adds around the text
// (roles and message boundaries, tool-call and tool-result wrappers, the names of JSON
// keys in a tool call rendered its own way, the tool-use system prompt Anthropic adds
// when tools are offered: 530 tokens at most in its published table), plus max_tokens
// for the answer. Tool definitions and the system prompt are counted like messages.
// It costs headroom: English runs ~4 bytes a token, so a call reserves ~4x what its input
// will cost, and a call near the end of a budget is refused earlier than before (bench:
// `npm run bench -- security`). A provider that reports more than the bound anyway
// (a bug, a tokenizer that is not byte-level) is caught at commit (security/budget.ts).
//
// An agent's every call resends its whole conversation, so the bound of each content array
// and of each tool list is kept in a WeakMap by that array, and the conversation's sum per
// conversation array (llm/conversation-sum.ts): a call measures only what is new since
// the last one. That is exact because nothing changes a content array or a tool list in
// place once it is sent (the loop appends new messages, a summary builds new ones);
// test/llm/token-bound.test.ts checks the kept bounds against a fresh count over varied
// conversations, messages dropped, replaced and inserted in place included.

import { ConversationSum } from "./conversation-sum.js";
import type { CompletionRequest, ContentBlock, Message, ToolSpec } from "./types.js";

/** Tokens a provider may add around the text, by what it frames. */
export const FRAMING = {
  /** Per request: the reply's priming, the system slot. */
  request: 64,
  /** Per message: its role and boundaries. */
  message: 16,
  /** Per content block: a text, tool_use or tool_result wrapper, the tool name and id. */
  block: 16,
  /** Per key or scalar in a tool call's input or a tool's schema, however it is rendered. */
  jsonValue: 4,
  /** Per offered tool: its wrapper in the tool list. */
  tool: 32,
  /** Once when tools are offered: the provider's tool-use instructions (Anthropic: <= 530). */
  toolsOffered: 1024,
} as const;

const bytes = (text: string): number => Buffer.byteLength(text, "utf8");

/** Keys and scalars in a JSON value (what a provider may render one by one). */
function jsonValues(value: unknown): number {
  if (value === null || typeof value !== "object") return 1;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + jsonValues(v), 1);
  let n = 1;
  for (const v of Object.values(value)) n += 1 + jsonValues(v);
  return n;
}

function jsonBound(value: unknown): number {
  return bytes(JSON.stringify(value) ?? "") + FRAMING.jsonValue * jsonValues(value);
}

function blockBound(b: ContentBlock): number {
  switch (b.type) {
    case "text":
      return FRAMING.block + bytes(b.text);
    case "tool_use":
      return FRAMING.block + bytes(b.id) + bytes(b.name) + jsonBound(b.input);
    case "tool_result":
      return FRAMING.block + bytes(b.tool_use_id) + bytes(b.content);
  }
}

/** Bounds of content arrays and tool lists already measured (see the header). */
const measured = new WeakMap<readonly ContentBlock[] | readonly ToolSpec[], number>();

function contentBound(blocks: readonly ContentBlock[]): number {
  let n = measured.get(blocks);
  if (n === undefined) {
    n = 0;
    for (const b of blocks) n += blockBound(b);
    measured.set(blocks, n);
  }
  return n;
}

function messageBound(m: Message): number {
  return FRAMING.message + (typeof m.content === "string" ? bytes(m.content) : contentBound(m.content));
}

function toolBound(t: ToolSpec): number {
  return FRAMING.tool + bytes(t.name) + bytes(t.description) + jsonBound(t.input_schema);
}

function toolsBound(tools: readonly ToolSpec[]): number {
  if (tools.length === 0) return 0;
  let n = measured.get(tools);
  if (n === undefined) {
    n = FRAMING.toolsOffered;
    for (const t of tools) n += toolBound(t);
    measured.set(tools, n);
  }
  return n;
}

const conversationBound = new ConversationSum(messageBound);

/** Input tokens a request can cost at most (see the header). */
function inputTokenBound(req: Pick<CompletionRequest, "system" | "messages" | "tools">): number {
  return (
    FRAMING.request +
    bytes(req.system) +
    (req.tools ? toolsBound(req.tools) : 0) +
    conversationBound.of(req.messages)
  );
}

/** Tokens a call can cost at most: its input bound plus the answer's max_tokens. */
export function callTokenBound(
  req: Pick<CompletionRequest, "system" | "messages" | "tools" | "max_tokens">,
): number {
  return inputTokenBound(req) + req.max_tokens;
}
