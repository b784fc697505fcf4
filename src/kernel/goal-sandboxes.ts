// kernel/goal-sandboxes.ts — a goal's sandbox as the kernel holds it, from first use to
// retirement. One handle per goal (or standalone agent's pseudo-goal): lazy, so a goal
// whose agents only think starts no container, and held to the workspace quota, so no
// tool writes around it. One path ends it, retire(): the container is removed and the goal
// retired in the backend (a call still in flight cannot start another), the handle is
// forgotten, every setuid/setgid bit under the goal's folder is cleared (audited), and
// what else lives as long as the goal is ended (its external MCP servers' connections).
// The sweeper (sandbox-sweeper.ts) reports the containers it removed through released().
// A goal whose root manifest holds a network grant (usesNetwork) gets its egress first
// (egress/plumbing.ts: listener, network, relay) and its container on that network;
// retire() closes the egress after the container (and with it network and relay) went.

import { join } from "node:path";
import type { Config } from "../config.js";
import type { EgressPlumbing } from "../egress/plumbing.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { AcquireOptions, SandboxBackend } from "../sandbox/backend.js";
import type { GoalFolders } from "../sandbox/folders.js";
import { lazySandbox } from "../sandbox/lazy.js";
import type { WorkspaceQuota } from "../sandbox/quota.js";
import { quotaSandbox } from "../sandbox/quota-sandbox.js";
import { clearSetidBits } from "../sandbox/setid.js";
import type { SandboxHandle } from "../sandbox/types.js";
import type { AuditLog } from "../security/audit.js";

/** At most this many paths are named in one sandbox.setid_cleared entry (the count is exact). */
const SETID_PATHS_AUDITED = 100;

export interface GoalSandboxesDeps {
  config: Config;
  backend: SandboxBackend;
  audit: AuditLog;
  quota: WorkspaceQuota;
  /** How the goal's container is made (the skills its root agent may read). */
  acquireOptions(goalId: string): AcquireOptions;
  /** The goal's host folders, a session's bound host workspace included. */
  folders(goalId: string): GoalFolders;
  /** What could not be done now and is retried by the sweep (the engine is down). */
  log(message: string): void;
  /** Goals with a network; absent: none has one. */
  egress?: Pick<EgressPlumbing, "open" | "close">;
  /** The goal's root manifest holds a network grant (children only narrow: none below it can). */
  usesNetwork(goalId: string): boolean;
  /** What else ends with the goal (tools/mcp/ closes its servers' connections); never throws. */
  retired?(goalId: string): Promise<void>;
}

export class GoalSandboxes {
  private readonly handles = new Map<string, SandboxHandle>();

  constructor(private readonly deps: GoalSandboxesDeps) {}

  /** The goal's handle; the container is acquired on the first call that needs it. */
  handle(goalId: string): SandboxHandle {
    let h = this.handles.get(goalId);
    if (!h) {
      h = quotaSandbox(
        lazySandbox(goalId, (signal) => this.acquire(goalId, signal)),
        this.deps.quota,
      );
      this.handles.set(goalId, h);
    }
    return h;
  }

  /** `signal`: every call waiting for it has gone (sandbox/lazy.ts). */
  private async acquire(goalId: string, signal: AbortSignal) {
    const opts = { ...this.deps.acquireOptions(goalId), signal };
    if (!this.deps.usesNetwork(goalId)) return this.deps.backend.acquire(goalId, opts);
    const { egress } = this.deps;
    if (!egress) {
      throw new AidoError(
        ErrorCode.sandboxUnavailable,
        `goal ${goalId} holds network grants, and this runtime has no egress proxy to give its container a network`,
        { goalId },
      );
    }
    return this.deps.backend.acquire(goalId, { ...opts, egressShare: await egress.open(goalId) });
  }

  /**
   * The goal (or standalone agent) ended: its container goes for good, its handle is
   * forgotten, its folder loses setuid/setgid bits. Never throws: a container the engine
   * cannot remove now is left to the sweep.
   */
  async retire(goalId: string): Promise<void> {
    this.handles.delete(goalId);
    try {
      await this.deps.backend.remove(goalId);
    } catch (e) {
      this.deps.log(`removing the container of ${goalId} failed (the sweep retries): ${errorMessage(e)}`);
    }
    await this.deps.egress?.close(goalId);
    await this.clearSetid(goalId);
    await this.deps.retired?.(goalId);
  }

  /** A sweep removed the goal's container: a live goal's next call starts a new one. */
  async released(goalId: string): Promise<void> {
    this.handles.delete(goalId);
    await this.clearSetid(goalId);
  }

  /** No setuid/setgid bit stays in a folder whose container is gone (audited when one was found). */
  private async clearSetid(goalId: string): Promise<void> {
    // Read before any await: a session's bind is dropped once its retire() returns.
    const f = this.deps.folders(goalId);
    try {
      const cleared = await clearSetidBits(f.root);
      if (f.hostWorkspace) {
        cleared.push(...(await clearSetidBits(f.workspace)).map((p) => join(f.workspace, p)));
      }
      if (cleared.length === 0) return;
      this.deps.audit.record(
        "sandbox.setid_cleared",
        { paths: cleared.slice(0, SETID_PATHS_AUDITED), count: cleared.length },
        { goalId },
      );
    } catch (e) {
      this.deps.log(`clearing setuid/setgid bits of ${goalId} failed: ${errorMessage(e)}`);
    }
  }
}
