// The socket commands (`aido submit|goals|status|cancel|watch|agents|approvals|daemon
// status`) run in-process through runCli against a real agentd on a temp AIDO_HOME, its
// real socket, and the scripted provider behind the real SDK clients.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import type { GoalStatus } from "../../src/kernel/goal-store.js";
import { MODEL, manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { makeTempHome } from "../support/home.js";
import { turn } from "../support/provider-server.js";
import { captureIo } from "./io.js";

const suite = useDaemonPerTest();

function manifestFile(dir: string, name: string, extra = ""): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}\nmodel: ${MODEL}\nsystem_prompt: "You are ${name}, under test."\n${extra}`,
  );
  return file;
}

async function cli(argv: string[], interactive = false) {
  const c = captureIo(interactive);
  const code = await runCli(argv, c.io, suite.fx.home.env);
  return { code, ...c };
}

describe("aido submit", () => {
  it("with --wait --json exits 0 and prints the goal's final status", async () => {
    suite.server.script('manifest "solo"', [
      turn.text("the answer is 42", { usage: { input_tokens: 9, output_tokens: 3 } }),
    ]);
    const fx = await suite.start();
    const r = await cli([
      "submit",
      "what is the answer?",
      "--manifest",
      manifestFile(fx.home.dir, "solo"),
      "--wait",
      "--json",
    ]);
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    const g = JSON.parse(r.text()) as GoalStatus;
    expect(g).toMatchObject({ state: "succeeded", result: "the answer is 42", goal: "what is the answer?" });
    expect(g.usage).toEqual({ input_tokens: 9, output_tokens: 3 });
  });

  it("with --wait exits 1 when the goal fails, and says why", async () => {
    suite.server.script('manifest "broken"', [turn.error(400, { message: "model says no" })]);
    const fx = await suite.start();
    const r = await cli([
      "submit",
      "fail please",
      "--manifest",
      manifestFile(fx.home.dir, "broken"),
      "--wait",
    ]);
    expect(r.code).toBe(1);
    expect(r.text()).toMatch(/^state {3}failed$/m);
    expect(r.text()).toMatch(/^error {3}.+/m);
  });

  it("without --wait prints the goal id at once; goals and status then show it", async () => {
    suite.server.script('manifest "solo"', [turn.text("done")]);
    const fx = await suite.start();
    const r = await cli(["submit", "list me", "--manifest", manifestFile(fx.home.dir, "solo")]);
    expect(r.code).toBe(0);
    const id = r.text().trim();
    expect(id).not.toBe("");
    const listed = await cli(["goals", "--json"]);
    expect((JSON.parse(listed.text()) as GoalStatus[]).map((g) => g.goal_id)).toContain(id);
    const table = await cli(["goals"]);
    expect(table.text()).toContain(id);
    expect(table.text()).toContain("list me");
    const st = await cli(["status", id, "--json"]);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.text())).toMatchObject({ goal_id: id, goal: "list me" });
  });

  it("refuses a manifest file it cannot read as a usage error (exit 2)", async () => {
    const fx = await suite.start();
    const r = await cli(["submit", "x", "--manifest", join(fx.home.dir, "missing.yaml")]);
    expect(r.code).toBe(2);
    expect(r.err.join("\n")).toContain("cannot read manifest");
  });

  it("with --follow shows the goal from its first event, even a goal that ends at once", async () => {
    suite.server.script('manifest "solo"', [turn.text("followed")]);
    const fx = await suite.start();
    const idFile = join(fx.home.dir, "goal-id");
    const r = await cli([
      "submit",
      "follow me",
      "--manifest",
      manifestFile(fx.home.dir, "solo"),
      "--follow",
      "--id-file",
      idFile,
    ]);
    expect(r.code).toBe(0);
    const id = readFileSync(idFile, "utf8").trim();
    expect(r.err).toContain(`goal ${id} submitted`);
    expect(r.text()).toMatch(/spawned solo \(anthropic\/claude-test\)/);
    expect(r.text()).toContain("goal succeeded");
    expect(r.text()).toContain(`goal ${id} succeeded; tokens`);
  });

  it("with --follow exits 1 when the goal fails", async () => {
    suite.server.script('manifest "broken"', [turn.error(400, { message: "model says no" })]);
    const fx = await suite.start();
    const r = await cli(["submit", "fail", "--manifest", manifestFile(fx.home.dir, "broken"), "--follow"]);
    expect(r.code).toBe(1);
    expect(r.text()).toMatch(/^goal \S+ failed; tokens/m);
  });
});

describe("aido status and cancel", () => {
  it("status of an unknown goal exits 1 naming it", async () => {
    const _fx = await suite.start();
    const r = await cli(["status", "g-nope"]);
    expect(r.code).toBe(1);
    expect(r.err.join("\n")).toContain("g-nope");
  });

  it("cancels a running goal; waiting on it then exits 1", async () => {
    suite.server.script('manifest "slow"', [turn.text("too late", { delayMs: 20_000 })]);
    const fx = await suite.start();
    const id = (await cli(["submit", "take your time", "--manifest", manifestFile(fx.home.dir, "slow")]))
      .text()
      .trim();
    for (let i = 0; i < 100 && suite.server.requests.length === 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    const c = await cli(["cancel", id]);
    expect(c.code).toBe(0);
    expect(c.text()).toBe(`goal ${id}: cancelled`);
    const w = await cli(["watch", id]);
    expect(w.code).toBe(1);
    expect(w.text()).toContain(`goal ${id} cancelled`);
  });
});

describe("aido watch", () => {
  it("follows a goal to its end and exits 0 when it succeeds", async () => {
    suite.server.script('manifest "solo"', [
      turn.text("watched", { delayMs: 500, usage: { input_tokens: 5, output_tokens: 2 } }),
    ]);
    const fx = await suite.start();
    const id = (await cli(["submit", "watch me", "--manifest", manifestFile(fx.home.dir, "solo")]))
      .text()
      .trim();
    const w = await cli(["watch", id]);
    expect(w.code).toBe(0);
    expect(w.text()).toContain("goal succeeded");
    expect(w.text()).toContain(`goal ${id} succeeded; tokens 7 (in 5, out 2)`);
  });

  it("shows each agent with its manifest's description", async () => {
    suite.server.script('manifest "solo"', [turn.text("described", { delayMs: 200 })]);
    const fx = await suite.start();
    const file = manifestFile(fx.home.dir, "solo", "description: Answers while being watched.\n");
    const w = await cli(["submit", "watch me", "--manifest", file, "--follow"]);
    expect(w.code).toBe(0);
    expect(w.text()).toContain(`spawned solo (${MODEL}): Answers while being watched.`);
  });

  it("prints raw events as JSON lines with --json", async () => {
    suite.server.script('manifest "solo"', [turn.text("json", { delayMs: 300 })]);
    const fx = await suite.start();
    const id = (await cli(["submit", "json me", "--manifest", manifestFile(fx.home.dir, "solo")]))
      .text()
      .trim();
    const w = await cli(["watch", id, "--json"]);
    expect(w.code).toBe(0);
    const events = w.out.map((l) => JSON.parse(l) as { type: string; goal_id: string });
    expect(events.at(-1)).toMatchObject({ type: "goal.finished", goal_id: id });
  });
});

describe("aido approvals", () => {
  const memo = (extra: Record<string, unknown> = {}) =>
    manifest("memo", {
      lifecycle: "persistent",
      capabilities: ["tool: memory_store", "tool: memory_query"],
      approval_required: ["memory_store"],
      ...extra,
    });

  async function pendingCall() {
    const caller = await suite.fx.client();
    const a = await caller.call("agent.spawn", { manifest: memo() });
    const call = caller.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "memory_store",
      input: { content: "approved fact", category: "fact" },
    });
    let listed: { id: string }[] = [];
    for (let i = 0; listed.length === 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 20));
      listed = JSON.parse((await cli(["approvals", "--json"])).text()) as { id: string }[];
    }
    expect(listed).toHaveLength(1);
    return { call, id: listed[0]!.id, agentId: a.agent_id };
  }

  it("lists what waits, and `approvals respond ID allow_once` lets the call run", async () => {
    const _fx = await suite.start();
    const p = await pendingCall();
    const text = await cli(["approvals"]);
    expect(text.text()).toContain(`${p.id}  memory_store  agent=${p.agentId}`);
    expect(text.text()).toContain("answer with: aido approvals respond ID");
    const r = await cli(["approvals", "respond", p.id, "allow_once"]);
    expect(r.code).toBe(0);
    expect(r.text()).toBe(`${p.id}: allow_once (memory_store for ${p.agentId})`);
    expect((await p.call).is_error).toBe(false);
    expect((await cli(["approvals"])).text()).toBe("no approvals waiting");
  });

  it("asks about each request on a terminal; 'd' denies it", async () => {
    const fx = await suite.start();
    const p = await pendingCall();
    const answers = ["maybe", "d"];
    const c = captureIo(true);
    const questions: string[] = [];
    c.io.prompt = async (q) => {
      questions.push(q);
      return answers.shift();
    };
    expect(await runCli(["approvals"], c.io, fx.home.env)).toBe(0);
    expect(questions[0]).toContain("Allow [o]nce / Allow [s]ession / Allow [a]lways / [d]eny");
    expect(c.text()).toContain("answer o, s, a, d or k");
    expect(c.text()).toContain(`${p.id}: deny`);
    await expect(p.call).rejects.toMatchObject({ code: "approval_denied" });
  });

  it("refuses a decision that is not one of the four as a usage error", async () => {
    const _fx = await suite.start();
    const r = await cli(["approvals", "respond", "ap-1", "maybe"]);
    expect(r.code).toBe(2);
    expect(r.err.join("\n")).toContain('got "maybe"');
  });
});

describe("aido agents and daemon status", () => {
  it("shows the agent tree and the daemon's pid and socket", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const a = await c.call("agent.spawn", {
      manifest: manifest("keeper", { lifecycle: "persistent", description: "Keeps the team's notes." }),
    });
    const r = await cli(["agents"]);
    expect(r.text()).toContain(`keeper  ${a.agent_id}`);
    expect(r.text()).toMatch(new RegExp(`keeper  ${a.agent_id} .*  — Keeps the team's notes\\.$`));
    const j = await cli(["agents", "--json"]);
    expect(JSON.parse(j.text())).toEqual([
      expect.objectContaining({
        agent_id: a.agent_id,
        manifest: "keeper",
        description: "Keeps the team's notes.",
      }),
    ]);
    const s = await cli(["daemon", "status", "--json"]);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.text())).toEqual({
      running: true,
      pid: process.pid,
      socket: fx.home.config.socketPath,
      pid_file: fx.home.config.pidPath,
    });
  });
});

