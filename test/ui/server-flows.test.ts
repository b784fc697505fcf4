// test/ui/server-flows.test.ts — what the dashboard's page does, over real HTTP against a
// real daemon and the scripted provider behind the real SDK: submit a goal with an input
// file, follow its events, answer the approval its child asks for and see it finish,
// download its outputs; a policy rule's approval, a standing grant revoked, the history,
// audit verify, the agent tree's numbers.

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { type Json, turn } from "../support/provider-server.js";
import { eventually, openStream, openUi, postJson, raw, rpc, type Session, signIn } from "./fixture.js";

const suite = useDaemonPerTest();

const call = async (ui: Parameters<typeof rpc>[0], session: Session, method: string, params: unknown = {}) =>
  JSON.parse((await rpc(ui, session, method, params)).text) as { result?: Json; error?: Json };

const boss = manifest("boss", {
  capabilities: ["tool: spawn_agent", "spawn_child: [writer]", "tool: memory_store"],
  budget: { max_tokens: 100_000 },
});
const careful = manifest("writer", {
  capabilities: ["tool: memory_store"],
  approval_required: ["memory_store"],
});

describe("a goal from the page", () => {
  it("is submitted with an input file, streams its events, waits for the approval answered here, and finishes", async () => {
    suite.server.script('manifest "boss"', [
      turn.toolUse(
        "spawn_agent",
        { manifest: careful, message: "remember the notes" },
        { usage: { input_tokens: 11, output_tokens: 3 } },
      ),
      turn.text("all done"),
    ]);
    suite.server.script('manifest "writer"', [
      turn.toolUse("memory_store", { content: "notes read", category: "fact" }),
      turn.text("stored"),
    ]);
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);

    const submitted = await postJson(ui, session, "/api/goals", {
      goal: "read /inputs/notes.md and remember it",
      manifest: JSON.stringify(boss),
      inputs: [{ name: "notes.md", content_base64: Buffer.from("# the notes\n").toString("base64") }],
    });
    expect(submitted.json).toEqual({ goal_id: expect.any(String) });
    const goalId = submitted.json.goal_id as string;
    const stream = await openStream(ui, session, `/api/events?goal_id=${goalId}`);
    expect(stream.status).toBe(200);

    const pending = await eventually(async () => {
      const r = await call(ui, session, "approval.list");
      const g = await call(ui, session, "goal.status", { goal_id: goalId });
      if (g.result.state !== "running" && g.result.state !== "queued")
        throw new Error(JSON.stringify(g.result));
      return r.result.approvals[0];
    });
    expect(pending.tool).toBe("memory_store");
    expect(pending.asked_by).toEqual({ source: "approval_required", text: "memory_store" });
    expect(pending.lineage.map((l: Json) => l.manifest)).toEqual(["boss", "writer"]);
    expect(pending.lineage[1].agent_id).toBe(pending.agent_id);
    expect(pending.covers.allow_session).toContain(pending.agent_id);
    const answered = await call(ui, session, "approval.respond", { id: pending.id, decision: "allow_once" });
    expect(answered.result).toMatchObject({
      status: "decided",
      decision: "allow_once",
      decided_by: "dashboard",
    });

    await stream.ended;
    const types = stream.events.map((e) => e.data.type);
    expect(stream.events.map((e) => e.id)).toEqual(stream.events.map((_, i) => i + 1));
    expect(types).toEqual(
      expect.arrayContaining(["agent.spawned", "approval.requested", "approval.decided", "usage"]),
    );
    expect(types.at(-1)).toBe("goal.finished");
    expect(stream.events.at(-1)?.data).toMatchObject({ goal_id: goalId, state: "succeeded" });
    const requested = stream.events.find((e) => e.data.type === "approval.requested")?.data;
    expect(requested).toMatchObject({ approval_id: pending.id, asked_by: { source: "approval_required" } });

    // The input reached the goal's /inputs, its first message named it, and the staging is gone.
    const g = (await call(ui, session, "goal.status", { goal_id: goalId })).result;
    expect(g.state).toBe("succeeded");
    expect(readFileSync(join(fx.home.config.goalsDir, goalId, "inputs", "notes.md"), "utf8")).toBe(
      "# the notes\n",
    );
    const first = suite.server.requests.find((r) => r.system.includes("You are boss"));
    expect(JSON.stringify(first?.body.messages)).toContain("/inputs/notes.md");
    const inbox = join(fx.home.config.home, "inbox");
    expect(existsSync(inbox) ? readdirSync(inbox).filter((n) => n.startsWith("ui-")) : []).toEqual([]);

    // The decision is audited as the dashboard's.
    const decided = (await call(ui, session, "audit.query", { goal_id: goalId, kind: "approval.decided" }))
      .result;
    expect(decided.entries[0].payload).toMatchObject({ decision: "allow_once", by: "dashboard" });

    // The agent tree: tokens against the budget, the inference queue, parents.
    const agents = (await call(ui, session, "agent.list", { goal_id: goalId, include_stopped: true })).result
      .agents;
    const root = agents.find((a: Json) => a.manifest === "boss");
    const child = agents.find((a: Json) => a.manifest === "writer");
    expect(child.parent_id).toBe(root.agent_id);
    expect(root.usage).toEqual({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) });
    expect(root.usage.input_tokens).toBeGreaterThanOrEqual(11);
    expect(root.budget).toMatchObject({ limit: 100_000, shared: true });
    expect(root.budget.spent).toBeGreaterThanOrEqual(14);
    expect(child.budget.shared).toBe(false);
    expect(root.queue).toMatchObject({ waiting: false, calls: 2 });
    expect(root.queue.wait_ms_total).toBeGreaterThanOrEqual(0);

    // Its outputs, listed and downloaded.
    writeFileSync(join(g.output_dir, "report.md"), "# report");
    const list = await raw(ui.port, {
      path: `/api/goals/${goalId}/outputs`,
      headers: { Host: ui.host, ...session },
    });
    expect(JSON.parse(list.text)).toEqual({ files: [{ name: "report.md", size: 8 }] });
    const file = await raw(ui.port, {
      path: `/api/goals/${goalId}/outputs/report.md`,
      headers: { Host: ui.host, ...session },
    });
    expect(file.text).toBe("# report");
    expect(file.headers["content-disposition"]).toBe("attachment; filename*=UTF-8''report.md");
  });

  it("refuses bad input names, an oversized body and a refused submit, leaving nothing staged", async () => {
    const fx = await suite.start({ config: (c: Config) => void Object.assign(c.ui, { maxUploadMb: 1 }) });
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const file = (name: string) => ({ name, content_base64: "eA==" });
    for (const [name, why] of [
      ["../x", "must not contain /"],
      ["..", "must be a file name"],
      ["", "must be a file name"],
      ["a\u0000b", "must not contain control characters"],
      ["a\nb", "must not contain control characters"],
      ["x".repeat(256), "longer than 255 bytes"],
    ]) {
      const r = await postJson(ui, session, "/api/goals", { goal: "g", inputs: [file(name as string)] });
      expect(r.status).toBe(400);
      expect(r.json.error.message).toBe(`inputs.0.name: ${why}`);
    }
    const twice = await postJson(ui, session, "/api/goals", { goal: "g", inputs: [file("a"), file("a")] });
    expect(twice.json.error.message).toBe("inputs.1.name: a second input of that name");
    const notBase64 = await postJson(ui, session, "/api/goals", {
      goal: "g",
      inputs: [{ name: "a", content_base64: "%%" }],
    });
    expect(notBase64.json.error.message).toContain("inputs.0.content_base64");
    const big = await postJson(ui, session, "/api/goals", {
      goal: "g",
      inputs: [{ name: "big", content_base64: Buffer.alloc(1024 * 1024).toString("base64") }],
    });
    expect(big.status).toBe(413);
    const refused = await postJson(ui, session, "/api/goals", {
      goal: "g",
      manifest: JSON.stringify(manifest("wide", { capabilities: ["exec: rm *"] })),
      inputs: [file("a.txt")],
    });
    expect(refused.status).toBe(400);
    expect(refused.json.error.code).toBeLessThan(0);
    const inbox = join(fx.home.config.home, "inbox");
    expect(existsSync(inbox) ? readdirSync(inbox) : []).toEqual([]);
    expect((await call(ui, session, "goal.list")).result.goals).toEqual([]);
  });

  it("keeps a queued goal's staged inputs across a restart until it has copied them, and removes stray ones", async () => {
    suite.server.script('manifest "first"', [turn.hang()]);
    suite.server.script('manifest "second"', [turn.text("done")]);
    const fx = await suite.start({
      config: (c: Config) => {
        c.limits.maxConcurrentGoals = 1;
      },
    });
    let ui = await openUi(fx);
    let session = await signIn(ui);
    const socket = await fx.client();
    await socket.call("goal.submit", { goal: "hold the slot", manifest: manifest("first") });
    const queued = await postJson(ui, session, "/api/goals", {
      goal: "read /inputs/a.txt",
      manifest: JSON.stringify(manifest("second")),
      inputs: [{ name: "a.txt", content_base64: Buffer.from("A").toString("base64") }],
    });
    const goalId = queued.json.goal_id as string;
    const inbox = join(fx.home.config.home, "inbox");
    const staged = readdirSync(inbox).filter((n) => n.startsWith("ui-"));
    expect(staged).toHaveLength(1);
    mkdirSync(join(inbox, "ui-stray"));
    writeFileSync(join(inbox, "ui-stray", "left.txt"), "from a crash");

    await fx.restart(); // the running goal fails; the queued one stays queued, then starts
    ui = await openUi(fx);
    session = await signIn(ui);
    const g = await eventually(async () => {
      const s = (await call(ui, session, "goal.status", { goal_id: goalId })).result;
      return s.state === "succeeded" || s.state === "failed" ? s : undefined;
    });
    expect(g.state).toBe("succeeded");
    expect(readFileSync(join(fx.home.config.goalsDir, goalId, "inputs", "a.txt"), "utf8")).toBe("A");
    await eventually(async () => (readdirSync(inbox).length === 0 ? true : undefined));
  });

  it("ends every event stream when the daemon stops", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const all = await openStream(ui, session, "/api/events");
    expect(all.status).toBe(200);
    expect(all.comments).toContain("stream open");
    const unknown = await raw(ui.port, {
      path: "/api/events?goal_id=g_nope",
      headers: { Host: ui.host, ...session },
    });
    expect(unknown.status).toBe(404);
    await fx.daemon.close();
    await all.ended;
  });
});

