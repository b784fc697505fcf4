// OpenTelemetry traces as an operator's collector receives them: a real daemon (in
// process, on a temp home) with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local OTLP/HTTP
// receiver that decodes the protobuf the exporter sent. Goals run through the real SDKs
// against the scripted provider; the swarm goal runs in a real Docker container (its
// snapshot before the first write and its exec's exit code are real). Spans are flushed
// when the daemon stops. AIDO_OTEL_DUMP=1 prints the swarm's span tree.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { TRACE_FLUSH_WAIT_MS } from "../../src/kernel/runtime.js";
import type { ApprovalRecord } from "../../src/security/approvals.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import {
  formatSpanTree,
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpReceiver,
} from "../support/otlp-receiver.js";
import { turn } from "../support/provider-server.js";

/** Text that appears in the goal, the tasks, the files and the memories: never in a span unless opted in. */
const MARKER = "ZEBRA-MARKER-7731";

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(() => receiver?.close());
const suite = useDaemonPerTest({ afterEach: () => receiver.reset() });

const otel = (extra: Record<string, string> = {}) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_EXPORTER_OTLP_HEADERS: "x-collector-token=tok%3Dsecret,x-tenant=aido-tests",
  OTEL_SERVICE_NAME: "aido-under-test",
  OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test",
  ...extra,
});

