// kernel/sandbox-sweeper.ts — no goal container outlives its goal. At start-up (after the
// kernel's recovery has failed the goals a dead process left running) the sweeper adopts
// the containers of goals that are still live and removes every other container of this
// runtime: those of ended or unknown goals, stopped ones, and warm-pool slots no process
// owns. While the runtime runs it sweeps again every interval, which is where
// `sandbox.ttl_seconds` is enforced: a container past its expiry label is removed, and
// the goal it served ends failed with that reason (a standalone agent keeps going and gets
// a fresh container on its next call). Each removal is audited as sandbox.destroyed. A
// goal's external MCP server containers are swept the same way (their expiry ends the goal
// too), and one that no process speaks to any more (after a restart) is removed; removing
// one leaves the goal's own container and handle alone. A container the engine will not
// remove (or folder the host cannot) is logged and tried again at the next sweep (such a
// container is logged once while the engine gives the same answer); the sweep goes on with
// the rest, and an expired one still ends its goal.

import type { Config } from "../config.js";
import { errorMessage } from "../errors.js";
import type { RemovedContainer, SandboxBackend } from "../sandbox/backend.js";
import type { AuditLog } from "../security/audit.js";

/** The shortest and longest time between two sweeps. */
const MIN_INTERVAL_MS = 1_000;
const MAX_INTERVAL_MS = 60_000;

export interface SweeperDeps {
  config: Config;
  backend: SandboxBackend;
  audit: AuditLog;
  /** Whether a goal (or a standalone agent's pseudo-goal) still needs its container. */
  isLive(goalId: string): boolean;
  /** A live goal's container expired: end the goal (false when it is not a goal this runner owns). */
  expired(goalId: string, reason: string): void;
  /**
   * The goal's container is gone: forget the cached handle (a next call of a live goal
   * starts a new one) and clear setuid/setgid bits in its folder.
   */
  released(goalId: string): Promise<void>;
  /** What a sweep could not do (the engine is down): said, and tried again next time. */
  log(message: string): void;
}

/** A quarter of the TTL, between 1 s and 60 s: an expired container lives at most that much longer. */
export function sweepIntervalMs(ttlSeconds: number): number {
  return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.floor((ttlSeconds * 1000) / 4)));
}

export class SandboxSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /**
   * The containers the last sweep could not remove, with the engine's answer: each is logged
   * when it starts failing or the answer changes, not with every sweep (one a second with a
   * short TTL, for as long as the engine refuses).
   */
  private failing = new Map<string, string>();

  constructor(private readonly deps: SweeperDeps) {}

  /** Adopt the live goals' containers, remove the rest, then sweep every interval. */
  async start(): Promise<void> {
    try {
      await this.deps.backend.reattach();
    } catch (e) {
      this.deps.log(`re-attaching goal containers failed: ${errorMessage(e)}`);
    }
    await this.sweep();
    if (this.stopped) return;
    const every = sweepIntervalMs(this.deps.config.sandbox.ttlSeconds);
    this.timer = setInterval(() => void this.sweep(), every);
    this.timer.unref();
  }

  /** One pass (never two at once); failures are logged, never thrown. */
  sweep(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** No more sweeps; resolves once a pass in progress is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    let removed: RemovedContainer[];
    try {
      const report = await this.deps.backend.gc({ isGoalLive: (g) => this.deps.isLive(g) });
      removed = report.removedContainers;
      for (const f of report.failedFolders)
        this.deps.log(`removing ${f.path} failed (tried again at the next sweep): ${f.error}`);
      const failing = new Map<string, string>();
      for (const c of report.failedContainers) {
        failing.set(c.containerId, c.error);
        if (this.failing.get(c.containerId) !== c.error)
          this.deps.log(
            `removing container ${c.name} (${c.reason}) failed (tried again with each sweep, logged once): ${c.error}`,
          );
        // Its TTL is reached whether or not the engine removed it: the goal ends all the same
        // (and at the next sweep the container the engine killed is "expired" again).
        if (c.reason === "expired" && c.goalId) this.deps.expired(c.goalId, expiredReason(this.deps.config));
      }
      this.failing = failing;
    } catch (e) {
      this.deps.log(`sweeping goal containers failed: ${errorMessage(e)}`);
      return;
    }
    for (const c of removed) {
      try {
        await this.settle(c);
      } catch (e) {
        this.deps.log(`after removing container ${c.name}: ${errorMessage(e)}`);
      }
    }
  }

  private async settle(c: RemovedContainer): Promise<void> {
    const reason =
      c.reason === "expired"
        ? expiredReason(this.deps.config)
        : c.reason === "orphan"
          ? c.mcpServer !== undefined
            ? "its goal is not running, or no process speaks to the server any more"
            : "its goal is not running"
          : c.reason === "stopped"
            ? "the container had stopped"
            : "a warm-pool slot no process owns";
    this.deps.audit.record(
      "sandbox.destroyed",
      {
        container_id: c.containerId,
        reason: `${c.reason}: ${reason}`,
        ...(c.mcpServer !== undefined ? { mcp_server: c.mcpServer } : {}),
      },
      c.goalId ? { goalId: c.goalId } : {},
    );
    if (!c.goalId) return;
    // An expired goal is told to stop first, so its agents do not start another container.
    if (c.reason === "expired") this.deps.expired(c.goalId, reason);
    if (c.mcpServer === undefined) await this.deps.released(c.goalId);
  }
}

/** Why a goal whose container reached its TTL ends. */
function expiredReason(config: Config): string {
  return `the goal's sandbox reached sandbox.ttl_seconds (${config.sandbox.ttlSeconds} s)`;
}
