// `aido intent set | step | status | clear` and `aido submit` carrying the intent of the
// folder it runs in: in-process through runCli, against a real agentd on its socket.
// The folder is the current one unless --workspace names another; exit codes 0 done,
// 1 the daemon refused, 2 usage.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import type { Intent } from "../../src/intent/store.js";
import { MODEL, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { captureIo } from "./io.js";

let scratch: string | undefined;
const startedIn = process.cwd();
const suite = useDaemonPerTest({
  afterEach: () => {
    process.chdir(startedIn);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = undefined;
  },
});

function project(): string {
  scratch = mkdtempSync(join(tmpdir(), "aido-intent-cli-"));
  const dir = join(scratch, "project");
  mkdirSync(dir);
  return dir;
}

async function cli(argv: string[]) {
  const c = captureIo();
  const code = await runCli(argv, c.io, suite.fx.home.env);
  return { code, ...c };
}

describe("aido intent", () => {
  it("sets, steps, shows and clears the objective of the current folder", async () => {
    await suite.start();
    const dir = project();
    process.chdir(dir);
    const set = await cli(["intent", "set", "ship the parser", "--budget", "200000", "--check", "npm test"]);
    expect(set.code).toBe(0);
    expect(set.out[0]).toMatch(/^intent {6}int_\S+ {2}\(active; set by aido cli at \S+\)$/);
    expect(set.out).toContain(`workspace   ${dir}`);
    expect(set.out).toContain("objective   ship the parser");

    expect((await cli(["intent", "step", "lexer", "done"])).text()).toMatch(
      /^step 1 recorded for int_\S+: lexer done$/,
    );
    await cli(["intent", "step", "parser half done"]);

    const status = await cli(["intent", "status"]);
    expect(status.code).toBe(0);
    expect(status.out.slice(1)).toEqual([
      `workspace   ${dir}`,
      "objective   ship the parser",
      "steps       2",
      "  1. lexer done  (aido cli)",
      "  2. parser half done  (aido cli)",
      "tokens      0 spent of 200000 (200000 left)",
      "check       npm test",
      "last check  never run",
    ]);
    const json = JSON.parse((await cli(["intent", "status", "--json"])).text()) as { intent: Intent };
    expect(json.intent).toMatchObject({
      workspace: dir,
      step_count: 2,
      budget_tokens: 200_000,
      check: "npm test",
    });

    // A socket client elsewhere (an MCP session, say) sees the same intent.
    const other = await suite.fx.client();
    expect((await other.call("intent.status", { workspace: dir })).intent?.id).toBe(json.intent.id);

    const cleared = await cli(["intent", "clear"]);
    expect(cleared.code).toBe(0);
    expect(cleared.text()).toBe(`cleared ${json.intent.id} (2 steps, 0 spent of 200000 (200000 left))`);
    expect((await cli(["intent", "status"])).text()).toBe(
      `no active intent for ${dir} (set one with: aido intent set "OBJECTIVE")`,
    );
    const history = await cli(["intent", "status", "--history"]);
    expect(history.out[1]).toMatch(
      new RegExp(`^${json.intent.id} {2}cleared .* 2 steps {2}0 tok {2}ship the parser$`),
    );
    const cleared2 = JSON.parse((await cli(["intent", "status", "--history", "--json"])).text());
    expect(cleared2).toMatchObject({
      intent: null,
      history: [{ id: json.intent.id, state: "cleared", ended_by: "aido cli" }],
    });
  });

  it("names another folder with --workspace, relative to the current one", async () => {
    await suite.start();
    const dir = project();
    process.chdir(join(dir, ".."));
    expect((await cli(["intent", "set", "elsewhere", "--workspace", "project", "--json"])).code).toBe(0);
    const s = JSON.parse((await cli(["intent", "status", "--workspace", dir, "--json"])).text());
    expect(s.intent.objective).toBe("elsewhere");
    expect(JSON.parse((await cli(["intent", "status", "--json"])).text())).toEqual({ intent: null });
  });

  it("exits 2 on usage errors and 1 when the daemon refuses, saying why", async () => {
    await suite.start();
    const dir = project();
    const noObjective = await cli(["intent", "set", "--workspace", dir]);
    expect(noObjective.code).toBe(2);
    expect(noObjective.err.join("\n")).toContain("give the objective");
    const badBudget = await cli(["intent", "set", "x", "--budget", "lots", "--workspace", dir]);
    expect(badBudget.code).toBe(2);
    expect(badBudget.err.join("\n")).toContain('--budget must be a positive integer of tokens, got "lots"');
    expect((await cli(["intent", "status", "--colour"])).code).toBe(2);

    const noIntent = await cli(["intent", "step", "x", "--workspace", dir]);
    expect(noIntent.code).toBe(1);
    expect(noIntent.err.join("\n")).toBe(`aido intent step: no active intent for workspace ${dir}`);
    expect((await cli(["intent", "clear", "--workspace", dir])).code).toBe(1);
    const missing = await cli(["intent", "set", "x", "--workspace", join(dir, "nope")]);
    expect(missing.code).toBe(1);
    expect(missing.err.join("\n")).toContain(`workspace: ${join(dir, "nope")} does not exist`);
    const control = await cli(["intent", "set", "bad\u0007bell", "--workspace", dir]);
    expect(control.code).toBe(1);
    expect(control.err.join("\n")).toContain(
      "objective: must not contain control characters, bidi or invisible ones (found U+0007",
    );
  });

  it("shows the last check, refused ones with the stage and reason", async () => {
    await suite.start();
    const dir = project();
    await cli(["intent", "set", "x", "--check", "ls", "--workspace", dir]);
    const c = await suite.fx.client();
    // A session bound to the folder whose grants allow echo only: the gate refuses `ls`
    // before any container is involved.
    const a = await c.call("session.open", {
      manifest: {
        name: "echoer",
        model: MODEL,
        system_prompt: "e",
        capabilities: ["tool: exec", "exec: echo *"],
      },
      workspace: dir,
    });
    const r = await c.call("intent.check", { workspace: dir, agent_id: a.agent_id });
    const out = (await cli(["intent", "status", "--workspace", dir])).out;
    expect(out).toContain("check       ls");
    expect(out).toContain(
      `last check  refused at the capability stage: ${r.denied?.reason} at ${r.at}, as agent ${a.agent_id}`,
    );
  });

  it("`aido submit` from the folder carries its objective, and the goal's tokens count", async () => {
    suite.server.script('manifest "solo"', [
      turn.text("done", { usage: { input_tokens: 40, output_tokens: 2 } }),
    ]);
    await suite.start();
    const dir = project();
    const manifestFile = join(scratch as string, "solo.yaml");
    writeFileSync(manifestFile, `name: solo\nmodel: ${MODEL}\nsystem_prompt: "You are solo, under test."\n`);
    process.chdir(dir);
    await cli(["intent", "set", "keep the build green"]);
    const submitted = await cli([
      "submit",
      "fix the flaky test",
      "--manifest",
      manifestFile,
      "--wait",
      "--json",
    ]);
    expect(submitted.code).toBe(0);
    const first = JSON.stringify(
      suite.server.requestsMatching('manifest "solo"')[0]!.body.messages[0].content,
    );
    expect(first).toContain("keep the build green");
    expect((await cli(["intent", "status"])).out).toContain("tokens      42 spent (no budget)");
  });
});
