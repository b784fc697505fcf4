// kernel/shadow.ts — a shadow simulation (plan.simulate with shadow: true): the steps really
// run, against a throwaway copy of the agent's /workspace and /output, and the result
// carries each step's output and the file diff. Effects previewed, not guessed.
//   1. a snapshot of the real folders (the snapshot store; the folders are only read);
//   2. that snapshot restored into a fresh pseudo-goal w_<id> as its workspace and output
//      (its own container mounts them), and the copy's stat taken;
//   3. each step judged by the gate for the shadow (gate.simulate, against the copy as the
//      earlier steps left it) and run through the gate only when the verdict is allow: a
//      step that would ask a human, or is denied, stops the shadow run (nobody is asked to
//      approve a rehearsal). Tools whose effects live outside the copy (memory, agents,
//      the network) are not run at all;
//   4. the shadow container removed, the copy compared with the snapshot (only paths whose
//      stat moved are read: sandbox/tree-diff.ts; text shown only where the agent may read,
//      `readable`), then the pseudo-goal's folder deleted (links unlinked, never followed).
// The real folders are never written. The shadow's calls are audited as the calls they
// are, under the pseudo-goal's id, and the sweeper keeps its container while it runs
// (isLive). One shadow run at a time per real goal: each is a full copy of its folders and
// a container of its own, so runs fired side by side (a socket client pipelining requests,
// an MCP client's parallel tool calls) would multiply the goal's host footprint past its
// quota; a second one is refused (ShadowBusy, limit_exceeded) while the first runs.

