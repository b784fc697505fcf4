// sandbox/goal-records.ts — what DockerBackend (docker.ts) knows of each goal between engine
// calls: what its first container was made with (limits, skills, bound workspace, egress
// share, expiry; goal-container.ts records them, the containers made in its place and the
// sweep read them), whether the goal was retired (its sandbox removed for good: no container
// is made for it again), and whether this process ever touched the engine for it (only those
// goals cost a Docker call when they end).

import { AidoError, ErrorCode } from "../errors.js";
import type { SkillMount } from "../skills/registry.js";
import type { SandboxLimits } from "./container-spec.js";
import { type GoalFolders, goalFolders } from "./folders.js";
import { GoalExpiries } from "./goal-expiry.js";

export class GoalRecords {
  readonly limitsOf = new Map<string, SandboxLimits>();
  readonly skillsOf = new Map<string, SkillMount[]>();
  /** When each goal's sandbox expires: its first container's label, kept by the next ones. */
  readonly expiries = new GoalExpiries();
  /** Goals whose /workspace is a bound host folder (AcquireOptions.workspace). */
  readonly workspaceOf = new Map<string, string>();
  /** Goals on an egress network: the folder shared with their relay (AcquireOptions.egressShare). */
  readonly egressShareOf = new Map<string, string>();
  /** Goals whose sandbox was removed for good (remove()): a later acquire is refused. */
  private readonly retired = new Set<string>();
  /**
   * Goals this process made (or tried to make) a container, network or MCP server for, or
   * found a running container of at start-up, or whose network a sweep kept (a live goal's,
   * made by a process that died): remove() asks the engine only about these. Any other
   * goal has nothing in the engine — the start-up sweep removed what dead processes left
   * for goals that are not live — so its end costs no Docker call.
   */
  private readonly touched = new Set<string>();

  constructor(private readonly goalsDir: string) {}

  /** The goal's host folders: its own, with /workspace the folder it bound if `workspace` is given. */
  foldersOf(goalId: string, workspace: string | undefined): GoalFolders {
    const f = goalFolders(this.goalsDir, goalId);
    return workspace === undefined ? f : { ...f, workspace, hostWorkspace: true };
  }

  /** The goal's host folders as its acquire bound them. */
  folders(goalId: string): GoalFolders {
    return this.foldersOf(goalId, this.workspaceOf.get(goalId));
  }

  touch(goalId: string): void {
    this.touched.add(goalId);
  }

  isRetired(goalId: string): boolean {
    return this.retired.has(goalId);
  }

  refuseRetired(goalId: string): void {
    if (!this.retired.has(goalId)) return;
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `the sandbox of goal ${goalId} was removed when the goal ended; no new container is started for it`,
      { goalId },
    );
  }

  /** The goal ended: no container is made for it again (a container being made now goes once it exists). */
  retire(goalId: string): void {
    this.retired.add(goalId);
  }

  /** Forget what the goal's containers were made with: whether it had an egress network, and whether the engine holds anything of it. */
  forget(goalId: string): { hadEgress: boolean; touched: boolean } {
    this.limitsOf.delete(goalId);
    this.skillsOf.delete(goalId);
    this.expiries.forget(goalId);
    this.workspaceOf.delete(goalId);
    const hadEgress = this.egressShareOf.delete(goalId);
    return { hadEgress, touched: this.touched.delete(goalId) };
  }
}