describe("without a daemon", () => {
  it("says the daemon is not running and how to start it, exit 1, no stack trace", async () => {
    const home = makeTempHome();
    try {
      for (const argv of [
        ["goals"],
        ["submit", "x"],
        ["status", "g1"],
        ["watch"],
        ["approvals"],
        ["agents"],
      ]) {
        const c = captureIo();
        expect(await runCli(argv, c.io, home.env)).toBe(1);
        const err = c.err.join("\n");
        expect(err).toContain("the Aido daemon is not running");
        expect(err).toContain("aido daemon start");
        expect(err).not.toMatch(/\n\s+at /);
      }
      const st = captureIo();
      expect(await runCli(["daemon", "status"], st.io, home.env)).toBe(1);
      expect(st.text()).toContain("agentd not running");
    } finally {
      home.cleanup();
    }
  });
});

describe("aido daemon start and stop", () => {
  it("starts a detached daemon that writes its pid file, and stops it cleanly", async () => {
    const home = makeTempHome();
    try {
      const start = captureIo();
      expect(await runCli(["daemon", "start"], start.io, home.env), start.err.join("\n")).toBe(0);
      expect(start.text()).toMatch(/^agentd started \(pid \d+\)/);
      const pid = Number(readFileSync(home.config.pidPath, "utf8"));
      const st = captureIo();
      expect(await runCli(["daemon", "status"], st.io, home.env)).toBe(0);
      expect(st.text()).toBe(`agentd running (pid ${pid}); socket ${home.config.socketPath}`);
      const again = captureIo();
      expect(await runCli(["daemon", "start"], again.io, home.env)).toBe(2);
      expect(again.err.join("\n")).toContain("already running");
      const stop = captureIo();
      expect(await runCli(["daemon", "stop"], stop.io, home.env)).toBe(0);
      expect(stop.text()).toBe(`agentd stopped (pid ${pid})`);
      const after = captureIo();
      expect(await runCli(["daemon", "status"], after.io, home.env)).toBe(1);
    } finally {
      home.cleanup();
    }
  }, 120_000);
});
