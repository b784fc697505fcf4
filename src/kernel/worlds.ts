// kernel/worlds.ts — parallel worlds (spawn_worlds, adopt_world: kernel/world-tools.ts).
// An agent tries one task N ways at once, each in a world of its own:
//   1. one snapshot of the spawner's real /workspace and /output (only read);
//   2. per world, that snapshot restored into a fresh pseudo-goal w_<id> (its own folders
//      and, on first use, its own container), and the copy's stat taken (as a shadow's,
//      kernel/shadow.ts);
//   3. per world, one child of the spawner, narrowed like any spawn_agent child, with its
//      own carved budget and conversation, whose tool calls act on the world's copy
//      (AgentRecord.sandboxGoal; judged and audited under w_<id>, no snapshot before
//      mutation: the copy is thrown away). The children run in parallel under the
//      inference semaphore;
//   4. when a child ends, its world's container is removed and the copy compared with the
//      snapshot (sandbox/tree-diff.ts): the world's receipt.
// adopt() applies one world's diff to the real folders as the spawner, through the gate:
// every path of the diff is first asked of the caller's file_write grants and the policy
// (ToolContext.allowPath); when any is refused, nothing is written and each refused path is
// reported and audited. Otherwise the world's copy is snapshotted and restored onto the
// real folders, limited to the diff's paths (a path the real folders changed meanwhile and
// the world did not touch is left as it is). The other worlds are then discarded.
// A world lives until it is adopted, another is, its spawner's turn ends (the agent
// pauses or stops: the goal's end stops it), or the spawn_worlds call is cancelled (its MCP
// client gave up: the children are stopped, their budgets refunded, every world of the call
// discarded, since nobody reads its receipts); discarding removes the container and deletes
// the folder (links unlinked, never followed). Folders a previous process left are removed
// at start-up with the shadows' (Shadows.removeLeftovers: the same w_ prefix).

import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { PathNeed } from "../gate/types.js";
import type { Usage } from "../llm/types.js";
import { parseManifestValue } from "../manifest/load.js";
import { type GoalFolders, goalFolders, makeGoalFolders } from "../sandbox/folders.js";
import type { WorkspaceQuota } from "../sandbox/quota.js";
import type { RestoreResult } from "../sandbox/snapshot-restore.js";
import type { SnapshotCreated, SnapshotRoots, SnapshotStore } from "../sandbox/snapshots.js";
import { diffCopy, statTree, TEXT_DIFF_MAX_BYTES, type TreeDiff } from "../sandbox/tree-diff.js";
import type { AuditLog } from "../security/audit.js";
import { type BudgetLedger, roomOf } from "../security/budget.js";
import type { TraceSpan } from "../telemetry/tracer.js";
import type { AgentRunner, ChildOutcome } from "./agents.js";
import type { EventBus } from "./events.js";
import type { AgentRecord, AgentRegistry } from "./registry.js";
import { admitWorlds } from "./world-admission.js";

export interface WorldReceipt {
  world_id: string;
  agent_id?: string;
  stop_reason: ChildOutcome["stopReason"];
  /** The child's final text (untrusted: a model wrote it). */
  summary: string;
  error?: { code: string; message: string };
  usage: Usage;
  /** What the child changed in its copy (small text files with a unified diff). */
  diff: TreeDiff;
}

export interface AdoptResult {
  world_id: string;
  adopted: boolean;
  paths_applied: number;
  /** Paths refused (nothing was written) or that failed while applying. */
  failed: { path: string; reason: string }[];
  /** The other worlds of the spawner, discarded. */
  discarded: string[];
}

export interface WorldsDeps {
  config: Config;
  audit: AuditLog;
  snapshots: SnapshotStore;
  quota: WorkspaceQuota;
  registry: AgentRegistry;
  runner: AgentRunner;
  budget: BudgetLedger;
  events: EventBus;
  /** A goal's real folders (a session's bound project folder included). */
  roots(goalId: string): SnapshotRoots;
  /** The one path that ends a goal's container (kernel/goal-sandboxes.ts). */
  retire(goalId: string): Promise<void>;
}

interface World {
  id: string;
  /** The agent that spawned it: the only one that may adopt it. */
  owner: string;
  /** The owner's goal: the real folders an adoption writes. */
  goalId: string;
  folders: GoalFolders;
  state: "running" | "ready" | "adopting";
  diff?: TreeDiff;
  closing?: Promise<void>;
}

