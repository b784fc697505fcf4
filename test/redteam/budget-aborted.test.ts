// Red team: tokens spent by a call that was stopped. When an agent was stopped during a
// model call (agent.stop, its parent's stop, a sibling's budget stop, the goal's end), the
// call was aborted and its reservation refunded, though the provider had the request and
// may have spent up to its bound on it. The parent got that room back: a lead that spawned
// a child each turn, each child stopped while its call was held at the provider, made as
// many calls as its loop allowed, and the goal's account read only the lead's own spend.
// Now a call given up after its request was sent is charged its reservation (the bound:
// we cannot know less) to the account and every ancestor, audited as
// budget.charged_aborted; one given up before it left (queued for an inference slot) is
// refunded as before.

import { describe, expect, it } from "vitest";
import type { Runtime } from "../../src/kernel/runtime.js";
import { type Harness, useHarnessSuite } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import { type ProviderServer, type RecordedRequest, turn } from "../support/provider-server.js";
import {
  CAP,
  LEAD_USAGE,
  openCapped as openCappedAt,
  reservationsOf,
  SPAWNS,
  scriptSpawningLead,
} from "./budget-support.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

/** A harness whose goals are capped at CAP. */
const openCapped = (env: Record<string, string> = {}) => openCappedAt(server, CAP, env);

/** Submit a goal whose bootstrap is the "lead" manifest holding `capabilities`. */
function submitLead(goal: string, capabilities: string[]): string {
  return h.rt.goals.submit({ goal, manifest: { name: "lead", system_prompt: "You lead.", capabilities } })
    .goal_id;
}

