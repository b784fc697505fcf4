// Red team: an intent's tokens_spent and a daemon that died with a call at the provider.
// The restarted daemon's recovery closes the dead goal's account, which charges the call
// its bound (budget.charged_aborted: the provider had the request), but the intent was
// told only by the call itself (the goal's onUsage), which died with the process: the
// intent read 0 spent while its goal's account had been charged, and the next goal under
// it started with the whole budget again, and the goal's own usage read 0. The ledger now
// charges the goal's row (its usage) and its carried intent in the transaction of every
// charge, whoever makes it. agentd as a real process, kill -9.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import { RESTART_REASON } from "../../src/kernel/goals.js";
import { manifest } from "../daemon/fixture.js";
import { killChildren, startDaemonChild, until } from "../daemon/process.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let home: TempHome | undefined;
let project: string | undefined;

beforeAll(async () => {
  server = await startProviderServer();
});
afterEach(() => {
  killChildren();
  home?.cleanup();
  home = undefined;
  if (project) rmSync(project, { recursive: true, force: true });
  project = undefined;
  server.reset();
});
afterAll(async () => {
  await server.close();
});

describe("a daemon killed with a call at the provider", () => {
  it("charges the call's bound to the goal's intent when the restarted daemon recovers the goal", async () => {
    home = makeTempHome();
    project = mkdtempSync(join(tmpdir(), "aido-budget-restart-"));
    const held = server.script('manifest "held"', [turn.hang()]);
    const first = await startDaemonChild(home, server);
    const c = await AidoClient.connect(home.config.socketPath);
    await c.call("intent.set", { workspace: project, objective: "within budget", budget_tokens: 50_000 });
    const { goal_id } = await c.call("goal.submit", {
      goal: "hold",
      manifest: manifest("held"),
      workspace: project,
    });
    await until(() => held.requests.length === 1 || undefined, 20_000);
    first.child.kill("SIGKILL");
    await first.exited;
    c.close();

    await startDaemonChild(home, server);
    const c2 = await AidoClient.connect(home.config.socketPath);
    try {
      expect(await c2.call("goal.status", { goal_id })).toMatchObject({
        state: "failed",
        error: RESTART_REASON,
      });
      const { entries } = await c2.call("audit.query", { kind: "budget.charged_aborted", goal_id });
      expect(entries).toHaveLength(1);
      const charged = (entries[0]?.payload as { charged: number } | undefined)?.charged ?? 0;
      expect(charged).toBeGreaterThan(0);
      const { intent } = await c2.call("intent.status", { workspace: project });
      expect(intent?.tokens_spent).toBe(charged);
      // The goal's own usage counts the recovery's charge too (it read 0 used): the ledger
      // adds every charge to the goal's row in the charge's transaction.
      const { usage } = await c2.call("goal.status", { goal_id });
      expect(usage.input_tokens + usage.output_tokens).toBe(charged);
    } finally {
      c2.close();
    }
  });
});