const WORLD_PREFIX = "w_";
/** Why a world of a cancelled spawn_worlds call was discarded. */
const CANCELLED = "the spawn_worlds call was cancelled";
/** Why restore() leaves a path alone that is not part of the adopted world's diff. */
const OUTSIDE_DIFF = "\u0000outside the world's diff";

export class Worlds {
  private readonly worlds = new Map<string, World>();
  /** Worlds adopted in this process: a second adopt_world names what happened. */
  private readonly adopted = new Set<string>();
  private readonly unsubscribe: () => void;

  constructor(private readonly deps: WorldsDeps) {
    // The spawner's turn ended (it paused or stopped): its worlds go.
    this.unsubscribe = deps.events.subscribe({ types: ["agent.stopped", "agent.state"] }, (ev) => {
      if (ev.type === "agent.stopped") void this.discardOf(ev.agentId, "its spawner stopped");
      else if (ev.type === "agent.state" && ev.state === "paused")
        void this.discardOf(ev.agentId, "its spawner's turn ended");
    });
  }

  /** A world's pseudo-goal is in use (the sweeper keeps its container). */
  isLive(goalId: string): boolean {
    const w = this.worlds.get(goalId);
    return w !== undefined && w.closing === undefined;
  }

  /** The real goal a world was copied from (its container mounts that goal's skills). */
  realGoal(goalId: string): string | undefined {
    return this.worlds.get(goalId)?.goalId;
  }

