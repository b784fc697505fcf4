// The most a model call can cost (llm/token-bound.ts), which the budget reserves: every
// text in UTF-8 bytes (a byte-level tokenizer never makes more tokens than bytes), the
// framing a provider adds around it, and max_tokens. Exact, so a test can say what a call
// reserves; and never below what the old estimate (characters / 4) said.

import { describe, expect, it } from "vitest";
import { estimateRequestTokens } from "../../src/agent/context.js";
import { callTokenBound, FRAMING } from "../../src/llm/token-bound.js";
import type { CompletionRequest, ContentBlock, Message, ToolSpec } from "../../src/llm/types.js";

const bytes = (s: string) => Buffer.byteLength(s, "utf8");

describe("the bound of a call", () => {
  it("counts text in UTF-8 bytes, with framing per request and message, plus max_tokens", () => {
    const req = {
      system: "You help.",
      messages: [{ role: "user" as const, content: "héllo" }],
      max_tokens: 100,
    };
    expect(callTokenBound(req)).toBe(FRAMING.request + 9 + FRAMING.message + 6 + 100);
  });

  it("counts a dense text by its bytes: 3 per CJK character, where characters/4 said a quarter", () => {
    const dense = Array.from({ length: 8000 }, (_, i) => String.fromCodePoint(0x3400 + (i % 6000))).join("");
    const req = { system: "", messages: [{ role: "user" as const, content: dense }], max_tokens: 0 };
    expect(callTokenBound(req)).toBe(FRAMING.request + FRAMING.message + 24_000);
    expect(estimateRequestTokens(req)).toBeLessThan(2_100);
  });

  it("counts tool calls, tool results and tool definitions with their framing", () => {
    const req: Pick<CompletionRequest, "system" | "messages" | "tools" | "max_tokens"> = {
      system: "",
      messages: [
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "t1", name: "exec", input: { command: "ls" } }],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "a\nb" }] },
      ],
      tools: [{ name: "exec", description: "Run it.", input_schema: { type: "object" } }],
      max_tokens: 0,
    };
    const toolUse = FRAMING.block + 2 + 4 + bytes('{"command":"ls"}') + FRAMING.jsonValue * 3;
    const toolResult = FRAMING.block + 2 + 3;
    const tool = FRAMING.tool + 4 + 7 + bytes('{"type":"object"}') + FRAMING.jsonValue * 3;
    expect(callTokenBound(req)).toBe(
      FRAMING.request + 2 * FRAMING.message + toolUse + toolResult + FRAMING.toolsOffered + tool,
    );
  });

  it("is never below the old estimate", () => {
    const english = "The quarterly report shows revenue up four percent. ".repeat(50);
    for (const content of [english, "{}", "x", english.toUpperCase()]) {
      const req = { system: english, messages: [{ role: "user" as const, content }], max_tokens: 4096 };
      expect(callTokenBound(req)).toBeGreaterThanOrEqual(estimateRequestTokens(req) + req.max_tokens);
    }
  });
});

// The bound and the estimate keep each content array's measure (a WeakMap by the array) so
// that a turn measures only its new messages. These are the measures as they were computed
// before, from scratch on every call: the kept ones must equal them over whole
// conversations as the loop builds them (appending turns, summarising the oldest part
// away into a new first message, offering another tool list).
function freshBound(req: Pick<CompletionRequest, "system" | "messages" | "tools" | "max_tokens">): number {
  const values = (v: unknown): number => {
    if (v === null || typeof v !== "object") return 1;
    if (Array.isArray(v)) return v.reduce((n: number, x) => n + values(x), 1);
    let n = 1;
    for (const x of Object.values(v)) n += 1 + values(x);
    return n;
  };
  const json = (v: unknown) => bytes(JSON.stringify(v) ?? "") + FRAMING.jsonValue * values(v);
  const block = (b: ContentBlock): number =>
    b.type === "text"
      ? FRAMING.block + bytes(b.text)
      : b.type === "tool_use"
        ? FRAMING.block + bytes(b.id) + bytes(b.name) + json(b.input)
        : FRAMING.block + bytes(b.tool_use_id) + bytes(b.content);
  const message = (m: Message) =>
    FRAMING.message +
    (typeof m.content === "string" ? bytes(m.content) : m.content.reduce((n, b) => n + block(b), 0));
  const tools = req.tools ?? [];
  const tool = (t: ToolSpec) => FRAMING.tool + bytes(t.name) + bytes(t.description) + json(t.input_schema);
  return (
    FRAMING.request +
    bytes(req.system) +
    req.messages.reduce((n, m) => n + message(m), 0) +
    (tools.length > 0 ? FRAMING.toolsOffered + tools.reduce((n, t) => n + tool(t), 0) : 0) +
    req.max_tokens
  );
}

