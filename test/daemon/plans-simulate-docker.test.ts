// plan.simulate over the socket, with a real daemon and real Docker: a simulation is the
// gate's own verdict per step with what the step would touch, and changes nothing; a shadow
// simulation runs the steps in a throwaway copy and reports their output and the diff,
// leaving the real workspace byte-identical.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { rpcError } from "./fixture.js";
import { docker, kinds, planner, treeOf, usePlansDaemon, workspaceOf, write } from "./plans-fixture.js";

const { suite, spawn } = usePlansDaemon();

describe("plan.simulate", () => {
  it("gives the gate's verdict per step with its inventory, and changes nothing", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c, planner({ approval_required: ["file_list"] }));
    await write(c, a.agent_id, "/workspace/keep.txt", "kept\n");
    const before = treeOf(workspaceOf(fx, a.goal_id));
    const invokedBefore = (await kinds(c, a.agent_id, "tool.invoked")).length;
    const deniedBefore = (await kinds(c, a.agent_id, "tool.denied")).length;

    const sim = await c.call("plan.simulate", {
      agent_id: a.agent_id,
      steps: [
        { tool: "file_write", input: { path: "/workspace/new.txt", content: "x" } },
        { tool: "exec", input: { command: "timeout 5 sh -c 'echo hi > /workspace/out.txt'" } },
        { tool: "file_write", input: { path: "/output/x.md", content: "no" } },
        { tool: "exec", input: { command: "sudo echo hi" } },
        { tool: "file_list", input: { path: "/workspace" } },
      ],
    });

    expect(sim.ok).toBe(false);
    expect(sim.note).toMatch(/in order against the present state/);
    const [w, ex, out, sudo, list] = sim.steps;
    expect(w).toMatchObject({ index: 0, tool: "file_write", verdict: "allow" });
    expect(w!.inventory.writes).toEqual(["/workspace/new.txt"]);
    expect(ex).toMatchObject({ index: 1, verdict: "allow" });
    const cmd = ex!.inventory.commands[0]!;
    expect(cmd.command).toBe("timeout 5 sh -c 'echo hi > /workspace/out.txt'");
    // The wrapper and sh -c are unfolded: the inner echo is among the programs judged.
    expect(cmd.programs).toContain("echo hi");
    expect(ex!.inventory.writes).toContain("/workspace/out.txt");
    expect(out).toMatchObject({ index: 2, verdict: "deny", stage: "capability", code: "capability_denied" });
    expect(out!.reason).toMatch(/no capability grants file_write on \/output\/x\.md/);
    expect(sudo).toMatchObject({ index: 3, verdict: "deny", stage: "policy", code: "policy_denied" });
    expect(sudo!.reason).toMatch(/priv-escalation/);
    expect(list).toMatchObject({ index: 4, verdict: "confirm", stage: "approval" });
    expect(list!.inventory.approval).toMatchObject({ would_ask: true });
    expect(list!.inventory.approval!.covers).toMatch(/file_list on \/workspace/);

    // Nothing changed: the host folder is byte-identical, nothing was invoked, denied or asked.
    expect(treeOf(workspaceOf(fx, a.goal_id))).toEqual(before);
    expect(existsSync(join(workspaceOf(fx, a.goal_id), "new.txt"))).toBe(false);
    expect((await kinds(c, a.agent_id, "tool.invoked")).length).toBe(invokedBefore);
    expect((await kinds(c, a.agent_id, "tool.denied")).length).toBe(deniedBefore);
    expect((await c.call("approval.list", {})).approvals).toEqual([]);
    expect(await kinds(c, a.agent_id, "approval.requested")).toEqual([]);
    // ...and the simulation itself is on record, its denials findable but not tool.denied.
    const [simulated] = await kinds(c, a.agent_id, "plan.simulated");
    expect(simulated!.payload).toMatchObject({
      ok: false,
      steps: [
        { index: 0, verdict: "allow" },
        { index: 1, verdict: "allow" },
        { index: 2, verdict: "deny", stage: "capability" },
        { index: 3, verdict: "deny", stage: "policy" },
        { index: 4, verdict: "confirm" },
      ],
    });
  });

  it("says a standing Allow Session covers a step instead of asking", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c, planner({ approval_required: ["file_list"] }));
    const call = c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "file_list",
      input: { path: "/workspace" },
    });
    let pending = (await c.call("approval.list", {})).approvals;
    for (let i = 0; pending.length === 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      pending = (await c.call("approval.list", {})).approvals;
    }
    await c.call("approval.respond", { id: pending[0]!.id, decision: "allow_session" });
    await call;
    const sim = await c.call("plan.simulate", {
      agent_id: a.agent_id,
      steps: [{ tool: "file_list", input: { path: "/workspace" } }],
    });
    expect(sim.steps[0]).toMatchObject({
      verdict: "allow",
      inventory: {
        approval: { would_ask: false, covered_by: { via: "allow_session", approval_id: pending[0]!.id } },
      },
    });
    expect(sim.ok).toBe(true);
  });

  it("refuses malformed params with -32602 naming the field, and the daemon lives on", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c);
    const steps = [
      { tool: "file_write", input: { path: "/workspace/a", content: "a" } },
      { tool: "file_read", input: { path: "/workspace/a" } },
      { tool: "file_read", input: { path: 5 } },
    ];
    const bad = await rpcError(c.call("plan.simulate", { agent_id: a.agent_id, steps }));
    expect(bad.rpcCode).toBe(-32602);
    expect(bad.message).toMatch(/steps\.2\.input\.path/);
    expect(bad.details.field).toBe("steps.2.input.path");
    const unknown = await rpcError(
      c.call("plan.create", { agent_id: a.agent_id, title: "t", steps: [{ tool: "rm_rf", input: {} }] }),
    );
    expect(unknown.details.field).toBe("steps.0.tool");
    const extra = await rpcError(
      c.call("plan.create", {
        agent_id: a.agent_id,
        title: "t",
        steps: [{ tool: "file_read", input: {}, x: 1 }],
      } as never),
    );
    expect(extra.rpcCode).toBe(-32602);
    expect(extra.details.field).toBe("steps.0.x");
    const noAgent = await rpcError(c.call("plan.simulate", { steps } as never));
    expect(noAgent.details.field).toBe("agent_id");
    const onFailure = await rpcError(c.call("plan.execute", { plan_id: "p", on_failure: "maybe" } as never));
    expect(onFailure.details.field).toBe("on_failure");
    // Still serving.
    const ok = await c.call("plan.simulate", { agent_id: a.agent_id, steps: steps.slice(0, 2) });
    expect(ok.steps.map((s) => s.verdict)).toEqual(["allow", "allow"]);
  });
});

