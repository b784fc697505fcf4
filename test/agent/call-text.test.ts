// What a provider chose — a call's id, a tool's name, argument keys — reaches the traces (with
// message content on), the event bus and the audit: each bounded and inert there, as the audit
// log keeps text from outside (security/audit-text.ts). Before, with content on, the id of a call
// the loop refused went on its span whole (traceRefusal), a tool name no tool has went whole into
// its span's name, gen_ai.tool.name and aido.gate.reason, and a response's ids and names whole
// into gen_ai.output.messages: a megabyte each, terminal controls included. And a host web_fetch
// was refused mid-run (gate/network-check.ts) was audited with no call id and the tool name raw.
// Real SDK against the scripted provider; spans exported over OTLP to a local receiver.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_CALL_ID_MAX, AUDIT_TEXT_MAX, auditCallId } from "../../src/security/audit-text.js";
import { type OtlpReceiver, startOtlpReceiver } from "../support/otlp-receiver.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { type Harness, openHarness, useHarnessSuite } from "./harness.js";

let server: ProviderServer;
let h: Harness;
let receiver: OtlpReceiver;
let site: Server;
let port = 0;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);
beforeAll(async () => {
  receiver = await startOtlpReceiver();
  site = createServer((req, res) => {
    const to = new URL(req.url ?? "/", "http://x").searchParams.get("to");
    if (to) res.writeHead(302, { location: to }).end();
    else res.writeHead(200).end("page");
  });
  await new Promise<void>((r) => site.listen(0, "127.0.0.1", r));
  port = (site.address() as AddressInfo).port;
});
afterAll(async () => {
  site?.closeAllConnections();
  await new Promise((r) => site?.close(r));
  await receiver?.close();
});

/** OSC 8 link, a line wipe, a bidi override, then a megabyte. */
const hostile = (head: string) =>
  `${head}\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\r\x1b[2K\u202e${"A".repeat(1024 * 1024)}`;
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u202e]/;

