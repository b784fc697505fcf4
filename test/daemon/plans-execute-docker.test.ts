// plan.create / plan.execute / plan.list over the socket, with a real daemon, real Docker
// and the real SQLite file: a plan runs exactly its stored steps once, stops at the first
// failure and restores on request; and a plan whose steps, grants or policy changed since
// it was simulated is refused, however the change was made (the operator's config, another
// agent, an edited ledger row).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { rpcError } from "./fixture.js";
import { docker, kinds, planner, treeOf, usePlansDaemon, workspaceOf, write } from "./plans-fixture.js";

const { suite, spawn } = usePlansDaemon();

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
