// plan.execute {on_failure: "restore"} over the socket, with a real daemon and real Docker,
// while a person edits the project host side (as with `aido mcp serve`, their editor on the
// folder the goal's /workspace is): the restore undoes what the plan's steps changed and
// nothing else. An edit between two steps stays; a path the plan changed and the person
// changed after it is a conflict, left as the person left it, reported and audited.

import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import type { PlanStep } from "../../src/kernel/plan-store.js";
import { docker, kinds, planner, treeOf, usePlansDaemon, workspaceOf, write } from "./plans-fixture.js";

const { suite, spawn } = usePlansDaemon();

/** The planner, with the commands these plans run. */
const mover = (extra: Record<string, unknown> = {}) =>
  planner({
    capabilities: [...(planner().capabilities as string[]), "exec: python3 *", "exec: mv *"],
    ...extra,
  });

/** A plan that pauses for a human on its file_read step: the gap between two steps. */
const pausing = () => mover({ approval_required: ["file_read"] });

/** The id of a pending approval request, other than those `seen` (already answered). */
async function pendingApproval(human: AidoClient, seen: readonly string[] = []): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const { approvals } = await human.call("approval.list", {});
    const id = approvals.map((x: { id: unknown }) => x.id as string).find((x: string) => !seen.includes(x));
    if (id !== undefined) return id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no approval was asked for");
}

