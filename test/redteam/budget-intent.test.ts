// Red team: an intent's budget_tokens and the calls the ledger charges more than the
// provider reported. A goal charges its intent with what each model call reported
// (GoalRunner.addUsage), but the ledger charges some calls what they reserved instead: a
// provider reporting no usage (budget.usage_unreported), a call given up after it was sent
// (budget.charged_aborted). Those charges never reached the intent: its tokens_spent read
// 0 after goals whose accounts were charged their caps, so each goal started with the
// whole budget again and an intent's budget_tokens capped nothing. Now the goal is told
// what each call was charged, and the intent counts exactly what its goals' accounts were.
// Through a real daemon, over its socket.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { until } from "../daemon/process.js";
import { turn } from "../support/provider-server.js";

let scratch: string | undefined;
const suite = useDaemonPerTest({
  afterEach: () => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = undefined;
  },
});

const BUDGET = 20_000;

/** A daemon, a client, and an intent with BUDGET on a fresh project folder. */
async function intentWithBudget(): Promise<{ c: AidoClient; project: string }> {
  const fx = await suite.start();
  scratch = mkdtempSync(join(tmpdir(), "aido-budget-intent-"));
  const c = await fx.client();
  await c.call("intent.set", { workspace: scratch, objective: "within budget", budget_tokens: BUDGET });
  return { c, project: scratch };
}

/** The sum of `charged` over one kind of entry of the goal. */
async function chargedBy(c: AidoClient, goal_id: string, kind: string): Promise<number> {
  const { entries } = await c.call("audit.query", { kind, goal_id });
  return entries.reduce((n, e) => n + (e.payload as { charged: number }).charged, 0);
}

async function tokensSpent(c: AidoClient, project: string): Promise<number> {
  return (await c.call("intent.status", { workspace: project })).intent?.tokens_spent ?? -1;
}

describe("an intent's budget_tokens and calls charged more than they reported", () => {
  it("counts the bound charged for usage a provider did not report, and refuses the next goal", async () => {
    const { c, project } = await intentWithBudget();
    const silent = suite.server.script(
      'manifest "silent"',
      [turn.toolUse("skill_read", { name: "s" }, { usage: { input_tokens: 0, output_tokens: 0 } })],
      { repeatLast: true },
    );
    const { goal_id } = await c.call("goal.submit", {
      goal: "spend",
      manifest: { ...manifest("silent"), capabilities: ["tool: skill_read"] },
      workspace: project,
    });
    const s = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    expect(s.state).toBe("failed");
    const charged = await chargedBy(c, goal_id, "budget.usage_unreported");
    // Each call was charged about 6,000 (its bound): the goal's cap, the intent's budget,
    // held three of them.
    expect(charged).toBeGreaterThan(BUDGET / 2);
    expect(charged).toBeLessThanOrEqual(BUDGET);
    expect(await tokensSpent(c, project)).toBe(charged);
    expect(s.usage.input_tokens + s.usage.output_tokens).toBe(charged);
    // What is left is less than one call's bound: the next goal, capped to it, sends
    // nothing, instead of starting with the whole budget again.
    const sent = silent.requests.length;
    const next = await c.call("goal.submit", {
      goal: "more",
      manifest: { ...manifest("silent"), capabilities: ["tool: skill_read"] },
      workspace: project,
    });
    expect((await c.call("goal.wait", { goal_id: next.goal_id, timeout_ms: 20_000 })).state).toBe("failed");
    expect(silent.requests.length).toBe(sent);
    expect(await tokensSpent(c, project)).toBe(charged);
  });

  it("counts a call given up after it was sent (goal.cancel with the call at the provider)", async () => {
    const { c, project } = await intentWithBudget();
    const held = suite.server.script('manifest "held"', [turn.hang()]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "hold",
      manifest: manifest("held"),
      workspace: project,
    });
    await until(() => held.requests.length === 1 || undefined, 10_000);
    await c.call("goal.cancel", { goal_id });
    const s = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    expect(s.state).toBe("cancelled");
    const charged = await chargedBy(c, goal_id, "budget.charged_aborted");
    expect(charged).toBeGreaterThan(0);
    expect(await tokensSpent(c, project)).toBe(charged);
  });
});
