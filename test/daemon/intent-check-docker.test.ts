// intent.check against the real sandbox (Docker): the intent's check command runs as the
// agent the caller names, through the gate like a tool.invoke exec (cwd /workspace), in
// that agent's container. Met / not met is recorded on the intent for every client to
// see, and reaches the next goal's bootstrap; an agent whose grants do not allow the
// command gets the refusal recorded as the check's result, audited, and nothing runs.

import { chownSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { requireDocker } from "../support/docker.js";
import { turn } from "../support/provider-server.js";
import { manifest, rpcError, useDaemonPerTest } from "./fixture.js";

const goals: string[] = [];
let project: string | undefined;

beforeAll(() => requireDocker());
const suite = useDaemonPerTest({
  beforeClose: async (fx) => {
    for (const g of goals.splice(0)) await fx?.daemon.runtime.backend.remove(g).catch(() => {});
  },
  afterEach: () => {
    if (project) rmSync(project, { recursive: true, force: true });
    project = undefined;
  },
});

/** The agent of a session bound to the project folder: its /workspace is the intent's folder. */
async function spawn(
  c: AidoClient,
  name: string,
  capabilities: string[],
  extra: Record<string, unknown> = {},
) {
  return c.call("session.open", { manifest: manifest(name, { capabilities, ...extra }), workspace: project });
}

/** A folder the container's user may write, as a user's project would be. */
function projectFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), "aido-intent-check-"));
  if (process.getuid?.() === 0) chownSync(dir, 1000, 1000);
  return dir;
}

async function start() {
  const fx = await suite.start({ runtime: { backend: undefined, builtinTools: daemonBuiltinTools } });
  project = realpathSync(projectFolder());
  return { fx, workspace: project };
}

