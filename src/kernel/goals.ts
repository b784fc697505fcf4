// kernel/goals.ts — the goal queue at work. A submission is admitted (goal-admission.ts)
// and becomes a row (goal-store.ts) from submit to its end, so a restart knows what was
// queued (it runs) and what was running (marked failed: the process that ran it is gone,
// and re-running an agent's half-done side effects is not something we can do
// correctly). Up to config.limits.maxConcurrentGoals goals run at once, oldest first.
//
// Running a goal (goal-start.ts starts it): its folders ($AIDO_HOME/goals/<id>/{workspace,
// output,inputs}, the user's input files copied into inputs/), a root budget account capped
// at config.limits.goalMaxTokens (tightened by the bootstrap manifest's budget, unless
// that is per reset period: then the root agent gets a periodic account inside it), the
// bootstrap agent (manifests/bootstrap.yaml or the submitted manifest), whose first
// message is the goal text plus recalled memories. The result is the bootstrap's final
// answer. When any reservation in the goal is refused by the root account, the goal cap
// is reached: every agent of the goal is stopped through the one removal path and the
// goal fails saying so. A goal submitted from a folder with a persistent intent carries
// it (goal-intent.ts): the objective in the first message, its tokens charged to the
// intent as they are spent, and a cap no larger than what the intent's budget has left. That
// folder also names the goal's project (security/approval-project.ts, kept in its row): its
// agents' Allow Always answers cover the goals submitted from it later, and not an MCP
// session that mounts it (the goal's /workspace is its own folder, not that one). A goal an
// MCP session submitted records it (`submitted_by`), and its project is bound to it: no
// answer crosses between the user's goals and a session's of the same name, and its budget
// is a share carved from the session's (session-budget.ts).

import { randomBytes } from "node:crypto";
import type { LoopResult } from "../agent/loop.js";
import type { Config } from "../config.js";
import type { Db } from "../db/database.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { Intents } from "../intent/intents.js";
import type { MemoryStore } from "../memory/store.js";
import { goalFolders } from "../sandbox/folders.js";
import { goalOnlyProject, type ProjectBinding, submittedProject } from "../security/approval-project.js";
import type { AuditLog } from "../security/audit.js";
import type { BudgetLedger } from "../security/budget.js";
import type { AgentRunner } from "./agents.js";
import type { EventBus } from "./events.js";
import { admitGoal, type GoalSubmission } from "./goal-admission.js";
import { type IntentHolder, intentAtSubmit } from "./goal-intent.js";
import { rootAccountOf, startGoal, storedInputs } from "./goal-start.js";
import {
  type GoalEnd,
  type GoalState,
  type GoalStatus,
  GoalStore,
  TERMINAL,
  UNSTARTED_CANCEL,
} from "./goal-store.js";
import type { AgentRegistry } from "./registry.js";
import {
  holdAccountOf,
  releaseSessionShare,
  type SessionAccount,
  withSessionShare,
} from "./session-budget.js";
import type { Spawner } from "./spawn.js";

export const RESTART_REASON = "daemon restarted while the goal was running";

export interface GoalRunnerDeps {
  db: Db;
  config: Config;
  registry: AgentRegistry;
  spawner: Spawner;
  runner: AgentRunner;
  budget: BudgetLedger;
  audit: AuditLog;
  events: EventBus;
  intents: Intents;
  memory?: MemoryStore;
  /**
   * Awaited before the goal's first model call (cluster mode marks the goal in Redis
   * there: a goal whose node dies before it is re-queued, after it is failed). A rejection
   * fails that call, and with it the goal.
   */
  beforeFirstModelCall?(goalId: string): Promise<void>;
  /**
   * The goal ended: its container is removed for good, its cached handle forgotten, and its
   * folders lose every setuid/setgid bit (GoalSandboxes.retire). Never throws.
   */
  retireSandbox(goalId: string): Promise<void>;
  /** The open MCP session's account (not_found once it ended): its goals' shares are carved from it. */
  sessionAccount?(sessionId: string): SessionAccount;
}

/**
 * How long a goal told to stop (cancel, goal cap, sandbox TTL, runtime closing) may take to
 * wind down. Past it the goal ends without waiting for its agents (a tool call that does
 * not return: a command still running, an engine that does not answer) and its container
 * is removed. A call waiting for an approval returns at once: the approval is closed
 * when its agent stops (security/approvals.ts).
 */
export const STOP_GRACE_MS = 5_000;

