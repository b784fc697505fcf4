// A call's id is the provider's tool_use id: text the model's server chose (a self-hosted
// compatible server may let the model shape it). It went into tool.invoked, tool.denied and
// tool.errored whole: a 1 MiB id made each of those entries a megabyte, and terminal controls in
// it reached whoever printed the log. The gate now keeps it inert and at most AUDIT_CALL_ID_MAX
// characters (security/audit-text.ts), as the log keeps every other text from outside. Real SDK
// against the scripted provider. The event bus carries the same id (the dashboard matches by it).

import { describe, expect, it } from "vitest";
import { AUDIT_CALL_ID_MAX } from "../../src/security/audit-text.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { type Harness, openHarness, useHarnessSuite } from "./harness.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

/** OSC 8 link, a line wipe, a bidi override, then a megabyte. */
const hostileId = (n: number) =>
  `toolu_${n}\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\r\x1b[2K\u202e${"A".repeat(1024 * 1024)}`;

describe("the provider's tool_use id in the audit log", () => {
  it("is kept inert and bounded in tool.invoked, tool.denied (gate and loop) and tool.errored", async () => {
    h = await openHarness(server);
    server.script('manifest "ids"', [
      turn.toolUses([
        // Runs: tool.invoked (and tool.completed, which names no id).
        { name: "skill_read", input: { name: "write-report" }, id: hostileId(1) },
        // Refused by the gate: tool.denied.
        { name: "no_such_tool", input: {}, id: hostileId(2) },
        // Refused by the loop before the gate (arguments not JSON): tool.denied.
        { name: "skill_read", rawArguments: "{not json", id: hostileId(3) },
        // Its stage fails (no container in this suite): tool.errored.
        { name: "file_read", input: { path: "/workspace/a.txt" }, id: hostileId(4) },
      ]),
      turn.text("done"),
    ]);
    const events: { type: string; callId: string }[] = [];
    h.rt.events.subscribe({}, (e) => {
      if (e.type.startsWith("tool.") && "callId" in e) events.push({ type: e.type, callId: e.callId });
    });
    await h.rt.spawnAndRun(
      {
        name: "ids",
        system_prompt: "calls tools",
        capabilities: ["tool: skill_read", "tool: file_read", "file_read: /workspace/**"],
        memory: { episodic: false },
      },
      "Go.",
    );
    const entries = h.rt.audit.query({}).filter((e) => e.kind.startsWith("tool."));
    const ids = entries.flatMap((e) => {
      const id = (e.payload as { call_id?: unknown }).call_id;
      return id === undefined ? [] : [[e.kind, id] as const];
    });
    expect(ids.map(([k]) => k).sort()).toEqual([
      "tool.denied",
      "tool.denied",
      "tool.errored",
      "tool.invoked",
    ]);
    for (const [, id] of ids) {
      expect(typeof id).toBe("string");
      expect((id as string).length).toBeLessThanOrEqual(AUDIT_CALL_ID_MAX);
      expect(id).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
      expect(id).toMatch(/^toolu_\d\\x1b\]8;;https:\/\/evil\.example\\x07click/);
    }
    // Every entry stays small whoever chose the id.
    for (const e of entries) expect(JSON.stringify(e.payload).length).toBeLessThan(8_000);
    // The provider gets its own ids back, whole, with each result.

    // The bus carries the same id as the log (inert, bounded): watchers print and key on it, and
    // the dashboard matches a call's events with its audit entries by it. Before, the events had
    // the provider's id whole (a megabyte in each of tool.called, tool.denied, tool.errored,
    // tool.completed), and the dashboard showed each such call twice.
    const logged = new Set(ids.map(([, id]) => id as string));
    expect(events.map((e) => e.type).sort()).toEqual([
      "tool.called",
      "tool.called",
      "tool.called",
      "tool.called",
      "tool.completed",
      "tool.denied",
      "tool.denied",
      "tool.errored",
    ]);
    for (const e of events) {
      expect(e.callId.length).toBeLessThanOrEqual(AUDIT_CALL_ID_MAX);
      expect(e.callId).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
      expect(logged.has(e.callId)).toBe(true);
    }
  }, 60_000);
});
