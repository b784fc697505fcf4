// `aido mcp serve`'s persistent intent and propose -> simulate -> execute tools, driven by
// the SDK's own Client through the real CLI, in front of a real daemon and containers:
// an objective set from one session is seen and stepped from another on the same project
// folder, its check runs as the session's agent through the gate (the exec asks the
// human through elicitation); a simulation changes nothing, a shadow one runs in a
// throwaway copy and reports the diff; a plan whose third step fails is rolled back with
// on_failure: restore, and another session cannot run it.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { requireDocker } from "../support/docker.js";
import { textOf, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

type Client = Awaited<ReturnType<typeof suite.connect>>;

/** Call an orchestrator tool that must succeed; its JSON result. */
async function ok<T = Record<string, unknown>>(
  c: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<T> {
  const r = await c.callTool({ name, arguments: args });
  expect(r.isError ?? false, `${name}: ${textOf(r)}`).toBe(false);
  return JSON.parse(textOf(r)) as T;
}

interface IntentView {
  intent: {
    objective: string;
    step_count: number;
    budget_tokens: number | null;
    last_check: { met: boolean } | null;
  } | null;
  checked?: { met: boolean; exit_code: number | null };
}

describe("persistent intent over MCP", () => {
  it("is one objective per project, shared by two sessions; its check asks the human and runs through the gate", async () => {
    await suite.start();
    const asked: string[] = [];
    const a = await suite.connect({
      elicit: async (req) => {
        asked.push(String(req.params.message));
        return { action: "accept", content: { decision: "allow_once" } };
      },
    });
    const b = await suite.connect();
    await ok(a, "aido_goal_set", {
      objective: "Ship the release notes",
      budget_tokens: 50_000,
      check: "ls /workspace/NOTES.md",
    });
    await ok(b, "aido_goal_step", { note: "outlined the notes" });

    const first = await ok<IntentView>(a, "aido_goal_status", { check: true });
    expect(first.intent).toMatchObject({
      objective: "Ship the release notes",
      step_count: 1,
      budget_tokens: 50_000,
    });
    expect(first.checked).toMatchObject({ met: false });
    expect(asked.join("\n"), "the check's exec waited for the human").toMatch(/ls \/workspace\/NOTES\.md/);

    const w = await a.callTool({
      name: "file_write",
      arguments: { path: "/workspace/NOTES.md", content: "v1\n" },
    });
    expect(w.isError ?? false, textOf(w)).toBe(false);
    const second = await ok<IntentView>(a, "aido_goal_status", { check: true });
    expect(second.checked).toMatchObject({ met: true, exit_code: 0 });

    // The other session sees the same objective, its step and the last check.
    const seen = await ok<IntentView>(b, "aido_goal_status", {});
    expect(seen.intent).toMatchObject({ step_count: 1, last_check: { met: true } });
    // Only the session that set it clears it (intent-owner.test.ts): not the other one.
    const notB = await b.callTool({ name: "aido_goal_clear", arguments: {} });
    expect(notB.isError, textOf(notB)).toBe(true);
    expect(textOf(notB)).toMatch(/was set by another MCP session/);
    await ok(a, "aido_goal_clear", {});
    expect((await ok<IntentView>(b, "aido_goal_status", {})).intent).toBeNull();
    // Stepping a cleared objective is refused as a result the model reads.
    const r = await a.callTool({ name: "aido_goal_step", arguments: { note: "more" } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/no active intent/);
  }, 120_000);

  it("refuses malformed input naming the field, and lives on", async () => {
    await suite.start();
    const c = await suite.connect();
    const r = await c.callTool({ name: "aido_goal_set", arguments: { objective: "x", budget_tokens: -5 } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/budget_tokens/);
    const r2 = await c.callTool({ name: "aido_simulate", arguments: { steps: [{ tool: "file_read" }] } });
    expect(r2.isError).toBe(true);
    expect(textOf(r2)).toMatch(/steps\.0\.input/);
    await ok(c, "aido_orchestrator_info", {});
  }, 60_000);
  it("records a step or a clear of a folder with no objective as a refused call, like every other refusal", async () => {
    const fx = await suite.start();
    const c = await suite.connect();
    const step = await c.callTool({ name: "aido_goal_step", arguments: { note: "did a thing" } });
    expect(step.isError).toBe(true);
    expect(textOf(step)).toMatch(/no active intent/);
    const clear = await c.callTool({ name: "aido_goal_clear", arguments: {} });
    expect(clear.isError).toBe(true);
    const d = await fx.client();
    const refused = (await d.call("audit.query", { kind: "session.call_refused" })).entries.map(
      (e) => e.payload as { tool: string; reason: string },
    );
    expect(refused.map((r) => r.tool).sort()).toEqual(["aido_goal_clear", "aido_goal_step"]);
    expect(refused[0]?.reason).toMatch(/no active intent/);
    await ok(c, "aido_orchestrator_info", {});
  }, 60_000);
});

describe("propose -> simulate -> execute over MCP", () => {
  it("simulates without touching the project, then runs a plan and rolls it back when a step fails", async () => {
    await suite.start();
    const c = await suite.connect();
    const sim = await ok<{ steps: { verdict: string; stage?: string }[] }>(c, "aido_simulate", {
      steps: [
        { tool: "file_write", input: { path: "/workspace/a.txt", content: "a" } },
        { tool: "file_write", input: { path: "/etc/cron.d/x", content: "x" } },
      ],
    });
    expect(sim.steps.map((s) => s.verdict)).toEqual(["allow", "deny"]);
    expect(sim.steps[1]?.stage).toBe("capability");
    expect(existsSync(join(suite.project, "a.txt")), "a simulation wrote nothing").toBe(false);

    // A shadow run really runs the steps, in a throwaway copy of the project.
    const shadow = await ok<{
      shadow: {
        steps: { ran: boolean; ok: boolean }[];
        diff: { added: { path: string }[]; changed: { path: string; diff?: string }[] };
      };
    }>(c, "aido_simulate", {
      shadow: true,
      steps: [
        { tool: "file_write", input: { path: "/workspace/a.txt", content: "a" } },
        {
          tool: "file_edit",
          input: { path: "/workspace/README.md", old_string: "user's", new_string: "shadow" },
        },
      ],
    });
    expect(shadow.shadow.steps.map((x) => [x.ran, x.ok])).toEqual([
      [true, true],
      [true, true],
    ]);
    expect(shadow.shadow.diff.added.map((x) => x.path)).toEqual(["/workspace/a.txt"]);
    expect(shadow.shadow.diff.changed[0]?.diff).toContain("+the shadow project");
    expect(existsSync(join(suite.project, "a.txt")), "the project is untouched").toBe(false);
    expect(readFileSync(join(suite.project, "README.md"), "utf8")).toBe("the user's project\n");

    const plan = await ok<{ plan_id: string }>(c, "aido_plan", {
      title: "two files, then an edit that cannot apply",
      steps: [
        { tool: "file_write", input: { path: "/workspace/a.txt", content: "a" } },
        { tool: "file_write", input: { path: "/workspace/README.md", content: "rewritten\n" } },
        { tool: "file_edit", input: { path: "/workspace/README.md", old_string: "absent", new_string: "x" } },
      ],
    });
    // Another session on the same project cannot run (and so use up) this session's plan.
    const other = await suite.connect();
    const stolen = await other.callTool({ name: "aido_plan_execute", arguments: { plan_id: plan.plan_id } });
    expect(stolen.isError).toBe(true);
    expect(textOf(stolen)).toMatch(/not recorded by this MCP session/);
    const run = await ok<{ status: string; steps: { ok: boolean }[] }>(c, "aido_plan_execute", {
      plan_id: plan.plan_id,
      on_failure: "restore",
    });
    expect(run.status).toBe("restored");
    expect(run.steps.map((s) => s.ok)).toEqual([true, true, false]);
    expect(existsSync(join(suite.project, "a.txt"))).toBe(false);
    expect(readFileSync(join(suite.project, "README.md"), "utf8")).toBe("the user's project\n");
    // A plan runs once.
    const again = await c.callTool({ name: "aido_plan_execute", arguments: { plan_id: plan.plan_id } });
    expect(again.isError).toBe(true);
  }, 120_000);
});