  /**
   * Run `task` in `count` worlds, one child of `parent` each, in parallel; every world's
   * receipt, refused children included. Refused before anything is made when the worlds
   * cannot be held to the parent's limits.
   */
  async spawn(
    parent: AgentRecord,
    /** traceParent: the spawn_worlds call's span; each world's child nests under it. */
    req: { task: string; worlds: number; manifest: unknown; traceParent?: TraceSpan; signal?: AbortSignal },
    /** The receipts show text only where the parent may read (its grants and the policy). */
    readable: (path: string) => boolean,
  ): Promise<WorldReceipt[]> {
    const { deps } = this;
    const held = [...this.worlds.values()].filter((w) => w.owner === parent.id && !w.closing).length;
    admitWorlds(parent, req, held, deps.config, deps.budget);
    const room = Math.max(0, roomOf(deps.budget.get(parent.budgetAccount)));
    const share = Math.floor(room / (req.worlds + 1));
    const name = parseManifestValue(req.manifest, "spawn_worlds manifest").name;
    // Held from here on (before any await), so a parallel spawn_worlds counts them.
    const worlds = Array.from({ length: req.worlds }, (): World => {
      const id = `${WORLD_PREFIX}${randomBytes(8).toString("hex")}`;
      const w: World = {
        id,
        owner: parent.id,
        goalId: parent.goalId,
        folders: goalFolders(deps.config.goalsDir, id),
        state: "running",
      };
      this.worlds.set(id, w);
      return w;
    });
    let snap: SnapshotCreated;
    try {
      snap = await deps.snapshots.create(parent.goalId, deps.roots(parent.goalId), "worlds base", {
        actor: parent.id,
      });
    } catch (e) {
      await Promise.all(worlds.map((w) => this.discard(w, "the snapshot it was to copy failed")));
      throw e;
    }
    deps.audit.record(
      "snapshot.created",
      { snapshot_id: snap.id, label: "worlds base", files: snap.files },
      { goalId: parent.goalId, agentId: parent.id },
    );
    const running: Promise<WorldReceipt>[] = [];
    for (const world of worlds) {
      const run = this.runWorld(
        parent,
        world,
        snap.id,
        { name, value: req.manifest },
        req.task,
        share,
        readable,
        req.traceParent,
        req.signal,
      );
      run.catch(() => {}); // observed by Promise.all below
      running.push(run);
      // Spawning is synchronous work: let this child's first request leave meanwhile.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const settled = await Promise.allSettled(running);
    if (req.signal?.aborted) {
      // Nobody reads these receipts: a world that finished before the cancel goes too, rather
      // than be held against max_children until the spawner's turn ends (a session's never does).
      await Promise.all(worlds.map((w) => this.discard(w, CANCELLED)));
      throw new AidoError(
        ErrorCode.cancelled,
        `spawn_worlds was cancelled: its ${worlds.length} worlds were stopped and discarded`,
        { worlds: worlds.length },
      );
    }
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    return settled.map((r) => (r as PromiseFulfilledResult<WorldReceipt>).value);
  }

  private async runWorld(
    parent: AgentRecord,
    world: World,
    snapshotId: string,
    manifest: { name: string; value: unknown },
    task: string,
    share: number,
    readable: (path: string) => boolean,
    traceParent: TraceSpan | undefined,
    signal: AbortSignal | undefined,
  ): Promise<WorldReceipt> {
    const { deps } = this;
    const { id, folders } = world;
    const copy: SnapshotRoots = { workspace: folders.workspace, output: folders.output };
    const ids = { goalId: parent.goalId, agentId: parent.id };
    try {
      makeGoalFolders(folders);
      const r = await deps.snapshots.restore(parent.goalId, copy, snapshotId);
      if (r.files_failed.length > 0) {
        throw new AidoError(
          ErrorCode.sandboxFailed,
          `world ${id} could not be made: ${r.files_failed.length} path(s) failed, the first ${r.files_failed[0]!.path}: ${r.files_failed[0]!.reason}`,
        );
      }
      const restored = await statTree(copy);
      deps.audit.record(
        "world.spawned",
        { world_id: id, snapshot_id: snapshotId, manifest: manifest.name },
        ids,
      );
      const o = await deps.runner.runChild(parent, manifest.value, task, {
        defaultShare: share,
        sandboxGoal: id,
        ...(traceParent ? { traceParent } : {}),
        ...(signal ? { signal } : {}),
      });
      // Nothing runs in the copy any more before it is read.
      await deps.retire(id);
      // Nobody will read this receipt (the call was cancelled: runChild stopped the child, its
      // budget refunded): the world goes now, rather than be held against max_children.
      if (signal?.aborted) await this.discard(world, CANCELLED);
      if (world.closing) throw new AidoError(ErrorCode.cancelled, `world ${id} was discarded while it ran`);
      const diff = await diffCopy(
        copy,
        restored,
        (paths, contents) =>
          deps.snapshots.readEntries(parent.goalId, snapshotId, paths, contents ? TEXT_DIFF_MAX_BYTES : 0),
        readable,
      );
      deps.audit.record(
        "world.finished",
        {
          world_id: id,
          ...(o.agentId ? { agent_id: o.agentId } : {}),
          stop_reason: o.stopReason,
          ...diff.counts,
        },
        ids,
      );
      const receipt: WorldReceipt = {
        world_id: id,
        ...(o.agentId ? { agent_id: o.agentId } : {}),
        stop_reason: o.stopReason,
        summary: o.text,
        ...(o.error ? { error: o.error } : {}),
        usage: o.usage,
        diff,
      };
      // A world whose child was refused holds nothing to adopt; one whose spawner stopped
      // meanwhile has nobody to adopt it.
      if (o.stopReason === "refused") await this.discard(world, "its child was refused");
      else if (parent.state === "stopped" || parent.state === "stopping")
        await this.discard(world, "its spawner stopped");
      else {
        world.state = "ready";
        world.diff = diff;
      }
      return receipt;
    } catch (e) {
      await this.discard(world, signal?.aborted ? CANCELLED : "it failed");
      throw e;
    }
  }

  /**
   * Apply world `worldId`'s diff to the real folders, as agent `agentId` (its grants asked
   * through `allowPath`, the gate's per-path check, whose refusals the gate audits).
   */
  async adopt(
    agentId: string,
    worldId: string,
    allowPath: (need: PathNeed, opts?: { record?: boolean }) => string | undefined,
    /** Makes the real folders exist, laid out for the goal's container (starting it if need be). */
    prepare: () => Promise<unknown>,
  ): Promise<AdoptResult> {
    const { deps } = this;
    const w = this.worlds.get(worldId);
    const refuse = (code: ErrorCode, reason: string, goalId: string | null): never => {
      deps.audit.record("world.refused", { world_id: worldId, reason }, { goalId, agentId });
      throw new AidoError(code, reason, { world_id: worldId });
    };
    if (!w || w.closing) {
      if (this.adopted.has(worldId))
        refuse(ErrorCode.invalidInput, `world ${worldId} was adopted already`, null);
      return refuse(ErrorCode.notFound, `no world ${worldId} to adopt (unknown, or discarded)`, null);
    }
    if (w.owner !== agentId) {
      return refuse(
        ErrorCode.capabilityDenied,
        `world ${worldId} was spawned by agent ${w.owner}; only it may adopt it`,
        w.goalId,
      );
    }
    if (w.state !== "ready" || !w.diff) {
      return refuse(
        ErrorCode.invalidInput,
        `world ${worldId} is ${w.state === "running" ? "still running" : "being adopted"}`,
        w.goalId,
      );
    }
    // One adoption at a time per spawner (two in one response would both apply). No await
    // comes between this check and the state set below.
    const busy = [...this.worlds.values()].find((o) => o.owner === agentId && o.state === "adopting");
    if (busy) {
      return refuse(
        ErrorCode.invalidInput,
        `world ${busy.id} is being adopted; adopt one world at a time`,
        w.goalId,
      );
    }
    const diff = w.diff;
    const changes = [...diff.added, ...diff.changed, ...diff.deleted];
    const total = diff.counts.added + diff.counts.changed + diff.counts.deleted;
    if (changes.length < total) {
      return refuse(
        ErrorCode.limitExceeded,
        `world ${worldId} changed ${total} paths, more than a receipt lists; adopt a smaller change`,
        w.goalId,
      );
    }
    // Every path first: one the caller may not write refuses the whole adoption, and the
    // gate audits each refused path (record: true).
    const refused = changes.flatMap((c) => {
      const why = allowPath({ kind: "file_write", path: c.path }, { record: false });
      return why === undefined ? [] : [{ path: c.path, reason: why }];
    });
    if (refused.length > 0) {
      for (const r of refused) allowPath({ kind: "file_write", path: r.path });
      const paths = refused.map((r) => r.path);
      deps.audit.record(
        "world.refused",
        {
          world_id: worldId,
          reason: `${refused.length} path(s) the caller may not write; nothing was written`,
          paths: paths.slice(0, 100),
        },
        { goalId: w.goalId, agentId },
      );
      return { world_id: worldId, adopted: false, paths_applied: 0, failed: refused, discarded: [] };
    }
    w.state = "adopting";
    try {
      const growth =
        diff.added.reduce((n, c) => n + c.size, 0) +
        diff.changed.reduce((n, c) => n + c.size - (c.size_before ?? 0), 0);
      await deps.quota.admit(w.goalId, growth, `adopt_world of ${worldId}`);
      let r: RestoreResult = { files_restored: 0, files_failed: [] };
      if (changes.length > 0) {
        await prepare();
        const copy: SnapshotRoots = { workspace: w.folders.workspace, output: w.folders.output };
        const snap = await deps.snapshots.create(w.id, copy, "world to adopt");
        const inDiff = new Set(changes.map((c) => c.path));
        r = await deps.snapshots.restore(w.id, deps.roots(w.goalId), snap.id, (path) =>
          inDiff.has(path) ? allowPath({ kind: "file_write", path }) : OUTSIDE_DIFF,
        );
      }
      const failed = r.files_failed
        .filter((f) => f.reason !== OUTSIDE_DIFF)
        .map((f) => ({ path: f.path, reason: f.reason }));
      this.adopted.add(worldId);
      deps.audit.record(
        "world.adopted",
        { world_id: worldId, paths_applied: r.files_restored, paths_failed: failed.length },
        { goalId: w.goalId, agentId },
      );
      // Worlds still running (another spawn_worlds call) go when the spawner's turn ends.
      const others = [...this.worlds.values()].filter(
        (o) => o.owner === agentId && o !== w && o.state === "ready",
      );
      await Promise.all([
        this.discard(w, "adopted"),
        ...others.map((o) => this.discard(o, `world ${worldId} was adopted`)),
      ]);
      return {
        world_id: worldId,
        adopted: true,
        paths_applied: r.files_restored,
        failed,
        discarded: others.map((o) => o.id),
      };
    } catch (e) {
      if (w.state === "adopting") w.state = "ready";
      throw e;
    }
  }

  /** Every world of `agentId`, discarded (its turn ended, or it stopped). */
  async discardOf(agentId: string, reason: string): Promise<void> {
    await Promise.all(
      [...this.worlds.values()]
        .filter((w) => w.owner === agentId && w.state === "ready")
        .map((w) => this.discard(w, reason)),
    );
  }

  /** Every world discarded, and their discarding done (the runtime is closing). */
  async close(): Promise<void> {
    this.unsubscribe();
    await Promise.all([...this.worlds.values()].map((w) => this.discard(w, "the runtime is closing")));
  }

  private discard(w: World, reason: string): Promise<void> {
    w.closing ??= (async () => {
      try {
        await this.deps.retire(w.id);
        // fs.rm unlinks links and never descends into them.
        await fsp.rm(w.folders.root, { recursive: true, force: true });
      } finally {
        this.worlds.delete(w.id);
        this.deps.audit.record(
          "world.discarded",
          { world_id: w.id, reason },
          { goalId: w.goalId, agentId: w.owner },
        );
      }
    })();
    return w.closing;
  }
}