/** Wait until the agent's call of `tool` is audited as invoked (it runs from there). */
async function invoked(c: AidoClient, agentId: string, tool: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const entries = await kinds(c, agentId, "tool.invoked");
    if (entries.some((e) => (e.payload as { tool?: string }).tool === tool)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${tool} was never invoked`);
}

const read = (dir: string, name: string) => readFileSync(join(dir, name), "utf8");

/**
 * Each case's opening: a daemon, the agent `agent` with `files` written in its /workspace
 * (path under it -> content), the agent's client and a person's, and `execute`, which
 * creates a plan and starts it with on_failure restore (its answer pending).
 */
async function opening(agent: Record<string, unknown>, files: Record<string, string>) {
  const fx = await suite.start(docker);
  const c = await fx.client();
  const human = await fx.client();
  const a = await spawn(c, agent);
  for (const [path, content] of Object.entries(files))
    await write(c, a.agent_id, `/workspace/${path}`, content);
  const execute = async (title: string, steps: PlanStep[]) => {
    const p = await c.call("plan.create", { agent_id: a.agent_id, title, steps });
    return { planId: p.plan_id, run: c.call("plan.execute", { plan_id: p.plan_id, on_failure: "restore" }) };
  };
  return { c, human, a, ws: workspaceOf(fx, a.goal_id), execute };
}

const abc = { "a.txt": "a0\n", "b.txt": "b0\n", "c.txt": "c0\n" };

describe("on_failure restore puts back only what the plan changed", () => {
  it("keeps the person's edit made between two steps, undoes the plan's write and its exec's change", async () => {
    const { c, human, a, ws, execute } = await opening(pausing(), abc);
    const { planId, run } = await execute("edits while a person edits", [
      { tool: "file_write", input: { path: "/workspace/a.txt", content: "a-plan\n" } },
      { tool: "file_read", input: { path: "/workspace/a.txt" } },
      {
        tool: "exec",
        input: {
          command: `python3 -c "import time; open('/workspace/b.txt', 'w').write('b-plan'); time.sleep(2)"`,
        },
      },
      { tool: "exec", input: { command: "ls /workspace/missing" } },
    ]);
    const approval = await pendingApproval(human);
    // Between step 0 and step 2 (step 1 waits for the human): the person edits c.txt.
    writeFileSync(join(ws, "c.txt"), "c-between\n");
    await human.call("approval.respond", { id: approval, decision: "allow_once" });
    // While the exec of step 2 runs, the person edits c.txt again: that edit is in the
    // step's window, which has no known write scope, so the restore counts it as the step's.
    await invoked(c, a.agent_id, "exec");
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(join(ws, "c.txt"), "c-during\n");
    const r = await run;
    expect(r.steps.map((s: { ok: boolean }) => s.ok)).toEqual([true, true, true, false]);
    expect(read(ws, "c.txt")).toBe("c-between\n");
    expect(read(ws, "a.txt")).toBe("a0\n");
    expect(read(ws, "b.txt")).toBe("b0\n");
    expect(r.status).toBe("restored");
    expect(r.restore).toMatchObject({ files_failed: [], conflicts: [] });
    expect(await kinds(c, a.agent_id, "plan.restored")).toMatchObject([
      { payload: { plan_id: planId, files_failed: 0, conflicts: 0 } },
    ]);
  });

  it("keeps the person's edit made while an exec step waits for its approval: the frame is taken once it is allowed", async () => {
    const { human, ws, execute } = await opening(mover({ approval_required: ["exec"] }), abc);
    const writes = (f: string) => ({
      tool: "exec",
      input: { command: `python3 -c "open('/workspace/${f}.txt', 'w').write('${f}-plan')"` },
    });
    // Step 0 (framed before by the plan's own snapshot on the old code) and step 1 (framed
    // before the gate's wait) each wait for the human; step 2 fails.
    const { run } = await execute("a person edits while asked", [
      writes("b"),
      writes("a"),
      { tool: "exec", input: { command: "ls /workspace/missing" } },
    ]);
    const asked: string[] = [];
    for (const edit of ["c-asked-0\n", "c-asked-1\n", undefined]) {
      const id = await pendingApproval(human, asked);
      asked.push(id);
      // While the person is asked about the step, they edit c.txt in their editor.
      if (edit !== undefined) writeFileSync(join(ws, "c.txt"), edit);
      await new Promise((r) => setTimeout(r, 300));
      await human.call("approval.respond", { id, decision: "allow_once" });
    }
    const r = await run;
    expect(r.steps.map((s: { ok: boolean }) => s.ok)).toEqual([true, true, false]);
    expect(read(ws, "b.txt")).toBe("b0\n");
    expect(read(ws, "a.txt")).toBe("a0\n");
    expect(read(ws, "c.txt")).toBe("c-asked-1\n");
    expect(r.status).toBe("restored");
    expect(r.restore).toMatchObject({ paths_changed: 2, files_restored: 2, files_failed: [], conflicts: [] });
  });

  it("leaves a path the person changed after the plan's step, reports it as a conflict, and keeps a folder the person added to", async () => {
    const { c, human, a, ws, execute } = await opening(pausing(), { "a.txt": "a0\n", "b.txt": "b0\n" });
    const { run } = await execute("conflicts", [
      { tool: "file_write", input: { path: "/workspace/a.txt", content: "a-plan\n" } },
      { tool: "file_write", input: { path: "/workspace/d/x.txt", content: "x-plan\n" } },
      { tool: "file_write", input: { path: "/workspace/b.txt", content: "b-plan\n" } },
      { tool: "file_read", input: { path: "/workspace/a.txt" } },
      { tool: "exec", input: { command: "ls /workspace/missing" } },
    ]);
    const approval = await pendingApproval(human);
    writeFileSync(join(ws, "a.txt"), "a-person\n");
    writeFileSync(join(ws, "d", "mine.txt"), "mine\n");
    await human.call("approval.respond", { id: approval, decision: "allow_once" });
    const r = await run;
    expect(read(ws, "a.txt")).toBe("a-person\n");
    expect(r.status).toBe("failed");
    const restore = r.restore!;
    expect(restore.files_failed).toEqual([]);
    expect(restore.conflicts.map((x: { path: string }) => x.path).sort()).toEqual([
      "/workspace/a.txt",
      "/workspace/d",
    ]);
    expect(restore.conflicts.find((x) => x.path === "/workspace/a.txt")?.reason).toMatch(
      /changed after step 0 of the plan left it/,
    );
    expect(read(ws, "a.txt")).toBe("a-person\n");
    expect(read(ws, "b.txt")).toBe("b0\n");
    expect(treeOf(join(ws, "d"))).toEqual({ "mine.txt": expect.any(String) });
    const [entry] = await kinds(c, a.agent_id, "plan.restored");
    expect(entry?.payload).toMatchObject({
      conflicts: 2,
      conflict_paths: expect.arrayContaining(["/workspace/a.txt", "/workspace/d"]),
    });
    expect(await kinds(c, a.agent_id, "plan.executed")).toMatchObject([{ payload: { status: "failed" } }]);
  });

  it("undoes an exec that moves a folder and swaps another for a link, without following the link", async () => {
    const { ws, execute } = await opening(mover(), {
      "src/one.txt": "1\n",
      "src/deep/two.txt": "2\n",
      "lib/three.txt": "3\n",
    });
    const before = treeOf(ws);
    const { run } = await execute("moves", [
      {
        tool: "exec",
        input: {
          command: `python3 -c "import os, shutil; os.rename('/workspace/src', '/workspace/moved'); shutil.rmtree('/workspace/lib'); os.symlink('/etc', '/workspace/lib')"`,
        },
      },
      { tool: "exec", input: { command: "ls /workspace/missing" } },
    ]);
    const r = await run;
    expect(r.steps.map((s: { ok: boolean }) => s.ok)).toEqual([true, false]);
    expect(r.status).toBe("restored");
    expect(treeOf(ws)).toEqual(before);
    expect(statSync(join(ws, "lib")).isDirectory()).toBe(true);
    expect(() => readlinkSync(join(ws, "lib"))).toThrow();
  });

  it("a path changed only between steps is not touched even when a later exec step runs", async () => {
    const { human, ws, execute } = await opening(pausing(), { "a.txt": "a0\n" });
    const { run } = await execute("person's new folder", [
      { tool: "file_read", input: { path: "/workspace/a.txt" } },
      {
        tool: "exec",
        input: { command: `python3 -c "open('/workspace/e.txt', 'w').write('e'); exit(3)"` },
      },
    ]);
    const approval = await pendingApproval(human);
    mkdirSync(join(ws, "notes"));
    writeFileSync(join(ws, "notes", "n.txt"), "n\n");
    await human.call("approval.respond", { id: approval, decision: "allow_once" });
    const r = await run;
    expect(r.status).toBe("restored");
    expect(read(ws, "notes/n.txt")).toBe("n\n");
    expect(() => statSync(join(ws, "e.txt"))).toThrow();
  });

  it("a folder the plan deleted, swapped by someone for a link to a host folder, is a conflict and nothing is written through the link", async () => {
    const { human, ws, execute } = await opening(pausing(), { "d/x.txt": "x0\n" });
    const host = mkdtempSync(join(tmpdir(), "aido-planscope-"));
    try {
      const { run } = await execute("deletes a folder", [
        { tool: "exec", input: { command: `python3 -c "import shutil; shutil.rmtree('/workspace/d')"` } },
        { tool: "file_read", input: { path: "/workspace/missing.txt" } },
      ]);
      const approval = await pendingApproval(human);
      symlinkSync(host, join(ws, "d"));
      await human.call("approval.respond", { id: approval, decision: "allow_once" });
      const r = await run;
      expect(r.status).toBe("failed");
      expect(r.restore!.conflicts.map((x) => x.path)).toEqual(["/workspace/d"]);
      expect(r.restore!.files_failed.map((x) => x.path)).toEqual(["/workspace/d/x.txt"]);
      expect(readdirSync(host)).toEqual([]);
      expect(readlinkSync(join(ws, "d"))).toBe(host);
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });

  it("a path the plan wrote twice, with the person's edit between, goes back to the person's version", async () => {
    const { human, ws, execute } = await opening(pausing(), { "a.txt": "a0\n" });
    const { run } = await execute("writes twice", [
      { tool: "file_write", input: { path: "/workspace/a.txt", content: "p1\n" } },
      { tool: "file_read", input: { path: "/workspace/a.txt" } },
      { tool: "file_write", input: { path: "/workspace/a.txt", content: "p2\n" } },
      { tool: "exec", input: { command: "ls /workspace/missing" } },
    ]);
    const approval = await pendingApproval(human);
    writeFileSync(join(ws, "a.txt"), "person\n");
    await human.call("approval.respond", { id: approval, decision: "allow_once" });
    const r = await run;
    // Undoing step 2 gives the person's version; step 0's change was already overwritten by them.
    expect(read(ws, "a.txt")).toBe("person\n");
    expect(r.status).toBe("restored");
    expect(r.restore).toMatchObject({ paths_changed: 1, files_restored: 1, conflicts: [] });
  });
});
