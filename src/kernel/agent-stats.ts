// kernel/agent-stats.ts — what a supervisor watches per agent that no table keeps: the
// tokens its own model calls used and its calls' waits in the inference queue, tallied
// from the event bus (the loop's `usage`, the scheduler's `inference.queued` and
// `inference.started`). In memory, since the daemon started; agent summaries carry it.

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

export class AgentStats {
  private readonly usage = new Map<string, AgentUsage>();
  private readonly queue = new Map<string, AgentQueue>();

  constructor(events: EventBus) {
    events.subscribe({ types: ["usage", "inference.queued", "inference.started"] }, (ev) => {
      if (ev.type === "usage") {
        const u = this.usageOf(ev.agentId);
        u.input_tokens += ev.input_tokens;
        u.output_tokens += ev.output_tokens;
      } else if (ev.type === "inference.queued") this.queueOf(ev.agentId).waiting = true;
      else if (ev.type === "inference.started") {
        const q = this.queueOf(ev.agentId);
        q.waiting = false;
        q.calls++;
        q.wait_ms_total += ev.waitMs;
        q.wait_ms_last = ev.waitMs;
      }
    });
  }

  /** The agent's tallies (zeros for one that made no call), as copies. */
  of(agentId: string): { usage: AgentUsage; queue: AgentQueue } {
    return { usage: { ...this.usageOf(agentId) }, queue: { ...this.queueOf(agentId) } };
  }

  private usageOf(agentId: string): AgentUsage {
    let u = this.usage.get(agentId);
    if (!u) {
      u = { input_tokens: 0, output_tokens: 0 };
      this.usage.set(agentId, u);
    }
    return u;
  }

  private queueOf(agentId: string): AgentQueue {
    let q = this.queue.get(agentId);
    if (!q) {
      q = { waiting: false, calls: 0, wait_ms_total: 0, wait_ms_last: null };
      this.queue.set(agentId, q);
    }
    return q;
  }
}
