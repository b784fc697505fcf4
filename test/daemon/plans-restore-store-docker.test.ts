// plan.execute {on_failure: "restore"} against the goal's snapshot store and the size of
// its answer, with a real daemon and real Docker: the snapshots the undo needs survive the
// pruning another call's snapshot does (the gate's own, before the plan's exec), and a
// failure that leaves thousands of paths answers with a bounded list and their counts.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import type { AidoClient } from "../../src/client/client.js";
import { captureIo } from "../cli/io.js";
import {
  blob,
  cappedStore,
  docker,
  du,
  kinds,
  planner,
  usePlansDaemon,
  workspaceOf,
  write,
} from "./plans-fixture.js";

const plans = usePlansDaemon();
const { suite, spawn } = plans;

describe("on_failure restore and the snapshot store", () => {
  it("puts back content only the snapshot before the plan held, though the gate's snapshot before a later exec pruned past the cap", async () => {
    const { fx, c, a } = await cappedStore(plans, ["exec: head *"]);
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
    // The snapshot before the plan was pruned: the answer, plan.restored and plan.executed say
    // so, and name no snapshot nobody can restore any more.
    const pruned = (await kinds(c, a.agent_id, "snapshot.pruned")).flatMap(
      (e) => (e.payload as { snapshot_ids: string[] }).snapshot_ids,
    );
    expect(r).not.toHaveProperty("snapshot_id");
    expect(pruned).toContain(r.snapshot_pruned);
    for (const kind of ["plan.restored", "plan.executed"]) {
      const [entry] = await kinds(c, a.agent_id, kind);
      expect(entry?.payload, kind).toMatchObject({ snapshot_pruned: r.snapshot_pruned });
      expect(entry?.payload, kind).not.toHaveProperty("snapshot_id");
    }
  });
});

describe("a plan's frames and the snapshots it names", () => {
  it("a snapshot_restore step's target survives the frames of the plan's earlier steps with the store at its cap", async () => {
    const { fx, c, a } = await cappedStore(plans, [
      "exec: head *",
      "tool: snapshot_create",
      "tool: snapshot_restore",
      "file_read: /output/**",
      "file_write: /output/**",
    ]);
    expect((await c.call("tool.invoke", { agent_id: a.agent_id, ...blob("a.bin") })).is_error).toBe(false);
    const ws = workspaceOf(fx, a.goal_id);
    const kept = readFileSync(join(ws, "a.bin"));
    // The person's snapshot, which the plan's third step restores.
    const made = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "snapshot_create",
      input: { label: "mine" },
    });
    const target = (made.data as { id: string }).id;
    const p = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "restore what the person kept",
      steps: [
        blob("a.bin"),
        blob("b.bin"),
        { tool: "snapshot_restore", input: { id: target } },
        { tool: "exec", input: { command: "ls /workspace/missing" } },
      ],
    });
    const r = await c.call("plan.execute", { plan_id: p.plan_id, on_failure: "restore" });
    expect(await kinds(c, a.agent_id, "snapshot.pruned")).not.toEqual([]);
    expect(r.steps.map((s: { ok: boolean; output: string }) => s.ok || s.output)).toEqual([
      true,
      true,
      true,
      expect.stringContaining("missing"),
    ]);
    expect(r.status).toBe("restored");
    // Step 2 put a.bin back and removed b.bin; the undo of steps 0-2 ends where the plan began.
    expect(readFileSync(join(ws, "a.bin")).equals(kept)).toBe(true);
    expect(readdirSync(ws)).not.toContain("b.bin");
  });
});

async function pendingApproval(human: AidoClient): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const { approvals } = await human.call("approval.list", {});
    if (approvals.length > 0) return approvals[0]!.id as string;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no approval was asked for");
}

/** A name with a terminal control in it: an OSC sequence that sets the window title. */
const TITLE = "\x1b]0;owned\x07";

describe("on_failure restore and the store's cap over many steps", () => {
  it("keeps only the contents the undo needs, not every step's snapshot: the store ends within its cap, and the undo works", async () => {
    const { fx, c, a } = await cappedStore(plans, []);
    const ws = workspaceOf(fx, a.goal_id);
    // 4,000 files: each snapshot's manifest is some 0.5 MiB, their contents one pack row.
    const deep = join(ws, "a-folder-with-a-longer-name", "and-another-one-below-it");
    mkdirSync(deep, { recursive: true });
    for (let i = 0; i < 4000; i++) writeFileSync(join(deep, `file-number-${i}.txt`), "same\n");
    await write(c, a.agent_id, "/workspace/s.txt", "s0\n");
    const steps = [
      ...Array.from({ length: 8 }, (_, i) => ({
        tool: "exec",
        input: { command: `sh -c "echo ${i} > /workspace/s.txt"` },
      })),
      { tool: "exec", input: { command: "ls /workspace/missing" } },
    ];
    const p = await c.call("plan.create", { agent_id: a.agent_id, title: "many frames", steps });
    const r = await c.call("plan.execute", { plan_id: p.plan_id, on_failure: "restore" });
    expect(r.steps.filter((s: { ok: boolean }) => s.ok)).toHaveLength(8);
    expect(r.status).toBe("restored");
    expect(readFileSync(join(ws, "s.txt"), "utf8")).toBe("s0\n");
    // Within its cap but for the snapshot framing the last step and the gate's just before it
    // (both pinned while the step's changes were read, some 0.5 MiB of manifest each):
    // every step's snapshot kept held 8.6 MB here.
    expect(du(join(fx.home.config.goalsDir, a.goal_id, "snapshots"))).toBeLessThanOrEqual(3 * 1024 * 1024);
  });
});

