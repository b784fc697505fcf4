// The most a model call can cost (llm/token-bound.ts), which the budget reserves: every
// text in UTF-8 bytes (a byte-level tokenizer never makes more tokens than bytes), the
// framing a provider adds around it, and max_tokens. Exact, so a test can say what a call
// reserves; and never below what the old estimate (characters / 4) said.

import { describe, expect, it } from "vitest";
import { estimateRequestTokens } from "../../src/agent/context.js";
import { callTokenBound, FRAMING } from "../../src/llm/token-bound.js";
import type { CompletionRequest } from "../../src/llm/types.js";

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
