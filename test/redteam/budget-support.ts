// Shared by the budget red-team tests: a goal's reservations as the ledger holds them, and
// a harness whose goals are capped.

import type { Config } from "../../src/config.js";
import type { Runtime } from "../../src/kernel/runtime.js";
import { type Harness, openHarness } from "../agent/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";

/** The goal cap of the spawn-each-turn tests, the spawns its lead tries, its own usage a turn. */
export const CAP = 40_000;
export const SPAWNS = 12;
export const LEAD_USAGE = { input_tokens: 400, output_tokens: 100 };

/** Script the "lead" manifest: spawn a "kid" each turn, SPAWNS times, then answer. */
export function scriptSpawningLead(server: ProviderServer): void {
  server.script('manifest "lead"', [
    ...Array.from({ length: SPAWNS }, (_, i) =>
      turn.toolUse(
        "spawn_agent",
        { manifest: { name: "kid" }, message: `Task ${i}: work on it.` },
        { usage: LEAD_USAGE },
      ),
    ),
    turn.text("done", { usage: LEAD_USAGE }),
  ]);
}

export interface ReservationRow {
  account_id: string;
  amount: number;
  state: string;
  actual: number | null;
}

/** Every reservation made under the goal, oldest first. */
export function reservationsOf(rt: Runtime, goalId: string): ReservationRow[] {
  return rt.db
    .prepare(
      "SELECT r.account_id, r.amount, r.state, r.actual FROM budget_reservations r JOIN budget_accounts a ON a.id = r.account_id WHERE a.goal_id = ? ORDER BY r.id",
    )
    .all(goalId) as ReservationRow[];
}

/** A harness whose goals are capped at `cap` tokens; `more` edits the rest of its config. */
export function openCapped(
  server: ProviderServer,
  cap: number,
  env: Record<string, string> = {},
  more: (c: Config) => void = () => {},
): Promise<Harness> {
  return openHarness(server, {
    env,
    config: (c) => {
      c.limits.goalMaxTokens = cap;
      more(c);
    },
  });
}
