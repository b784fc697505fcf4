// Propose -> simulate -> execute over the socket, with a real daemon, real Docker and the
// real SQLite file: a simulation is the gate's own verdict and changes nothing; a plan runs
// exactly its stored steps once, stops at the first failure and restores on request; and a
// plan whose steps, grants or policy changed since it was simulated is refused, however the
// change was made (the operator's config, another agent, an edited ledger row).

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { requireDocker } from "../support/docker.js";
import { type DaemonFixture, manifest, rpcError, useDaemonPerTest } from "./fixture.js";

const goals: string[] = [];

beforeAll(() => requireDocker());
const suite = useDaemonPerTest({
  beforeClose: async (fx) => {
    for (const g of goals.splice(0)) await fx?.daemon.runtime.backend.remove(g).catch(() => {});
  },
});

const docker = { runtime: { backend: undefined, builtinTools: daemonBuiltinTools } };

const planner = (extra: Record<string, unknown> = {}) =>
  manifest("planner", {
    capabilities: [
      "tool: file_write",
      "tool: file_read",
      "tool: file_list",
      "tool: exec",
      "file_write: /workspace/**",
      "file_read: /workspace/**",
      "exec: echo *",
      "exec: sh *",
      "exec: cat *",
      "exec: ls *",
    ],
    ...extra,
  });

async function spawn(c: AidoClient, m: Record<string, unknown> = planner()) {
  const a = await c.call("agent.spawn", { manifest: m });
  goals.push(a.goal_id);
  return a;
}

const workspaceOf = (fx: DaemonFixture, goalId: string) => join(fx.home.config.goalsDir, goalId, "workspace");

/** Every path under a folder with its type and content digest: what "byte-identical" compares. */
function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = statSync(join(dir, r));
      if (st.isDirectory()) {
        out[r] = `dir ${st.mode}`;
        walk(r);
      } else
        out[r] = createHash("sha256")
          .update(readFileSync(join(dir, r)))
          .digest("hex");
    }
  };
  walk("");
  return out;
}

async function write(c: AidoClient, agentId: string, path: string, content: string) {
  const r = await c.call("tool.invoke", { agent_id: agentId, tool: "file_write", input: { path, content } });
  expect(r.is_error).toBe(false);
}

const kinds = async (c: AidoClient, agentId: string, kind: string) =>
  (await c.call("audit.query", { agent_id: agentId, kind, limit: 1000 })).entries;

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

describe("after a restart", () => {
  it("a plan that was executing is failed, not resumed, and a shadow copy left behind is removed", async () => {
    const fx = await suite.start(docker);
    let c = await fx.client();
    const a = await spawn(c, planner({ lifecycle: "persistent" }));
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "t",
      steps: [{ tool: "file_write", input: { path: "/workspace/a.txt", content: "a" } }],
    });
    // What a process killed in the middle leaves: the row mid-execution, a copy on disk.
    const db = new Database(fx.home.config.dbPath);
    db.prepare("UPDATE plans SET status = 'executing' WHERE id = ?").run(p.plan_id);
    db.close();
    const leftover = join(fx.home.config.goalsDir, "w_0123456789abcdef");
    mkdirSync(join(leftover, "workspace"), { recursive: true });
    writeFileSync(join(leftover, "workspace", "x.txt"), "x");
    await fx.restart();
    c = await fx.client();
    expect((await c.call("plan.list", {})).plans[0]!.status).toBe("failed");
    expect(existsSync(leftover)).toBe(false);
  });
});

