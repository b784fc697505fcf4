// Red team: a provider that reports no usage. A self-hosted OpenAI-compatible server may
// send no usage chunk, and a broken or hostile one may report zero tokens for every call.
// The ledger committed what the provider reported, so each call was charged nothing: a goal
// capped at two calls' worth of tokens made as many calls as its loop allowed and its
// account still read 0 spent. Now a call whose reported usage cannot be true (no input
// tokens: every request sends a prompt) is charged what it reserved, its bound, and
// audited as budget.usage_unreported; the cap holds.

import { describe, expect, it } from "vitest";
import { type Harness, openHarness, useHarnessSuite } from "../agent/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

const CALLS = 8;

/** A goal whose root makes CALLS tool calls then answers, every turn reported as `usage`. */
async function goalWithUsage(model: string, usage: { input_tokens: number; output_tokens: number }) {
  h = await openHarness(server, {
    env: { AIDO_MODEL: model },
    config: (c) => {
      c.limits.goalMaxTokens = 30_000;
    },
  });
  const script = server.script('manifest "spender"', [
    ...Array.from({ length: CALLS }, (_, i) => turn.toolUse("skill_read", { name: `s${i}` }, { usage })),
    turn.text("done", { usage }),
  ]);
  const { goal_id } = h.rt.goals.submit({
    goal: "Spend it.",
    manifest: { name: "spender", system_prompt: "You spend.", capabilities: ["tool: skill_read"] },
  });
  const s = await h.rt.goals.wait(goal_id, 30_000);
  const committed = h.rt.db
    .prepare(
      "SELECT r.amount, r.actual FROM budget_reservations r JOIN budget_accounts a ON a.id = r.account_id WHERE a.goal_id = ? AND r.state = 'committed'",
    )
    .all(goal_id) as { amount: number; actual: number }[];
  return { goal_id, s, script, committed, goal: h.rt.budget.get(`goal:${goal_id}`) };
}

describe("a provider that reports no usage", () => {
  it.each([
    ["anthropic/claude-test", { input_tokens: 0, output_tokens: 0 }],
    ["openai/gpt-test", { input_tokens: 0, output_tokens: 0 }],
    ["anthropic/claude-test", { input_tokens: 0, output_tokens: 40 }],
    ["openai/gpt-test", { input_tokens: 0, output_tokens: 900 }],
  ])(
    "%s reporting %j: each call is charged its bound and the goal stops at its cap",
    async (model, usage) => {
      const { goal_id, s, script, committed, goal } = await goalWithUsage(model, usage);
      // About 6,000 tokens a call reserved: the 30,000 cap holds four or five of them, not nine.
      expect(script.requests.length, `goal ${s.state}: ${s.error ?? ""}`).toBeLessThan(CALLS + 1);
      expect(s.state).toBe("failed");
      expect(committed.length).toBeGreaterThan(0);
      for (const c of committed) expect(c.actual).toBe(c.amount);
      expect(goal.spent).toBe(committed.reduce((n, c) => n + c.amount, 0));
      expect(goal.spent).toBeLessThanOrEqual(30_000);
      const audited = h.rt.audit
        .query({ goal_id, kind: "budget.usage_unreported" })
        .map((e) => e.payload as { reported_input: number; reported_output: number; charged: number });
      const ascending = (x: number, y: number) => x - y;
      expect(audited.map((p) => p.charged).sort(ascending)).toEqual(
        committed.map((c) => c.amount).sort(ascending),
      );
      for (const p of audited) {
        expect(p).toMatchObject({ reported_input: usage.input_tokens, reported_output: usage.output_tokens });
      }
    },
  );

  it("charges what the provider reported when it is believable", async () => {
    const usage = { input_tokens: 900, output_tokens: 40 };
    const { goal_id, s, script, committed, goal } = await goalWithUsage("anthropic/claude-test", usage);
    expect(s.state).toBe("succeeded");
    expect(script.requests).toHaveLength(CALLS + 1);
    for (const c of committed) expect(c.actual).toBe(940);
    expect(goal.spent).toBe(940 * (CALLS + 1));
    expect(h.rt.audit.query({ goal_id, kind: "budget.usage_unreported" })).toEqual([]);
  });
});