/** Answer the next approval request that shows up with `decision`. */
async function answerNext(
  c: AidoClient,
  decision: "allow_once" | "allow_session" | "deny",
): Promise<ApprovalRecord> {
  for (let i = 0; i < 400; i++) {
    const { approvals } = await c.call("approval.list", {});
    const rec = approvals[0];
    if (rec) {
      await c.call("approval.respond", { id: rec.id, decision });
      return rec;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("no approval request appeared");
}

const named = (spans: readonly ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);
const only = (spans: readonly ReceivedSpan[], name: string): ReceivedSpan => {
  const found = named(spans, name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0] as ReceivedSpan;
};
const childrenOf = (spans: readonly ReceivedSpan[], parent: ReceivedSpan) =>
  spans.filter((s) => s.parentSpanId === parent.spanId);
/** Every attribute value of every span, as text. */
const attributeText = (spans: readonly ReceivedSpan[]) =>
  JSON.stringify(spans.map((s) => [s.name, s.attributes, s.status, s.resource]));

const TREE_ATTRS = [
  "gen_ai.provider.name",
  "gen_ai.request.model",
  "gen_ai.usage.input_tokens",
  "gen_ai.usage.output_tokens",
  "gen_ai.tool.call.id",
  "aido.gate.verdict",
  "aido.gate.stage",
  "aido.gate.reason",
  "aido.approval.decision",
  "aido.snapshot.id",
  "aido.exit_code",
];

const lead = manifest("lead", {
  capabilities: [
    "tool: spawn_agents",
    "spawn_child: [writer, reviewer]",
    "tool: file_write",
    "file_write: /workspace/**",
    "file_read: /workspace/**",
    "tool: exec",
    "exec: echo *",
    "tool: memory_store",
  ],
});
const writer = {
  name: "writer",
  system_prompt: "You write notes.",
  capabilities: [
    "tool: file_write",
    "file_write: /workspace/**",
    "file_read: /workspace/**",
    "tool: exec",
    "exec: echo *",
  ],
};
const reviewer = {
  name: "reviewer",
  system_prompt: "You keep facts.",
  capabilities: ["tool: memory_store"],
  approval_required: ["memory_store"],
};

describe("a swarm goal's trace", () => {
  beforeAll(() => requireDocker());

  it("is one tree: the bootstrap's invoke_agent, its spawn, each child's run under it, every chat and tool call", async () => {
    const { server } = suite;
    server.script('manifest "lead"', [
      turn.toolUses(
        [
          {
            id: "toolu_spawn_1",
            name: "spawn_agents",
            input: {
              children: [
                { manifest: writer, message: `Write the notes about ${MARKER}.` },
                { manifest: reviewer, message: `Remember ${MARKER}.` },
              ],
            },
          },
        ],
        { usage: { input_tokens: 321, output_tokens: 45 } },
      ),
      turn.text("Both children are done.", { usage: { input_tokens: 654, output_tokens: 12 } }),
    ]);
    server.script('manifest "writer"', [
      turn.toolUses([
        {
          id: "toolu_write_1",
          name: "file_write",
          input: { path: "/workspace/notes.md", content: `# ${MARKER}\n` },
        },
        { id: "toolu_exec_1", name: "exec", input: { command: "echo written" } },
        // Outside the writer's grants: refused at the capability check.
        { id: "toolu_denied_1", name: "file_write", input: { path: "/output/leak.md", content: MARKER } },
      ]),
      turn.text("Notes written."),
    ]);
    server.script('manifest "reviewer"', [
      turn.toolUse("memory_store", { content: `fact: ${MARKER}`, category: "fact" }),
      turn.text("Remembered."),
    ]);

    const fx = await suite.start({
      env: otel(),
      runtime: { backend: undefined, builtinTools: daemonBuiltinTools },
    });
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: `Take notes on ${MARKER}.`, manifest: lead });
    const human = await fx.client();
    const asked = await answerNext(human, "allow_once");
    const done = await c.call("goal.wait", { goal_id, timeout_ms: 90_000 });
    expect(done.state).toBe("succeeded");
    await fx.daemon.close(); // flushes the batch
    const spans = receiver.spans;
    if (process.env.AIDO_OTEL_DUMP === "1") console.log(formatSpanTree(spans, TREE_ATTRS));

    // One trace per goal, rooted at the bootstrap's run.
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    const root = only(spans, "invoke_agent lead");
    expect(root.parentSpanId).toBe("");
    expect(root.kind).toBe(1);
    expect(root.attributes).toMatchObject({
      "gen_ai.operation.name": "invoke_agent",
      "gen_ai.agent.name": "lead",
      "gen_ai.conversation.id": goal_id,
      "gen_ai.provider.name": "anthropic",
      "gen_ai.request.model": "claude-test",
    });
    expect(fx.logs).toContain(
      `tracing on: spans go to ${receiver.url}/v1/traces (from OTEL_EXPORTER_OTLP_ENDPOINT) as service "aido-under-test"`,
    );
    expect(root.resource).toMatchObject({
      "service.name": "aido-under-test",
      "deployment.environment": "test",
    });

    // The bootstrap's model calls, with what the scripted provider returned.
    const rootChats = childrenOf(spans, root).filter((s) => s.name === "chat claude-test");
    expect(rootChats).toHaveLength(2);
    const firstChat = rootChats.find(
      (s) => s.attributes["gen_ai.usage.input_tokens"] === 321,
    ) as ReceivedSpan;
    expect(firstChat.kind).toBe(3);
    const leadRequests = server.requestsMatching('manifest "lead"');
    expect(firstChat.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "anthropic",
      "gen_ai.request.model": "claude-test",
      "gen_ai.response.model": "claude-test",
      "gen_ai.response.finish_reasons": ["tool_use"],
      "gen_ai.usage.output_tokens": 45,
      "aido.budget.committed": 366,
      "server.address": "127.0.0.1",
      "server.port": Number(new URL(server.url).port),
    });
    expect(firstChat.attributes["gen_ai.response.id"]).toMatch(/\S/);
    expect(firstChat.attributes["aido.budget.reserved"]).toBeGreaterThan(366);
    expect(firstChat.attributes["aido.inference.queue_wait_ms"]).toBeGreaterThanOrEqual(0);
    expect(leadRequests).toHaveLength(2);

    // spawn_agents is a tool span of the root; both children's runs nest under it.
    const spawn = only(spans, "execute_tool spawn_agents");
    expect(spawn.parentSpanId).toBe(root.spanId);
    expect(spawn.attributes).toMatchObject({
      "gen_ai.tool.name": "spawn_agents",
      "gen_ai.tool.call.id": "toolu_spawn_1",
      "gen_ai.tool.type": "function",
      "aido.gate.verdict": "allowed",
    });
    const w = only(spans, "invoke_agent writer");
    const k = only(spans, "invoke_agent reviewer");
    expect(w.parentSpanId).toBe(spawn.spanId);
    expect(k.parentSpanId).toBe(spawn.spanId);
    expect(w.attributes["aido.agent.parent_id"]).toBe(root.attributes["gen_ai.agent.id"]);

    // The writer's calls, by the ids its model used.
    const writerTools = childrenOf(spans, w).filter((s) => s.name.startsWith("execute_tool"));
    const byCall = Object.fromEntries(writerTools.map((s) => [s.attributes["gen_ai.tool.call.id"], s]));
    expect(Object.keys(byCall).sort()).toEqual(["toolu_denied_1", "toolu_exec_1", "toolu_write_1"]);
    const write = byCall.toolu_write_1 as ReceivedSpan;
    expect(write.attributes["aido.gate.verdict"]).toBe("allowed");
    expect(write.attributes["aido.snapshot.id"]).toMatch(/\S/);
    expect(write.status.code).not.toBe(2);
    expect((byCall.toolu_exec_1 as ReceivedSpan).attributes["aido.exit_code"]).toBe(0);
    const denied = byCall.toolu_denied_1 as ReceivedSpan;
    expect(denied.attributes).toMatchObject({
      "aido.gate.verdict": "denied",
      "aido.gate.stage": "capability",
      "error.type": "capability_denied",
    });
    // Message content is off: the gate's text (it names the path) stays off the span.
    expect(denied.attributes["aido.gate.reason"]).toBe("capability_denied");
    expect(denied.status.code).toBe(2);
    expect(childrenOf(spans, w).filter((s) => s.name === "chat claude-test")).toHaveLength(2);

    // The reviewer's call waited for a human, who allowed it once.
    const store = only(spans, "execute_tool memory_store");
    expect(store.parentSpanId).toBe(k.spanId);
    expect(store.attributes).toMatchObject({
      "aido.gate.verdict": "allowed",
      "aido.approval.decision": "allow_once",
      "aido.approval.via": "answer",
      "aido.approval.id": asked.id,
    });

    // The collector got the operator's headers; no content and no header value is on any span.
    expect(receiver.requests.length).toBeGreaterThan(0);
    for (const h of receiver.requests) {
      expect(h["x-collector-token"]).toBe("tok=secret");
      expect(h["x-tenant"]).toBe("aido-tests");
    }
    const text = attributeText(spans);
    expect(text).not.toContain(MARKER);
    expect(text).not.toContain("tok=secret");
    expect(text).not.toContain("sk-ant-test");
    expect(text).not.toContain("gen_ai.input.messages");
  }, 120_000);
});

