// kernel/world-admission.ts — what a spawn_worlds call is held to before any world is made
// (kernel/worlds.ts): worlds do not nest, the worlds its spawner holds and asks for fit its
// limits.max_children (at most WORLDS_MAX), and the budget the manifest asks for, times the
// worlds, fits what the spawner has left to give.

import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { parseManifestValue } from "../manifest/load.js";
import { type BudgetLedger, roomOf } from "../security/budget.js";
import type { AgentRecord } from "./registry.js";

/** Worlds per spawn_worlds call, at least and at most (and never more than limits.max_children). */
export const WORLDS_MIN = 2;
export const WORLDS_MAX = 8;

/**
 * Refuse the call, naming the limit, unless `req.worlds` more worlds fit beside the `held`
 * ones of `parent` (a session's agent never pauses, so its worlds stay until one is adopted
 * or their call is cancelled: each is a full copy of its folders).
 */
export function admitWorlds(
  parent: AgentRecord,
  req: { worlds: number; manifest: unknown },
  held: number,
  config: Config,
  budget: BudgetLedger,
): void {
  if (parent.sandboxGoal !== undefined) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `agent ${parent.id} works in a world already; worlds do not nest`,
      { field: "worlds" },
    );
  }
  const max = Math.min(WORLDS_MAX, parent.manifest.limits?.max_children ?? config.limits.maxChildren);
  if (held + req.worlds > max) {
    throw new AidoError(
      ErrorCode.limitExceeded,
      `worlds: ${req.worlds}${held > 0 ? `, with the ${held} it holds,` : ""} is more than the ${max} worlds agent ${parent.id} may hold (limits.max_children, at most ${WORLDS_MAX}); adopt one first, or end the turn`,
      { field: "worlds", max, held },
    );
  }
  const asked = parseManifestValue(req.manifest, "spawn_worlds manifest").budget?.max_tokens;
  const room = Math.max(0, roomOf(budget.get(parent.budgetAccount)));
  if (asked !== undefined && asked * req.worlds > room) {
    throw new AidoError(
      ErrorCode.budgetExceeded,
      `${req.worlds} worlds of budget.max_tokens ${asked} need ${asked * req.worlds} tokens; agent ${parent.id} has ${room} left to give`,
      { field: "manifest.budget.max_tokens", requested: asked * req.worlds, room },
    );
  }
}