describe("plan.simulate with shadow", () => {
  it("runs the steps in a throwaway copy and reports outputs and the diff; the real workspace is untouched", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(
      c,
      planner({
        capabilities: [
          "tool: file_write",
          "tool: file_edit",
          "tool: exec",
          "file_write: /workspace/**",
          "file_read: /workspace/**",
          "exec: sh *",
          "exec: cat *",
          "exec: python3 *",
        ],
      }),
    );
    await write(c, a.agent_id, "/workspace/keep.txt", "line1\nline2\nline3\n");
    await write(c, a.agent_id, "/workspace/old.txt", "old\n");
    const real = workspaceOf(fx, a.goal_id);
    const before = treeOf(real);
    const sim = await c.call("plan.simulate", {
      agent_id: a.agent_id,
      shadow: true,
      steps: [
        {
          tool: "file_edit",
          input: { path: "/workspace/keep.txt", old_string: "line2", new_string: "LINE2" },
        },
        { tool: "file_write", input: { path: "/workspace/new.txt", content: "made by step 2\n" } },
        // Step 3 sees what step 2 made: the shadow's steps run in order on the copy.
        {
          tool: "exec",
          input: {
            command: "cat /workspace/new.txt && python3 -c \"import os; os.remove('/workspace/old.txt')\"",
          },
        },
      ],
    });
    const shadow = sim.shadow!;
    expect(shadow.goal_id).toMatch(/^w_/);
    expect(shadow.steps.map((s) => [s.ran, s.ok])).toEqual([
      [true, true],
      [true, true],
      [true, true],
    ]);
    expect(shadow.steps[2]!.output).toContain("made by step 2");
    expect(shadow.diff.added).toEqual([
      expect.objectContaining({ path: "/workspace/new.txt", type: "file", size: 15 }),
    ]);
    expect(shadow.diff.deleted).toEqual([expect.objectContaining({ path: "/workspace/old.txt", size: 4 })]);
    const [changed] = shadow.diff.changed;
    expect(changed).toMatchObject({ path: "/workspace/keep.txt", size: 18, size_before: 18 });
    expect(changed!.diff).toContain("-line2\n+LINE2");
    expect(shadow.diff.added[0]!.diff).toContain("+made by step 2");
    // The real workspace is byte-identical; the copy, its folder and its container are gone.
    expect(treeOf(real)).toEqual(before);
    expect(existsSync(join(fx.home.config.goalsDir, shadow.goal_id))).toBe(false);
    expect(
      execFileSync("docker", ["ps", "-a", "--format", "{{.Names}}"], { encoding: "utf8" }),
    ).not.toContain(shadow.goal_id);
    // Audited: the simulation with its shadow, the shadow's calls under its own pseudo-goal only.
    const [simulated] = await kinds(c, a.agent_id, "plan.simulated");
    expect(simulated!.payload).toMatchObject({
      shadow: { goal_id: shadow.goal_id, steps_run: 3, added: 1, changed: 1, deleted: 1 },
    });
    const invoked = await kinds(c, a.agent_id, "tool.invoked");
    expect(invoked.filter((e) => e.goal_id === shadow.goal_id)).toHaveLength(3);
    expect(invoked.filter((e) => e.goal_id === a.goal_id)).toHaveLength(2); // the two set-up writes
  });

  it("reports a link a step planted as a link, never reading the host file it points to", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(
      c,
      planner({ capabilities: [...(planner().capabilities as string[]), "exec: python3 *"] }),
    );
    const sim = await c.call("plan.simulate", {
      agent_id: a.agent_id,
      shadow: true,
      steps: [
        {
          tool: "exec",
          input: { command: "python3 -c \"import os; os.symlink('/etc/hostname', '/workspace/link')\"" },
        },
      ],
    });
    expect(sim.shadow!.steps[0]).toMatchObject({ ran: true, ok: true });
    expect(sim.shadow!.diff.added).toEqual([
      { path: "/workspace/link", type: "link", size: "/etc/hostname".length },
    ]);
    expect(existsSync(join(workspaceOf(fx, a.goal_id), "link"))).toBe(false);
  });

  it("does not run a step that would ask a human, and asks nobody", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c, planner({ approval_required: ["file_write"] }));
    const sim = await c.call("plan.simulate", {
      agent_id: a.agent_id,
      shadow: true,
      steps: [{ tool: "file_write", input: { path: "/workspace/a.txt", content: "a" } }],
    });
    expect(sim.steps[0]!.verdict).toBe("confirm");
    expect(sim.shadow!.steps).toEqual([
      expect.objectContaining({
        index: 0,
        ran: false,
        ok: false,
        error: expect.objectContaining({ stage: "approval" }),
      }),
    ]);
    expect(sim.shadow!.diff.counts).toEqual({ added: 0, changed: 0, deleted: 0 });
    expect(await kinds(c, a.agent_id, "approval.requested")).toEqual([]);
  });
});