describe("message content", () => {
  it("is on the spans only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, and never an API key", async () => {
    const { server } = suite;
    // The model repeats the key it should never have seen; the span must not.
    server.script('manifest "memo"', [
      turn.toolUse("memory_store", { content: `${MARKER} sk-ant-test`, category: "fact" }),
      turn.text(`Stored ${MARKER}.`),
    ]);
    const fx = await suite.start({
      env: otel({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "true" }),
    });
    const c = await fx.client();
    const memo = manifest("memo", { capabilities: ["tool: memory_store"] });
    const { goal_id } = await c.call("goal.submit", { goal: `Remember ${MARKER}.`, manifest: memo });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
    await fx.daemon.close();
    const spans = receiver.spans;
    const chats = named(spans, "chat claude-test");
    expect(chats).toHaveLength(2);
    const first = chats.find((s) => String(s.attributes["gen_ai.output.messages"]).includes("tool_call"));
    const input = JSON.parse(String(first?.attributes["gen_ai.input.messages"]));
    expect(input).toEqual([{ role: "user", parts: [{ type: "text", content: `Remember ${MARKER}.` }] }]);
    const output = JSON.parse(String(first?.attributes["gen_ai.output.messages"]));
    expect(output[0]).toMatchObject({ role: "assistant", finish_reason: "tool_use" });
    expect(output[0].parts[0]).toMatchObject({ type: "tool_call", name: "memory_store" });
    expect(String(first?.attributes["gen_ai.system_instructions"])).toContain('manifest \\"memo\\"');
    const store = only(spans, "execute_tool memory_store");
    expect(String(store.attributes["gen_ai.tool.call.arguments"])).toContain(MARKER);
    expect(store.attributes["gen_ai.tool.call.result"]).toEqual(expect.any(String));
    const second = chats.find((s) => s !== first) as ReceivedSpan;
    const roles = JSON.parse(String(second.attributes["gen_ai.input.messages"])).map(
      (m: { role: string }) => m.role,
    );
    expect(roles).toEqual(["user", "assistant", "tool"]);
    const text = attributeText(spans);
    expect(text).toContain(MARKER);
    expect(text).not.toContain("sk-ant-test");
    expect(text).toContain("[redacted]");
  }, 60_000);
});

