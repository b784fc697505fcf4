// gate/hold.ts — the cluster hold (GateDeps.beforeRun), awaited before a call's needs are
// resolved in its container (stage 5), again before tool.invoked (stage 7), and (gate/invoke.ts)
// once more after the gate's snapshot and the call's beforeRun hook, inside the run: cluster mode
// holds a goal's calls while its node is not sure the goal is still its own (cluster/node.ts).
// Two ways it can end without the call going on, audited apart:
//   - the hold refused the call (HoldRefused: its agent stopped while it waited, the goal lost
//     to another node or cancelled): a refusal, tool.denied at stage hold;
//   - the hold itself failed (Redis not reachable while it looked, an engine error): nothing
//     refused the call, the runtime failed. Rethrown unchanged, so the gate audits it as
//     tool.errored at stage hold (gate/stage-failure.ts) and the caller gets its error and code.
// Before, both were tool.denied: an outage read as a decision.

import { AidoError } from "../errors.js";
import { refuseIfCancelled } from "./cancel.js";
import type { GateDeps, Principal, ToolCall } from "./invoke.js";
import type { Deny } from "./judge.js";

/** What beforeRun throws when the hold lets a call go without running: a refusal, not a failure. */
export class HoldRefused extends AidoError {}

/** Wait at the hold; a refusal goes through `deny`, a failure of the hold is thrown as it is. */
export async function passHold(
  deps: Pick<GateDeps, "beforeRun">,
  principal: Pick<Principal, "goalId">,
  call: Pick<ToolCall, "signal">,
  deny: Deny,
): Promise<void> {
  refuseIfCancelled(call.signal, "hold", deny);
  try {
    await deps.beforeRun?.(principal.goalId, call.signal);
  } catch (e) {
    if (e instanceof HoldRefused) return deny(e.code, "hold", e.message);
    throw e;
  }
  refuseIfCancelled(call.signal, "hold", deny);
}