import { randomBytes } from "node:crypto";
import { promises as fsp, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { Gate, Principal } from "../gate/invoke.js";
import { goalFolders, makeGoalFolders } from "../sandbox/folders.js";
import type { SnapshotRoots, SnapshotStore } from "../sandbox/snapshots.js";
import { diffCopy, statTree, TEXT_DIFF_MAX_BYTES, type TreeDiff } from "../sandbox/tree-diff.js";
import type { AuditLog } from "../security/audit.js";
import { boundOutput } from "../tools/output.js";
import type { PlanStep } from "./plan-store.js";
import { type PlanStepError, stepError } from "./plans.js";

/** Tools whose effects stay inside the goal's folders and container: the ones a shadow runs. */
const SHADOW_TOOLS: ReadonlySet<string> = new Set([
  "file_read",
  "file_read_many",
  "file_write",
  "file_edit",
  "file_list",
  "grep",
  "exec",
  "snapshot_create",
  "snapshot_restore",
  "snapshot_list",
  "skill_read",
]);

/** Pseudo-goals of shadow copies are named w_<16 hex>. */
const SHADOW_PREFIX = "w_";
const SHADOW_ID = /^w_[0-9a-f]{16}$/;

/** What a shadow result shows of one step's output. */
const SHADOW_OUTPUT_MAX = 8 * 1024;

export interface ShadowStep {
  index: number;
  /** The step ran in the copy. */
  ran: boolean;
  ok: boolean;
  output?: string;
  /** Why it did not run, or how it failed. */
  error?: PlanStepError;
}

export interface ShadowRun {
  /** The pseudo-goal the copy belonged to (the audit names it). */
  goal_id: string;
  /** The snapshot of the real folders the copy was made from. */
  snapshot_id: string;
  steps: ShadowStep[];
  diff: TreeDiff;
}

export interface ShadowDeps {
  config: Config;
  gate: Gate;
  audit: AuditLog;
  snapshots: SnapshotStore;
  roots(goalId: string): SnapshotRoots;
  /** The one path that ends a goal's container (kernel/goal-sandboxes.ts). */
  retire(goalId: string): Promise<void>;
  /** The daemon's log (kernel/plans.ts stepError). */
  log(message: string): void;
}

/** A shadow run of the goal is already going (see the header). */
export class ShadowBusy extends AidoError {
  constructor(goalId: string, running: string) {
    super(
      ErrorCode.limitExceeded,
      `a shadow simulation of goal ${goalId} is already running (${running}); one runs at a time per goal, as each is a full copy of its /workspace and /output`,
      { goal_id: goalId, shadow_goal_id: running },
    );
  }
}

export class Shadows {
  private readonly live = new Set<string>();
  /** Real goal -> the pseudo-goal of its shadow run going now. */
  private readonly running = new Map<string, string>();

  constructor(private readonly deps: ShadowDeps) {}

  /**
   * At start-up: a copy a previous process left (it stopped during a shadow run) goes. Its
   * container is the sweeper's (a w_ pseudo-goal is never live after a restart).
   */
  removeLeftovers(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.deps.config.goalsDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    const left = names.filter((n) => SHADOW_ID.test(n) && !this.live.has(n));
    for (const n of left) rmSync(join(this.deps.config.goalsDir, n), { recursive: true, force: true });
    return left;
  }

  /** A shadow's pseudo-goal still runs (the sweeper keeps its container). */
  isLive(goalId: string): boolean {
    return this.live.has(goalId);
  }

  /** Run `steps` in a copy of the goal's folders (see the header); ShadowBusy while another runs. */
  async run(
    principal: Principal,
    steps: readonly PlanStep[],
    readable: (path: string) => boolean,
    signal?: AbortSignal,
  ): Promise<ShadowRun> {
    const { deps } = this;
    const busy = this.running.get(principal.goalId);
    if (busy !== undefined) throw new ShadowBusy(principal.goalId, busy);
    const id = `${SHADOW_PREFIX}${randomBytes(8).toString("hex")}`;
    this.running.set(principal.goalId, id);
    const folders = goalFolders(deps.config.goalsDir, id);
    const copy: SnapshotRoots = { workspace: folders.workspace, output: folders.output };
    this.live.add(id);
    let retired = false;
    try {
      const label = `shadow copy ${id}`;
      const snap = await deps.snapshots.create(principal.goalId, deps.roots(principal.goalId), label, {
        actor: principal.agentId,
      });
      deps.audit.record(
        "snapshot.created",
        { snapshot_id: snap.id, label, files: snap.files },
        { goalId: principal.goalId, agentId: principal.agentId },
      );
      makeGoalFolders(folders);
      const r = await deps.snapshots.restore(principal.goalId, copy, snap.id);
      if (r.files_failed.length > 0) {
        throw new AidoError(
          ErrorCode.sandboxFailed,
          `the shadow copy could not be made: ${r.files_failed.length} path(s) failed, the first ${r.files_failed[0]!.path}: ${r.files_failed[0]!.reason}`,
        );
      }
      const restored = await statTree(copy);
      // No snapshot before mutation in the copy: it is thrown away.
      const shadow: Principal = { ...principal, goalId: id, scratch: true };
      delete shadow.turn;
      const ran = await this.runSteps(shadow, steps, signal);
      // Nothing runs in the copy any more before it is read.
      await deps.retire(id);
      retired = true;
      const diff = await diffCopy(
        copy,
        restored,
        (paths, contents) =>
          deps.snapshots.readEntries(principal.goalId, snap.id, paths, contents ? TEXT_DIFF_MAX_BYTES : 0),
        readable,
      );
      return { goal_id: id, snapshot_id: snap.id, steps: ran, diff };
    } finally {
      this.live.delete(id);
      try {
        if (!retired) await deps.retire(id);
        // fs.rm unlinks links and never descends into them; async, so a large copy does not
        // hold up the daemon's other clients while it goes.
        await fsp.rm(folders.root, { recursive: true, force: true });
      } finally {
        // The goal's next shadow run may start once this copy is gone.
        this.running.delete(principal.goalId);
      }
    }
  }

  /** In order; the first step that is not allowed, fails or reports an error ends the run. */
  private async runSteps(
    shadow: Principal,
    steps: readonly PlanStep[],
    signal?: AbortSignal,
  ): Promise<ShadowStep[]> {
    const out: ShadowStep[] = [];
    for (const [index, step] of steps.entries()) {
      const call = { name: step.tool, input: step.input, ...(signal ? { signal } : {}) };
      if (!SHADOW_TOOLS.has(step.tool)) {
        out.push(
          notRun(
            index,
            `${step.tool} acts outside the workspace copy (memory, agents, the network): not run in a shadow`,
          ),
        );
        break;
      }
      const j = await this.deps.gate.simulate(shadow, call);
      if (j.verdict !== "allow") {
        const why =
          j.verdict === "confirm" ? `it would ask a human (${j.reason})` : `the gate refuses it: ${j.reason}`;
        out.push(notRun(index, `not run in the shadow: ${why}`, j.code, j.stage));
        break;
      }
      try {
        const r = await this.deps.gate.invoke(shadow, call);
        out.push({
          index,
          ran: true,
          ok: r.isError !== true,
          output: boundOutput(r.output, SHADOW_OUTPUT_MAX),
        });
        if (r.isError) break;
      } catch (e) {
        out.push({ index, ran: true, ok: false, error: stepError(e, this.deps.log) });
        break;
      }
    }
    return out;
  }
}

function notRun(
  index: number,
  message: string,
  code: string = ErrorCode.invalidInput,
  stage?: string,
): ShadowStep {
  return { index, ran: false, ok: false, error: { code, message, ...(stage ? { stage } : {}) } };
}