describe("message content, with arguments nested past the gate's limit", () => {
  it("does not keep the gate from refusing and auditing them, nor end the run", async () => {
    const { server } = suite;
    const n = 100_000;
    server.script('manifest "deep"', [
      turn.toolUses(
        [{ name: "memory_store", rawArguments: `{"content": ${"[".repeat(n)}${"]".repeat(n)}}` }],
        { usage: { input_tokens: 100, output_tokens: 10 } },
      ),
      turn.text("ok"),
    ]);
    const fx = await suite.start({
      env: otel({
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "true",
        AIDO_MODEL: "openai/gpt-test",
      }),
    });
    const c = await fx.client();
    const deep = manifest("deep", { model: "openai/gpt-test", capabilities: ["tool: memory_store"] });
    const { goal_id } = await c.call("goal.submit", { goal: "store it", manifest: deep });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
    const denied = (await c.call("audit.query", { goal_id, kind: "tool.denied" })).entries;
    expect(denied.map((e) => e.payload)).toEqual([
      expect.objectContaining({ tool: "memory_store", stage: "schema", code: "invalid_input" }),
    ]);
    await fx.daemon.close();
    const store = only(receiver.spans, "execute_tool memory_store");
    expect(store.attributes["aido.gate.stage"]).toBe("schema");
    expect(store.attributes["gen_ai.tool.call.arguments"]).toBe(
      "[not recorded: nested deeper than 64 levels]",
    );
  }, 60_000);
});

describe("the OpenAI wire format", () => {
  it("names openai as the provider and reports the completion's id and usage", async () => {
    const { server } = suite;
    server.script('manifest "gpt"', [
      turn.toolUse(
        "memory_store",
        { content: "a fact", category: "fact" },
        { usage: { input_tokens: 77, output_tokens: 8 } },
      ),
      turn.text("ok", { usage: { input_tokens: 90, output_tokens: 2 } }),
    ]);
    const fx = await suite.start({ env: otel({ AIDO_MODEL: "openai/gpt-test" }) });
    const c = await fx.client();
    const gpt = manifest("gpt", { model: "openai/gpt-test", capabilities: ["tool: memory_store"] });
    const { goal_id } = await c.call("goal.submit", { goal: "remember", manifest: gpt });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
    await fx.daemon.close();
    const spans = receiver.spans;
    expect(only(spans, "invoke_agent gpt").attributes["gen_ai.provider.name"]).toBe("openai");
    const chats = named(spans, "chat gpt-test");
    expect(chats).toHaveLength(2);
    const first = chats.find((s) => s.attributes["gen_ai.usage.input_tokens"] === 77) as ReceivedSpan;
    expect(first.attributes).toMatchObject({
      "gen_ai.provider.name": "openai",
      "gen_ai.response.model": "gpt-test",
      "gen_ai.response.finish_reasons": ["tool_calls"],
      "gen_ai.usage.output_tokens": 8,
      "server.port": Number(new URL(server.openaiURL).port),
    });
    expect(first.attributes["gen_ai.response.id"]).toMatch(/\S/);
    const store = only(spans, "execute_tool memory_store");
    const call = server
      .requestsMatching('manifest "gpt"')[1]
      ?.body.messages.find((m: { role: string }) => m.role === "tool");
    expect(store.attributes["gen_ai.tool.call.id"]).toBe(call.tool_call_id);
  }, 60_000);
});

describe("a provider that breaks the call's bound", () => {
  it("ends that chat span as an error: budget_exceeded, with what was reserved and charged", async () => {
    const { server } = suite;
    server.script('manifest "greedy"', [
      turn.text("a lot", { usage: { input_tokens: 5_000_000, output_tokens: 1 } }),
    ]);
    const fx = await suite.start({ env: otel() });
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "overspend", manifest: manifest("greedy") });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("failed");
    await fx.daemon.close();
    const chat = only(receiver.spans, "chat claude-test");
    expect(chat.status.code).toBe(2);
    expect(chat.attributes["error.type"]).toBe("budget_exceeded");
    expect(chat.attributes["aido.budget.committed"]).toBe(5_000_001);
    expect(Number(chat.attributes["aido.budget.reserved"])).toBeLessThan(5_000_001);
  }, 60_000);
});

