// Plans attacked the way a client racing its own calls, or a model choosing steps, would:
// two plan.execute calls raced on one plan, a restore after a failure that would put back a
// file the agent may not write, and shadow steps whose effects live outside the copy. Real
// daemon, real Docker, over the socket. What these show held without a change.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { docker, kinds, planner, usePlansDaemon, workspaceOf, write } from "./plans-fixture.js";

const { suite, spawn } = usePlansDaemon();

describe("plans under attack", () => {
  it("two plan.execute calls raced on one plan: it runs once, the other is refused", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const d = await fx.client();
    const a = await spawn(c);
    await write(c, a.agent_id, "/workspace/log.txt", "");
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "append once",
      steps: [{ tool: "exec", input: { command: "sh -c 'echo ran >> /workspace/log.txt'" } }],
    });
    const settled = await Promise.allSettled([
      c.call("plan.execute", { plan_id: p.plan_id }),
      d.call("plan.execute", { plan_id: p.plan_id }),
    ]);
    expect(settled.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const [refused] = settled.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
    expect(refused?.message).toMatch(/already executed/);
    expect(readFileSync(join(workspaceOf(fx, a.goal_id), "log.txt"), "utf8")).toBe("ran\n");
    expect(await kinds(c, a.agent_id, "plan.started")).toHaveLength(1);
  });

  it("a plan cancelled as a step ends runs no later step, and says which it did not start", async () => {
    // The cancel lands between two steps: the first has ended (its call no longer waits on the
    // signal), the second has not begun. The gate runs a call whose signal is already aborted
    // when it needs no approval, so the plan's loop is what must stop.
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c);
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "two writes",
      steps: [
        { tool: "file_write", input: { path: "/workspace/first.txt", content: "1" } },
        { tool: "file_write", input: { path: "/workspace/second.txt", content: "2" } },
      ],
    });
    const rt = fx.daemon.runtime;
    const cancel = new AbortController();
    const result = await rt.plans.execute(
      p.plan_id,
      { signal: cancel.signal },
      async (agentId, tool, input, s) => {
        const r = await rt.invokeTool(agentId, tool, input, s);
        cancel.abort(new Error("the client cancelled the plan"));
        return r;
      },
    );
    expect(result.status).toBe("failed");
    expect(result.steps.map((s) => [s.index, s.ok, s.error?.code])).toEqual([
      [0, true, undefined],
      [1, false, "cancelled"],
    ]);
    expect(result.steps[1]?.error?.message).toBe("the plan was cancelled before step 1 started");
    const ws = workspaceOf(fx, a.goal_id);
    expect(readFileSync(join(ws, "first.txt"), "utf8")).toBe("1");
    expect(existsSync(join(ws, "second.txt"))).toBe(false);
    const [executed] = await kinds(c, a.agent_id, "plan.executed");
    expect(executed?.payload).toMatchObject({ status: "failed", failed_step: 1, steps_run: 2 });
  });

  it("a restore after a failure undoes the plan's write and leaves the operator's edit between steps alone", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const human = await fx.client();
    const a = await spawn(
      c,
      planner({
        capabilities: [
          "tool: file_write",
          "tool: file_list",
          "file_write: /workspace/mine/**",
          "file_read: /workspace/**",
        ],
        approval_required: ["file_list"],
      }),
    );
    await write(c, a.agent_id, "/workspace/mine/a.txt", "v1\n");
    const ws = workspaceOf(fx, a.goal_id);
    mkdirSync(join(ws, "theirs"));
    writeFileSync(join(ws, "theirs", "b.txt"), "operator v1\n");
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "waits, then is denied",
      steps: [
        { tool: "file_write", input: { path: "/workspace/mine/a.txt", content: "v2\n" } },
        { tool: "file_list", input: { path: "/workspace" } },
      ],
    });
    const run = c.call("plan.execute", { plan_id: p.plan_id, on_failure: "restore" });
    let pending = (await human.call("approval.list", {})).approvals;
    for (let i = 0; pending.length === 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      pending = (await human.call("approval.list", {})).approvals;
    }
    // While the plan waits, the operator changes their own file, which the agent may not write.
    writeFileSync(join(ws, "theirs", "b.txt"), "operator v2\n");
    await human.call("approval.respond", { id: pending[0]!.id, decision: "deny" });
    const r = await run;
    expect(r.steps.map((s) => s.ok)).toEqual([true, false]);
    // The agent's own change is undone; the operator's is not reverted by the agent's restore.
    expect(readFileSync(join(ws, "mine", "a.txt"), "utf8")).toBe("v1\n");
    expect(readFileSync(join(ws, "theirs", "b.txt"), "utf8")).toBe("operator v2\n");
    // The operator's change came between the plan's steps: the restore undoes only what the
    // steps changed, so it never even asks to write their file (once, it put back the whole
    // snapshot and only the agent's missing grant kept the operator's edit).
    expect(r.status).toBe("restored");
    expect(r.restore).toMatchObject({ paths_changed: 1, files_restored: 1, files_failed: [], conflicts: [] });
  });

  it("a shadow does not run a step whose effects live outside the copy, even one the agent holds", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(
      c,
      planner({
        capabilities: [
          "tool: spawn_agent",
          "spawn_child: [writer]",
          "tool: file_write",
          "file_write: /workspace/**",
        ],
      }),
    );
    const child = { name: "writer", system_prompt: "x", capabilities: [] };
    const sim = await c.call("plan.simulate", {
      agent_id: a.agent_id,
      shadow: true,
      steps: [
        { tool: "file_write", input: { path: "/workspace/a.txt", content: "a" } },
        { tool: "spawn_agent", input: { manifest: child, message: "go" } },
      ],
    });
    expect(sim.steps[1]).toMatchObject({ verdict: "allow" });
    expect(sim.shadow!.steps).toMatchObject([
      { index: 0, ran: true, ok: true },
      { index: 1, ran: false, ok: false, error: { message: expect.stringMatching(/not run in a shadow/) } },
    ]);
    expect((await c.call("agent.list", {})).agents.map((x) => x.agent_id)).toEqual([a.agent_id]);
  });

  it("a plan executed as another agent runs in that agent's goal, and its whole run is on record under that goal", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c);
    const b = await spawn(c);
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "run elsewhere",
      steps: [{ tool: "file_write", input: { path: "/workspace/by-plan.txt", content: "x" } }],
    });
    const r = await c.call("plan.execute", { plan_id: p.plan_id, agent_id: b.agent_id });
    expect(r.status).toBe("succeeded");
    expect(readFileSync(join(workspaceOf(fx, b.goal_id), "by-plan.txt"), "utf8")).toBe("x");
    const underB = (await c.call("audit.query", { goal_id: b.goal_id, limit: 1000 })).entries;
    const planKinds = underB
      .filter((e) => e.kind.startsWith("plan."))
      .map((e) => [e.kind, e.agent_id])
      .sort();
    expect(planKinds).toEqual([
      ["plan.executed", b.agent_id],
      ["plan.started", b.agent_id],
    ]);
  });
});
