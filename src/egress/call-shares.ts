// egress/call-shares.ts — the share of its caller's connections (egress.max_connections_per_agent)
// each call may hold (callers.ts openCall: a call's own credentials name it). The proxy
// (proxy.ts) claims a share for a connection once its credentials are known (proxy-admit.ts)
// and releases it when the connection closes or its next request names other credentials.
// A running call may hold its fair share while others run, all of them alone; connections
// with ended calls' credentials, and with the agent's own, each count as one more party
// while they hold any, so no credentials escape the shares.

import type { Conn } from "./proxy-relay.js";
import type { EgressCaller, EgressPolicy } from "./types.js";

export class CallShares {
  /** Connections counted per call (callerKey() + request id) or per party (ended calls, the agent's own). */
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly policy: EgressPolicy,
    /** egress.max_connections_per_agent: what the calls of one caller share. */
    private readonly perCaller: number,
  ) {}

  /**
   * Count `conn` against its call's share (callShare of the caller's limit); the refusal's
   * reason, naming the call, when the call holds its share already. Connections with ended
   * calls' credentials (claimGroupShare) and with the agent's own (no call: the agent's own
   * turns, or its password read from a file a command of the agent left) each count as one
   * more party beside the running calls while they hold any, so no credentials escape the
   * shares.
   */
  claim(conn: Conn): string | undefined {
    this.release(conn);
    const base = callerKey(conn.caller);
    if (conn.endedCall)
      return this.claimGroupShare(
        conn,
        `${base}\n`,
        `${base}\n!own`,
        "ended calls",
        "with their credentials",
      );
    if (conn.call === undefined)
      return this.claimGroupShare(
        conn,
        `${base}\n!own`,
        `${base}\n`,
        "the agent's own turns",
        "with its own credentials",
      );
    const key = `${base}\n${conn.call.requestId}`;
    const held = this.counts.get(key) ?? 0;
    const running = this.policy.callsOf?.(conn.caller);
    const calls =
      running === undefined ? undefined : running + this.holding(`${base}\n`) + this.holding(`${base}\n!own`);
    const share = callShare(this.perCaller, calls);
    if (held >= share)
      return `call ${conn.call.requestId} of ${conn.caller.agentId} has ${held} connections open, the most one call may hold while ${calls ?? "several"} calls of the agent run (${share} of egress.max_connections_per_agent: ${this.perCaller}); the rest stay for the agent's other calls`;
    this.counts.set(key, held + 1);
    conn.callKey = key;
    return undefined;
  }

  /** 1 while connections are counted under `key`, else 0. */
  private holding(key: string): number {
    return (this.counts.get(key) ?? 0) > 0 ? 1 : 0;
  }

  /**
   * A connection counted with others as one party beside the running calls: ended calls'
   * credentials (what a call left behind, or kept in a file for a later call) together, or
   * the agent's own credentials together. Each holds one share at most while calls run, so
   * it never leaves a running call less than its fair share; the agent's own alone, with no
   * call running and no ended call's credentials in use, may hold the whole limit.
   */
  private claimGroupShare(
    conn: Conn,
    key: string,
    other: string,
    who: string,
    how: string,
  ): string | undefined {
    const running = this.policy.callsOf?.(conn.caller);
    if (running === undefined && key.endsWith("!own")) return undefined; // no calls to share with
    const held = this.counts.get(key) ?? 0;
    const share = callShare(this.perCaller, (running ?? 1) + 1 + this.holding(other));
    if (held >= share)
      return `${who} of ${conn.caller.agentId} have ${held} connections open ${how}, the most they may hold together (${share} of egress.max_connections_per_agent: ${this.perCaller}); the rest stay for the agent's running calls`;
    this.counts.set(key, held + 1);
    conn.callKey = key;
    return undefined;
  }

  release(conn: Conn): void {
    const key = conn.callKey;
    if (key === undefined) return;
    conn.callKey = undefined;
    const n = (this.counts.get(key) ?? 1) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }
}

/**
 * The connections one call (its own credentials) may hold of its caller's `perCaller` while
 * `calls` calls of the caller run (callers.ts openCall). Work-conserving: a call alone may
 * hold all of them (an `npm install` opens up to 15 sockets). Among others, its fair share:
 * perCaller / calls, rounded down, at least one. Rounded down, the shares of the others
 * never add up to more than perCaller less this one's, so each running call can reach its
 * share whatever the others hold (three quarters, as before, kept that only for two calls:
 * two greedy calls of three held 12 + 4 of 16 and left the third nothing). Not taken back:
 * connections a call opened while alone stay open when another call starts; the call gets
 * no new one until it is under its share again. `calls` unknown: as for two.
 */
export function callShare(perCaller: number, calls = 2): number {
  if (calls <= 1) return perCaller;
  return Math.max(1, Math.floor(perCaller / calls));
}

/** A caller's key in perCaller (agent ids hold no newline). */
export function callerKey(caller: EgressCaller): string {
  return `${caller.goalId}\n${caller.agentId}`;
}