describe("calls the agent loop refuses before the gate", () => {
  it("still get an execute_tool span: broken arguments and a third identical call", async () => {
    const { server } = suite;
    const same = { content: "same", category: "fact" };
    server.script('manifest "loopy"', [
      turn.toolUses([{ id: "call_broken", name: "memory_store", rawArguments: '{"content": ' }]),
      turn.toolUses([{ id: "call_1", name: "memory_store", input: same }]),
      turn.toolUses([{ id: "call_2", name: "memory_store", input: same }]),
      turn.toolUses([{ id: "call_3", name: "memory_store", input: same }]),
      turn.text("stopped repeating"),
    ]);
    const fx = await suite.start({ env: otel({ AIDO_MODEL: "openai/gpt-test" }) });
    const c = await fx.client();
    const loopy = manifest("loopy", { model: "openai/gpt-test", capabilities: ["tool: memory_store"] });
    const { goal_id } = await c.call("goal.submit", { goal: "go", manifest: loopy });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
    await fx.daemon.close();
    const byCall = Object.fromEntries(
      named(receiver.spans, "execute_tool memory_store").map((s) => [
        String(s.attributes["gen_ai.tool.call.id"]),
        s,
      ]),
    ) as Record<string, ReceivedSpan>;
    expect(Object.keys(byCall).sort()).toEqual(["call_1", "call_2", "call_3", "call_broken"]);
    expect(byCall.call_broken?.attributes).toMatchObject({
      "aido.gate.verdict": "denied",
      "aido.gate.stage": "schema",
      "error.type": "invalid_input",
    });
    expect(byCall.call_2?.attributes["aido.gate.verdict"]).toBe("allowed");
    expect(byCall.call_3?.attributes).toMatchObject({
      "aido.gate.verdict": "denied",
      "aido.gate.stage": "repeat_guard",
      "error.type": "repeated_call",
    });
    const run = only(receiver.spans, "invoke_agent loopy");
    for (const s of Object.values(byCall)) expect(s?.parentSpanId).toBe(run.spanId);
  });
});

describe("tool names a model made up", () => {
  /** A name no tool has, carrying a path the model probes. */
  const MADE_UP = "read_workspace/.ssh/id_ed25519";
  for (const content of [false, true]) {
    it(`are ${content ? "named on spans with content on" : "`unknown` on every span with content off; known names stay"}`, async () => {
      suite.server.script('manifest "inventive"', [
        turn.toolUses([{ id: "call_gate", name: MADE_UP, input: {} }]),
        turn.toolUses([{ id: "call_loop", name: MADE_UP, rawArguments: '{"x": ' }]),
        turn.toolUses([{ id: "call_mcp", name: "mcp__nowhere__id_ed25519", input: {} }]),
        turn.toolUses([
          { id: "call_known", name: "memory_store", input: { content: "x", category: "fact" } },
        ]),
        turn.text("done"),
      ]);
      const fx = await suite.start({
        env: otel({
          AIDO_MODEL: "openai/gpt-test",
          OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: String(content),
        }),
      });
      const c = await fx.client();
      const inventive = manifest("inventive", {
        model: "openai/gpt-test",
        capabilities: ["tool: memory_store"],
      });
      const { goal_id } = await c.call("goal.submit", { goal: "go", manifest: inventive });
      expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
      await fx.daemon.close();
      const tools = receiver.spans.filter((s) => s.name.startsWith("execute_tool "));
      const byCall = Object.fromEntries(
        tools.map((s) => [
          String(s.attributes["gen_ai.tool.call.id"]),
          [s.name, s.attributes["gen_ai.tool.name"]],
        ]),
      );
      expect(byCall).toEqual(
        content
          ? {
              call_gate: [`execute_tool ${MADE_UP}`, MADE_UP],
              call_loop: [`execute_tool ${MADE_UP}`, MADE_UP],
              call_mcp: ["execute_tool mcp__nowhere__id_ed25519", "mcp__nowhere__id_ed25519"],
              call_known: ["execute_tool memory_store", "memory_store"],
            }
          : {
              call_gate: ["execute_tool unknown", "unknown"],
              call_loop: ["execute_tool unknown", "unknown"],
              call_mcp: ["execute_tool unknown", "unknown"],
              call_known: ["execute_tool memory_store", "memory_store"],
            },
      );
      if (!content) expect(attributeText(receiver.spans)).not.toContain("id_ed25519");
    });
  }
});

