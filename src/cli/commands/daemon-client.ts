// cli/commands/daemon-client.ts — how a command reaches agentd: one AidoClient on
// config.socketPath for the command's lifetime, closed whatever happens. When nothing
// listens there, the client's error already says so and how to start the daemon; the
// router turns it into that one line and exit 1 (the thing asked could not be done).

import { AidoClient } from "../../client/client.js";
import type { Config } from "../../config.js";
import type { GoalStatus } from "../../kernel/goal-store.js";

export async function withClient<T>(config: Config, fn: (client: AidoClient) => Promise<T>): Promise<T> {
  const client = await AidoClient.connect(config.socketPath);
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