describe("approvals from the page", () => {
  it("say which policy rule asked; a standing grant is listed and revoked here; history is paged newest first", async () => {
    const withRule = (c: Config) => {
      c.policy.confirm = ["tool: memory_store"];
    };
    const fx = await suite.start({ config: withRule });
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const socket = await fx.client();
    const a = await socket.call("agent.spawn", {
      manifest: manifest("keeper", { lifecycle: "persistent", capabilities: ["tool: memory_store"] }),
    });
    const store = (content: string) =>
      socket.call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "memory_store",
        input: { content, category: "fact" },
      });

    const first = store("one");
    const rec = await eventually(async () => (await call(ui, session, "approval.list")).result.approvals[0]);
    expect(rec.asked_by).toEqual({
      source: "policy.confirm",
      rule: "policy.confirm[0]",
      text: "tool: memory_store",
    });
    expect(rec.lineage).toEqual([{ agent_id: a.agent_id, manifest: "keeper" }]);
    await call(ui, session, "approval.respond", { id: rec.id, decision: "allow_always" });
    expect((await first).is_error).toBe(false);

    const grants = (await call(ui, session, "approval.grants")).result.grants;
    expect(grants).toHaveLength(1);
    expect((await store("one")).is_error).toBe(false); // covered: nobody asked
    const revoked = await call(ui, session, "approval.revoke", { grant_id: grants[0].id });
    expect(revoked.result).toMatchObject({ id: grants[0].id });
    expect((await call(ui, session, "approval.grants")).result.grants).toEqual([]);
    const audit = (await call(ui, session, "audit.query", { kind: "approval.grant_revoked" })).result.entries;
    expect(audit[0].payload).toMatchObject({ grant_id: grants[0].id, by: "dashboard" });

    const again = store("one"); // asks again
    const second = await eventually(
      async () => (await call(ui, session, "approval.list")).result.approvals[0],
    );
    expect(second.id).not.toBe(rec.id);
    await call(ui, session, "approval.respond", { id: second.id, decision: "deny" });
    await expect(again).rejects.toThrow();

    const newest = (await call(ui, session, "approval.list", { status: "all", limit: 1 })).result.approvals;
    expect(newest.map((x: Json) => x.id)).toEqual([second.id]);
    const older = (await call(ui, session, "approval.list", { status: "decided", limit: 1, offset: 1 }))
      .result.approvals;
    expect(older.map((x: Json) => x.id)).toEqual([rec.id]);

    // The audit browser pages backwards through one agent's entries.
    const page1 = (await call(ui, session, "audit.query", { agent_id: a.agent_id, limit: 3 })).result.entries;
    const page2 = (
      await call(ui, session, "audit.query", { agent_id: a.agent_id, limit: 3, before_seq: page1.at(-1).seq })
    ).result.entries;
    const seqs = [...page1, ...page2].map((e: Json) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => y - x));
    expect(new Set(seqs).size).toBe(6);
    expect([...page1, ...page2].every((e: Json) => e.agent_id === a.agent_id)).toBe(true);

    const verify = (await call(ui, session, "audit.verify")).result;
    expect(verify).toMatchObject({ ok: true });
    expect(verify.entries).toBeGreaterThan(5);
  });
});