describe("a call id a provider let the model shape", () => {
  /** Not what a provider's ids look like: a path and a space. */
  const SHAPED = "call read /workspace/.ssh/id_ed25519";
  for (const content of [false, true]) {
    it(`is ${content ? "kept on spans with content on" : "`unknown` on spans with content off; a plain id stays"}`, async () => {
      suite.server.script('manifest "shaped"', [
        turn.toolUses([{ id: SHAPED, name: "memory_store", input: { content: "x", category: "fact" } }]),
        turn.toolUses([
          { id: "call_plain", name: "memory_store", input: { content: "y", category: "fact" } },
        ]),
        turn.text("done"),
      ]);
      const fx = await suite.start({
        env: otel({
          AIDO_MODEL: "openai/gpt-test",
          OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: String(content),
        }),
      });
      const c = await fx.client();
      const shaped = manifest("shaped", { model: "openai/gpt-test", capabilities: ["tool: memory_store"] });
      const { goal_id } = await c.call("goal.submit", { goal: "go", manifest: shaped });
      expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
      await fx.daemon.close();
      const ids = receiver.spans
        .filter((s) => s.name.startsWith("execute_tool "))
        .map((s) => s.attributes["gen_ai.tool.call.id"]);
      expect(ids.sort()).toEqual(content ? [SHAPED, "call_plain"].sort() : ["call_plain", "unknown"]);
      if (!content) expect(attributeText(receiver.spans)).not.toContain("id_ed25519");
    });
  }
});

describe("an answer's id and finish reason a provider let the model shape", () => {
  const SHAPED_ID = "msg read /workspace/.ssh/id_ed25519";
  const SHAPED_FINISH = "id_ed25519 is AAAAC3Nza";
  for (const content of [false, true]) {
    it(`are ${content ? "kept on chat spans with content on" : "the runtime's own on chat spans with content off; a provider's stay"}`, async () => {
      suite.server.script('manifest "shaped"', [
        turn.toolUses([{ name: "memory_store", input: { content: "x", category: "fact" } }], {
          id: SHAPED_ID,
          stop: SHAPED_FINISH,
        }),
        turn.text("done", { id: "msg_plain" }),
      ]);
      const fx = await suite.start({
        env: otel({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: String(content) }),
      });
      const c = await fx.client();
      const shaped = manifest("shaped", { capabilities: ["tool: memory_store"] });
      const { goal_id } = await c.call("goal.submit", { goal: "go", manifest: shaped });
      expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
      await fx.daemon.close();
      const chats = receiver.spans
        .filter((s) => s.name.startsWith("chat "))
        .map((s) => [s.attributes["gen_ai.response.id"], s.attributes["gen_ai.response.finish_reasons"]]);
      expect(chats).toEqual(
        content
          ? [
              [SHAPED_ID, [SHAPED_FINISH]],
              ["msg_plain", ["end_turn"]],
            ]
          : [
              ["unknown", ["other"]],
              ["msg_plain", ["end_turn"]],
            ],
      );
      if (!content) expect(attributeText(receiver.spans)).not.toContain("id_ed25519");
    });
  }
});