describe("a provider's hostile call ids and tool names", () => {
  it("are bounded and inert on spans (content on), on the bus, and in a mid-run refusal's audit entry", async () => {
    h = await openHarness(server, {
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "true",
      },
    });
    const fetchId = hostile("toolu_3");
    server.script('manifest "texts"', [
      turn.toolUses(
        [
          // No such tool: refused by the gate, its name quoted in the reason.
          { name: hostile("tool"), input: {}, id: hostile("toolu_1") },
          // The third identical call is refused by the loop's repeat guard, before the gate: its
          // span is traceRefusal's.
          { name: "skill_read", input: { name: "none" }, id: hostile("toolu_2") },
          { name: "skill_read", input: { name: "none" }, id: hostile("toolu_4") },
          { name: "skill_read", input: { name: "none" }, id: hostile("toolu_5") },
          // Runs, and its redirect to a host no grant names is refused mid-run (allowNetwork).
          {
            name: "web_fetch",
            input: {
              url: `http://127.0.0.1:${port}/r?to=${encodeURIComponent(`http://127.0.0.2:${port}/x`)}`,
            },
            id: fetchId,
          },
        ],
        { usage: { input_tokens: 100, output_tokens: 100 }, id: hostile("msg"), stop: hostile("tool_use") },
      ),
      // The answer's id and its stop reason are the provider's text too (gen_ai.response.id,
      // gen_ai.response.finish_reasons).
      turn.text("done", {
        usage: { input_tokens: 100, output_tokens: 100 },
        id: hostile("msg"),
        stop: hostile("end"),
      }),
    ]);
    const events: { type: string; tool?: string; reason?: string }[] = [];
    h.rt.events.subscribe({}, (e) => {
      if (e.type.startsWith("tool.")) events.push(e as never);
    });
    await h.rt.spawnAndRun(
      {
        name: "texts",
        system_prompt: "calls tools",
        capabilities: ["tool: skill_read", "tool: web_fetch", "network: 127.0.0.1:*"],
        memory: { episodic: false },
      },
      "Go.",
    );
    const entries = h.rt.audit.query({}).filter((e) => e.kind === "tool.denied");
    console.log(
      JSON.stringify(h.rt.audit.query({}).map((e) => [e.kind, JSON.stringify(e.payload).slice(0, 300)])),
    );
    await h.reopen(); // flushes the traces

    // The mid-run refusal names its call, as the gate's own entries do.
    const hop = entries.find((e) => String((e.payload as { reason: string }).reason).includes("127.0.0.2"));
    expect(hop?.payload).toMatchObject({
      tool: "web_fetch",
      stage: "capability",
      call_id: auditCallId(fetchId),
    });

    // Spans: every name and string attribute bounded; the ids and names inert.
    const spans = receiver.spans;
    const tools = spans.filter((s) => s.name.startsWith("execute_tool"));
    expect(tools).toHaveLength(5);
    expect(tools.filter((s) => s.attributes["aido.gate.stage"] === "repeat_guard")).toHaveLength(1);
    console.log(
      "DBG",
      tools.map((s) => [
        s.name.slice(0, 40),
        String(s.attributes["gen_ai.tool.call.id"]).length,
        String(s.attributes["gen_ai.tool.call.id"]).slice(0, 30),
      ]),
    );
    for (const s of spans) {
      expect(s.name.length).toBeLessThanOrEqual(AUDIT_TEXT_MAX + 20);
      expect(s.name).not.toMatch(CONTROLS);
      for (const [k, v] of Object.entries(s.attributes)) {
        if (typeof v === "string") expect(v.length, `${s.name} ${k}`).toBeLessThan(70_000);
      }
    }
    for (const s of tools) {
      const id = String(s.attributes["gen_ai.tool.call.id"]);
      expect(id.length).toBeLessThanOrEqual(AUDIT_CALL_ID_MAX);
      expect(id).toMatch(/^toolu_\d\\x1b\]8;;https:\/\/evil\.example\\x07click/);
      for (const k of ["gen_ai.tool.name", "aido.gate.reason"]) {
        const v = s.attributes[k];
        if (v === undefined) continue;
        expect(String(v).length).toBeLessThanOrEqual(AUDIT_TEXT_MAX);
        expect(String(v)).not.toMatch(CONTROLS);
      }
    }
    const chats = spans.filter((s) => s.name.startsWith("chat"));
    // The second turn is refused for its budget (the conversation holds the megabytes).
    expect(chats.length).toBeGreaterThan(0);
    for (const s of chats) {
      const texts = [
        String(s.attributes["gen_ai.response.id"]),
        ...(s.attributes["gen_ai.response.finish_reasons"] as string[]),
      ];
      for (const v of texts) {
        expect(v.length).toBeLessThanOrEqual(AUDIT_TEXT_MAX);
        expect(v).not.toMatch(CONTROLS);
      }
    }
    const out = spans.flatMap((s) => {
      const v = s.attributes["gen_ai.output.messages"];
      return typeof v === "string"
        ? (JSON.parse(v) as { parts: { type: string; id?: string; name?: string }[] }[])
        : [];
    });
    const calls = out.flatMap((m) => m.parts.filter((p) => p.type === "tool_call"));
    expect(calls).toHaveLength(5);
    for (const p of calls) {
      expect(p.id!.length).toBeLessThanOrEqual(AUDIT_CALL_ID_MAX);
      expect(p.id).not.toMatch(CONTROLS);
      expect(p.name!.length).toBeLessThanOrEqual(AUDIT_TEXT_MAX);
      expect(p.name).not.toMatch(CONTROLS);
    }

    // The bus: the tool's name and a denial's reason (which quotes it) bounded and inert.
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      for (const v of [e.tool, e.reason]) {
        if (v === undefined) continue;
        expect(v.length).toBeLessThanOrEqual(AUDIT_TEXT_MAX);
        expect(v).not.toMatch(CONTROLS);
      }
    }
  }, 120_000);
});