describe("plans and intents from the page", () => {
  it("lists a goal's plans and shows the intent a goal carries, by the goal's ids", async () => {
    suite.server.script('manifest "solo"', [turn.text("done")], { repeatLast: true });
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const socket = await fx.client();
    const project = mkdtempSync(join(tmpdir(), "aido-ui-flows-project-"));
    try {
      const intent = await socket.call("intent.set", { workspace: project, objective: "ship the parser" });
      const { goal_id } = await socket.call("goal.submit", {
        goal: "step",
        manifest: manifest("solo"),
        workspace: project,
      });
      const g = await socket.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
      expect(g.intent_id).toBe(intent.id);
      const shown = (await call(ui, session, "intent.status", { intent_id: g.intent_id, history: true }))
        .result;
      expect(shown.intent).toMatchObject({ id: intent.id, objective: "ship the parser", state: "active" });
      expect(shown.history).toEqual([]);
      const both = await call(ui, session, "intent.status", { intent_id: intent.id, workspace: project });
      expect(both.error).toMatchObject({ code: -32602, message: expect.stringContaining("exactly one") });
      expect((await call(ui, session, "intent.status", { intent_id: "int_nope" })).error).toMatchObject({
        code: -32003,
      });

      const a = await socket.call("agent.spawn", {
        manifest: manifest("planner", { capabilities: ["tool: memory_store"] }),
      });
      const plan = await socket.call("plan.create", {
        agent_id: a.agent_id,
        title: "remember",
        steps: [{ tool: "memory_store", input: { content: "x", category: "fact" } }],
      });
      const ofGoal = (await call(ui, session, "plan.list", { goal_id: a.goal_id })).result.plans;
      expect(ofGoal.map((x: Json) => x.plan_id)).toEqual([plan.plan_id]);
      expect((await call(ui, session, "plan.list", { goal_id })).result.plans).toEqual([]);
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });
});
