// sandbox/pool.ts — the warm pool: containers started ahead of need, each with its own
// fresh folder layout ($AIDO_HOME/sandbox-pool/<slot>/{workspace,output,inputs}) and an
// executor already saying hello. Bind mounts cannot change after create, so handing a
// slot to a goal moves the slot's folder instead: one rename(2) of the slot folder to
// $AIDO_HOME/goals/<goal_id> (same filesystem; a bind mount follows its directory, not
// its path) and a rename of the container to the goal's name. No symlinks are involved.

import type Docker from "dockerode";
import type { ExecutorSession } from "./executor-session.js";
import type { GoalFolders } from "./folders.js";

export interface PoolSlot {
  id: string;
  folders: GoalFolders;
  container: Docker.Container;
  session: ExecutorSession;
  /** Its container's aido.expires (seconds): a goal that takes the slot expires then. */
  expires: number;
}

export class WarmPool {
  private readonly ready: PoolSlot[] = [];
  private filling: Promise<void> | undefined;
  private closed = false;
  /** The last error met while filling (the pool retries on the next refill). */
  lastError: unknown;

  constructor(
    private readonly size: number,
    private readonly makeSlot: () => Promise<PoolSlot>,
    private readonly destroySlot: (slot: PoolSlot) => Promise<void>,
  ) {}

  get readyCount(): number {
    return this.ready.length;
  }

  /**
   * A ready slot, or undefined; the caller owns it from here on. A slot whose executor died,
   * or that is no longer `fresh` (it waited too long of its TTL), is removed instead.
   */
  take(fresh: (slot: PoolSlot) => boolean = () => true): PoolSlot | undefined {
    while (this.ready.length > 0) {
      const slot = this.ready.shift()!;
      if (slot.session.alive && fresh(slot)) return slot;
      void this.destroySlot(slot).catch(() => {});
    }
    return undefined;
  }

  /** Start slots until the pool is full, one at a time (the machine may be small). */
  refill(): Promise<void> {
    if (this.closed || this.size === 0) return Promise.resolve();
    if (!this.filling) {
      const run = async (): Promise<void> => {
        try {
          while (!this.closed && this.ready.length < this.size) {
            const slot = await this.makeSlot();
            if (this.closed) await this.destroySlot(slot);
            else this.ready.push(slot);
          }
        } catch (e) {
          this.lastError = e;
        }
      };
      // Cleared in a .finally callback, which always runs after this assignment: a run
      // that finds the pool full completes synchronously and must not leave a stale promise.
      this.filling = run().finally(() => {
        this.filling = undefined;
      });
    }
    return this.filling;
  }

  /** Stop filling and remove every idle slot. */
  async close(): Promise<void> {
    this.closed = true;
    await this.filling;
    const idle = this.ready.splice(0);
    await Promise.all(idle.map((s) => this.destroySlot(s).catch(() => {})));
  }
}
