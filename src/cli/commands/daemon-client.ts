// cli/commands/daemon-client.ts — how a command reaches agentd: one AidoClient on
// the socket (CommandContext.socketPath) for the command's lifetime, closed whatever
// happens. When nothing listens there, the client's error already says so and how to
// start the daemon; the router turns it into that one line and exit 1 (the thing asked
// could not be done).
// The configuration is not loaded on the way in (its parsers would double the start-up
// time and memory of `aido goals`): a running daemon validated it when it started. When
// no daemon answers, it is loaded before the "not running" error is reported, so that
// a broken config.yaml still makes the command exit 2 naming the problem, as every
// other command does.

import { AidoClient } from "../../client/client.js";
import type { GoalStatus } from "../../kernel/goal-store.js";
import type { CommandContext } from "../command.js";

export async function withClient<T>(
  ctx: Pick<CommandContext, "socketPath" | "config">,
  fn: (client: AidoClient) => Promise<T>,
): Promise<T> {
  let client: AidoClient;
  try {
    // The daemon's line limit, read from the configuration only for a request large enough to meet it.
    client = await AidoClient.connect(ctx.socketPath(), {
      maxLineBytes: async () => (await ctx.config()).daemon.maxLineBytes,
    });
  } catch (e) {
    await ctx.config(); // a configuration error is the one to report
    throw e;
  }
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export const isFinished = (g: Pick<GoalStatus, "state">): boolean =>
  g.state === "succeeded" || g.state === "failed" || g.state === "cancelled";

/** 0 when the goal succeeded, 1 when it failed or was cancelled. */
export const goalExitCode = (g: Pick<GoalStatus, "state">): number => (g.state === "succeeded" ? 0 : 1);

/** Wait for a goal to end, in goal.wait slices of a minute (each call has its own timeout). */
export async function waitForGoal(client: AidoClient, goalId: string): Promise<GoalStatus> {
  for (;;) {
    const g = await client.call("goal.wait", { goal_id: goalId, timeout_ms: 60_000 }, { timeoutMs: 75_000 });
    if (isFinished(g)) return g;
  }
}
