// What the CLI prints of text a model wrote — a goal's result and error, the goal text (a
// model submits goals through the MCP face), agent stop reasons, memories, audit payloads,
// names of skipped deliverables — is inert: every character a terminal would act on (ESC
// sequences, a carriage return, C1 controls, bidi overrides) is written as an escape, so a
// result cannot clear the screen, rewrite the line above or plant a link. Newlines and tabs
// of multi-line text stay. --json prints the exact text (JSON does the escaping). (A
// manifest's description may hold no control character at all: refused at the edge.)
// Real agentd on a temp AIDO_HOME, the scripted provider behind the real SDK, runCli.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import type { GoalStatus } from "../../src/kernel/goal-store.js";
import { MODEL, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { captureIo } from "./io.js";

const suite = useDaemonPerTest();

/** Clears the screen, rewrites the line, plants a hyperlink, reverses text, C1 CSI. */
const HOSTILE = "\x1b[2J\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\rfake line\u202etxt.exe\u009b31m";
/** Any character a terminal acts on, other than newline and tab. */
const ACTIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

function manifestFile(name: string, extra = ""): string {
  const file = join(suite.fx.home.dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}\nmodel: ${MODEL}\nsystem_prompt: "You are ${name}, under test."\n${extra}`,
  );
  return file;
}

async function cli(argv: string[]) {
  const c = captureIo();
  const code = await runCli(argv, c.io, suite.fx.home.env);
  return { code, ...c, all: () => [...c.out, ...c.err].join("\n") };
}

describe("model-written text on the terminal", () => {
  it("aido submit --wait and aido status print a result as inert text, its lines kept; --json exactly", async () => {
    const result = `first line ${HOSTILE}\n\tsecond line`;
    suite.server.script('manifest "solo"', [
      turn.toolUse("memory_store", { content: `remember ${HOSTILE}`, category: "fact" }),
      turn.text(result),
    ]);
    const _fx = await suite.start({ env: { AIDO_PERSISTENT_MEMORY: "1" } });
    const goal = `goal from a model ${HOSTILE}`;
    const file = manifestFile("solo", 'capabilities: ["tool: memory_store"]\n');
    const r = await cli(["submit", goal, "--manifest", file, "--wait"]);
    expect(r.code).toBe(0);
    expect(r.all()).not.toMatch(ACTIVE);
    expect(r.text()).toContain("result\nfirst line \\x1b[2J\\x1b]8;;https://evil.example\\x07click");
    expect(r.text()).toContain("\\x0dfake line\\u202etxt.exe\\x9b31m\n\tsecond line");
    expect(r.text()).toContain("asked   goal from a model \\x1b[2J");
    const id = /^goal {4}(\S+)$/m.exec(r.text())![1]!;

    const st = await cli(["status", id]);
    expect(st.all()).not.toMatch(ACTIVE);
    expect(st.text()).toContain("\\x0dfake line\\u202etxt.exe");
    const json = await cli(["status", id, "--json"]);
    expect((JSON.parse(json.text()) as GoalStatus).result).toBe(result);
    expect((JSON.parse(json.text()) as GoalStatus).goal).toBe(goal);

    const list = await cli(["goals"]);
    expect(list.all()).not.toMatch(ACTIVE);
    expect(list.text()).toContain("goal from a model \\x1b[2J");

    const memories = await cli(["memory", "list"]);
    expect(memories.all()).not.toMatch(ACTIVE);
    expect(memories.text()).toContain("remember \\x1b[2J");

    // JSON escapes C0 controls but not C1 or bidi characters: the audit tail escapes those too.
    const tail = await cli(["audit", "tail", "-n", "50"]);
    expect(tail.code).toBe(0);
    expect(tail.all()).not.toMatch(ACTIVE);
    expect(tail.text()).toContain("\\u202etxt.exe\\x9b31m");
  });

  it("prints a goal's error as inert text, with --wait and in the agent list's stop reasons", async () => {
    suite.server.script('manifest "broken"', [turn.error(400, { message: `model says no ${HOSTILE}` })]);
    const _fx = await suite.start();
    const r = await cli(["submit", "fail please", "--manifest", manifestFile("broken"), "--wait"]);
    expect(r.code).toBe(1);
    expect(r.all()).not.toMatch(ACTIVE);
    expect(r.text()).toMatch(/^error {3}.*model says no \\x1b\[2J.*\\x0dfake line\\u202etxt/m);
    const agents = await cli(["agents", "--all"]);
    expect(agents.all()).not.toMatch(ACTIVE);
    expect(agents.text()).toMatch(/^broken .*\(finished: error\)/m);
  });

  it("prints a refusal that echoes what the caller typed (a goal id) as inert text", async () => {
    const _fx = await suite.start();
    const r = await cli(["status", `g-${HOSTILE}`]);
    expect(r.code).toBe(1);
    expect(r.all()).not.toMatch(ACTIVE);
    expect(r.err.join("\n")).toMatch(/^aido status: .*g-\\x1b\[2J/m);
  });
});