/** A running goal: its usage, cap and carried intent (IntentHolder), and how it ends. */
interface LiveGoal extends IntentHolder {
  /** Why the goal must end failed (goal cap, sandbox TTL); the first reason wins. */
  failure?: string;
  cancelRequested: boolean;
  /** Why it was cancelled, when a cancel said (the end of the MCP session that submitted it); else "goal cancelled". */
  cancelReason?: string;
  /** Why the goal was told to stop, once it was; arms `grace`. */
  stopping?: string;
  grace?: NodeJS.Timeout;
  /** Ended by the grace timer: what runGoal does when its agents return at last is skipped. */
  abandoned?: boolean;
  /** Settles when the goal has ended, by itself or abandoned. */
  ended: Promise<void>;
  /** deps.beforeFirstModelCall, once per goal. */
  firstModelCall?: Promise<void>;
  markEnded(): void;
}

/** A new goal id: time first, so ids sort by submission. */
export function newGoalId(): string {
  return `g_${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
}

/** Whether `id` has the form newGoalId makes (it names folders: nothing else may pass for one). */
export function isGoalId(id: unknown): id is string {
  return typeof id === "string" && /^g_[0-9a-z]{1,40}$/.test(id);
}

export class GoalRunner {
  private readonly live = new Map<string, LiveGoal>();
  private readonly store: GoalStore;
  private closed = false;
  /** The goals close() stopped. */
  private readonly closedRunning = new Set<string>();

  constructor(private readonly deps: GoalRunnerDeps) {
    this.store = new GoalStore(deps.db);
  }

  /** Whether close() began: no goal is accepted any more, the running ones are being ended. */
  get closing(): boolean {
    return this.closed;
  }

  /** Whether the goal was running when close() began, so that close() is what ended it. */
  endedByClose(goalId: string): boolean {
    return this.closedRunning.has(goalId);
  }

  /**
   * Validate and queue a goal; it starts when a slot is free. `goalId`: the id the goal
   * already has (cluster mode: fixed by the node that took the submission). `shareCharged`:
   * its session's budget was charged already (cluster mode, at submit: session-budget.ts).
   */
  submit(s: GoalSubmission, opts: { goalId?: string; shareCharged?: boolean } = {}): { goal_id: string } {
    if (this.closed) throw new AidoError(ErrorCode.usage, "the runtime is closing; goal not accepted", {});
    // Checked now: a bad manifest or grants beyond the ceiling fail the submit, not the goal.
    const { manifest, inputs } = admitGoal(this.deps, s);
    const intentId =
      s.workspace === undefined ? undefined : intentAtSubmit(this.deps.intents, this.deps.audit, s.workspace);
    const id = opts.goalId ?? newGoalId();
    // Its agents' Allow Always answers bind to the goals submitted from this folder, and to
    // who submitted it: an MCP session's goal is never the user's (security/approval-project.ts).
    const by = s.submittedBy;
    const folder = s.workspace;
    const project = folder !== undefined ? submittedProject(folder, by) : by && goalOnlyProject(id, by);
    const outputDir = goalFolders(this.deps.config.goalsDir, id).output;
    // A session's goal spends the session's budget: its share is carved now (session-budget.ts).
    const queue = (share?: number) => {
      this.store.insert({
        id,
        text: s.goal,
        manifest: JSON.stringify(manifest),
        inputs: JSON.stringify(inputs),
        outputDir,
        intentId,
        project,
        submittedBy: by,
      });
      this.deps.audit.record(
        "goal.submitted",
        {
          goal: s.goal.slice(0, 2000),
          manifest: manifest.name,
          inputs: inputs.map((i) => i.path),
          ...(intentId !== undefined ? { intent_id: intentId } : {}),
          ...(by !== undefined ? { submitted_by: { ...by } } : {}),
          ...(share !== undefined ? { session_share: share } : {}),
        },
        { goalId: id },
      );
    };
    const session = by && !opts.shareCharged ? this.deps.sessionAccount?.(by.session_id) : undefined;
    const shares = { ...this.deps, goalMaxTokens: this.deps.config.limits.goalMaxTokens };
    withSessionShare(shares, session, id, manifest.budget?.max_tokens, queue);
    this.deps.events.emit("goal.queued", id, { goal: s.goal.slice(0, 2000) });
    this.pump();
    return { goal_id: id };
  }

  /** The project the goal was submitted from, if it named one. */
  projectOf(id: string): ProjectBinding | undefined {
    return this.store.projectOf(id);
  }

  status(id: string): GoalStatus {
    return this.store.status(id);
  }

  list(filter: { state?: GoalState; limit?: number } = {}): GoalStatus[] {
    return this.store.ids(filter).map((id) => this.status(id));
  }

  /**
   * The input paths of each goal that has not ended (queued, or running and perhaps still
   * copying them): what the dashboard's staging folders must keep until goal.started.
   */
  unfinishedInputs(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    const ids = [
      ...this.store.ids({ state: "queued", limit: 100_000 }),
      ...this.store.ids({ state: "running" }),
    ];
    for (const id of ids) {
      const paths = storedInputs(this.store.row(id).inputs).map((i) => i.path);
      out.set(id, paths);
    }
    return out;
  }

  /**
   * The goal's status once it ended, or as it is when `timeoutMs` passes or `signal` aborts
   * (goal.wait: the client that asked left). Leaves no waiter behind either way.
   */
  async wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<GoalStatus> {
    const now = this.status(id);
    if (TERMINAL.has(now.state) || signal?.aborted) return now;
    await new Promise<void>((ok) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        unsubscribe();
        ok();
      };
      const unsubscribe = this.deps.events.subscribe({ goalId: id, types: ["goal.finished"] }, done);
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal?.addEventListener("abort", done, { once: true });
    });
    return this.status(id);
  }

  /** Cancel a queued goal, or stop a running one's agents (the goal ends cancelled, with `reason` when given). */
  cancel(id: string, reason?: string): GoalStatus {
    const row = this.store.row(id);
    if (row.state === "queued") {
      this.finish(id, "cancelled", { error: reason ?? UNSTARTED_CANCEL });
    } else if (row.state === "running") {
      const g = this.live.get(id);
      if (g) {
        g.cancelRequested = true;
        g.cancelReason ??= reason;
      }
      this.stopLive(id, reason ?? "goal cancelled");
    }
    return this.status(id);
  }

  /**
   * End a goal as failed with `reason` (its sandbox's TTL ran out; a cluster node found another
   * node has it): a running one's agents stop, a queued one ends without starting. Before, a
   * queued goal was left queued (false), and it started later: its sandbox was made for a goal
   * that was no longer this node's. False if it is neither.
   */
  fail(id: string, reason: string): boolean {
    const g = this.live.get(id);
    if (!g) {
      if (this.store.stateOf(id) !== "queued") return false;
      this.finish(id, "failed", { error: reason });
      return true;
    }
    g.failure ??= reason;
    this.stopLive(id, reason);
    return true;
  }

  /** Queued or running in this process: its container, if any, is still needed. */
  isLive(id: string): boolean {
    return this.live.has(id) || this.store.stateOf(id) === "queued";
  }

  /** Told by the agent env when a reservation was refused; the root account means the goal cap. */
  budgetRefused(goalId: string, account: string | undefined, message: string): void {
    if (account !== rootAccountOf(goalId) && account !== holdAccountOf(goalId)) return;
    const g = this.live.get(goalId);
    if (!g || g.failure) return;
    g.failure = `goal token cap reached (${g.capBy} ${g.cap}): ${message}`;
    // Not from inside the refused call's stack: let it unwind first.
    queueMicrotask(() => this.stopLive(goalId, "goal token cap reached"));
  }

  /**
   * A provider reported more than a call's bound (budget.overspent): the budget can no longer
   * vouch for the goal's cap, so the goal fails and all its agents stop.
   */
  budgetOverspent(goalId: string, message: string): void {
    const g = this.live.get(goalId);
    if (!g || g.failure) return;
    g.failure = message;
    queueMicrotask(() => this.stopLive(goalId, "budget overspent"));
  }

  /** Called before each model call of the goal's agents: the first one awaits beforeFirstModelCall. */
  beforeModelCall(goalId: string): Promise<void> {
    const hook = this.deps.beforeFirstModelCall;
    const g = this.live.get(goalId);
    if (!hook || !g) return Promise.resolve();
    g.firstModelCall ??= hook(goalId);
    return g.firstModelCall;
  }

  /** At startup: running goals of a dead process fail; queued ones start. */
  recover(): { failed: string[]; queued: string[] } {
    const running = this.store.allIn("running");
    for (const id of running) {
      this.closeRoot(id);
      this.finish(id, "failed", { error: RESTART_REASON });
    }
    const queued = this.store.allIn("queued");
    this.pump();
    return { failed: running, queued };
  }

  /**
   * Stop taking goals, end the running ones (failed: the runtime closed) and wait for them,
   * at most STOP_GRACE_MS: a goal whose agents do not return by then ends without them.
   */
  async close(): Promise<void> {
    this.closed = true;
    const running = [...this.live.entries()];
    for (const [id] of running) {
      this.closedRunning.add(id);
      this.stopLive(id, "runtime closing");
    }
    await Promise.all(running.map(([, g]) => g.ended));
  }

  private pump(): void {
    if (this.closed) return;
    while (this.live.size < this.deps.config.limits.maxConcurrentGoals) {
      const next = this.store.nextQueued();
      if (next === undefined) return;
      let markEnded = () => {};
      const ended = new Promise<void>((r) => {
        markEnded = r;
      });
      const store = this.store;
      const g: LiveGoal = {
        // Its row: the ledger counts every charge there (goal-intent.ts chargeGoal).
        get usage() {
          return store.status(next).usage;
        },
        cap: this.deps.config.limits.goalMaxTokens,
        capBy: "limits.goal_max_tokens",
        cancelRequested: false,
        ended,
        markEnded,
      };
      this.live.set(next, g);
      this.store.markRunning(next);
      void this.runGoal(next, g).finally(() => {
        if (g.abandoned) return;
        this.live.delete(next);
        g.markEnded();
        this.pump();
      });
    }
  }

  private async runGoal(id: string, g: LiveGoal): Promise<void> {
    const { deps } = this;
    const row = this.store.row(id);
    let result: LoopResult | undefined;
    let failure: unknown;
    try {
      const { agent, message } = await startGoal(deps, row, g, this.live.values(), this.store);
      if (g.cancelRequested) throw new AidoError(ErrorCode.cancelled, g.cancelReason ?? "goal cancelled", {});
      result = await deps.runner.run(agent, message);
    } catch (e) {
      failure = e;
    }
    // The agents returned: the goal winds down by itself from here, or it was already ended.
    clearTimeout(g.grace);
    if (g.abandoned) return;
    try {
      deps.registry.stopGoal(id, "goal finished");
    } catch (e) {
      failure ??= e;
    }
    this.closeRoot(id);
    await this.deps.retireSandbox(id);
    if (g.cancelRequested) this.finish(id, "cancelled", { error: g.cancelReason ?? "goal cancelled" });
    else if (g.failure) this.finish(id, "failed", { error: g.failure });
    else if (failure !== undefined) this.finish(id, "failed", { error: errorMessage(failure) });
    else if (result && result.stopReason === "complete")
      this.finish(id, "succeeded", { result: result.text });
    else {
      const why = result?.error
        ? `${result.stopReason}: ${result.error.message}`
        : `${result?.stopReason ?? "error"}`;
      this.finish(id, "failed", {
        error: `the bootstrap agent stopped (${why})`,
        ...(result?.text ? { result: result.text } : {}),
      });
    }
  }

  /** Stop the goal's agents; if they have not all returned within STOP_GRACE_MS, abandon them. */
  private stopLive(id: string, reason: string): void {
    const g = this.live.get(id);
    if (g && g.stopping === undefined) {
      g.stopping = reason;
      // If ending it fails (an audit write), the row stays running and the next start fails it.
      g.grace = setTimeout(() => void this.abandon(id, g).catch(() => {}), STOP_GRACE_MS);
    }
    this.deps.registry.stopGoal(id, reason);
  }

  /**
   * End a goal whose agents did not return after being stopped (a tool call still runs):
   * record its end, remove its container (retired: the stuck call
   * can never start another), free its slot. Whatever the stuck call does later is moot.
   */
  private async abandon(id: string, g: LiveGoal): Promise<void> {
    if (g.abandoned || this.live.get(id) !== g) return;
    g.abandoned = true;
    this.live.delete(id);
    const why = `${g.stopping}; its agents did not return within ${STOP_GRACE_MS} ms and were left behind`;
    try {
      this.closeRoot(id);
      await this.deps.retireSandbox(id);
      if (g.cancelRequested)
        this.finish(id, "cancelled", { error: `${g.cancelReason ?? "goal cancelled"} (${why})` });
      else this.finish(id, "failed", { error: g.failure ? `${g.failure} (${why})` : why });
    } finally {
      g.markEnded();
      this.pump();
    }
  }

  private closeRoot(id: string): void {
    try {
      this.deps.budget.close(rootAccountOf(id));
    } catch (e) {
      if (!(e instanceof AidoError && e.code === ErrorCode.notFound)) throw e;
    }
  }

  /**
   * Record the goal's end; its usage is its row's, every charge of its accounts (closed by
   * now). A session's goal gives its unspent share back (session-budget.ts).
   */
  private finish(id: string, state: GoalEnd, o: { result?: string; error?: string }): void {
    this.store.markFinished(id, state, o);
    releaseSessionShare(this.deps.budget, id);
    const { usage } = this.store.status(id);
    this.deps.audit.record(
      "goal.finished",
      { state, ...(o.error ? { error: o.error.slice(0, 2000) } : {}), usage },
      { goalId: id },
    );
    // Without AIDO_PERSISTENT_MEMORY a goal's memories end with it (a no-op otherwise).
    this.deps.memory?.pruneGoal(id);
    this.deps.events.emit("goal.finished", id, { state, ...(o.error ? { error: o.error } : {}), usage });
  }
}
