// cli/commands/watch.ts — `aido watch [ID]`: the live view of one goal (or of every goal)
// from the daemon's event stream. The view itself is watch/state.ts (reducer) and
// watch/render.ts + watch/screen.ts (drawing); this module owns the socket: it seeds the
// view from goal.status, agent.list and approval.list, subscribes, and ends when the goal
// ends, with its outcome as the exit code (0 succeeded, 1 failed or cancelled). --json
// prints the raw events as JSON lines instead.

import { AidoClient, type Subscription } from "../../client/client.js";
import type { MethodParams } from "../../client/types.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import type { RuntimeEvent } from "../../kernel/events.js";
import { inert } from "../../security/terminal-text.js";
import { type Command, type CommandContext, jsonOption, parseCommandArgs, UsageError } from "../command.js";
import { clusterPanel } from "../watch/cluster-panel.js";
import { WatchScreen } from "../watch/screen.js";
import { initialWatchState, type KnownAgent, withGoalStatus, withPendingApprovals } from "../watch/seed.js";
import { exitCodeOf, reduceWatch, type WatchState } from "../watch/state.js";
import { fromWireEvent } from "../watch/wire.js";
import { isFinished, withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

export function screenFor(ctx: Pick<CommandContext, "io">) {
  if (ctx.io.screen) return ctx.io.screen;
  // Without a raw stream (tests, embedding), print whole lines through io.out.
  return {
    write: (t: string) => {
      for (const line of t.replace(/\n$/, "").split("\n")) ctx.io.out(line);
    },
    isTTY: false,
  };
}

/** Stream events into the view until `close` is called or the stream ends; Ctrl-C leaves early. */
async function follow(
  ctx: CommandContext,
  goalId: string | undefined,
  onEvent: (ev: RuntimeEvent, close: () => void) => void,
  json: boolean,
  started: (close: () => void) => Promise<void>,
): Promise<void> {
  // Events can arrive before subscribe() has resolved: closing is a flag until then.
  let sub: Subscription | undefined;
  let closeAsked = false;
  const close = () => {
    closeAsked = true;
    sub?.close();
  };
  process.once("SIGINT", close);
  try {
    sub = await AidoClient.subscribe(ctx.socketPath(), goalId, (wire) => {
      if (json) ctx.io.out(JSON.stringify(wire));
      const ev = fromWireEvent(wire);
      if (ev) onEvent(ev, close);
    });
    if (closeAsked) sub.close();
    try {
      await started(close);
    } catch (e) {
      sub.close();
      throw e;
    }
    await sub.done;
  } finally {
    process.off("SIGINT", close);
  }
}

/** After the stream: settle the goal's outcome (asking once more if the stream missed it). */
async function finish(
  ctx: CommandContext,
  client: AidoClient,
  goalId: string | undefined,
  state: WatchState,
  screen: WatchScreen | undefined,
): Promise<number> {
  let s = state;
  if (goalId !== undefined && !s.finished) {
    // The stream ended without the goal's end: Ctrl-C, or the daemon went away.
    try {
      const last = await client.call("goal.status", { goal_id: goalId });
      if (isFinished(last)) s = withGoalStatus(s, last);
    } catch (e) {
      ctx.io.err(`aido watch: lost the daemon: ${inert(errorMessage(e))}`);
    }
  }
  screen?.close(s);
  if (goalId === undefined) return 0;
  const code = exitCodeOf(s);
  if (code === undefined)
    ctx.io.err(`goal ${goalId} is still running (aido watch ${goalId} to follow it again)`);
  return code ?? 1;
}

/**
 * The agents already there. In a cluster those of a goal another node runs (ran) are asked
 * of that node: when it is not heartbeating (it left, or died) nobody can list them, and the
 * watch goes on with the goal and what happens from now on, saying why its agents are missing.
 */
async function knownAgents(
  ctx: CommandContext,
  client: AidoClient,
  goalId: string | undefined,
): Promise<{ agents: KnownAgent[] }> {
  try {
    return await client.call("agent.list", {
      ...(goalId ? { goal_id: goalId } : {}),
      include_stopped: goalId !== undefined,
    });
  } catch (e) {
    if (!(e instanceof AidoError && e.code === ErrorCode.clusterUnavailable)) throw e;
    ctx.io.err(
      `aido watch: the agents of this goal could not be listed (${inert(errorMessage(e))}); showing those that act from now on`,
    );
    return { agents: [] };
  }
}

/** How often a watch whose goal the cluster cannot answer for asks again. */
const UNREACHABLE_RETRY_MS = 2_000;
/** How often such a watch says how long the cluster has been unreachable. */
const UNREACHABLE_SAY_MS = 60_000;

/**
 * The goal's status. In a cluster with Redis away a node answers for its own goals from its
 * own record; another node's goal cannot be read: said at once and then once a minute with
 * how long it has been, and asked again until it can (Ctrl-C leaves). A goal that ended
 * meanwhile is said to have ended unwatched (the watch then ends with its outcome).
 */
async function reachableStatus(ctx: CommandContext, client: AidoClient, goalId: string) {
  let since: number | undefined;
  let saidAt = 0;
  for (;;) {
    try {
      const s = await client.call("goal.status", { goal_id: goalId });
      if (since !== undefined) {
        ctx.io.err(`aido watch: the cluster answers again`);
        if (isFinished(s))
          ctx.io.err(
            `aido watch: goal ${inert(goalId)} ended ${s.state} while the cluster could not be reached; nothing of its run was watched`,
          );
      }
      return s;
    } catch (e) {
      if (!(e instanceof AidoError && e.code === ErrorCode.clusterUnavailable)) throw e;
      const now = Date.now();
      if (since === undefined) {
        since = saidAt = now;
        ctx.io.err(`aido watch: the cluster cannot be reached (${inert(errorMessage(e))}); retrying`);
      } else if (now - saidAt >= UNREACHABLE_SAY_MS) {
        saidAt = now;
        ctx.io.err(
          `aido watch: the cluster still cannot be reached after ${Math.round((now - since) / 60_000)} min (${inert(errorMessage(e))}); retrying, Ctrl-C to leave`,
        );
      }
      await new Promise((r) => setTimeout(r, UNREACHABLE_RETRY_MS));
    }
  }
}

/** Watch until the goal ends (goalId) or the stream ends (all goals). Returns the exit code. */
export async function watchGoal(
  ctx: CommandContext,
  client: AidoClient,
  goalId: string | undefined,
  json = false,
): Promise<number> {
  const config = await ctx.config();
  const goal = goalId === undefined ? undefined : await reachableStatus(ctx, client, goalId);
  const agents = await knownAgents(ctx, client, goalId);
  // In a cluster with Redis away the approvals are read once it answers (cluster-panel.ts).
  const waiting = await client
    .call("approval.list", { status: "pending", limit: 1000 })
    .catch((e: unknown) => {
      if (e instanceof AidoError && e.code === ErrorCode.clusterUnavailable) return undefined;
      throw e;
    });
  let state: WatchState = withPendingApprovals(
    initialWatchState({
      goalId: goalId ?? null,
      budgetTokens: config.limits.goalMaxTokens,
      ...(goal ? { goal } : {}),
      agents: agents.agents,
    }),
    waiting?.approvals ?? [],
  );
  const screen = json ? undefined : new WatchScreen(screenFor(ctx));
  const cluster = json
    ? undefined
    : await clusterPanel(
        client,
        goalId,
        (f) => {
          state = f(state);
          screen?.update(state);
        },
        { approvalsUnread: waiting === undefined },
      );
  screen?.update(state);
  try {
    if (!(goal && isFinished(goal)))
      await follow(
        ctx,
        goalId,
        (ev) => {
          state = reduceWatch(state, ev);
          screen?.update(state);
        },
        json,
        async (close) => {
          // The goal may have ended between goal.status and the subscription: check once more.
          if (goalId === undefined) return;
          // Redis gone meanwhile: the stream tells the end (a node's own goal streams from it).
          const again = await client.call("goal.status", { goal_id: goalId }).catch((e: unknown) => {
            if (e instanceof AidoError && e.code === ErrorCode.clusterUnavailable) return undefined;
            throw e;
          });
          if (again === undefined) return;
          if (isFinished(again) && !state.finished) {
            state = withGoalStatus(state, again);
            close();
          }
        },
      );
    return await finish(ctx, client, goalId, state, screen);
  } finally {
    cluster?.stop();
  }
}

/**
 * Submit a goal and watch it from its first event: the subscription (to every goal) is
 * open before the goal exists, events are held until the id is known, then only the
 * goal's own are shown. A fast goal can end before a separate `aido watch` attaches.
 */
export async function submitAndWatch(
  ctx: CommandContext,
  client: AidoClient,
  params: MethodParams<"goal.submit">,
  onSubmitted: (goalId: string) => void,
): Promise<number> {
  const held: RuntimeEvent[] = [];
  let goalId: string | undefined;
  let state: WatchState | undefined;
  const screen = new WatchScreen(screenFor(ctx));
  const show = (ev: RuntimeEvent, close: () => void) => {
    if (!state || ev.goalId !== goalId) return;
    state = reduceWatch(state, ev);
    screen.update(state);
    if (state.finished) close();
  };
  await follow(
    ctx,
    undefined,
    (ev, close) => (state ? show(ev, close) : held.push(ev)),
    false,
    async (close) => {
      goalId = (await client.call("goal.submit", params)).goal_id;
      onSubmitted(goalId);
      state = initialWatchState({ goalId, budgetTokens: (await ctx.config()).limits.goalMaxTokens });
      screen.update(state);
      for (const ev of held.splice(0)) show(ev, close);
    },
  );
  if (!state || goalId === undefined) return 1;
  return finish(ctx, client, goalId, state, screen);
}

export const watch: Command = {
  ...commandSpec("watch"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, jsonOption);
    if (positionals.length > 1) throw new UsageError(`give at most one goal id\nusage: ${this.usage}`);
    try {
      return await withClient(ctx, (client) => watchGoal(ctx, client, positionals[0], values.json === true));
    } catch (e) {
      // The daemon's refusal echoes what it was asked (a goal id may hold an ESC) and Redis's
      // text: printed as inert text, as everything else the watch prints.
      if (e instanceof AidoError) throw new AidoError(e.code, inert(e.message), e.details);
      throw e;
    }
  },
};
