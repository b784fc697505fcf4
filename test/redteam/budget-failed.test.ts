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
      // Each child's call was sent twice (one retry) and failed.
      expect(kids.requests.length, `goal ${s.state}: ${s.error ?? ""}`).toBe(2 * kidRows.length);
      expect(kidRows.length).toBeGreaterThan(0);
      expect(kidRows.length).toBeLessThan(SPAWNS);
      expect(s.state).toBe("failed");
      expect(s.error).toMatch(/goal token cap reached/);
      for (const r of kidRows) expect(r).toMatchObject({ state: "committed", actual: r.amount });
      expect(goal.spent).toBe(rows.reduce((n, r) => n + (r.actual ?? 0), 0));
      expect(goal.spent).toBeLessThanOrEqual(CAP);
      const audited = h.rt.audit
        .query({ goal_id, kind: "budget.charged_failed" })
        .map((e) => e.payload as { account: string; charged: number; failure: string });
      expect(audited.map((p) => p.charged)).toEqual(kidRows.map((r) => r.amount));
      for (const p of audited) expect(p.failure).toBe(failure);
      // The lead was told what its children's calls cost: the goal's usage is its account's.
      expect(s.usage.input_tokens + s.usage.output_tokens).toBe(goal.spent);
    },
  );

  it("is refunded when the provider refused it with an HTTP error status", async () => {
    const { goal_id, s, kids, kidRows } = await spawnEachTurn(turn.error(500));
    expect(s.state, s.error).toBe("succeeded");
    expect(kidRows.length).toBeGreaterThanOrEqual(SPAWNS);
    expect(kids.requests).toHaveLength(2 * kidRows.length);
    for (const r of kidRows) expect(r.state).toBe("refunded");
    expect(h.rt.audit.query({ goal_id, kind: "budget.charged_failed" })).toEqual([]);
  });
});
