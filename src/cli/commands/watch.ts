// cli/commands/watch.ts — `aido watch [ID]`: the live view of one goal (or of every goal)
// from the daemon's event stream. The view itself is watch/state.ts (reducer) and
// watch/render.ts + watch/screen.ts (drawing); this module owns the socket: it seeds the
// view from goal.status and agent.list, subscribes, and ends when the goal ends, with
// its outcome as the exit code (0 succeeded, 1 failed or cancelled). --json prints the
// raw events as JSON lines instead.

import { AidoClient, type Subscription } from "../../client/client.js";
import { errorMessage } from "../../errors.js";
import { type Command, type CommandContext, jsonOption, parseCommandArgs, UsageError } from "../command.js";
import { WatchScreen } from "../watch/screen.js";
import {
  exitCodeOf,
  initialWatchState,
  reduceWatch,
  type WatchState,
  withGoalStatus,
} from "../watch/state.js";
import { fromWireEvent } from "../watch/wire.js";
import { isFinished, withClient } from "./daemon-client.js";

function screenFor(ctx: CommandContext) {
  if (ctx.io.screen) return ctx.io.screen;
  // Without a raw stream (tests, embedding), print whole lines through io.out.
  return {
    write: (t: string) => {
      for (const line of t.replace(/\n$/, "").split("\n")) ctx.io.out(line);
    },
    isTTY: false,
  };
}

/** Watch until the goal ends (goalId) or the stream ends (all goals). Returns the exit code. */
export async function watchGoal(
  ctx: CommandContext,
  client: AidoClient,
  goalId: string | undefined,
  json = false,
): Promise<number> {
  const config = ctx.config();
  const goal = goalId === undefined ? undefined : await client.call("goal.status", { goal_id: goalId });
  const agents = await client.call("agent.list", {
    ...(goalId ? { goal_id: goalId } : {}),
    include_stopped: goalId !== undefined,
  });
  let state: WatchState = initialWatchState({
    goalId: goalId ?? null,
    budgetTokens: config.limits.goalMaxTokens,
    ...(goal ? { goal } : {}),
    agents: agents.agents,
  });
  const screen = json ? undefined : new WatchScreen(screenFor(ctx));
  screen?.update(state);
  if (goal && isFinished(goal)) {
    screen?.close(state);
    return exitCodeOf(state) ?? 1;
  }
  let sub: Subscription | undefined;
  const onSigint = () => sub?.close();
  process.once("SIGINT", onSigint);
  try {
    sub = await AidoClient.subscribe(config.socketPath, goalId, (wire) => {
      if (json) ctx.io.out(JSON.stringify(wire));
      const ev = fromWireEvent(wire);
      if (!ev) return;
      state = reduceWatch(state, ev);
      screen?.update(state);
    });
    // The goal may have ended between goal.status and the subscription: check once more.
    if (goalId !== undefined) {
      const again = await client.call("goal.status", { goal_id: goalId });
      if (isFinished(again) && !state.finished) {
        state = withGoalStatus(state, again);
        sub.close();
      }
    }
    await sub.done;
  } finally {
    process.off("SIGINT", onSigint);
  }
  if (goalId !== undefined && !state.finished) {
    // The stream ended without the goal's end: Ctrl-C, or the daemon went away.
    try {
      const last = await client.call("goal.status", { goal_id: goalId });
      if (isFinished(last)) state = withGoalStatus(state, last);
    } catch (e) {
      ctx.io.err(`aido watch: lost the daemon: ${errorMessage(e)}`);
    }
  }
  screen?.close(state);
  if (goalId === undefined) return 0;
  const code = exitCodeOf(state);
  if (code === undefined)
    ctx.io.err(`goal ${goalId} is still running (aido watch ${goalId} to follow it again)`);
  return code ?? 1;
}

export const watch: Command = {
  name: "watch",
  summary: "live view of a goal (or all): agents, tokens, inference queue, tools, approvals",
  usage: "aido watch [GOAL_ID] [--json]",
  example: "aido watch g-20250101-ab12cd   # exits 0 if the goal succeeds, 1 if not",
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, jsonOption);
    if (positionals.length > 1) throw new UsageError(`give at most one goal id\nusage: ${this.usage}`);
    return withClient(ctx.config(), (client) => watchGoal(ctx, client, positionals[0], values.json === true));
  },
};
