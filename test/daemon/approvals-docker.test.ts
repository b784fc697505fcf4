// Approvals that remember, through the path a model takes: goals submitted over the socket,
// agents driven by the real SDK against the scripted provider, tools run in the goal's real
// container, and a human answering over the socket. A decision is reused exactly where it
// applies — the same agent and canonical path (Allow Session), the same normalized exec
// command in the same folder, the same identity, tool and path across a daemon restart
// (Allow Always) — and asks again everywhere else: another path, another command, another
// agent, another identity, after a revoke.

import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import type { Config } from "../../src/config.js";
import { submittedProject } from "../../src/security/approval-project.js";
import type { ApprovalRecord } from "../../src/security/approvals.js";
import { requireDocker } from "../support/docker.js";
import { turn } from "../support/provider-server.js";
import { manifest, useDaemonPerTest } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useDaemonPerTest();

/** Real containers, and an operator ceiling wide enough for the manifests these goals submit. */
const docker = {
  runtime: { backend: undefined },
  config: (cfg: Config) => {
    cfg.grantCeilings = [
      [
        "tool: *",
        "file_read: /workspace/**",
        "file_write: /workspace/**",
        "exec: rm *",
        "exec: touch *",
        "spawn_child: [*]",
      ],
    ];
  },
};
const writes = ["tool: file_write", "file_write: /workspace/**"];

/** Project folders goals are submitted from (outside AIDO_HOME), removed after each test. */
const scratch: string[] = [];
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function project(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `aido-project-${name}-`));
  scratch.push(dir);
  return realpathSync(dir);
}

