// Both adapters, through the real SDKs, against the scripted provider server: what goes on
// the wire and what comes back, streaming and not.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/llm/providers.js";
import { type Message, type ToolSpec, toolUsesOf, type Usage } from "../../src/llm/types.js";
import type { TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { homeFor } from "./harness.js";

let server: ProviderServer;
let home: TempHome;
beforeAll(async () => {
  server = await startProviderServer();
  home = homeFor(server);
});
afterEach(() => server.reset());
afterAll(async () => {
  await server.close();
  home.cleanup();
});

const FILE_WRITE: ToolSpec = {
  name: "file_write",
  description: "Write a file",
  input_schema: { type: "object", properties: { path: { type: "string" }, content: { type: "string" } } },
};
const FILE_READ: ToolSpec = {
  name: "file_read",
  description: "Read a file",
  input_schema: { type: "object", properties: { path: { type: "string" } } },
};

const CASES = [
  { api: "anthropic", ref: "anthropic/claude-test", stream: false },
  { api: "anthropic", ref: "anthropic/claude-test", stream: true },
  { api: "openai", ref: "openai/gpt-test", stream: false },
  { api: "openai", ref: "openai/gpt-test", stream: true },
] as const;

describe.each(CASES)("$ref (stream: $stream)", ({ api, ref, stream }) => {
  const system = `name: ${api}-${stream}`;

  it("answers with text, streams the text as it comes, and reports usage", async () => {
    server.script(system, [
      turn.text("The capital of France is Paris.", { usage: { input_tokens: 120, output_tokens: 9 } }),
    ]);
    const seen: Usage[] = [];
    const client = createClient(home.config, ref, { onUsage: (u) => seen.push(u) });
    const deltas: string[] = [];
    const r = await client.complete({
      system,
      messages: [{ role: "user", content: "capital of France?" }],
      max_tokens: 256,
      stream,
      onText: (d) => deltas.push(d),
    });
    expect(r.content).toEqual([{ type: "text", text: "The capital of France is Paris." }]);
    expect(r.stop_reason).toBe("end_turn");
    expect(r.usage).toEqual({ input_tokens: 120, output_tokens: 9 });
    expect(seen).toEqual([{ input_tokens: 120, output_tokens: 9 }]);
    if (stream) {
      expect(deltas.length).toBeGreaterThan(1);
      expect(deltas.join("")).toBe("The capital of France is Paris.");
    } else expect(deltas).toEqual([]);

    const sent = server.requests[0]!;
    expect(sent.api).toBe(api);
    expect(sent.model).toBe(ref.split("/")[1]);
    expect(sent.stream).toBe(stream);
    if (api === "anthropic") {
      expect(sent.body.system).toBe(system);
      expect(sent.body.max_tokens).toBe(256);
      expect(sent.headers["x-api-key"] ?? sent.headers.authorization).toMatch(
        /^(Bearer )?sk-ant-test-0123456789$/,
      );
    } else {
      expect(sent.body.messages[0]).toEqual({ role: "system", content: system });
      expect(sent.body.max_completion_tokens).toBe(256);
      if (stream) expect(sent.body.stream_options).toEqual({ include_usage: true });
    }
  });

  it("round-trips tool calls: tool_use out, tool_result back in the provider's wire format", async () => {
    server.script(system, [
      turn.toolUses(
        [
          { name: "file_write", input: { path: "/output/a.md", content: "# A" } },
          { name: "file_read", input: { path: "/workspace/missing" } },
        ],
        { text: "Writing and reading." },
      ),
      turn.text("done"),
    ]);
    const client = createClient(home.config, ref);
    const messages: Message[] = [{ role: "user", content: "write a.md" }];
    const first = await client.complete({
      system,
      messages,
      tools: [FILE_WRITE, FILE_READ],
      max_tokens: 512,
      stream,
    });
    expect(first.stop_reason).toBe("tool_use");
    const calls = toolUsesOf(first);
    expect(calls.map((c) => [c.name, c.input])).toEqual([
      ["file_write", { path: "/output/a.md", content: "# A" }],
      ["file_read", { path: "/workspace/missing" }],
    ]);
    expect(first.content[0]).toEqual({ type: "text", text: "Writing and reading." });
    const [write, read] = calls as [(typeof calls)[0], (typeof calls)[0]];

    messages.push({ role: "assistant", content: first.content });
    messages.push({
      role: "user",
      content: [
        { type: "tool_result", tool_use_id: write.id, content: "wrote 3 bytes" },
        { type: "tool_result", tool_use_id: read.id, content: "no such file", is_error: true },
      ],
    });
    const second = await client.complete({
      system,
      messages,
      tools: [FILE_WRITE, FILE_READ],
      max_tokens: 512,
      stream,
    });
    expect(second.content).toEqual([{ type: "text", text: "done" }]);
    expect(second.stop_reason).toBe("end_turn");

    const body = server.requests[1]!.body;
    if (api === "anthropic") {
      expect(body.tools[0]).toEqual({
        name: "file_write",
        description: "Write a file",
        input_schema: FILE_WRITE.input_schema,
      });
      expect(body.messages).toEqual([
        { role: "user", content: "write a.md" },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Writing and reading." },
            {
              type: "tool_use",
              id: write.id,
              name: "file_write",
              input: { path: "/output/a.md", content: "# A" },
            },
            { type: "tool_use", id: read.id, name: "file_read", input: { path: "/workspace/missing" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: write.id, content: "wrote 3 bytes" },
            { type: "tool_result", tool_use_id: read.id, content: "no such file", is_error: true },
          ],
        },
      ]);
    } else {
      expect(body.tools[0]).toEqual({
        type: "function",
        function: { name: "file_write", description: "Write a file", parameters: FILE_WRITE.input_schema },
      });
      expect(body.messages).toEqual([
        { role: "system", content: system },
        { role: "user", content: "write a.md" },
        {
          role: "assistant",
          content: "Writing and reading.",
          tool_calls: [
            {
              id: write.id,
              type: "function",
              function: {
                name: "file_write",
                arguments: JSON.stringify({ path: "/output/a.md", content: "# A" }),
              },
            },
            {
              id: read.id,
              type: "function",
              function: { name: "file_read", arguments: JSON.stringify({ path: "/workspace/missing" }) },
            },
          ],
        },
        { role: "tool", tool_call_id: write.id, content: "wrote 3 bytes" },
        { role: "tool", tool_call_id: read.id, content: "Error: no such file" },
      ]);
    }
  });

  it("treats a tool_use stop without any tool call as the end of the turn, with one empty text", async () => {
    server.script(system, [turn.toolUses([], { stop: "tool_use" })]);
    const r = await createClient(home.config, ref).complete({
      system,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 64,
      stream,
    });
    expect(r.stop_reason).toBe("end_turn");
    expect(r.content).toEqual([{ type: "text", text: "" }]);
  });

  it("treats tool calls under an end_turn stop as tool use (some compatible servers send that)", async () => {
    server.script(system, [turn.toolUse("file_read", { path: "/workspace/a" }, { stop: "end_turn" })]);
    const r = await createClient(home.config, ref).complete({
      system,
      messages: [{ role: "user", content: "read" }],
      tools: [FILE_READ],
      max_tokens: 64,
      stream,
    });
    expect(r.stop_reason).toBe("tool_use");
    expect(toolUsesOf(r).map((c) => c.input)).toEqual([{ path: "/workspace/a" }]);
  });

  it("sends system messages found inside the conversation as system text", async () => {
    server.script(system, [turn.text("ok")]);
    await createClient(home.config, ref).complete({
      system,
      messages: [
        { role: "user", content: "hi" },
        { role: "system", content: "Budget: 100 tokens left." },
      ],
      max_tokens: 64,
      stream,
    });
    const sent = server.requests[0]!;
    expect(sent.system).toContain(system);
    expect(sent.system).toContain("Budget: 100 tokens left.");
    if (api === "anthropic") expect(sent.body.messages).toEqual([{ role: "user", content: "hi" }]);
  });

  it("reports a cut-off answer as max_tokens", async () => {
    server.script(system, [turn.text("It was a dark and", { stop: "max_tokens" })]);
    const r = await createClient(home.config, ref).complete({
      system,
      messages: [{ role: "user", content: "story" }],
      max_tokens: 5,
      stream,
    });
    expect(r.stop_reason).toBe("max_tokens");
    expect(r.content).toEqual([{ type: "text", text: "It was a dark and" }]);
  });

  it("computes integer usage when the server does not script it", async () => {
    server.script(system, [turn.text("ok")]);
    const r = await createClient(home.config, ref).complete({
      system,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 64,
      stream,
    });
    expect(Number.isInteger(r.usage.input_tokens) && r.usage.input_tokens > 0).toBe(true);
    expect(Number.isInteger(r.usage.output_tokens) && r.usage.output_tokens > 0).toBe(true);
  });
});

