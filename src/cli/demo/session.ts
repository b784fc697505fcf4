// cli/demo/session.ts — one run of the bundled demo goal on a daemon of its own: the demo
// home is reset (only a folder this module made: it carries a marker file), gets the
// demo's config.yaml, and a detached agentd starts there with the environment the caller
// chose (AIDO_REPLAY for `aido demo`, AIDO_RECORD and the scripted provider for
// scripts/record-demo.ts). The goal is submitted with the bundle's inputs and shown in
// `aido watch`'s live view; an approval it asks for is answered as the caller said (Allow
// Once with --yes, the approvals prompt on a terminal, otherwise the command that answers
// it is printed and the run waits). What the tour needs is read from the audit before the
// daemon is stopped; the home is kept for `aido audit verify`.

import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import { AidoClient, type Subscription } from "../../client/client.js";
import { type Env, loadConfig } from "../../config.js";
import { startDetached } from "../../daemon/detach.js";
import { socketAnswers } from "../../daemon/socket.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import { socketPathIn } from "../../home.js";
import type { GoalStatus } from "../../kernel/goal-store.js";
import type { AuditEntry } from "../../security/audit-events.js";
import { ensurePrivateDir } from "../../security/private-home.js";
import type { CliIo } from "../command.js";
import { askEach } from "../commands/approvals.js";
import { screenFor } from "../commands/watch.js";
import { WatchScreen } from "../watch/screen.js";
import { initialWatchState } from "../watch/seed.js";
import { reduceWatch, type WatchState } from "../watch/state.js";
import { fromWireEvent } from "../watch/wire.js";
import type { DemoBundle } from "./bundle.js";

/** A file only a demo home holds: the reset never empties a folder without it. */
const MARKER = ".aido-demo-home";

export type ApprovalMode = "yes" | "ask" | "tell";

export interface DemoSessionOptions {
  bundle: DemoBundle;
  home: string;
  /** The daemon's whole environment (demoDaemonEnv). */
  env: Env;
  approvals: ApprovalMode;
  io: CliIo;
}

export interface DemoSessionResult {
  goal: GoalStatus;
  denials: AuditEntry<"tool.denied">[];
  decisions: AuditEntry<"approval.decided">[];
  /** Manifest name of each of the goal's agents, by id. */
  agents: Record<string, string>;
  /** Model calls the goal's agents answered (inference.finished with ok). */
  modelCalls: number;
  /** Where the daemon's log (its events, one JSON line each) is. */
  log: string;
}

/**
 * Empty the demo home (a folder this module made, or a new one) and give it the demo's
 * config. A daemon an earlier run left there (its CLI killed before it could stop it) is
 * stopped first: emptying its home under it would leave it serving a deleted database.
 */
export async function resetDemoHome(home: string, bundle: DemoBundle): Promise<void> {
  if (existsSync(home) && readdirSync(home).length > 0 && !existsSync(join(home, MARKER))) {
    throw new AidoError(
      ErrorCode.usage,
      `${home} is not empty and is not a demo home (no ${MARKER}): choose another with --home`,
      { home },
    );
  }
  if (existsSync(socketPathIn(home)) && (await socketAnswers(socketPathIn(home)))) {
    const pidFile = join(home, "agentd.pid");
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").trim()) : Number.NaN;
    if (!Number.isInteger(pid) || pid <= 0)
      throw new AidoError(ErrorCode.usage, `a daemon still answers in the demo home ${home}: stop it first`, {
        home,
      });
    await stopDaemon(pid);
  }
  // Its contents, not the folder: in run-aido.sh --demo the home is a mount point.
  if (existsSync(home))
    for (const f of readdirSync(home)) rmSync(join(home, f), { recursive: true, force: true });
  ensurePrivateDir(home);
  writeFileSync(join(home, MARKER), "made by `aido demo`; emptied by the next run\n", { mode: 0o600 });
  await copyFile(bundle.configFile, join(home, "config.yaml"));
}

