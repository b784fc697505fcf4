// kernel/agent-stats.ts — what a supervisor watches per agent that no table keeps while
// the agent lives: the tokens its own model calls used and its calls' waits in the
// inference queue, tallied from the event bus (the loop's `usage`, the scheduler's
// `inference.queued` and `inference.started`). In memory for the agents the registry
// tracks (not stopped), since the daemon started; agent summaries carry it. A stopped
// agent's tallies are written to its row with its stop (registry.ts) and leave memory: a
// report that comes later (a call in flight when it stopped) is handed to `untracked`,
// which adds it to the row.

import type { EventBus } from "./events.js";

export interface AgentUsage {
  input_tokens: number;
  output_tokens: number;
}

export interface AgentQueue {
  /** A model call of the agent is waiting for a slot now. */
  waiting: boolean;
  /** Calls that got a slot. */
  calls: number;
  wait_ms_total: number;
  wait_ms_last: number | null;
}

export interface AgentTallies {
  usage: AgentUsage;
  queue: AgentQueue;
}

export function noTallies(): AgentTallies {
  return {
    usage: { input_tokens: 0, output_tokens: 0 },
    queue: { waiting: false, calls: 0, wait_ms_total: 0, wait_ms_last: null },
  };
}

/** A report for an agent no longer tracked here: apply it to the tallies kept elsewhere. */
export type UntrackedReport = (agentId: string, apply: (t: AgentTallies) => void) => void;

export class AgentStats {
  private readonly tallies = new Map<string, AgentTallies>();

  constructor(
    events: EventBus,
    private readonly untracked: UntrackedReport,
  ) {
    events.subscribe({ types: ["usage", "inference.queued", "inference.started"] }, (ev) => {
      let apply: (t: AgentTallies) => void;
      if (ev.type === "usage")
        apply = (t) => {
          t.usage.input_tokens += ev.input_tokens;
          t.usage.output_tokens += ev.output_tokens;
        };
      else if (ev.type === "inference.queued")
        apply = (t) => {
          t.queue.waiting = true;
        };
      else if (ev.type === "inference.started")
        apply = (t) => {
          t.queue.waiting = false;
          t.queue.calls++;
          t.queue.wait_ms_total += ev.waitMs;
          t.queue.wait_ms_last = ev.waitMs;
        };
      else return;
      const t = this.tallies.get(ev.agentId);
      if (t) apply(t);
      else this.untracked(ev.agentId, apply);
    });
  }

  /** Tally the agent's reports here from now on (it was registered, or recovered). */
  track(agentId: string): void {
    if (!this.tallies.has(agentId)) this.tallies.set(agentId, noTallies());
  }

  /** The agent's tallies (zeros for one that made no call or is not tracked), as copies. */
  of(agentId: string): AgentTallies {
    const t = this.tallies.get(agentId) ?? noTallies();
    return { usage: { ...t.usage }, queue: { ...t.queue } };
  }

  /** Stop tallying the agent here (its tallies were written to its row). */
  forget(agentId: string): void {
    this.tallies.delete(agentId);
  }
}