describe("tool arguments that are not JSON", () => {
  const broken = [
    { ref: "openai/gpt-test", stream: false },
    { ref: "openai/gpt-test", stream: true },
    { ref: "anthropic/claude-test", stream: true },
  ];
  it.each(broken)(
    "become input {} with an input_error the model can be told about ($ref, stream: $stream)",
    async ({ ref, stream }) => {
      server.script("broken", [
        turn.toolUses([{ name: "file_write", rawArguments: '{"path": "/output/a.md", "content": ' }]),
      ]);
      const r = await createClient(home.config, ref).complete({
        system: "broken",
        messages: [{ role: "user", content: "go" }],
        tools: [FILE_WRITE],
        max_tokens: 64,
        stream,
      });
      expect(r.stop_reason).toBe("tool_use");
      const [call] = toolUsesOf(r);
      expect(call?.name).toBe("file_write");
      expect(call?.input).toEqual({});
      expect(call?.input_error).toMatch(/not valid JSON/);
      expect(call?.input_error).toContain('{"path": "/output/a.md"');
    },
  );

  it("a JSON array is refused the same way: tool input must be an object", async () => {
    server.script("array", [turn.toolUses([{ name: "file_write", rawArguments: "[1,2]" }])]);
    const r = await createClient(home.config, "openai/gpt-test").complete({
      system: "array",
      messages: [{ role: "user", content: "go" }],
      tools: [FILE_WRITE],
      max_tokens: 64,
    });
    expect(toolUsesOf(r)[0]?.input_error).toMatch(/must be a JSON object/);
  });
});