describe("on_failure restore's answer when it leaves many paths", () => {
  it("lists the first 100 conflicts with their whole count, and keeps control characters in names inert in the audit and the CLI", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const human = await fx.client();
    const a = await spawn(
      c,
      planner({
        capabilities: [...(planner().capabilities as string[]), "exec: python3 *"],
        approval_required: ["file_read"],
      }),
    );
    const ws = workspaceOf(fx, a.goal_id);
    const steps = [
      {
        tool: "exec",
        input: {
          command: `python3 -c "import os; os.makedirs('/workspace/f', exist_ok=True); [open('/workspace/f/' + n, 'w').write('plan') for n in [str(i) for i in range(150)] + ['\\x1b]0;owned\\x07']]"`,
        },
      },
      { tool: "file_read", input: { path: "/workspace/f/0" } },
      { tool: "exec", input: { command: "ls /workspace/missing" } },
    ];
    // Between step 0 and step 2 (step 1 waits for the human) the person rewrites every
    // file the plan made: 151 conflicts, and the folder that holds them.
    const personEdits = async () => {
      const approval = await pendingApproval(human);
      for (const name of readdirSync(join(ws, "f"))) writeFileSync(join(ws, "f", name), "person");
      await human.call("approval.respond", { id: approval, decision: "allow_once" });
    };

    const p = await c.call("plan.create", { agent_id: a.agent_id, title: "many paths", steps });
    const run = c.call("plan.execute", { plan_id: p.plan_id, on_failure: "restore" });
    await personEdits();
    const r = await run;
    expect(r.steps.map((s: { ok: boolean }) => s.ok)).toEqual([true, true, false]);
    expect(readFileSync(join(ws, "f", TITLE), "utf8")).toBe("person");
    expect(r.status).toBe("failed");
    expect(r.restore?.conflicts).toHaveLength(100);
    expect(r.restore?.conflicts_total).toBe(152);
    expect(r.restore?.files_failed_total).toBe(0);
    const [restored] = await kinds(c, a.agent_id, "plan.restored");
    const payload = restored?.payload as { conflict_paths?: string[] };
    expect(payload).toMatchObject({ conflicts: 152, files_failed: 0 });
    const paths = payload.conflict_paths ?? [];
    expect(paths).toHaveLength(100);
    expect(paths.join("")).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(paths).toContain("/workspace/f/\\x1b]0;owned\\x07");

    // The same through `aido plan execute` (the folder is no longer the plan's: 151 left):
    // the count whole, the names inert.
    const again = await c.call("plan.create", { agent_id: a.agent_id, title: "many paths again", steps });
    const io = captureIo();
    const cli = runCli(["plan", "execute", again.plan_id, "--on-failure", "restore"], io.io, fx.home.env);
    await personEdits();
    expect(await cli).toBe(1);
    const text = io.text();
    expect(text).toContain("151 left (changed since)");
    expect(text).toContain("and 51 more left");
    expect(text).not.toMatch(/\x1b|\x07/);
  });
});

/** Wait until the agent's call of `tool` is audited as invoked (it runs from there). */
async function invoked(c: AidoClient, agentId: string, tool: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const entries = await kinds(c, agentId, "tool.invoked");
    if (entries.some((e: { payload: unknown }) => (e.payload as { tool?: string }).tool === tool)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${tool} was never invoked`);
}

describe("two plans of one goal at once", () => {
  it("a plan does not start while a plan of its goal whose failure is undone runs (its exec's window would take the other's write for its own and undo it)", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(
      c,
      planner({ capabilities: [...(planner().capabilities as string[]), "exec: python3 *"] }),
    );
    await write(c, a.agent_id, "/workspace/a.txt", "a0\n");
    const ws = workspaceOf(fx, a.goal_id);
    const slow = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "a slow build that fails",
      steps: [
        { tool: "exec", input: { command: `python3 -c "import time; time.sleep(3)"` } },
        { tool: "exec", input: { command: "ls /workspace/missing" } },
      ],
    });
    const other = await c.call("plan.create", {
      agent_id: a.agent_id,
      title: "a write that succeeds",
      steps: [{ tool: "file_write", input: { path: "/workspace/a.txt", content: "other\n" } }],
    });
    const run = c.call("plan.execute", { plan_id: slow.plan_id, on_failure: "restore" });
    await invoked(c, a.agent_id, "exec");
    await expect(c.call("plan.execute", { plan_id: other.plan_id })).rejects.toThrow(
      new RegExp(`plan ${slow.plan_id} of goal ${a.goal_id} is running`),
    );
    const r = await run;
    expect(r.status).toBe("restored");
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("a0\n");
    const refused = await kinds(c, a.agent_id, "plan.refused");
    expect(refused).toMatchObject([{ payload: { plan_id: other.plan_id } }]);
    // It was refused before it started: it runs once the other ended, and its write stays.
    const after = await c.call("plan.execute", { plan_id: other.plan_id });
    expect(after.status).toBe("succeeded");
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("other\n");
  });
});
