// Opted-in message content as it goes on spans: the GenAI conventions' JSON shapes, each
// text part bounded, a conversation bounded by dropping its oldest messages, and the
// runtime's secrets (API keys, external MCP servers' header values) replaced wherever
// they appear. The daemon-level test (otlp.test.ts) shows it on exported spans.

import { describe, expect, it } from "vitest";
import type { Message } from "../../src/llm/types.js";
import { redactorFor } from "../../src/telemetry/attributes.js";
import { makeTempHome } from "../support/home.js";

function redactor() {
  const h = makeTempHome({ ANTHROPIC_API_KEY: "sk-ant-content-key", MCP_TOKEN: "mcp-header-secret" });
  h.config.mcp.servers.gh = {
    name: "gh",
    readOnlyTools: [],
    timeoutMs: 1000,
    transport: "http",
    url: "https://mcp.example/",
    headers: { Authorization: "MCP_TOKEN" },
  };
  h.config.mcp.headerValue = (v) => (v === "MCP_TOKEN" ? "mcp-header-secret" : undefined);
  const r = redactorFor(h.config);
  h.cleanup();
  return r;
}

describe("opted-in content", () => {
  it("replaces API keys and MCP header values, even inside tool arguments", () => {
    const r = redactor();
    const json = r.input([
      { role: "user", content: "key sk-ant-content-key" },
      {
        role: "assistant",
        content: [
          { type: "tool_use", id: "t1", name: "web_fetch", input: { url: "https://x/?t=mcp-header-secret" } },
        ],
      },
    ]);
    expect(json).not.toContain("sk-ant-content-key");
    expect(json).not.toContain("mcp-header-secret");
    expect(JSON.parse(json)).toEqual([
      { role: "user", parts: [{ type: "text", content: "key [redacted]" }] },
      {
        role: "assistant",
        parts: [
          { type: "tool_call", id: "t1", name: "web_fetch", arguments: '{"url":"https://x/?t=[redacted]"}' },
        ],
      },
    ]);
  });

  it("cuts a long text part and says how much was cut", () => {
    const t = redactor().text("a".repeat(5000));
    expect(t.startsWith("a".repeat(4096))).toBe(true);
    expect(t.endsWith("…[904 more characters]")).toBe(true);
  });

  it("keeps the newest messages of a conversation too long for one attribute, as valid JSON", () => {
    const messages: Message[] = Array.from({ length: 40 }, (_, i) => ({
      role: i % 2 === 0 ? "user" : "assistant",
      content: `${i}:${"x".repeat(4000)}`,
    }));
    const json = redactor().input(messages);
    expect(json.length).toBeLessThanOrEqual(64 * 1024);
    const kept = JSON.parse(json) as { parts: { content: string }[] }[];
    expect(kept.length).toBeLessThan(40);
    expect(kept.at(-1)?.parts[0]?.content.startsWith("39:")).toBe(true);
  });

  it("gives tool results the tool role", () => {
    const json = redactor().input([
      { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "42" }] },
    ]);
    expect(JSON.parse(json)).toEqual([
      { role: "tool", parts: [{ type: "tool_call_response", id: "t1", response: "42" }] },
    ]);
  });
});
