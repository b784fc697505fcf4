// gate/turn-snapshots.ts — snapshots before mutation, once per agent turn. The gate asks
// before every call that can change /workspace or /output (ToolDef.mutates); the first
// such call of a turn takes the snapshot and the others of the turn (parallel tool calls
// included, which once each took their own) wait for that same one. A call without a turn
// (tool.invoke over the socket) always snapshots. A snapshot that fails fails the call
// before the tool runs, and is not remembered: the next call tries again. An agent's
// record goes when it stops (forget, from the registry's one removal path), so the map
// holds live agents only, however many a long-running daemon has seen.

import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { Principal, SnapshotHook } from "./invoke.js";

export class TurnSnapshots {
  /** agentId -> the snapshot of its current turn. */
  private readonly turns = new Map<string, { turn: number; done: Promise<string | undefined> }>();

  constructor(private readonly hook: SnapshotHook) {}

  /** The snapshot covering this call (taken now, or earlier in the same turn): its id. */
  async before(principal: Principal, tool: string, keep: readonly string[]): Promise<string | undefined> {
    const turn = principal.turn ?? -1;
    const prior = this.turns.get(principal.agentId);
    if (prior && prior.turn === turn && turn !== -1) return prior.done;
    const done = this.hook.beforeMutation(principal, keep);
    this.turns.set(principal.agentId, { turn, done });
    try {
      return await done;
    } catch (e) {
      if (this.turns.get(principal.agentId)?.done === done) this.turns.delete(principal.agentId);
      // A refusal keeps its code (a snapshot past sandbox.snapshots_max_mb: quota_exceeded).
      throw new AidoError(
        e instanceof AidoError ? e.code : ErrorCode.sandboxFailed,
        `the snapshot before ${tool} could not be taken, so the call did not run: ${errorMessage(e)}`,
        { ...(e instanceof AidoError ? e.details : {}), tool },
        { cause: e },
      );
    }
  }

  /** The agent stopped: it has no turn any more. */
  forget(agentId: string): void {
    this.turns.delete(agentId);
  }
}
