// `aido plan simulate|create|execute|list` run in-process through runCli against a real
// agentd (Docker sandbox) on a temp AIDO_HOME: plan files in YAML and JSON, the exit codes
// (0 done, 1 a step denied or the plan failed, 2 usage), and bad files named with the key.

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import type { PlanExecution, Simulation } from "../../src/client/types.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { captureIo } from "./io.js";

const goals: string[] = [];
beforeAll(() => requireDocker());
const suite = useDaemonPerTest({
  beforeClose: async (fx) => {
    for (const g of goals.splice(0)) await fx?.daemon.runtime.backend.remove(g).catch(() => {});
  },
});

async function cli(argv: string[]) {
  const c = captureIo();
  const code = await runCli(argv, c.io, suite.fx.home.env);
  return { code, ...c };
}

async function start() {
  const fx = await suite.start({ runtime: { backend: undefined, builtinTools: daemonBuiltinTools } });
  const c = await fx.client();
  const a = await c.call("agent.spawn", {
    manifest: manifest("planner", {
      capabilities: [
        "tool: file_write",
        "tool: exec",
        "file_write: /workspace/**",
        "file_read: /workspace/**",
        "exec: ls *",
        "exec: python3 *",
      ],
    }),
  });
  goals.push(a.goal_id);
  const file = (name: string, text: string) => {
    const f = join(fx.home.dir, name);
    writeFileSync(f, text);
    return f;
  };
  return { fx, agent: a.agent_id, workspace: join(fx.home.config.goalsDir, a.goal_id, "workspace"), file };
}

const YAML_PLAN = `title: notes
steps:
  - tool: file_write
    input: { path: /workspace/a.txt, content: "a" }
  - tool: exec
    input: { command: "ls /workspace" }
`;

describe("aido plan simulate", () => {
  it("prints each step's verdict and inventory and exits 0 when no step is denied", async () => {
    const { agent, file, workspace } = await start();
    const r = await cli(["plan", "simulate", file("p.yaml", YAML_PLAN), "--agent", agent]);
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.text()).toMatch(/step 0 {2}file_write {2}allow/);
    expect(r.text()).toMatch(/writes {3}\/workspace\/a\.txt/);
    expect(r.text()).toMatch(/runs {5}ls \/workspace/);
    expect(existsSync(join(workspace, "a.txt"))).toBe(false);
  });

  it("with --shadow prints each step's output in the copy and the diff", async () => {
    const { agent, file, workspace } = await start();
    const r = await cli(["plan", "simulate", file("p.yaml", YAML_PLAN), "--agent", agent, "--shadow"]);
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.text()).toMatch(/shadow run \(a throwaway copy, w_/);
    expect(r.text()).toMatch(/step 1 {2}ok\n {4}exit code 0[\s\S]*a\.txt/);
    expect(r.text()).toContain("files: 1 added, 0 changed, 0 deleted");
    expect(r.text()).toContain("+ /workspace/a.txt (file, 1 bytes)");
    expect(existsSync(join(workspace, "a.txt"))).toBe(false);
  });

  it("with --shadow says how many text diffs the result's diff budget left out", async () => {
    const { agent, file } = await start();
    // 100 text files of 10 KB: their diffs together are past the 256 KiB budget.
    const command = `python3 -c "[open('/workspace/f%d' % i, 'w').write(('%d' % i + 'x' * 98 + chr(10)) * 100) for i in range(100)]"`;
    const plan = { steps: [{ tool: "exec", input: { command } }] };
    const r = await cli([
      "plan",
      "simulate",
      file("p.json", JSON.stringify(plan)),
      "--agent",
      agent,
      "--shadow",
    ]);
    expect(r.err).toEqual([]);
    expect(r.text()).toContain("files: 100 added, 0 changed, 0 deleted");
    expect(r.text()).toMatch(
      /\n\d+ text diffs left out: the diff budget of one result \(256 KiB\) was spent/,
    );
  });

  it("exits 1 when a step is denied, and --json gives the simulation", async () => {
    const { agent, file } = await start();
    const plan = { steps: [{ tool: "file_write", input: { path: "/output/x", content: "x" } }] };
    const r = await cli([
      "plan",
      "simulate",
      file("p.json", JSON.stringify(plan)),
      "--agent",
      agent,
      "--json",
    ]);
    expect(r.code).toBe(1);
    const sim = JSON.parse(r.text()) as Simulation;
    expect(sim.steps[0]).toMatchObject({ verdict: "deny", stage: "capability" });
  });

  it("exits 2 naming the file and the key for a bad plan file, a bad step input or missing options", async () => {
    const { agent, file } = await start();
    const unknown = file("u.yaml", `titel: x\n${YAML_PLAN.slice(YAML_PLAN.indexOf("steps:"))}`);
    let r = await cli(["plan", "simulate", unknown, "--agent", agent]);
    expect(r.code).toBe(2);
    expect(r.err.join("\n")).toContain(`${unknown}: titel: unknown key`);
    const badInput = file("b.yaml", "steps:\n  - tool: file_write\n    input: { path: 5, content: x }\n");
    r = await cli(["plan", "simulate", badInput, "--agent", agent]);
    expect(r.code).toBe(2);
    expect(r.err.join("\n")).toContain(badInput);
    expect(r.err.join("\n")).toContain("steps.0.input.path");
    r = await cli(["plan", "simulate", file("ok.yaml", YAML_PLAN)]);
    expect(r.code).toBe(2);
    expect(r.err.join("\n")).toMatch(/--agent ID/);
    r = await cli(["plan", "execute", "plan_x", "--on-failure", "maybe"]);
    expect(r.code).toBe(2);
  });
});

describe("aido plan create / execute / list", () => {
  it("records a plan, runs it with --on-failure restore (exit 1 when it fails) and lists it", async () => {
    const { agent, file, workspace } = await start();
    const plan = `title: fails at step 2
steps:
  - tool: file_write
    input: { path: /workspace/a.txt, content: "a" }
  - tool: exec
    input: { command: "ls /workspace/missing" }
`;
    const created = await cli(["plan", "create", file("f.yaml", plan), "--agent", agent, "--json"]);
    expect(created.code).toBe(0);
    const { plan_id } = JSON.parse(created.text()) as { plan_id: string };
    const r = await cli(["plan", "execute", plan_id, "--on-failure", "restore"]);
    expect(r.code).toBe(1);
    expect(r.text()).toMatch(/step 1 {2}FAILED/);
    expect(r.text()).toContain(`plan ${plan_id}: restored`);
    expect(existsSync(join(workspace, "a.txt"))).toBe(false);
    const again = await cli(["plan", "execute", plan_id, "--json"]);
    expect(again.code).toBe(1);
    expect(again.err.join("\n")).toMatch(/already executed/);
    const list = await cli(["plan", "list"]);
    expect(list.code).toBe(0);
    expect(list.text()).toMatch(new RegExp(`${plan_id} {2}restored`));
    expect(list.text()).toContain("fails at step 2");
  });

  it("exits 0 when the plan succeeds", async () => {
    const { agent, file, workspace } = await start();
    const created = await cli(["plan", "create", file("ok.yaml", YAML_PLAN), "--agent", agent, "--json"]);
    const { plan_id } = JSON.parse(created.text()) as { plan_id: string };
    const r = await cli(["plan", "execute", plan_id, "--json"]);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.text()) as PlanExecution).status).toBe("succeeded");
    expect(existsSync(join(workspace, "a.txt"))).toBe(true);
  });
});
