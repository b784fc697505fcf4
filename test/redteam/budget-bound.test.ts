// Red team (was open-budget-estimate): children whose calls cost more than they reserved
// pushed the goal past its cap. A call reserved "characters / 4 + max_tokens" and was
// charged what the provider reported; text a model can make dense (rare CJK characters
// cost one to three tokens each, base64 about one per 1.5 characters) costs far more than
// a quarter token per character. Five children in parallel, each with 8,000 such
// characters in its task, each reserved ~6,500 tokens (all five fit the 40,000 cap) and
// were each charged the ~16,500 the provider reported: the goal spent 83,500 of 40,000.
// Now a call reserves what it can cost at most (llm/token-bound.ts: the UTF-8 bytes of
// everything sent, a byte-level tokenizer never makes more tokens than bytes, plus framing
// and max_tokens), so no commit exceeds its reservation and the cap holds under any
// concurrency. The price: a dense task reserves what it may cost, and a budget that cannot
// hold it is refused before anything is sent.

import { describe, expect, it } from "vitest";
import { type Harness, openHarness, useHarnessSuite } from "../agent/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

const CHILDREN = ["c1", "c2", "c3", "c4", "c5"];
/** 8,000 characters of CJK Extension A (24,000 UTF-8 bytes): ~2 tokens each for a real tokenizer. */
const DENSE = Array.from({ length: 8000 }, (_, i) => String.fromCodePoint(0x3400 + (i % 6000))).join("");

async function fiveDenseChildren(cap: number, childBudget: number) {
  h = await openHarness(server, {
    env: { AIDO_SPAWN_BATCH_CAP: "5" },
    config: (c) => {
      c.limits.goalMaxTokens = cap;
    },
  });
  server.script('manifest "lead"', [
    turn.toolUse(
      "spawn_agents",
      {
        children: CHILDREN.map((name) => ({
          manifest: { name, budget: { max_tokens: childBudget } },
          message: DENSE,
        })),
      },
      { usage: { input_tokens: 800, output_tokens: 200 } },
    ),
    turn.text("done", { usage: { input_tokens: 800, output_tokens: 100 } }),
  ]);
  // What a provider reports for a request carrying 8,000 such characters.
  const children = CHILDREN.map((name) =>
    server.script(`manifest "${name}"`, [
      turn.text("read it", { delayMs: 300, usage: { input_tokens: 16_000, output_tokens: 500 } }),
    ]),
  );
  const { goal_id } = h.rt.goals.submit({
    goal: "Spend it.",
    manifest: {
      name: "lead",
      system_prompt: "You lead.",
      capabilities: ["tool: spawn_agents", `spawn_child: [${CHILDREN.join(", ")}]`],
    },
  });
  const s = await h.rt.goals.wait(goal_id, 30_000);
  return { goal_id, s, children, goal: h.rt.budget.get(`goal:${goal_id}`) };
}

/** Committed reservations of the goal's children: what each call reserved and what it cost. */
function childCalls(goalId: string): { amount: number; actual: number }[] {
  const accounts = h.rt
    .listAgents({ goalId, includeStopped: true })
    .filter((a) => a.depth === 1)
    .map((a) => h.rt.registry.find(a.agent_id)!.budgetAccount);
  const rows = h.rt.db.prepare(
    "SELECT amount, actual FROM budget_reservations WHERE account_id = ? AND state = 'committed'",
  );
  return accounts.flatMap((a) => rows.all(a) as { amount: number; actual: number }[]);
}

describe("children whose tasks are dense text", () => {
  it("the red team's five, in parallel on 7,000-token budgets: refused before sending, the goal within its cap", async () => {
    const { goal_id, s, children, goal } = await fiveDenseChildren(40_000, 7000);
    expect(goal.spent, `goal ${s.state}: spent ${goal.spent} of a 40000 cap`).toBeLessThanOrEqual(40_000);
    // Each child's first call can cost 24,000 bytes of task and then some: more than its budget.
    for (const c of children) expect(c.requests).toHaveLength(0);
    const refused = h.rt.audit
      .query({ goal_id, kind: "budget.exceeded" })
      .map((e) => e.payload as { account: string; requested: number })
      .filter((p) => p.account.startsWith("agent:"));
    expect(refused.length).toBeGreaterThanOrEqual(CHILDREN.length);
    for (const r of refused) expect(r.requested).toBeGreaterThan(24_000 + 4096);
    expect(h.rt.audit.query({ goal_id, kind: "budget.overspent" })).toEqual([]);
  });

  it("on budgets that hold their bound they all run at once, each charged within its reservation, the goal within its cap", async () => {
    const { goal_id, s, children, goal } = await fiveDenseChildren(185_000, 36_000);
    for (const c of children) expect(c.requests).toHaveLength(1);
    const calls = childCalls(goal_id);
    expect(calls).toHaveLength(CHILDREN.length);
    for (const c of calls) expect(c.actual).toBeLessThanOrEqual(c.amount);
    expect(goal.spent, `goal ${s.state}`).toBeLessThanOrEqual(185_000);
    expect(goal.spent).toBe(s.usage.input_tokens + s.usage.output_tokens);
    expect(h.rt.audit.query({ goal_id, kind: "budget.overspent" })).toEqual([]);
  });
});
