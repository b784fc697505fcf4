// test/ui/snapshots.test.ts — a goal's snapshot timeline and a restore from the dashboard,
// over real HTTP against a real daemon: the restore goes through the gate (audited, a
// snapshot taken before it), as the goal's root agent while it runs, and as a one-call
// operator principal once the goal has finished; the operator's policy still applies.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { type Json, turn } from "../support/provider-server.js";
import { eventually, openUi, rpc, type Session, signIn, type UiHandle } from "./fixture.js";

const suite = useDaemonPerTest();

const call = async (ui: UiHandle, session: Session, method: string, params: unknown = {}) =>
  JSON.parse((await rpc(ui, session, method, params)).text) as { result?: Json; error?: Json };

const keeper = manifest("keeper", {
  capabilities: [
    "tool: snapshot_create",
    "tool: snapshot_restore",
    "file_read: /workspace/**",
    "file_read: /output/**",
    "file_write: /workspace/**",
    "file_write: /output/**",
  ],
});

describe("snapshots from the page", () => {
  it("lists a finished goal's snapshots and restores one as an operator, through the gate", async () => {
    suite.server.script('manifest "keeper"', [
      turn.toolUse("snapshot_create", { label: "first draft" }),
      turn.text("saved"),
    ]);
    const fx = await suite.start({
      config: (c: Config) => {
        c.policy.deny = ["file_write: /workspace/locked.md"];
      },
    });
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const socket = await fx.client();
    const workspace = (goalId: string, name: string) =>
      join(fx.home.config.goalsDir, goalId, "workspace", name);
    // The goal's files before it runs (as its agents would have written them).
    const { goal_id } = await socket.call("goal.submit", { goal: "draft", manifest: keeper });
    await eventually(async () =>
      (await socket.call("goal.status", { goal_id })).state === "running" ? true : undefined,
    );
    const g = await socket.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    expect(g.state).toBe("succeeded");
    const [snap] = (await call(ui, session, "snapshot.list", { goal_id })).result.snapshots;
    expect(snap).toMatchObject({ label: "first draft", id: expect.stringMatching(/^snap_/) });

    writeFileSync(workspace(goal_id, "draft.md"), "later edit");
    writeFileSync(workspace(goal_id, "locked.md"), "kept by policy");
    const r = await call(ui, session, "snapshot.restore", { goal_id, snapshot_id: snap.id });
    expect(r.result).toMatchObject({ goal_id, snapshot_id: snap.id, as: "operator", files_restored: 1 });
    expect(r.result.agent_id).toMatch(/^op_/);
    expect(r.result.files_failed).toEqual([
      { path: "/workspace/locked.md", reason: expect.stringContaining("policy") },
    ]);
    expect(readFileSync(workspace(goal_id, "locked.md"), "utf8")).toBe("kept by policy");

    // Audited as a gated call of the operator principal, with the snapshot before it.
    const trail = (
      await socket.call("audit.query", { goal_id, agent_id: r.result.agent_id as string, limit: 50 })
    ).entries
      .sort((a, b) => a.seq - b.seq)
      .map((e) => e.kind);
    expect(trail).toEqual([
      "token.issued",
      "tool.invoked",
      "snapshot.created",
      "snapshot.restored",
      "tool.denied", // locked.md: the policy's deny rule, audited as the restore met it
      "tool.completed",
      "token.revoked",
    ]);
    const after = (await call(ui, session, "snapshot.list", { goal_id })).result.snapshots;
    expect(after).toHaveLength(2); // the one taken before the restore
    // The state before the restore can itself be restored.
    const back = await call(ui, session, "snapshot.restore", { goal_id, snapshot_id: after[1].id });
    expect(back.result.as).toBe("operator");

    const unknown = await call(ui, session, "snapshot.restore", { goal_id, snapshot_id: "snap_nope00" });
    expect(unknown.error).toMatchObject({ code: -32003 });
    expect((await call(ui, session, "snapshot.list", { goal_id: "g_nope" })).error).toMatchObject({
      code: -32003,
    });
  });

  it("a restore a confirm rule asked about restores once the human allows it; a path rule it did not ask about stays shut", async () => {
    suite.server.script('manifest "keeper"', [turn.toolUse("snapshot_create", {}), turn.text("saved")]);
    const fx = await suite.start({
      config: (c: Config) => {
        c.policy.confirm = ["tool: snapshot_restore", "file_write: /workspace/private/**"];
      },
    });
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const socket = await fx.client();
    const workspace = (goalId: string, name: string) =>
      join(fx.home.config.goalsDir, goalId, "workspace", name);
    const { goal_id } = await socket.call("goal.submit", { goal: "draft", manifest: keeper });
    expect(
      (await socket.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 })).state,
    ).toBe("succeeded");
    const [snap] = (await call(ui, session, "snapshot.list", { goal_id })).result.snapshots;
    mkdirSync(workspace(goal_id, "private"));
    writeFileSync(workspace(goal_id, "draft.md"), "later edit");
    writeFileSync(workspace(goal_id, "private/key.md"), "added later");

    const restoring = call(ui, session, "snapshot.restore", { goal_id, snapshot_id: snap.id });
    const asked = await eventually(async () => (await socket.call("approval.list", {})).approvals[0]);
    expect(asked).toMatchObject({ tool: "snapshot_restore", goal_id });
    await socket.call("approval.respond", { id: asked.id, decision: "allow_once" });
    const r = await restoring;
    // draft.md is removed (it was not in the snapshot): the answered tool rule covers it.
    expect(r.result).toMatchObject({ as: "operator", files_restored: 1 });
    expect(existsSync(workspace(goal_id, "draft.md"))).toBe(false);
    // private/ matched a rule nobody was asked about for this call: refused, audited.
    const unasked = expect.stringContaining("rule policy.confirm[1] asks a human to confirm");
    expect(r.result.files_failed).toEqual([
      { path: "/workspace/private/key.md", reason: unasked },
      { path: "/workspace/private", reason: unasked },
    ]);
    expect(readFileSync(workspace(goal_id, "private/key.md"), "utf8")).toBe("added later");
  });

  it("restores as the goal's root agent while the goal runs, under its grants", async () => {
    suite.server.script('manifest "keeper"', [
      turn.toolUse("snapshot_create", {}),
      turn.text("waiting", { delayMs: 4000 }),
    ]);
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const socket = await fx.client();
    const { goal_id } = await socket.call("goal.submit", { goal: "draft", manifest: keeper });
    const snap = await eventually(
      async () => (await call(ui, session, "snapshot.list", { goal_id })).result.snapshots[0],
    );
    const r = await call(ui, session, "snapshot.restore", { goal_id, snapshot_id: snap.id });
    const root = (await socket.call("goal.status", { goal_id })).agent_id;
    expect(r.result).toMatchObject({ as: "root_agent", agent_id: root });
    const invoked = (await socket.call("audit.query", { goal_id, agent_id: root, kind: "tool.invoked" }))
      .entries;
    expect(invoked.map((e) => (e.payload as { tool: string }).tool)).toContain("snapshot_restore");
    await socket.call("goal.cancel", { goal_id });
  });
});