describe("plan.create and plan.execute", () => {
  it("runs exactly the stored steps once, and says so in the ledger and the audit", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c);
    const created = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "two notes",
      steps: [
        { tool: "file_write", input: { path: "/workspace/a.txt", content: "alpha\n" } },
        { tool: "file_write", input: { path: "/workspace/b.txt", content: "beta\n" } },
        { tool: "exec", input: { command: "cat /workspace/a.txt /workspace/b.txt" } },
      ],
    });
    expect(created.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(created.simulation.ok).toBe(true);
    const r = await c.call("plan.execute", { plan_id: created.plan_id });
    expect(r.status).toBe("succeeded");
    expect(r.steps.map((s) => s.ok)).toEqual([true, true, true]);
    expect(r.steps[2]!.output).toContain("alpha\nbeta");
    expect(r.snapshot_id).toMatch(/^snap_/);
    expect(readFileSync(join(workspaceOf(fx, a.goal_id), "b.txt"), "utf8")).toBe("beta\n");
    const again = await rpcError(c.call("plan.execute", { plan_id: created.plan_id }));
    expect(again.rpcCode).toBe(-32004);
    expect(again.message).toMatch(/already executed/);
    const { plans } = await c.call("plan.list", { agent_id: a.agent_id });
    expect(plans).toMatchObject([
      { plan_id: created.plan_id, status: "succeeded", steps: 3, title: "two notes" },
    ]);
    expect(await kinds(c, a.agent_id, "plan.executed")).toMatchObject([
      { payload: { plan_id: created.plan_id, status: "succeeded", steps_run: 3 } },
    ]);
    expect((await kinds(c, a.agent_id, "tool.invoked")).length).toBe(3);
  });

  const failingPlan = [
    { tool: "file_write", input: { path: "/workspace/keep.txt", content: "v2\n" } },
    { tool: "file_write", input: { path: "/workspace/new.txt", content: "new\n" } },
    { tool: "exec", input: { command: "ls /workspace/missing" } },
    { tool: "file_write", input: { path: "/workspace/never.txt", content: "never\n" } },
  ];

  it("with on_failure restore, a failing step 3 rolls the workspace back to before step 1", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c);
    await write(c, a.agent_id, "/workspace/keep.txt", "v1\n");
    const before = treeOf(workspaceOf(fx, a.goal_id));
    const p = await c.call("plan.create", { agent_id: a.agent_id, title: "fails", steps: failingPlan });
    const r = await c.call("plan.execute", { plan_id: p.plan_id, on_failure: "restore" });
    expect(r.status).toBe("restored");
    expect(r.steps.map((s) => s.ok)).toEqual([true, true, false]);
    expect(r.restore?.files_failed).toEqual([]);
    expect(treeOf(workspaceOf(fx, a.goal_id))).toEqual(before);
    expect(readFileSync(join(workspaceOf(fx, a.goal_id), "keep.txt"), "utf8")).toBe("v1\n");
    expect(await kinds(c, a.agent_id, "plan.restored")).toMatchObject([
      { payload: { plan_id: p.plan_id, snapshot_id: r.snapshot_id, files_failed: 0 } },
    ]);
  });

  it("with on_failure stop, steps 1-2 stay applied and step 4 never runs", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c);
    await write(c, a.agent_id, "/workspace/keep.txt", "v1\n");
    const p = await c.call("plan.create", { agent_id: a.agent_id, title: "fails", steps: failingPlan });
    const r = await c.call("plan.execute", { plan_id: p.plan_id, on_failure: "stop" });
    expect(r.status).toBe("failed");
    expect(r.steps).toHaveLength(3);
    expect(r.steps[2]).toMatchObject({ index: 2, ok: false });
    const ws = workspaceOf(fx, a.goal_id);
    expect(readFileSync(join(ws, "keep.txt"), "utf8")).toBe("v2\n");
    expect(readFileSync(join(ws, "new.txt"), "utf8")).toBe("new\n");
    expect(existsSync(join(ws, "never.txt"))).toBe(false);
    expect((await c.call("plan.list", {})).plans[0]!.status).toBe("failed");
  });

  it("waits for a human on a step that needs approval, as any call does", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const human = await fx.client();
    const a = await spawn(c, planner({ approval_required: ["file_write"] }));
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "asks",
      steps: [{ tool: "file_write", input: { path: "/workspace/a.txt", content: "a" } }],
    });
    expect(p.simulation.steps[0]!.verdict).toBe("confirm");
    const run = c.call("plan.execute", { plan_id: p.plan_id });
    let pending = (await human.call("approval.list", {})).approvals;
    for (let i = 0; pending.length === 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      pending = (await human.call("approval.list", {})).approvals;
    }
    expect(pending).toHaveLength(1);
    await human.call("approval.respond", { id: pending[0]!.id, decision: "allow_once" });
    expect((await run).status).toBe("succeeded");
    expect(readFileSync(join(workspaceOf(fx, a.goal_id), "a.txt"), "utf8")).toBe("a");
  });

  it("stops at a step the gate denies, which is audited as a real denial", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c);
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "outside",
      steps: [
        { tool: "file_write", input: { path: "/workspace/a.txt", content: "a" } },
        { tool: "file_write", input: { path: "/output/x.md", content: "no" } },
      ],
    });
    expect(p.simulation.ok).toBe(false);
    const r = await c.call("plan.execute", { plan_id: p.plan_id, on_failure: "restore" });
    expect(r.status).toBe("restored");
    expect(r.steps[1]).toMatchObject({
      ok: false,
      error: { code: "capability_denied", stage: "capability" },
    });
    expect(existsSync(join(workspaceOf(fx, a.goal_id), "a.txt"))).toBe(false);
    expect(await kinds(c, a.agent_id, "tool.denied")).toHaveLength(1);
  });
});