/** Stop every live child of the goal whose model call is held at the provider, until the goal ends. */
async function stopChildrenMidCall(
  rt: Runtime,
  goalId: string,
  held: () => RecordedRequest[],
): Promise<void> {
  for (;;) {
    const s = rt.goals.status(goalId);
    if (s.state !== "running" && s.state !== "queued") return;
    if (held().some((r) => r.ended === undefined)) {
      for (const a of rt.listAgents({ goalId }).filter((x) => x.depth === 1 && x.state !== "stopped"))
        rt.stopAgent(a.agent_id, "the test stops it mid-call");
    }
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

describe("a child stopped during its model call", () => {
  it("is charged what its call reserved, so spawn-and-stop cannot spend past the goal cap", async () => {
    h = await openCapped();
    scriptSpawningLead(server);
    const kids = server.script('manifest "kid"', [turn.hang()], { repeatLast: true });
    const goal_id = submitLead("Spawn and stop.", ["tool: spawn_agent", "spawn_child: [kid]"]);
    await stopChildrenMidCall(h.rt, goal_id, () => kids.requests);
    const s = await h.rt.goals.wait(goal_id, 30_000);
    await until(() => kids.requests.every((r) => r.ended === "left") || undefined, 5_000);

    const rows = reservationsOf(h.rt, goal_id);
    const goal = h.rt.budget.get(`goal:${goal_id}`);
    const kidRows = rows.filter((r) => r.account_id !== `goal:${goal_id}`);
    // What the provider may have spent: what it reported for the lead's answered calls, and
    // the bound of each child's call, given up after it was sent. It never passes the cap:
    // stopped each turn, the lead could not go on spawning; the cap stopped the goal first.
    expect(kids.requests.length, `goal ${s.state}: ${s.error ?? ""}`).toBeGreaterThan(0);
    expect(kidRows).toHaveLength(kids.requests.length);
    const root = `goal:${goal_id}`;
    const mayHaveSpent = rows.reduce((n, r) => n + (r.account_id === root ? (r.actual ?? 0) : r.amount), 0);
    expect(mayHaveSpent, `${kids.requests.length} children's calls sent`).toBeLessThanOrEqual(CAP);
    expect(kids.requests.length).toBeLessThan(SPAWNS);
    expect(s.state).toBe("failed");
    // Each child's call was given up at the provider: charged its bound, and the goal's
    // account holds all of it.
    for (const r of kidRows) expect(r).toMatchObject({ state: "committed", actual: r.amount });
    expect(goal.spent).toBe(rows.reduce((n, r) => n + (r.actual ?? 0), 0));
    expect(goal.reserved).toBe(0);
    // One budget.charged_aborted per child's call, naming its account and what it was charged.
    const byAccount = (x: { account: string }, y: { account: string }) => x.account.localeCompare(y.account);
    const audited = h.rt.audit
      .query({ goal_id, kind: "budget.charged_aborted" })
      .map((e) => e.payload as { account: string; charged: number })
      .map(({ account, charged }) => ({ account, charged }));
    expect(audited.sort(byAccount)).toEqual(
      kidRows.map((r) => ({ account: r.account_id, charged: r.amount })).sort(byAccount),
    );
  });

  it("is refunded when its call was still queued for an inference slot (nothing was sent)", async () => {
    h = await openCapped({ AIDO_MAX_CONCURRENT_INFERENCE: "1" });
    server.script('manifest "lead"', [
      turn.toolUse(
        "spawn_agents",
        {
          children: [
            { manifest: { name: "first" }, message: "Hold the slot." },
            { manifest: { name: "second" }, message: "Wait for it." },
          ],
        },
        { usage: LEAD_USAGE },
      ),
      turn.text("done", { usage: LEAD_USAGE }),
    ]);
    const first = server.script('manifest "first"', [turn.hang()]);
    const second = server.script('manifest "second"', [turn.text("never sent")]);
    const goal_id = submitLead("Queue and stop.", ["tool: spawn_agents", "spawn_child: [first, second]"]);
    await until(() => first.requests.length === 1 || undefined, 10_000);
    const live = () => h.rt.listAgents({ goalId: goal_id }).filter((a) => a.depth === 1);
    const byName = (name: string) => live().find((a) => a.manifest === name);
    // The second child's call waits for the slot the first one's holds.
    await until(
      () => (byName("second") !== undefined && reservationsOf(h.rt, goal_id).length === 3) || undefined,
      10_000,
    );
    const secondId = byName("second")!.agent_id;
    h.rt.stopAgent(secondId, "the test stops it while queued");
    h.rt.stopAgent(byName("first")!.agent_id, "the test stops it mid-call");
    const s = await h.rt.goals.wait(goal_id, 30_000);
    expect(s.state, s.error).toBe("succeeded");
    expect(second.requests).toEqual([]);

    const secondAccount = h.rt.registry.find(secondId)?.budgetAccount;
    const rows = reservationsOf(h.rt, goal_id);
    expect(rows.filter((r) => r.account_id === secondAccount)).toMatchObject([{ state: "refunded" }]);
    const charged = h.rt.audit.query({ goal_id, kind: "budget.charged_aborted" });
    expect(charged).toHaveLength(1);
    expect(h.rt.budget.get(`goal:${goal_id}`).spent).toBe(rows.reduce((n, r) => n + (r.actual ?? 0), 0));
  });
  it("charges the bootstrap's call given up by goal.cancel, on the goal's own account", async () => {
    h = await openCapped();
    const held = server.script('manifest "lead"', [turn.hang()]);
    const goal_id = submitLead("Hold on.", []);
    await until(() => (held.requests.length === 1 ? true : undefined), 10_000);
    h.rt.goals.cancel(goal_id);
    const s = await h.rt.goals.wait(goal_id, 30_000);
    expect(s.state).toBe("cancelled");
    const [row, ...more] = reservationsOf(h.rt, goal_id);
    expect(more).toEqual([]);
    expect(row).toMatchObject({ account_id: `goal:${goal_id}`, state: "committed", actual: row?.amount });
    expect(h.rt.budget.get(`goal:${goal_id}`)).toMatchObject({ spent: row?.amount, reserved: 0 });
    expect(h.rt.audit.query({ goal_id, kind: "budget.charged_aborted" }).map((e) => e.payload)).toEqual([
      { account: `goal:${goal_id}`, reservation_id: expect.any(Number), charged: row?.amount },
    ]);
  });
});