describe("intent.check", () => {
  it("runs the check in the agent's container and records met / not met for every client", async () => {
    const { fx, workspace } = await start();
    const c = await fx.client();
    const other = await fx.client();
    const intent = await c.call("intent.set", {
      workspace,
      objective: "produce done.txt",
      check: "ls done.txt",
    });
    const checker = await spawn(c, "checker", [
      "tool: exec",
      "tool: file_write",
      "exec: ls *",
      "file_read: /workspace/**",
      "file_write: /workspace/**",
    ]);

    const notMet = await c.call("intent.check", { workspace, agent_id: checker.agent_id });
    expect(notMet).toMatchObject({
      intent_id: intent.id,
      met: false,
      command: "ls done.txt",
      agent_id: checker.agent_id,
    });
    expect(notMet.exit_code).not.toBe(0);
    expect(notMet.exit_code).not.toBeNull();
    expect(notMet.output).toContain("No such file");

    await c.call("tool.invoke", {
      agent_id: checker.agent_id,
      tool: "file_write",
      input: { path: "/workspace/done.txt", content: "ok\n" },
    });
    const met = await c.call("intent.check", { workspace, agent_id: checker.agent_id });
    expect(met).toMatchObject({ met: true, exit_code: 0 });
    expect(met.output).toContain("done.txt");
    // Another client sees the last check.
    const seen = (await other.call("intent.status", { workspace })).intent?.last_check;
    const { intent_id: _id, ...recorded } = met;
    expect(seen).toEqual(recorded);

    const checked = (await c.call("audit.query", { kind: "intent.checked" })).entries.sort(
      (a, b) => a.seq - b.seq,
    );
    expect(checked.map((e) => [e.agent_id, (e.payload as { met: boolean }).met])).toEqual([
      [checker.agent_id, false],
      [checker.agent_id, true],
    ]);
    // It ran as a tool call of the agent, through the gate.
    const invoked = (await c.call("audit.query", { kind: "tool.invoked", agent_id: checker.agent_id }))
      .entries;
    expect(invoked.filter((e) => JSON.stringify(e.payload).includes("ls done.txt"))).toHaveLength(2);

    // The next goal from the folder hears how the last check went.
    suite.server.script('manifest "solo"', [turn.text("noted")]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "carry on",
      manifest: manifest("solo"),
      workspace,
    });
    await c.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    const first = JSON.stringify(
      suite.server.requestsMatching('manifest "solo"')[0]!.body.messages[0].content,
    );
    expect(first).toContain(`Last check, at ${met.at}: met (exit code 0).`);
    expect(first).toContain('<tool_output tool=\\"intent check\\" command=\\"ls done.txt\\" untrusted>');
  });

  it("records a refusal by the gate as the check's result, audited, and runs nothing", async () => {
    const { fx, workspace } = await start();
    const c = await fx.client();
    await c.call("intent.set", { workspace, objective: "x", check: "ls /workspace > /workspace/leak.txt" });
    const echoOnly = await spawn(c, "echoer", ["tool: exec", "exec: echo *", "file_read: /workspace/**"]);
    const r = await c.call("intent.check", { workspace, agent_id: echoOnly.agent_id });
    expect(r).toMatchObject({
      met: false,
      exit_code: null,
      denied: { stage: "capability", code: "capability_denied" },
    });
    expect(r.denied?.reason).toContain("ls");
    expect(r.output).toBe(`refused: ${r.denied?.reason}`);
    const denied = (await c.call("audit.query", { kind: "tool.denied", agent_id: echoOnly.agent_id }))
      .entries;
    expect(denied).toHaveLength(1);
    expect(denied[0]?.payload).toMatchObject({ tool: "exec", stage: "capability" });
    const checked = (await c.call("audit.query", { kind: "intent.checked" })).entries;
    expect(checked[0]?.payload).toMatchObject({
      met: false,
      exit_code: null,
      denied: { stage: "capability" },
    });
    expect((await c.call("intent.status", { workspace })).intent?.last_check?.denied?.stage).toBe(
      "capability",
    );
  });

  it("waits for a human when the agent's exec needs approval; a deny is the check's result", async () => {
    const { fx, workspace } = await start();
    const c = await fx.client();
    const human = await fx.client();
    await c.call("intent.set", { workspace, objective: "x", check: "ls" });
    const a = await spawn(c, "careful", ["tool: exec", "exec: ls *", "file_read: /workspace/**"], {
      approval_required: ["exec"],
    });
    const check = c.call("intent.check", { workspace, agent_id: a.agent_id });
    let pending: { id: string; tool: string }[] = [];
    for (let i = 0; i < 400 && pending.length === 0; i++) {
      pending = (await human.call("approval.list", {})).approvals;
      if (pending.length === 0) await new Promise((r) => setTimeout(r, 25));
    }
    expect(pending.map((p) => p.tool)).toEqual(["exec"]);
    await human.call("approval.respond", { id: pending[0]!.id, decision: "deny" });
    const r = await check;
    expect(r).toMatchObject({
      met: false,
      exit_code: null,
      denied: { stage: "approval", code: "approval_denied" },
    });
    expect((await human.call("intent.status", { workspace })).intent?.last_check?.denied?.stage).toBe(
      "approval",
    );
  });

  it("refuses an intent without a check, and an unknown agent, before anything runs", async () => {
    const { fx, workspace } = await start();
    const c = await fx.client();
    await c.call("intent.set", { workspace, objective: "no check" });
    const none = await rpcError(c.call("intent.check", { workspace, agent_id: "a_whoever" }));
    expect(none.rpcCode).toBe(-32602);
    expect(none.message).toContain("has no check command");
    await c.call("intent.set", { workspace, objective: "with check", check: "ls" });
    const unknown = await rpcError(c.call("intent.check", { workspace, agent_id: "a_nobody" }));
    expect(unknown.rpcCode).toBe(-32003);
    // An agent whose /workspace is another folder: its finding would describe that folder.
    const standalone = await c.call("agent.spawn", {
      manifest: manifest("elsewhere", {
        capabilities: ["tool: exec", "exec: ls *", "file_read: /workspace/**"],
      }),
    });
    goals.push(standalone.goal_id);
    const private_ = await rpcError(c.call("intent.check", { workspace, agent_id: standalone.agent_id }));
    expect(private_.rpcCode).toBe(-32602);
    expect(private_.message).toMatch(/is not a project folder, not .*session bound to its folder/);
    const otherProject = projectFolder();
    try {
      const elsewhere = await c.call("session.open", {
        manifest: manifest("other", { capabilities: ["tool: exec", "exec: ls *"] }),
        workspace: otherProject,
      });
      const wrong = await rpcError(c.call("intent.check", { workspace, agent_id: elsewhere.agent_id }));
      expect(wrong.message).toContain(`is ${realpathSync(otherProject)}, not ${workspace}`);
      await c.call("session.close", { session_id: elsewhere.session_id });
    } finally {
      rmSync(otherProject, { recursive: true, force: true });
    }
    const invoked = (await c.call("audit.query", { kind: "tool.invoked" })).entries;
    expect(invoked, "nothing ran").toHaveLength(0);
    expect((await c.call("intent.status", { workspace })).intent?.last_check).toBeNull();
  });
});