function freshEstimate(req: Pick<CompletionRequest, "system" | "messages" | "tools">): number {
  const est = (s: string) => Math.ceil(s.length / 4);
  let n = est(req.system) + est(JSON.stringify(req.tools ?? []));
  for (const m of req.messages)
    n += est(typeof m.content === "string" ? m.content : JSON.stringify(m.content));
  return n;
}

/** A small seeded generator, so a failure replays. */
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return s / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const alphabet = ["a", "Z", " ", "\n", "é", "中", "𝄞", "\u0000", '"', "<", "\\", "🙂"];
  const text = (max: number) => Array.from({ length: int(max) }, () => pick(alphabet)).join("");
  const value = (depth: number): unknown => {
    const k = int(depth > 2 ? 4 : 7);
    if (k === 0) return text(20);
    if (k === 1) return int(1e6) - 5e5;
    if (k === 2) return next() < 0.5;
    if (k === 3) return null;
    if (k === 4) return Array.from({ length: int(4) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: int(4) }, () => [text(6), value(depth + 1)]));
  };
  return { next, int, pick, text, value };
}

describe("the kept measures of a conversation", () => {
  it("equal a fresh count at every turn of varied conversations, through summaries, edits in place and tool-list changes", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed);
      const tools = (): ToolSpec[] =>
        Array.from({ length: r.int(4) }, (_, i) => ({
          name: `tool_${i}_${r.text(5)}`,
          description: r.text(200),
          input_schema: { type: "object", properties: r.value(0) as Record<string, unknown> },
        }));
      let offered = tools();
      const system = r.text(500);
      let messages: Message[] = [{ role: "user", content: r.text(300) }];
      for (let t = 0; t < 60; t++) {
        const ids = Array.from({ length: r.int(3) }, () => `toolu_${r.text(8)}`);
        const assistant: ContentBlock[] = [
          ...(r.next() < 0.7 ? [{ type: "text" as const, text: r.text(400) }] : []),
          ...ids.map((id) => ({
            type: "tool_use" as const,
            id,
            name: r.pick(["memory_query", "exec", "file_read"]),
            input: r.value(0) as Record<string, unknown>,
          })),
        ];
        messages.push({ role: "assistant", content: assistant });
        if (ids.length > 0) {
          messages.push({
            role: "user",
            content: ids.map((id) => ({
              type: "tool_result" as const,
              tool_use_id: id,
              content: r.text(2000),
              ...(r.next() < 0.2 ? { is_error: true } : {}),
            })),
          });
        } else if (r.next() < 0.5) {
          messages.push({ role: r.pick(["user", "system"] as const), content: r.text(200) });
        }
        // The context manager's summary: a new first message, the oldest turns dropped.
        if (r.next() < 0.1 && messages.length > 4) {
          const cut = 2 + r.int(messages.length - 3);
          messages = [{ role: "user", content: `${r.text(100)}\n${r.text(300)}` }, ...messages.slice(cut)];
        }
        // Edits of the array in place, which the kept sums must notice: a message dropped,
        // replaced or inserted, or a message given new content.
        const at = () => r.int(messages.length);
        if (r.next() < 0.05) messages.splice(at(), 1 + r.int(3));
        if (r.next() < 0.05) messages[at()] = { role: "user", content: r.text(300) };
        if (r.next() < 0.05)
          messages.splice(at(), 0, { role: "assistant", content: [{ type: "text", text: r.text(50) }] });
        const edited = messages[at()];
        if (edited && r.next() < 0.05)
          edited.content = r.next() < 0.5 ? r.text(80) : [{ type: "text", text: r.text(80) }];
        if (messages.length === 0) messages.push({ role: "user", content: r.text(30) });
        if (r.next() < 0.05) offered = tools();
        if (r.next() < 0.1) {
          const part = { system, messages: messages.slice(0, at() + 1), max_tokens: 0 };
          expect(callTokenBound(part)).toBe(freshBound(part));
          expect(estimateRequestTokens(part)).toBe(freshEstimate(part));
        }
        const req = {
          system,
          messages,
          max_tokens: r.int(8192),
          ...(r.next() < 0.9 ? { tools: offered } : {}),
        };
        expect(callTokenBound(req)).toBe(freshBound(req));
        expect(estimateRequestTokens(req)).toBe(freshEstimate(req));
      }
    }
  });

  it("measures an equal conversation rebuilt from new arrays on its own, never from an old entry", () => {
    const long: Message = { role: "assistant", content: [{ type: "text", text: "界".repeat(1000) }] };
    const short: Message = { role: "assistant", content: [{ type: "text", text: "x" }] };
    const req = { system: "", messages: [long], max_tokens: 0 };
    expect(callTokenBound(req)).toBe(freshBound(req));
    // Same message object, its content replaced by a new array: measured anew.
    long.content = [{ type: "text", text: "界".repeat(2000) }];
    expect(callTokenBound(req)).toBe(freshBound(req));
    expect(callTokenBound({ ...req, messages: [short, long] })).toBe(
      freshBound({ ...req, messages: [short, long] }),
    );
  });
});