describe("a plan that changed since it was simulated is refused", () => {
  const steps = [{ tool: "file_write", input: { path: "/workspace/a.txt", content: "a\n" } }];

  it("after the operator adds a deny rule and restarts the daemon", async () => {
    const fx = await suite.start(docker);
    let c = await fx.client();
    const a = await spawn(c, planner({ lifecycle: "persistent" }));
    const p = await c.call("plan.create", { agent_id: a.agent_id, title: "t", steps });
    fx.home.config.policy.deny.push("exec: git push *");
    await fx.restart();
    c = await fx.client();
    const e = await rpcError(c.call("plan.execute", { plan_id: p.plan_id }));
    expect(e.rpcCode).toBe(-32004);
    expect(e.message).toMatch(/the policy in force changed since it was simulated/);
    expect(e.details.changed).toEqual(["policy"]);
    expect(existsSync(join(workspaceOf(fx, a.goal_id), "a.txt"))).toBe(false);
    expect(await kinds(c, a.agent_id, "plan.refused")).toMatchObject([{ payload: { changed: ["policy"] } }]);
    expect((await c.call("plan.list", {})).plans[0]!.status).toBe("created");
  });

  it("when it is executed as an agent whose grants differ", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c);
    const b = await spawn(c, planner({ approval_required: ["file_write"] }));
    const p = await c.call("plan.create", { agent_id: a.agent_id, title: "t", steps });
    const e = await rpcError(c.call("plan.execute", { plan_id: p.plan_id, agent_id: b.agent_id }));
    expect(e.rpcCode).toBe(-32004);
    expect(e.message).toMatch(/the agent's grants \(or its approval_required list\) changed/);
    expect(e.details.changed).toEqual(["grants"]);
    // The plan was not spent by the refusal: its own agent still runs it.
    expect((await c.call("plan.execute", { plan_id: p.plan_id })).status).toBe("succeeded");
  });

  it("when a link swapped in after the simulation points a step elsewhere: the gate judges it again as it runs", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(
      c,
      planner({ capabilities: [...(planner().capabilities as string[]), "exec: python3 *"] }),
    );
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "innocent",
      steps: [{ tool: "file_write", input: { path: "/workspace/report.txt", content: "pwned" } }],
    });
    expect(p.simulation.steps[0]!.verdict).toBe("allow");
    // The attacker makes /workspace/report.txt a link to /output, which the agent may not write.
    await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "exec",
      input: { command: "python3 -c \"import os; os.symlink('/output/x.md', '/workspace/report.txt')\"" },
    });
    const r = await c.call("plan.execute", { plan_id: p.plan_id, on_failure: "restore" });
    expect(r.steps[0]).toMatchObject({
      ok: false,
      error: { code: "capability_denied", stage: "capability" },
    });
    expect(r.steps[0]!.error!.message).toMatch(/file_write on \/output\/x\.md/);
    expect(existsSync(join(fx.home.config.goalsDir, a.goal_id, "output", "x.md"))).toBe(false);
  });

  it("when its steps were edited in the ledger, or its hash and digests with them, or it was set back to run twice", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c);
    const p = await c.call("plan.create", { agent_id: a.agent_id, title: "t", steps });
    const db = new Database(fx.home.config.dbPath);
    try {
      const original = db
        .prepare("SELECT steps, steps_digest, hash FROM plans WHERE id = ?")
        .get(p.plan_id) as {
        steps: string;
        steps_digest: string;
        hash: string;
      };
      const evil = JSON.stringify([{ tool: "exec", input: { command: "echo pwned > /workspace/a.txt" } }]);
      db.prepare("UPDATE plans SET steps = ? WHERE id = ?").run(evil, p.plan_id);
      const edited = await rpcError(c.call("plan.execute", { plan_id: p.plan_id }));
      expect(edited.rpcCode).toBe(-32004);
      expect(edited.message).toMatch(/the plan's steps changed/);
      // The attacker recomputes the digest and the hash too: the row is no longer the signed one.
      const digest = createHash("sha256").update(evil).digest("hex");
      db.prepare("UPDATE plans SET steps_digest = ?, hash = ? WHERE id = ?").run(
        digest,
        "0".repeat(64),
        p.plan_id,
      );
      const forged = await rpcError(c.call("plan.execute", { plan_id: p.plan_id }));
      expect(forged.message).toMatch(/not the one the runtime signed/);
      expect(existsSync(join(workspaceOf(fx, a.goal_id), "a.txt"))).toBe(false);
      // Put the real row back, run it, then set its status back to run it a second time.
      db.prepare("UPDATE plans SET steps = ?, steps_digest = ?, hash = ? WHERE id = ?").run(
        original.steps,
        original.steps_digest,
        original.hash,
        p.plan_id,
      );
      expect((await c.call("plan.execute", { plan_id: p.plan_id })).status).toBe("succeeded");
      db.prepare("UPDATE plans SET status = 'created' WHERE id = ?").run(p.plan_id);
      const replay = await rpcError(c.call("plan.execute", { plan_id: p.plan_id }));
      expect(replay.rpcCode).toBe(-32004);
      expect(replay.message).toMatch(/already executed/);
    } finally {
      db.close();
    }
    expect((await kinds(c, a.agent_id, "plan.refused")).length).toBe(3);
    expect((await c.call("audit.verify", {})).ok).toBe(true);
  });
});
