// sandbox/goal-expiry.ts — when a goal's sandbox expires: the aido.expires label (seconds) of
// its first container, which every container after it keeps. Each container counted a TTL
// of its own: a goal whose container died before its TTL (the engine stopped it, or a task
// that could signal the container's `sleep` ended it) was replaced, at its next call or after
// a sweep removed it as stopped, by one with a fresh TTL, so a goal whose container kept
// dying was never expired; and one that died past its TTL, replaced before a sweep saw it,
// took its goal on the same. Forgotten when the goal is removed, or when a sweep removes its
// container as expired (a standalone agent's next call then starts a fresh TTL).

import { LABEL } from "./docker-containers.js";

export class GoalExpiries {
  private readonly expires = new Map<string, number>();

  /** The label for the goal's next container: its first one's, or now + `ttlSeconds` (then kept). */
  label(goalId: string, ttlSeconds: number): Record<string, string> {
    const expires = this.expires.get(goalId) ?? Math.floor(Date.now() / 1000) + ttlSeconds;
    this.expires.set(goalId, expires);
    return { [LABEL.expires]: String(expires) };
  }

  /** A container the goal has now (re-attached, or a pool slot's) sets its expiry, unless it has one. */
  adopt(goalId: string, labels: Record<string, string>): void {
    const expires = Number(labels[LABEL.expires] ?? "0");
    if (expires > 0 && !this.expires.has(goalId)) this.expires.set(goalId, expires);
  }

  has(goalId: string): boolean {
    return this.expires.has(goalId);
  }

  forget(goalId: string): void {
    this.expires.delete(goalId);
  }
}
