// plan.execute and the goal's snapshot store cap (sandbox.snapshots_max_mb), with a real
// daemon and real Docker: plans executed with on_failure "stop" run side by side in a goal,
// as many as a client starts, so what each holds past the cap adds up. None may keep the
// snapshots its steps name from pruning: an agent that names a fresh snapshot in each of
// many long plans would otherwise grow the host folder by one workspace per plan.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { MIB } from "../../src/sandbox/quota.js";
import { blob, cappedStore, du, kinds, usePlansDaemon, workspaceOf } from "./plans-fixture.js";

const plans = usePlansDaemon();

/** Wait until the agent's calls of `tool` have been invoked `n` times. */
async function invokedTimes(c: AidoClient, agentId: string, tool: string, n: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const entries = await kinds(c, agentId, "tool.invoked");
    const count = entries.filter((e: { payload: unknown }) => (e.payload as { tool?: string }).tool === tool);
    if (count.length >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${tool} was not invoked ${n} times`);
}

describe("plans executed with on_failure stop and the store's cap", () => {
  it("three long plans at once, each naming a snapshot of fresh content, leave the store within its cap", async () => {
    const { fx, c, a } = await cappedStore(plans, [
      "exec: head *",
      "exec: python3 *",
      "tool: snapshot_create",
      "tool: snapshot_restore",
      "file_read: /output/**",
      "file_write: /output/**",
    ]);
    const fresh = async () => {
      const r = await c.call("tool.invoke", { agent_id: a.agent_id, ...blob("a.bin") });
      expect(r.is_error).toBe(false);
    };
    const snapshot = async () => {
      const r = await c.call("tool.invoke", { agent_id: a.agent_id, tool: "snapshot_create", input: {} });
      return (r.data as { id: string }).id;
    };
    // Each plan's first step waits for the test to let it go; its second restores the
    // snapshot of 700 KiB of its own (2 MiB hold two such snapshots, not four).
    const wait = {
      tool: "exec",
      input: {
        command: `python3 -c "import os, time; [time.sleep(0.1) for _ in iter(lambda: os.path.exists('/workspace/go'), True)]"`,
      },
    };
    const runs: Promise<unknown>[] = [];
    for (let i = 1; i <= 3; i++) {
      await fresh();
      const id = await snapshot();
      const p = await c.call("plan.create", {
        agent_id: a.agent_id,
        title: `long plan ${i}`,
        steps: [wait, { tool: "snapshot_restore", input: { id } }],
      });
      // A connection's requests run side by side: this one returns once the plan ended.
      runs.push(c.call("plan.execute", { plan_id: p.plan_id, on_failure: "stop" }));
      await invokedTimes(c, a.agent_id, "exec", 2 * i);
    }
    await fresh();
    await snapshot();
    const store = join(fx.home.config.goalsDir, a.goal_id, "snapshots");
    try {
      // All three plans still run (each waits in its first step).
      expect(await kinds(c, a.agent_id, "plan.executed")).toEqual([]);
      expect(await kinds(c, a.agent_id, "snapshot.pruned")).not.toEqual([]);
      expect(du(store)).toBeLessThanOrEqual(2 * MIB);
    } finally {
      // Let them go; again until all ended (a plan's snapshot_restore removes the file).
      let settled = false;
      const all = Promise.allSettled(runs).finally(() => {
        settled = true;
      });
      while (!settled) {
        writeFileSync(join(workspaceOf(fx, a.goal_id), "go"), "");
        await new Promise((r) => setTimeout(r, 100));
      }
      const ended = await all;
      expect(ended.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    }
  });
});
