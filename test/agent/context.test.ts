// Context window management: past memory.summarize_at of memory.context_window the oldest
// part of the conversation is summarised by a model call (same model, paid from the
// agent's budget) and archived; tool_use/tool_result pairs are never split.

import { describe, expect, it } from "vitest";
import { findCut } from "../../src/agent/context.js";
import type { Message } from "../../src/llm/types.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { type Harness, openHarness, useHarnessSuite } from "./harness.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

type Block = { type: string; id?: string; tool_use_id?: string };

/** Every tool_result answers a tool_use of the message right before it, and every tool_use is answered. */
function pairsIntact(messages: { role: string; content: string | Block[] }[]): boolean {
  for (const [i, m] of messages.entries()) {
    if (typeof m.content === "string") continue;
    for (const b of m.content) {
      if (b.type === "tool_result") {
        const prev = messages[i - 1];
        if (!prev || typeof prev.content === "string") return false;
        if (!prev.content.some((p) => p.type === "tool_use" && p.id === b.tool_use_id)) return false;
      }
      if (b.type === "tool_use") {
        const next = messages[i + 1];
        if (!next) continue; // the request being answered
        if (typeof next.content === "string" || !next.content.some((r) => r.tool_use_id === b.id))
          return false;
      }
    }
  }
  return true;
}

describe("context window", () => {
  it("cuts only just before an assistant message, never between a tool_use and its result", () => {
    const use = (id: string): Message => ({
      role: "assistant",
      content: [{ type: "tool_use", id, name: "t", input: {} }],
    });
    const res = (id: string): Message => ({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: id, content: "x".repeat(400) }],
    });
    const msgs: Message[] = [
      { role: "user", content: "task" },
      use("1"),
      res("1"),
      use("2"),
      res("2"),
      use("3"),
      res("3"),
    ];
    const cut = findCut(msgs, 150)!;
    expect(msgs[cut]!.role).toBe("assistant");
    expect(cut).toBe(5);
    expect(findCut(msgs.slice(0, 3), 10)).toBeUndefined();
  });

  it("cuts where a count of every candidate's kept part from scratch would", () => {
    // The earliest assistant message from index 2 on whose kept part fits, else the last one.
    const fresh = (msgs: readonly Message[], keep: number): number | undefined => {
      const size = (m: Message) =>
        Math.ceil((typeof m.content === "string" ? m.content : JSON.stringify(m.content)).length / 4);
      const candidates = [...msgs.keys()].filter((i) => i >= 2 && msgs[i]?.role === "assistant");
      const fits = candidates.find((i) => msgs.slice(i).reduce((n, m) => n + size(m), 0) <= keep);
      return fits ?? candidates.at(-1);
    };
    let seed = 7;
    const int = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const msgs: Message[] = Array.from({ length: int(30) }, (_, i) =>
        int(3) === 0
          ? { role: i % 2 ? "assistant" : "user", content: "w".repeat(int(900)) }
          : {
              role: int(2) ? "assistant" : "user",
              content: [{ type: "tool_result", tool_use_id: `t${i}`, content: "r".repeat(int(900)) }],
            },
      );
      const keep = int(4000);
      expect(findCut(msgs, keep)).toBe(fresh(msgs, keep));
    }
  });

  it("summarises the oldest turns with the agent's model, archives them, keeps pairs intact and finishes", async () => {
    h = await openHarness(server);
    const skills = ["write-report", "decompose-goal", "research-with-citations", "tdd-code-change"];
    const worker = server.script('manifest "reader"', [
      ...skills.map((name) => turn.toolUse("skill_read", { name })),
      turn.text("I read all four skills; summary used."),
    ]);
    const summariser = server.script(
      "You condense the earlier part",
      [turn.text("Earlier: read write-report and decompose-goal.")],
      {
        repeatLast: true,
      },
    );
    const r = await h.rt.spawnAndRun(
      {
        name: "reader",
        system_prompt: "You read skills.",
        capabilities: ["tool: skill_read"],
        memory: { episodic: false, context_window: 4000, summarize_at: 0.6 },
      },
      "Read the four skills one by one.",
    );
    expect(r.stop_reason).toBe("complete");
    expect(r.text).toBe("I read all four skills; summary used.");
    expect(summariser.requests.length).toBeGreaterThanOrEqual(1);
    expect(summariser.requests[0]!.model).toBe("claude-test");
    for (const req of worker.requests) expect(pairsIntact(req.body.messages)).toBe(true);
    const last = worker.requests.at(-1)!.body.messages;
    expect(last[0].role).toBe("user");
    expect(JSON.stringify(last[0].content)).toContain("Read the four skills one by one.");
    expect(JSON.stringify(last[0].content)).toContain("<earlier_work_summary untrusted>");
    const archived = (
      h.rt.db
        .prepare("SELECT summary, messages FROM agent_context_archive WHERE agent_id = ? ORDER BY id")
        .all(r.agent_id) as { summary: string; messages: string }[]
    ).map((a) => ({ summary: a.summary, messages: JSON.parse(a.messages) as Message[] }));
    expect(archived.length).toBe(summariser.requests.length);
    expect(archived[0]!.summary).toBe("Earlier: read write-report and decompose-goal.");
    expect(archived[0]!.messages[0]!.role).toBe("assistant");
    expect(archived[0]!.messages.at(-1)!.role).toBe("user");
    // The summary was paid for: its usage counts in the agent's run.
    expect(r.usage.input_tokens).toBeGreaterThan(0);
  });
});