export async function runDemoSession(opts: DemoSessionOptions): Promise<DemoSessionResult> {
  await resetDemoHome(opts.home, opts.bundle);
  const config = loadConfig({ env: opts.env, projectDir: opts.home });
  const { pid, log } = await startDetached(config, { env: opts.env, cwd: opts.home });
  opts.io.err(`demo daemon started (pid ${pid}), home ${opts.home}`);
  try {
    const client = await AidoClient.connect(config.socketPath);
    try {
      const { goal, modelCalls } = await submitAndShow(
        opts,
        client,
        config.socketPath,
        config.limits.goalMaxTokens,
      );
      const { agents } = await client.call("agent.list", { goal_id: goal.goal_id, include_stopped: true });
      const query = <K extends "tool.denied" | "approval.decided">(kind: K) =>
        client
          .call("audit.query", { goal_id: goal.goal_id, kind, limit: 100 })
          .then((r) => r.entries as AuditEntry<K>[]);
      return {
        goal,
        denials: await query("tool.denied"),
        decisions: await query("approval.decided"),
        agents: Object.fromEntries(agents.map((a) => [a.agent_id, a.manifest])),
        modelCalls,
        log,
      };
    } finally {
      client.close();
    }
  } finally {
    await stopDaemon(pid);
  }
}

/** Submit the goal and show it until it ends, answering approvals on the way. */
async function submitAndShow(
  opts: DemoSessionOptions,
  client: AidoClient,
  socket: string,
  budgetTokens: number,
): Promise<{ goal: GoalStatus; modelCalls: number }> {
  let modelCalls = 0;
  const out = screenFor({ io: opts.io });
  const approveWith = `AIDO_HOME=${opts.home} aido approvals`;
  let screen = new WatchScreen(out, undefined, approveWith);
  let paused = false;
  let state: WatchState | undefined;
  let goalId: string | undefined;
  const held: ReturnType<typeof fromWireEvent>[] = [];
  let answering = Promise.resolve();
  let sub: Subscription | undefined;

  const answer = async (approvalId: string) => {
    if (opts.approvals === "yes") {
      const r = await client.call("approval.respond", { id: approvalId, decision: "allow_once" });
      opts.io.err(`--yes: answered Allow Once to ${r.id} (${r.target})`);
      return;
    }
    const { approvals } = await client.call("approval.list", { status: "pending" });
    const pending = approvals.filter((a) => a.id === approvalId);
    if (pending.length === 0) return;
    const tell = () =>
      opts.io.err(
        `approval ${approvalId} waits for you (${pending[0]?.target}); answer it from another terminal:\n` +
          `  ${approveWith}\n(or run the demo with --yes to answer Allow Once)`,
      );
    if (opts.approvals === "tell") return tell();
    if (state) screen.close(state);
    paused = true;
    try {
      if ((await askEach(opts.io, client, pending)) === 0) tell(); // skipped, or end of input
    } finally {
      paused = false;
      screen = new WatchScreen(out, undefined, approveWith);
      if (state) screen.update(state);
    }
  };

  const show = (ev: NonNullable<ReturnType<typeof fromWireEvent>>) => {
    if (!state || ev.goalId !== goalId) return;
    state = reduceWatch(state, ev);
    if (!paused) screen.update(state);
    if (ev.type === "inference.finished" && ev.ok) modelCalls++;
    if (ev.type === "approval.requested") {
      const id = ev.approvalId;
      answering = answering.then(() =>
        answer(id).catch((e) => opts.io.err(`could not answer ${id}: ${errorMessage(e)}`)),
      );
    }
    if (state.finished) sub?.close();
  };

  // Ctrl-C cancels the goal: it ends, the view closes, and the daemon is stopped as usual.
  const cancel = () => {
    opts.io.err("interrupted: cancelling the demo goal");
    if (goalId !== undefined) client.call("goal.cancel", { goal_id: goalId }).catch(() => {});
    else sub?.close();
  };
  process.once("SIGINT", cancel);
  sub = await AidoClient.subscribe(socket, undefined, (wire) => {
    const ev = fromWireEvent(wire);
    if (!ev) return;
    if (goalId === undefined) held.push(ev);
    else show(ev);
  });
  try {
    goalId = (await client.call("goal.submit", { goal: opts.bundle.goal, inputs: opts.bundle.inputs }))
      .goal_id;
    opts.io.err(`goal ${goalId} submitted`);
    state = initialWatchState({ goalId, budgetTokens });
    screen.update(state);
    for (const ev of held.splice(0)) if (ev) show(ev);
    if (state.finished) sub.close();
    await sub.done;
  } finally {
    process.off("SIGINT", cancel);
    sub.close();
  }
  await answering;
  if (state) screen.close(state);
  const goal = await client.call("goal.wait", { goal_id: goalId, timeout_ms: 60_000 }, { timeoutMs: 75_000 });
  return { goal, modelCalls };
}

/** SIGTERM the demo daemon and wait (up to a minute) for its clean shutdown. */
async function stopDaemon(pid: number): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
