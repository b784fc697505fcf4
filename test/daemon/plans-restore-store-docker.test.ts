// plan.execute {on_failure: "restore"} against the goal's snapshot store and the size of
// its answer, with a real daemon and real Docker: the snapshots the undo needs survive the
// pruning another call's snapshot does (the gate's own, before the plan's exec), and a
// failure that leaves thousands of paths answers with a bounded list and their counts.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { docker, kinds, planner, usePlansDaemon, workspaceOf } from "./plans-fixture.js";

const { suite, spawn } = usePlansDaemon();

const KIB = 1024;

describe("on_failure restore and the snapshot store", () => {
  it("puts back content only the snapshot before the plan held, though the gate's snapshot before a later exec pruned past the cap", async () => {
    const fx = await suite.start({
      ...docker,
      config: (c) => {
        c.sandbox.snapshotsMaxMb = 2;
      },
    });
    const c = await fx.client();
    const a = await spawn(
      c,
      planner({ capabilities: [...(planner().capabilities as string[]), "exec: head *"] }),
    );
    const blob = (name: string) => ({
      tool: "exec",
      input: { command: `head -c ${700 * KIB} /dev/urandom > /workspace/${name}` },
    });
    const set = await c.call("tool.invoke", { agent_id: a.agent_id, ...blob("a.bin") });
    expect(set.is_error).toBe(false);
    const ws = workspaceOf(fx, a.goal_id);
    const before = readFileSync(join(ws, "a.bin"));
    // Step 0 replaces a.bin (its old bytes are then held by the snapshot before the plan
    // and the gate's before step 0 only); step 1 fills the store past 2 MiB; the gate's
    // snapshot before step 2 prunes the oldest snapshots until the store fits.
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "fill the store",
      steps: [blob("a.bin"), blob("b.bin"), { tool: "exec", input: { command: "ls /workspace/missing" } }],
    });
    const r = await c.call("plan.execute", { plan_id: p.plan_id, on_failure: "restore" });
    expect(r.steps.map((s: { ok: boolean }) => s.ok)).toEqual([true, true, false]);
    expect(await kinds(c, a.agent_id, "snapshot.pruned")).not.toEqual([]);
    expect(r.restore).toMatchObject({ files_failed: [], conflicts: [] });
    expect(r.status).toBe("restored");
    expect(readFileSync(join(ws, "a.bin")).equals(before)).toBe(true);
  });
});
