// A call's id is the provider's tool_use id: text the model's server chose (a self-hosted
// compatible server may let the model shape it). It went into tool.invoked, tool.denied and
// tool.errored whole: a 1 MiB id made each of those entries a megabyte, and terminal controls in
// it reached whoever printed the log. The gate now keeps it inert and at most AUDIT_CALL_ID_MAX
// characters (security/audit-text.ts), as the log keeps every other text from outside. Real SDK
// against the scripted provider.

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
  }, 60_000);
});