/** The human: waits for the next request, checks it, answers it. */
async function answerNext(
  human: AidoClient,
  decision: "allow_once" | "allow_session" | "allow_always" | "deny",
): Promise<ApprovalRecord> {
  for (let i = 0; i < 1000; i++) {
    const [rec] = (await human.call("approval.list", {})).approvals;
    if (rec) {
      await human.call("approval.respond", { id: rec.id, decision });
      return rec;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no approval request appeared");
}

const workspace = (goalId: string, file: string) =>
  join(suite.fx.home.config.goalsDir, goalId, "workspace", file);

async function decided(c: AidoClient): Promise<ApprovalRecord[]> {
  return (await c.call("approval.list", { status: "decided" })).approvals;
}

describe("Allow Session through the agent loop", () => {
  it("lets the same agent write the same path again unasked; another path and another agent ask", async () => {
    const writer = suite.server.script('manifest "writer"', [
      turn.toolUse("file_write", { path: "/workspace/a.txt", content: "one" }),
      turn.toolUse("file_write", { path: "/workspace/sub/../a.txt", content: "two" }),
      turn.toolUse("file_write", { path: "/workspace/b.txt", content: "b" }),
      turn.toolUse("spawn_agent", {
        manifest: { name: "helper", system_prompt: "You help.", capabilities: writes },
        message: "Write a.txt.",
      }),
      turn.text("done"),
    ]);
    const helper = suite.server.script('manifest "helper"', [
      turn.toolUse("file_write", { path: "/workspace/a.txt", content: "child" }),
      turn.text("refused"),
    ]);
    const fx = await suite.start(docker);
    const c = await fx.client();
    const human = await fx.client();
    const { goal_id } = await c.call("goal.submit", {
      goal: "write files",
      manifest: manifest("writer", {
        capabilities: [...writes, "tool: spawn_agent", "spawn_child: [helper]"],
        approval_required: ["file_write"],
      }),
    });
    const first = await answerNext(human, "allow_session");
    expect(first.target).toBe("file_write on /workspace/a.txt");
    expect(first.covers.allow_session).toBe(
      `file_write on /workspace/a.txt by agent ${first.agent_id} until it stops`,
    );
    const second = await answerNext(human, "allow_once");
    expect(second).toMatchObject({ agent_id: first.agent_id, target: "file_write on /workspace/b.txt" });
    const third = await answerNext(human, "deny");
    expect(third.target).toBe("file_write on /workspace/a.txt");
    expect(third.agent_id).not.toBe(first.agent_id);
    expect(third.identity).toBe("writer/helper");

    const end = await c.call("goal.wait", { goal_id, timeout_ms: 60_000 });
    expect(end.state).toBe("succeeded");
    expect(readFileSync(workspace(goal_id, "a.txt"), "utf8")).toBe("two");
    expect(readFileSync(workspace(goal_id, "b.txt"), "utf8")).toBe("b");
    // History comes newest first.
    expect((await decided(c)).map((a) => a.id)).toEqual([third.id, second.id, first.id]);
    const reused = await c.call("audit.query", { goal_id, kind: "approval.reused" });
    expect(reused.entries.map((e) => e.payload)).toEqual([
      expect.objectContaining({
        via: "allow_session",
        approval_id: first.id,
        scope_key: "path:/workspace/a.txt",
      }),
    ]);
    expect(writer.requests[2]!.body.messages.at(-1).content[0].is_error).toBeUndefined();
    expect(helper.requests[1]!.body.messages.at(-1).content[0].content).toContain("approval_denied");
  }, 120_000);

  it("reuses an exec answer for spellings of the same command only, as the policy's confirm rule asks", async () => {
    suite.server.script('manifest "cleaner"', [
      turn.toolUse("exec", { command: "touch a.txt b.txt c.txt" }),
      turn.toolUse("exec", { command: "rm -f a.txt" }),
      turn.toolUse("exec", { command: "rm   -f  'a.txt'" }),
      turn.toolUse("exec", { command: "rm -f b.txt" }),
      turn.toolUse("exec", { command: "rm -f a.txt; rm -f c.txt" }),
      turn.text("done"),
    ]);
    const fx = await suite.start({
      ...docker,
      config: (cfg) => {
        docker.config(cfg);
        cfg.policy.confirm = ["rm *"];
      },
    });
    const c = await fx.client();
    const human = await fx.client();
    const { goal_id } = await c.call("goal.submit", {
      goal: "clean up",
      manifest: manifest("cleaner", {
        capabilities: [
          "tool: exec",
          "exec: rm *",
          "exec: touch *",
          "file_read: /workspace/**",
          ...writes.slice(1),
        ],
      }),
    });
    const rm = await answerNext(human, "allow_session");
    expect(rm.target).toBe("exec of `rm -f a.txt` in /workspace");
    expect(rm.summary).toContain('policy rule "rm *" asks a human to confirm');
    expect((await answerNext(human, "deny")).target).toBe("exec of `rm -f b.txt` in /workspace");
    expect((await answerNext(human, "deny")).target).toBe("exec of `rm -f a.txt; rm -f c.txt` in /workspace");
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");
    expect(existsSync(workspace(goal_id, "a.txt"))).toBe(false);
    expect(existsSync(workspace(goal_id, "b.txt"))).toBe(true);
    expect(existsSync(workspace(goal_id, "c.txt"))).toBe(true);
    expect(await decided(c)).toHaveLength(3);
    const reused = await c.call("audit.query", { goal_id, kind: "approval.reused" });
    expect(reused.entries).toHaveLength(1);
  }, 120_000);
});

describe("Allow Always through the agent loop", () => {
  it("survives a restart for the same identity, not for another, and asks again once revoked", async () => {
    const write = turn.toolUse("file_write", { path: "/workspace/k.txt", content: "kept" });
    suite.server.script('manifest "keeper"', [
      write,
      turn.text("ok"),
      write,
      turn.text("ok"),
      write,
      turn.text("ok"),
    ]);
    suite.server.script('manifest "other"', [write, turn.text("ok")]);
    const keeper = manifest("keeper", { capabilities: writes, approval_required: ["file_write"] });
    const other = manifest("other", { capabilities: writes, approval_required: ["file_write"] });
    const fx = await suite.start(docker);
    const folder = project("keeper");
    let c = await fx.client();
    const g1 = await c.call("goal.submit", { goal: "keep", manifest: keeper, workspace: folder });
    const rec = await answerNext(c, "allow_always");
    expect(rec.covers.allow_always).toBe(
      `file_write on /workspace/k.txt by agents of identity \`keeper\` in goals submitted from ${folder} for 1 h`,
    );
    expect((await c.call("goal.wait", { goal_id: g1.goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");

    await fx.restart();
    c = await fx.client();
    const g2 = await c.call("goal.submit", { goal: "keep again", manifest: keeper, workspace: folder });
    expect((await c.call("goal.wait", { goal_id: g2.goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");
    expect(readFileSync(workspace(g2.goal_id, "k.txt"), "utf8")).toBe("kept");
    expect(await decided(c)).toHaveLength(1); // nobody was asked for g2
    const [grant] = (await c.call("approval.grants", {})).grants;
    const reused = await c.call("audit.query", { goal_id: g2.goal_id, kind: "approval.reused" });
    expect(reused.entries[0]?.payload).toMatchObject({ via: "allow_always", grant_id: grant!.id });

    const g3 = await c.call("goal.submit", { goal: "not yours", manifest: other, workspace: folder });
    expect((await answerNext(c, "deny")).identity).toBe("other");
    await c.call("goal.wait", { goal_id: g3.goal_id, timeout_ms: 60_000 });
    expect(existsSync(workspace(g3.goal_id, "k.txt"))).toBe(false);

    await c.call("approval.revoke", { grant_id: grant!.id });
    const g4 = await c.call("goal.submit", { goal: "keep once more", manifest: keeper, workspace: folder });
    expect((await answerNext(c, "deny")).identity).toBe("keeper");
    await c.call("goal.wait", { goal_id: g4.goal_id, timeout_ms: 60_000 });
    expect(existsSync(workspace(g4.goal_id, "k.txt"))).toBe(false);
  }, 180_000);
});

describe("Allow Always across projects", () => {
  it("given in a session whose /workspace is the folder, covers no goal submitted from it, nor the reverse", async () => {
    suite.server.script('manifest "deployer"', [
      turn.toolUse("file_write", { path: "/workspace/deploy.sh", content: "the model's" }),
      turn.text("ok"),
      turn.toolUse("file_write", { path: "/workspace/run.sh", content: "the goal's" }),
      turn.text("ok"),
    ]);
    const deployer = manifest("deployer", { capabilities: writes, approval_required: ["file_write"] });
    const fx = await suite.start(docker);
    const a = project("a");
    if (process.getuid?.() === 0) chownSync(a, 1000, 1000);
    const c = await fx.client();
    const human = await fx.client();
    const session = await c.call("session.open", { manifest: deployer, workspace: a });
    const write = (path: string) =>
      c
        .call("tool.invoke", {
          agent_id: session.agent_id,
          tool: "file_write",
          input: { path, content: "mine" },
        })
        .then(
          () => "written",
          (e: Error) => e.message,
        );

    // The session's /workspace is A itself: the human read A's file and allowed it always.
    const reviewed = write("/workspace/deploy.sh");
    expect((await answerNext(human, "allow_always")).covers.allow_always).toContain(
      `in project ${a} for 1 h`,
    );
    expect(await reviewed).toBe("written");

    // A goal submitted from A (an MCP client's aido_submit names the session's folder, and a
    // manifest, so an identity, of its choosing): its /workspace is a folder of its own that
    // a model filled, not A: asked.
    const g1 = await c.call("goal.submit", { goal: "deploy", manifest: deployer, workspace: a });
    expect((await answerNext(human, "deny")).covers.allow_always).toContain(
      `in goals submitted from ${a} for 1 h`,
    );
    expect((await c.call("goal.wait", { goal_id: g1.goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");
    expect(existsSync(workspace(g1.goal_id, "deploy.sh"))).toBe(false);

    // The reverse: Allow Always given to a goal from A does not cover the session writing A.
    const g2 = await c.call("goal.submit", { goal: "run", manifest: deployer, workspace: a });
    await answerNext(human, "allow_always");
    expect((await c.call("goal.wait", { goal_id: g2.goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");
    const unasked = write("/workspace/run.sh");
    expect((await answerNext(human, "deny")).agent_id).toBe(session.agent_id);
    expect(await unasked).toMatch(/denied/);
    expect(existsSync(join(a, "run.sh"))).toBe(false);
    await c.call("session.close", { session_id: session.session_id });
  }, 180_000);

  it("given in a session's folder, does not follow the folder's path to another folder put there later", async () => {
    const fx = await suite.start(docker);
    const a = project("a");
    const b = project("b");
    if (process.getuid?.() === 0) for (const dir of [a, b]) chownSync(dir, 1000, 1000);
    const writer = manifest("deployer", { capabilities: writes, approval_required: ["file_write"] });
    const c = await fx.client();
    const human = await fx.client();
    const write = (agentId: string) =>
      c
        .call("tool.invoke", {
          agent_id: agentId,
          tool: "file_write",
          input: { path: "/workspace/x.txt", content: "unasked" },
        })
        .then(
          () => "written",
          (e: Error) => e.message,
        );

    const first = await c.call("session.open", { manifest: writer, workspace: a });
    const allowed = write(first.agent_id);
    await answerNext(human, "allow_always");
    expect(await allowed).toBe("written");
    await c.call("session.close", { session_id: first.session_id });

    // A second session opens on A; before its container starts (at its first call) A is
    // renamed away and a link to B put at its path: that container mounts B.
    const second = await c.call("session.open", { manifest: writer, workspace: a });
    renameSync(a, `${a}-old`);
    scratch.push(`${a}-old`);
    symlinkSync(b, a);
    const swapped = write(second.agent_id);
    const asked = await answerNext(human, "deny");
    expect(asked.covers.allow_always).toContain(`the folder at ${a} is not the one its session opened on`);
    expect(await swapped).toMatch(/denied/);
    expect(existsSync(join(b, "x.txt"))).toBe(false);
    await c.call("session.close", { session_id: second.session_id });
  }, 180_000);

  it("covers goals submitted from the project it was given in, not the same container path of another project", async () => {
    const write = turn.toolUse("file_write", { path: "/workspace/deploy.sh", content: "deploy" });
    const goals = 7;
    suite.server.script(
      'manifest "deployer"',
      Array.from({ length: goals }, () => [write, turn.text("ok")]).flat(),
    );
    const deployer = manifest("deployer", { capabilities: writes, approval_required: ["file_write"] });
    const fx = await suite.start(docker);
    const a = project("a");
    const b = project("b");
    const c = await fx.client();
    const run = async (workspace: string, answer?: "allow_always" | "deny") => {
      const { goal_id } = await c.call("goal.submit", { goal: "deploy", manifest: deployer, workspace });
      const asked = answer === undefined ? undefined : await answerNext(c, answer);
      expect((await c.call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");
      return { goal_id, asked, wrote: existsSync(workspace0(goal_id)) };
    };
    const workspace0 = (goalId: string) => workspace(goalId, "deploy.sh");

    const first = await run(a, "allow_always");
    expect(first.asked!.covers.allow_always).toBe(
      `file_write on /workspace/deploy.sh by agents of identity \`deployer\` in goals submitted from ${a} for 1 h`,
    );
    const [grant] = (await c.call("approval.grants", {})).grants;
    expect(grant).toMatchObject({ project: `goals submitted from ${a}`, status: "active" });

    // Project B: the same identity, tool and container path, another project: asked.
    const inB = await run(b, "deny");
    expect(inB.asked!.covers.allow_always).toContain(`in goals submitted from ${b} for 1 h`);
    expect(inB.wrote).toBe(false);

    // Project A again, named through a link to it: the same folder, so nobody is asked.
    const link = join(project("links"), "a-link");
    symlinkSync(a, link);
    const again = await run(link);
    expect(again.wrote).toBe(true);
    const reused = await c.call("audit.query", { goal_id: again.goal_id, kind: "approval.reused" });
    expect(reused.entries[0]?.payload).toMatchObject({ via: "allow_always", grant_id: grant!.id });

    // The grant's row moved to project B in SQLite: its signature no longer holds, B asks.
    const attacker = new Database(fx.home.config.dbPath);
    const saved = attacker.prepare("SELECT project, project_shown FROM approval_grants").get() as {
      project: string;
      project_shown: string;
    };
    const moveTo = submittedProject(b);
    attacker
      .prepare("UPDATE approval_grants SET project = ?, project_shown = ?")
      .run(moveTo.key, moveTo.shown);
    const forged = await run(b, "deny");
    expect(forged.wrote).toBe(false);
    expect((await c.call("approval.grants", { all: true })).grants[0]?.status).toBe("invalid");
    attacker
      .prepare("UPDATE approval_grants SET project = ?, project_shown = ?")
      .run(saved.project, saved.project_shown);
    attacker.close();

    // Project A renamed: another path, asked; a new folder where A was: another folder, asked.
    const moved = `${a}-moved`;
    renameSync(a, moved);
    scratch.push(moved);
    expect((await run(moved, "deny")).wrote).toBe(false);
    mkdirSync(a);
    expect((await run(a, "deny")).wrote).toBe(false);
    expect(await decided(c)).toHaveLength(5);
  }, 300_000);
});
