// sandbox/goal-expiry.ts — when a goal's sandbox expires: `sandbox.ttl_seconds` (or the goal's
// tighter ttlSeconds) after its first container was started, which every container after it
// keeps. Each container counted a TTL of its own: a goal whose container died before its TTL (the
// engine stopped it, or a task that could signal the container's `sleep` ended it) was replaced,
// at its next call or after a sweep removed it as stopped, by one with a fresh TTL, so a goal
// whose container kept dying was never expired; and one that died past its TTL, replaced before
// a sweep saw it, took its goal on the same. Forgotten when the goal is removed, or when a sweep
// removes its container as expired (a standalone agent's next call then starts a fresh TTL).
// The TTL counts from the start's end, not from the container's creation, and the sweep leaves a
// container whose start is under way (starting): before, a start slower than the TTL (an engine
// under load) was killed mid-way as expired, or as stopped while it was still only created.
// The aido.expires label (what a process after this one adopts: labels cannot change) is set as
// the container is created: a first container's is its creation + TTL, a little before the
// expiry this process keeps.

import { performance } from "node:perf_hooks";
import { LABEL } from "./docker-containers.js";

export class GoalExpiries {
  private readonly expires = new Map<string, number>();
  /** Per goal: its container starts under way (start). */
  private readonly inFlight = new Map<string, number>();
  /** Per goal: when its last start ended (performance.now()). */
  private readonly endedAt = new Map<string, number>();

  /**
   * Make and start the goal's container: `make` is given the expiry label (the goal's, else now +
   * `ttlSeconds`); once it has started, the goal's expiry is set (now + `ttlSeconds`) unless it
   * has one. While it runs, starting() says so.
   */
  async start<T>(
    goalId: string,
    ttlSeconds: number,
    make: (labels: Record<string, string>) => Promise<T>,
  ): Promise<T> {
    this.inFlight.set(goalId, (this.inFlight.get(goalId) ?? 0) + 1);
    try {
      const made = await make({
        [LABEL.expires]: String(this.expires.get(goalId) ?? nowSeconds() + ttlSeconds),
      });
      if (!this.expires.has(goalId)) this.expires.set(goalId, nowSeconds() + ttlSeconds);
      return made;
    } finally {
      const left = (this.inFlight.get(goalId) ?? 1) - 1;
      if (left > 0) this.inFlight.set(goalId, left);
      else this.inFlight.delete(goalId);
      this.endedAt.set(goalId, performance.now());
    }
  }

  /**
   * Whether a start of the goal's container is under way, or ended after `since`
   * (performance.now()): a sweep that listed the containers then saw it mid-start.
   */
  starting(goalId: string, since: number): boolean {
    return this.inFlight.has(goalId) || (this.endedAt.get(goalId) ?? -1) >= since;
  }

  /** A container the goal has now (re-attached, or a pool slot's) sets its expiry, unless it has one. */
  adopt(goalId: string, labels: Record<string, string>): void {
    const expires = Number(labels[LABEL.expires] ?? "0");
    if (expires > 0 && !this.expires.has(goalId)) this.expires.set(goalId, expires);
  }

  has(goalId: string): boolean {
    return this.expires.has(goalId);
  }

  /** The goal's expiry (epoch seconds), if this process keeps one. */
  of(goalId: string): number | undefined {
    return this.expires.get(goalId);
  }

  forget(goalId: string): void {
    this.expires.delete(goalId);
    this.endedAt.delete(goalId);
  }
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