describe("OpenAI-compatible providers", () => {
  it("deepseek/ sends max_tokens and the DeepSeek key", async () => {
    server.script("ds", [turn.text("hi")]);
    await createClient(home.config, "deepseek/deepseek-chat").complete({
      system: "ds",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 33,
    });
    const sent = server.requests[0]!;
    expect(sent.body.max_tokens).toBe(33);
    expect(sent.headers.authorization).toBe("Bearer sk-ds-test-0123456789");
  });

  it("ollama/ needs no key and finds the API under OLLAMA_HOST/v1 (host:port without scheme)", async () => {
    const ollama = homeFor(server, { OLLAMA_HOST: server.url.replace("http://", "") });
    try {
      server.script("local", [turn.text("from ollama")]);
      const r = await createClient(ollama.config, "ollama/llama3.1:8b").complete({
        system: "local",
        messages: [{ role: "user", content: "x" }],
        max_tokens: 10,
        stream: true,
      });
      expect(r.content).toEqual([{ type: "text", text: "from ollama" }]);
      expect(server.requests[0]!.path).toBe("/v1/chat/completions");
      expect(server.requests[0]!.model).toBe("llama3.1:8b");
    } finally {
      ollama.cleanup();
    }
  });

  it("openai-compat/ goes to AIDO_OPENAI_COMPAT_BASE_URL and keeps slashes in the model name", async () => {
    const compat = homeFor(server, { AIDO_OPENAI_COMPAT_BASE_URL: server.openaiURL });
    try {
      server.script("compat", [turn.text("ok")]);
      await createClient(compat.config, "openai-compat/org/model-7b").complete({
        system: "compat",
        messages: [{ role: "user", content: "x" }],
        max_tokens: 10,
      });
      expect(server.requests[0]!.model).toBe("org/model-7b");
    } finally {
      compat.cleanup();
    }
  });
});
