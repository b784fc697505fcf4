// Red team: tokens spent by a call that failed after it was sent. A model call whose
// connection or stream was lost after the request left, or that got no answer in time,
// was refunded, though the provider had the request and may have spent up to its bound on
// it (a stream cut mid-answer was being generated). Each retry sends it again, and the
// agent then fails; its parent may spawn another: a provider that cuts every answer let a
// lead spawn a child each turn, each child's call sent twice and refunded, and the goal's
// account read only the lead's own spend. Now such a call is charged its reservation, once
// (the bound: we cannot know less), audited as budget.charged_failed; one the provider
// refused with an HTTP error status (not billed) is refunded as before.

import { describe, expect, it } from "vitest";
import { type Harness, useHarnessSuite } from "../agent/harness.js";
import { type ProviderServer, type Turn, turn } from "../support/provider-server.js";
import { CAP, openCapped, reservationsOf, SPAWNS, scriptSpawningLead } from "./budget-support.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

/** A goal whose lead spawns a "kid" each turn, each kid's every call answered by `kid`. */
async function spawnEachTurn(kid: Turn) {
  h = await openCapped(server, CAP, {}, (c) => {
    c.inference.maxRetries = 1;
    c.inference.requestTimeoutMs = 400;
  });
  scriptSpawningLead(server);
  const kids = server.script('manifest "kid"', [kid], { repeatLast: true });
  const { goal_id } = h.rt.goals.submit({
    goal: "Spawn.",
    manifest: {
      name: "lead",
      system_prompt: "You lead.",
      capabilities: ["tool: spawn_agent", "spawn_child: [kid]"],
    },
  });
  const s = await h.rt.goals.wait(goal_id, 30_000);
  const rows = reservationsOf(h.rt, goal_id);
  const kidRows = rows.filter((r) => r.account_id !== `goal:${goal_id}`);
  return { goal_id, s, kids, rows, kidRows, goal: h.rt.budget.get(`goal:${goal_id}`) };
}

describe("a call that failed after its request was sent", () => {
  it.each([
    ["its connection lost mid-answer", turn.text("cut", { dropMidBody: { afterEvents: 1 } }), "connection"],
    ["no answer in time", turn.hang(), "timeout"],
  ])(
    "%s: charged its bound once, so a lead re-spawning cannot spend past the cap",
    async (_, kid, failure) => {
      const { goal_id, s, kids, rows, kidRows, goal } = await spawnEachTurn(kid);
      // Each child's call was sent twice (one retry) and failed, each attempt on a
      // reservation of its own: the retry reserved its bound before it left.
      expect(kids.requests.length, `goal ${s.state}: ${s.error ?? ""}`).toBe(kidRows.length);
      expect(kidRows.length).toBeGreaterThan(0);
      expect(kidRows.length).toBeLessThan(2 * SPAWNS);
      expect(s.state).toBe("failed");
      expect(s.error).toMatch(/goal token cap reached/);
      for (const r of kidRows) expect(r).toMatchObject({ state: "committed", actual: r.amount });
      expect(goal.spent).toBe(rows.reduce((n, r) => n + (r.actual ?? 0), 0));
      expect(goal.spent).toBeLessThanOrEqual(CAP);
      const audited = h.rt.audit
        .query({ goal_id, kind: "budget.charged_failed" })
        .map((e) => e.payload as { account: string; charged: number; failure: string; retried?: true });
      expect(audited.map((p) => p.charged)).toEqual(kidRows.map((r) => r.amount));
      for (const p of audited) expect(p.failure).toBe(failure);
      // Each first attempt is retried (its retry on its own reservation, if one was left); no
      // retry is retried again.
      const retried = audited.filter((p) => p.retried).length;
      expect(retried).toBeGreaterThan(0);
      expect(audited.length - retried).toBeLessThanOrEqual(retried);
      // The lead was told what its children's calls cost: the goal's usage is its account's.
      expect(s.usage.input_tokens + s.usage.output_tokens).toBe(goal.spent);
    },
  );

  it("retried: the attempt is charged and its retry reserves its own bound, so the cap lets through no more requests than reservations", async () => {
    // A provider that cuts every first attempt after reading the request, and answers the
    // retry cheaply. Retried on one reservation, each call was charged the answer alone:
    // 26 requests went out on 13 reservations and the goal succeeded well under its cap.
    const calls = 12;
    const cap = 30_000;
    h = await openCapped(server, cap, {}, (c) => {
      c.inference.maxRetries = 1;
    });
    const cut = turn.text("cut", { dropMidBody: { afterEvents: 0 } });
    const usage = { input_tokens: 400, output_tokens: 100 };
    const script = server.script('manifest "spender"', [
      ...Array.from({ length: calls }, (_, i) => [
        cut,
        turn.toolUse("skill_read", { name: `s${i}` }, { usage }),
      ]).flat(),
      cut,
      turn.text("done", { usage }),
    ]);
    const told: number[] = [];
    const { goal_id } = h.rt.goals.submit({
      goal: "Spend it.",
      manifest: { name: "spender", system_prompt: "You spend.", capabilities: ["tool: skill_read"] },
    });
    h.rt.events.subscribe({ goalId: goal_id, types: ["usage"] }, (e) => {
      if (e.type === "usage") told.push(e.input_tokens + e.output_tokens);
    });
    const s = await h.rt.goals.wait(goal_id, 30_000);
    const rows = reservationsOf(h.rt, goal_id);
    const goal = h.rt.budget.get(`goal:${goal_id}`);
    expect(s.state, s.error).toBe("failed");
    expect(s.error).toMatch(/goal token cap reached/);
    expect(script.requests.length).toBe(rows.length);
    expect(script.requests.length).toBeLessThan(2 * (calls + 1));
    const retried = h.rt.audit
      .query({ goal_id, kind: "budget.charged_failed" })
      .map((e) => e.payload as { reservation_id: number; charged: number; failure: string; retried?: true });
    expect(retried.length).toBeGreaterThan(0);
    for (const p of retried) expect(p).toMatchObject({ failure: "connection", retried: true });
    expect(goal.spent).toBe(rows.reduce((n, r) => n + (r.actual ?? 0), 0));
    expect(goal.spent).toBeLessThanOrEqual(cap);
    // Every charge reached the goal's usage and the usage event, the retried attempts too.
    expect(s.usage.input_tokens + s.usage.output_tokens).toBe(goal.spent);
    expect(told.reduce((a, b) => a + b, 0)).toBe(goal.spent);
  });

  it("is refunded when the provider refused it with an HTTP error status", async () => {
    const { goal_id, s, kids, kidRows } = await spawnEachTurn(turn.error(500));
    expect(s.state, s.error).toBe("succeeded");
    expect(kidRows.length).toBeGreaterThanOrEqual(SPAWNS);
    expect(kids.requests).toHaveLength(2 * kidRows.length);
    for (const r of kidRows) expect(r.state).toBe("refunded");
    expect(h.rt.audit.query({ goal_id, kind: "budget.charged_failed" })).toEqual([]);
  });
});