describe("a model a child's manifest names", () => {
  /** A model no operator named, written by the lead's model into its child's manifest. */
  const MADE_UP_MODEL = "anthropic/read /workspace/.ssh/id_ed25519 now";
  for (const content of [false, true]) {
    it(`is ${content ? "named on spans with content on" : "`unknown` on every span with content off; the operator's stays"}`, async () => {
      suite.server.script('manifest "spawner"', [
        turn.toolUses([
          {
            id: "call_spawn",
            name: "spawn_agent",
            input: {
              manifest: {
                name: "writer",
                system_prompt: "You are the writer.",
                model: MADE_UP_MODEL,
                capabilities: [],
                budget: { max_tokens: 20_000 },
              },
              message: "Go.",
            },
          },
        ]),
        turn.text("done"),
      ]);
      suite.server.script('manifest "writer"', [turn.text("probed")]);
      const fx = await suite.start({
        env: otel({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: String(content) }),
        // The operator allows a provider's every model, as docs/security.md shows.
        config: (cfg) => {
          cfg.models.allowed = [["anthropic/*"]];
        },
      });
      const c = await fx.client();
      const spawner = manifest("spawner", {
        capabilities: ["tool: spawn_agent", "spawn_child: [writer]"],
      });
      const { goal_id } = await c.call("goal.submit", { goal: "go", manifest: spawner });
      await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
      await fx.daemon.close();
      const shown = content ? "read /workspace/.ssh/id_ed25519 now" : "unknown";
      const agents = Object.fromEntries(
        receiver.spans
          .filter((s) => s.name.startsWith("invoke_agent "))
          .map((s) => [s.name, s.attributes["gen_ai.request.model"]]),
      );
      expect(agents).toEqual({ "invoke_agent spawner": "claude-test", "invoke_agent writer": shown });
      const chats = receiver.spans.filter((s) => s.name.startsWith("chat "));
      expect(chats.map((s) => s.name)).toContain("chat claude-test");
      expect(chats.map((s) => s.name)).toContain(`chat ${shown}`);
      if (!content) expect(attributeText(receiver.spans)).not.toContain("id_ed25519");
    });
  }
});

describe("calls without an agent loop", () => {
  it("tool.invoke over the socket is an execute_tool span of its own trace, with the human's and the standing decisions", async () => {
    const fx = await suite.start({ env: otel() });
    const c = await fx.client();
    const human = await fx.client();
    const careful = manifest("solo", {
      lifecycle: "persistent",
      capabilities: ["tool: memory_store"],
      approval_required: ["memory_store"],
    });
    const a = await c.call("agent.spawn", { manifest: careful });
    const invoke = (content: string) =>
      c.call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "memory_store",
        input: { content, category: "fact" },
      });
    const first = invoke("x");
    const asked = await answerNext(human, "allow_session");
    await first;
    await invoke("x"); // the same scope: the session's decision is reused, nobody is asked
    const refused = invoke("y").catch((e) => e);
    const deniedRec = await answerNext(human, "deny");
    expect((await refused).code).toBe("approval_denied");
    await fx.daemon.close();
    const spans = named(receiver.spans, "execute_tool memory_store");
    expect(spans).toHaveLength(3);
    for (const s of spans) {
      expect(s.parentSpanId).toBe("");
      expect(s.attributes["gen_ai.agent.id"]).toBe(a.agent_id);
    }
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(3);
    const [answered, reused, denied] = [...spans].sort((x, y) => (x.startNs < y.startNs ? -1 : 1));
    expect(answered?.attributes).toMatchObject({
      "aido.gate.verdict": "allowed",
      "aido.approval.decision": "allow_session",
      "aido.approval.via": "answer",
      "aido.approval.id": asked.id,
    });
    expect(reused?.attributes).toMatchObject({
      "aido.gate.verdict": "allowed",
      "aido.approval.decision": "allow_session",
      "aido.approval.via": "allow_session",
      "aido.approval.id": asked.id,
    });
    expect(denied?.attributes).toMatchObject({
      "aido.gate.verdict": "denied",
      "aido.gate.stage": "approval",
      "aido.approval.decision": "deny",
      "aido.approval.id": deniedRec.id,
      "error.type": "approval_denied",
    });
    expect(denied?.status.code).toBe(2);
  });
});

