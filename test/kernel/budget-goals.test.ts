// Budgets that hold, through the agent loop: the real SDK against the scripted provider,
// children spawned by the model, their calls reserved and committed on the goal's ledger.
// Issue 11's attack: a child with a short reset period spent ~81,000 tokens of a goal
// capped at 30,000, and the goal's account recorded 60. Reset periods are for persistent
// agents and a goal's root; a child may have one only below a parent that does.

import { describe, expect, it } from "vitest";
import { type Harness, openHarness, useHarnessSuite } from "../agent/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

const CHILDREN = ["helper", "helper2", "helper3", "helper4", "helper5"];
/**
 * Each child's own limit per period: room for one call's reservation (an upper bound: the
 * prompt's bytes + framing + max_tokens, ~6,000 today) with slack for the prompt to grow,
 * and below three calls (9,000), which one of five children makes once they make eleven.
 */
const CHILD_LIMIT = 7500;

describe("a goal whose root and children have reset periods", () => {
  it("stops at the goal cap with five children spending in parallel past their own limits, and the goal's account holds exactly what the provider reported and the bounds of the calls its stop gave up", async () => {
    h = await openHarness(server, {
      env: { AIDO_SPAWN_BATCH_CAP: "5" },
      config: (c) => (c.limits.goalMaxTokens = 60_000),
    });
    server.script('manifest "lead"', [
      turn.toolUse(
        "spawn_agents",
        {
          children: CHILDREN.map((name) => ({
            manifest: { name, budget: { max_tokens: CHILD_LIMIT, reset_period_seconds: 1 } },
            message: "Spend.",
          })),
        },
        { usage: { input_tokens: 800, output_tokens: 200 } },
      ),
      turn.text("never reached"),
    ]);
    // Each call costs 3000 and comes back after the child's 1 s period has ended, so each
    // child's own limit is restored before every call; only the ancestors hold.
    const scripts = CHILDREN.map((name) =>
      server.script(
        `manifest "${name}"`,
        Array.from({ length: 12 }, (_, i) =>
          turn.toolUse(
            "skill_read",
            { name: `s${i}` },
            { delayMs: 1100, usage: { input_tokens: 2500, output_tokens: 500 } },
          ),
        ),
      ),
    );
    const { goal_id } = h.rt.goals.submit({
      goal: "Spend it all.",
      manifest: {
        name: "lead",
        system_prompt: "You lead.",
        capabilities: ["tool: spawn_agents", "spawn_child: [helper, helper2, helper3, helper4, helper5]"],
        budget: { max_tokens: 60_000, reset_period_seconds: 1 },
      },
    });
    const s = await h.rt.goals.wait(goal_id, 30_000);
    expect(s.state).toBe("failed");
    expect(s.error).toMatch(/goal token cap reached/);

    const goal = h.rt.budget.get(`goal:${goal_id}`);
    // The calls still in flight when the cap stopped the goal were sent: each is charged its
    // bound (budget.charged_aborted; test/redteam/budget-aborted.test.ts), never refunded,
    // and the goal's usage counts what each call was charged.
    const givenUp = h.rt.audit
      .query({ goal_id, kind: "budget.charged_aborted" })
      .reduce((n, e) => n + (e.payload as { charged: number }).charged, 0);
    const charged = s.usage.input_tokens + s.usage.output_tokens;
    const reported = charged - givenUp;
    expect(goal.spent).toBe(charged);
    expect(goal.total_spent).toBe(charged);
    expect(goal.spent).toBeLessThanOrEqual(60_000);
    expect(goal).toMatchObject({ reserved: 0, carved: 0, closed: 1 });
    // The children spent past their own limit (resets happened), yet not past the goal.
    const childCalls = (reported - 1000) / 3000;
    expect(Number.isInteger(childCalls)).toBe(true);
    expect(childCalls).toBeGreaterThan(CHILDREN.length * 2);
    expect(scripts.reduce((n, sc) => n + sc.requests.length, 0)).toBeGreaterThanOrEqual(childCalls);
    const kids = h.rt.listAgents({ goalId: goal_id, includeStopped: true }).filter((a) => a.depth === 1);
    const totals = kids.map(
      (k) => h.rt.budget.get(h.rt.registry.find(k.agent_id)!.budgetAccount).total_spent,
    );
    expect(Math.max(...totals)).toBeGreaterThan(CHILD_LIMIT);
    // The refusal that ended it names the goal's account.
    const refusals = h.rt.audit
      .query({ goal_id, kind: "budget.exceeded" })
      .map((e) => (e.payload as { account: string }).account);
    expect(refusals).toContain(`goal:${goal_id}`);
    // The root's own account is per period inside the goal's, and closed with it.
    const root = h.rt.registry.find(s.agent_id as string)!;
    expect(root.budgetAccount).toBe(`agent:${root.id}`);
    expect(h.rt.budget.get(root.budgetAccount)).toMatchObject({
      parent_id: `goal:${goal_id}`,
      period_seconds: 1,
      closed: 1,
    });
  });
  // The attack as observed, where a reset period is allowed at all (the root has one): a
  // child resetting every 2 s, ~9,000 tokens a call. Each call reserves what it can cost at
  // most (llm/token-bound.ts), so the task is long enough (6,000 bytes) that 9,000 tokens is
  // within it, and the child's budget (16,000) holds one such reservation.
  it("stops issue 11's attack at the goal cap, the goal's account holding every token the provider reported", async () => {
    h = await openHarness(server, { config: (c) => (c.limits.goalMaxTokens = 40_000) });
    server.script('manifest "lead"', [
      turn.toolUse(
        "spawn_agent",
        {
          manifest: { name: "helper", budget: { max_tokens: 16_000, reset_period_seconds: 2 } },
          message: `Go. ${"Read every skill there is and report on each. ".repeat(125)}`,
        },
        { usage: { input_tokens: 900, output_tokens: 100 } },
      ),
      turn.text("never reached"),
    ]);
    const child = server.script(
      'manifest "helper"',
      Array.from({ length: 9 }, (_, i) =>
        turn.toolUse(
          "skill_read",
          { name: `s${i}` },
          { delayMs: 2050, usage: { input_tokens: 8000, output_tokens: 1000 } },
        ),
      ),
    );
    const { goal_id } = h.rt.goals.submit({
      goal: "Spend it all.",
      manifest: {
        name: "lead",
        system_prompt: "You lead.",
        capabilities: ["tool: spawn_agent", "spawn_child: [helper]"],
        budget: { max_tokens: 40_000, reset_period_seconds: 2 },
      },
    });
    const s = await h.rt.goals.wait(goal_id, 40_000);
    expect(s.state).toBe("failed");
    expect(s.error).toMatch(/goal token cap reached/);
    const goal = h.rt.budget.get(`goal:${goal_id}`);
    const reported = s.usage.input_tokens + s.usage.output_tokens;
    expect(goal.spent).toBe(reported);
    expect(goal.spent).toBeLessThanOrEqual(40_000);
    // Every call of the child reserved its bound, which the 9,000 it cost stayed within.
    const helper = h.rt.listAgents({ goalId: goal_id, includeStopped: true }).find((a) => a.depth === 1)!;
    const account = h.rt.registry.find(helper.agent_id)!.budgetAccount;
    const calls = h.rt.db
      .prepare("SELECT amount, actual FROM budget_reservations WHERE account_id = ? AND state = 'committed'")
      .all(account) as { amount: number; actual: number }[];
    expect(calls.every((c) => c.actual === 9000 && c.amount >= c.actual)).toBe(true);
    // Past its own 16,000 (its period reset), then stopped by the goal's room.
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(reported).toBe(1000 + calls.length * 9000);
    expect(h.rt.budget.get(account).total_spent).toBeGreaterThan(16_000);
    const [refused] = h.rt.audit
      .query({ goal_id, kind: "budget.exceeded" })
      .map(
        (e) =>
          e.payload as { account: string; limit: number; spent: number; reserved: number; requested: number },
      )
      .filter((p) => p.account === `goal:${goal_id}`);
    expect(refused!.requested).toBeGreaterThan(refused!.limit - refused!.spent - refused!.reserved);
    expect(child.requests.length).toBe(calls.length);
    expect(h.rt.audit.query({ goal_id, kind: "budget.overspent" })).toEqual([]);
  }, 60_000);
});

describe("a persistent agent's reset period", () => {
  it("refuses a run once its period's budget is spent, and runs again when the next period starts", async () => {
    h = await openHarness(server);
    server.script('manifest "keeper"', [
      turn.text("first", { usage: { input_tokens: 3500, output_tokens: 500 } }),
      turn.text("after the reset", { usage: { input_tokens: 100, output_tokens: 10 } }),
    ]);
    const a = h.rt.spawnAgent({
      name: "keeper",
      system_prompt: "You keep notes.",
      lifecycle: "persistent",
      budget: { max_tokens: 6000, reset_period_seconds: 1 },
    });
    expect((await h.rt.runAgent(a.agent_id, "one")).stop_reason).toBe("complete");
    const refused = await h.rt.runAgent(a.agent_id, "two");
    expect(refused.stop_reason).toBe("budget_exceeded");
    expect(refused.error?.message).toMatch(/token budget of goal:s_\w+ exceeded/);
    await new Promise((ok) => setTimeout(ok, 1100));
    const again = await h.rt.runAgent(a.agent_id, "three");
    expect(again).toMatchObject({ stop_reason: "complete", text: "after the reset" });
    const account = h.rt.budget.get(h.rt.registry.find(a.agent_id)!.budgetAccount);
    expect(account).toMatchObject({ spent: 110, total_spent: 4110, period_seconds: 1 });
  });
});