describe("an unreachable collector", () => {
  it("neither fails nor holds up the goal; the failure is logged once; the daemon still stops in bounded time", async () => {
    const { server } = suite;
    // A collector that takes the connection and never answers.
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    try {
      server.script('manifest "busy"', [
        turn.toolUse("memory_store", { content: "a", category: "fact" }),
        turn.toolUse("memory_store", { content: "b", category: "fact" }, { delayMs: 300 }),
        turn.text("done", { delayMs: 300 }),
      ]);
      const fx = await suite.start({
        env: otel({
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
          OTEL_EXPORTER_OTLP_TIMEOUT: "100",
          OTEL_BSP_SCHEDULE_DELAY: "50",
        }),
      });
      const c = await fx.client();
      const busy = manifest("busy", { capabilities: ["tool: memory_store"] });
      const { goal_id } = await c.call("goal.submit", { goal: "work", manifest: busy });
      // Exports are attempted (and time out) while the goal runs: it is not held up by them.
      const done = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
      expect(done.state).toBe("succeeded");
      const started = Date.now();
      await fx.daemon.close();
      expect(Date.now() - started).toBeLessThan(TRACE_FLUSH_WAIT_MS + 2_000);
      const reports = fx.logs.filter((l) => l.startsWith("tracing:"));
      if (process.env.AIDO_OTEL_DUMP === "1") console.log(reports.join("\n"));
      expect(reports).toHaveLength(1);
      expect(reports[0]).toContain(`exporting`);
      expect(reports[0]).toContain(`127.0.0.1:${(silent.address() as AddressInfo).port}/v1/traces`);
      expect(reports.join("\n")).not.toContain("tok=secret");
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  }, 30_000);
});

describe("a child's manifest name a model chose", () => {
  /** A name only `spawn_child: [*]` lets through, carrying what the model read. */
  const CHOSEN = "key-is-ssh-ed25519-aaaa";
  for (const content of [false, true]) {
    it(`is ${content ? "named on spans with content on" : "`unknown` with content off; names the operator listed stay"}`, async () => {
      const child = (name: string, grants: string[] = [], tokens = 10_000) => ({
        name,
        system_prompt: `You are ${name}.`,
        capabilities: grants,
        budget: { max_tokens: tokens },
      });
      suite.server.script('manifest "spawner"', [
        turn.toolUses([
          { id: "call_listed", name: "spawn_agent", input: { manifest: child("writer"), message: "Go." } },
          {
            id: "call_chosen",
            name: "spawn_agent",
            input: {
              // The model's child lists a name of its own under the operator's [*]: that
              // name, its grandchild's, is the model's text too.
              manifest: child(CHOSEN, ["tool: spawn_agent", "spawn_child: [deeper-ed25519-bbbb]"], 40_000),
              message: "Go.",
            },
          },
        ]),
        turn.text("done"),
      ]);
      suite.server.script('manifest "writer"', [turn.text("written")]);
      suite.server.script(`manifest "${CHOSEN}"`, [
        turn.toolUses([
          {
            id: "call_deeper",
            name: "spawn_agent",
            input: { manifest: child("deeper-ed25519-bbbb"), message: "Go." },
          },
        ]),
        turn.text("spawned"),
      ]);
      suite.server.script('manifest "deeper-ed25519-bbbb"', [turn.text("deep")]);
      const fx = await suite.start({
        env: otel({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: String(content) }),
        // The operator lets goals spawn any child, as a ceiling in config.yaml can.
        config: (cfg) => {
          cfg.grantCeilings = [["tool: spawn_agent", "spawn_child: [*]"]];
        },
      });
      const c = await fx.client();
      const spawner = manifest("spawner", {
        capabilities: ["tool: spawn_agent", "spawn_child: [*]", "spawn_child: [writer]"],
      });
      const { goal_id } = await c.call("goal.submit", { goal: "go", manifest: spawner });
      expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
      await fx.daemon.close();
      const agents = receiver.spans
        .filter((s) => s.name.startsWith("invoke_agent "))
        .map((s) => `${s.name} = ${s.attributes["gen_ai.agent.name"]}`)
        .sort();
      const shown = (name: string) => (content ? name : "unknown");
      expect(agents).toEqual(
        [
          "invoke_agent spawner = spawner",
          "invoke_agent writer = writer",
          `invoke_agent ${shown(CHOSEN)} = ${shown(CHOSEN)}`,
          `invoke_agent ${shown("deeper-ed25519-bbbb")} = ${shown("deeper-ed25519-bbbb")}`,
        ].sort(),
      );
      if (!content) expect(attributeText(receiver.spans)).not.toContain("ed25519");
    });
  }
});
