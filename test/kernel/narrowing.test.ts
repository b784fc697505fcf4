// Children narrowed on every axis, through the path a model takes: the agent loop with
// the real SDK against the scripted provider, spawn_agent / spawn_agents written by the
// model, and what the model reads back. No container: the tools used here (spawn_*,
// skill_read) never touch one.

import { describe, expect, it } from "vitest";
import { type Harness, openHarness, useHarnessSuite } from "../agent/harness.js";
import { type ProviderServer, type RecordedRequest, turn } from "../support/provider-server.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

const lead = (extra: Record<string, unknown> = {}) => ({
  name: "lead",
  system_prompt: "You lead.",
  capabilities: [
    "tool: spawn_agent",
    "tool: spawn_agents",
    "tool: skill_read",
    "file_read: /workspace/**",
    "spawn_child: [helper, helper2, helper3, helper4, helper5]",
  ],
  ...extra,
});

function lastToolResult(req: RecordedRequest): { content: string; is_error?: boolean } {
  return (req.body.messages.at(-1).content as { content: string; is_error?: boolean }[])[0]!;
}

describe("a child manifest that asks for more than its parent holds", () => {
  it("is refused once, naming every offending key, and the model reads each of them", async () => {
    h = await openHarness(server, { config: (c) => (c.models.allowed = [["anthropic/*"]]) });
    const greedy = {
      name: "helper",
      system_prompt: "You help.",
      model: "openai/gpt-4o",
      capabilities: ["tool: skill_read", "file_read: /**", "tool: exec"],
      skills: ["research-with-citations", "tdd-code-change"],
      limits: { max_iterations: 50, max_children: 3, max_depth: 3 },
      memory: { episodic: true },
      budget: { max_tokens: 900_000, reset_period_seconds: 2 },
    };
    const script = server.script('manifest "lead"', [
      turn.toolUse("spawn_agent", { manifest: greedy, message: "Do it." }),
      turn.text("Refused; I will narrow it."),
    ]);
    const r = await h.rt.spawnAndRun(
      lead({
        skills: ["research-with-citations"],
        limits: { max_iterations: 5, max_children: 2, max_depth: 2 },
        memory: { episodic: false },
        budget: { max_tokens: 100_000 },
      }),
      "Delegate.",
    );
    expect(r.stop_reason).toBe("complete");
    const seen = lastToolResult(script.requests[1]!);
    expect(seen.is_error).toBe(true);
    expect(seen.content).toContain("capability_denied");
    for (const part of [
      'capabilities: "file_read: /**", "tool: exec" exceed the parent\'s',
      'skills: "tdd-code-change" not in the parent\'s skills [research-with-citations]',
      'model: "openai/gpt-4o" is not allowed by models.allowed (anthropic/*)',
      "limits.max_iterations: 50 is above the parent's 5",
      "limits.max_children: 3 is above the parent's 2",
      "limits.max_depth: 3 is above the parent's 2",
      "memory.episodic: cannot be on when the parent's is off",
      "budget.reset_period_seconds: the parent's budget has no reset period",
      "budget.max_tokens: 900000 is more than the",
    ])
      expect(seen.content).toContain(part);
    const denied = h.rt.audit.query({ kind: "agent.spawn_denied" });
    expect(denied).toHaveLength(1);
    expect(denied[0]!.payload).toMatchObject({
      manifest: "helper",
      offending: ["file_read: /**", "tool: exec"],
      keys: [
        "capabilities",
        "skills",
        "limits.max_iterations",
        "limits.max_children",
        "limits.max_depth",
        "memory.episodic",
        "budget.reset_period_seconds",
        "model",
        "budget.max_tokens",
      ],
    });
    expect(server.requestsMatching('manifest "helper"')).toHaveLength(0);
    expect(h.rt.listAgents({ includeStopped: true }).map((a) => a.manifest)).toEqual(["lead"]);
  });

  // Issue 11's attack, first half: a goal without a reset period cannot have a child with one.
  it("refuses a child's reset period under a goal whose root has none", async () => {
    h = await openHarness(server, { config: (c) => (c.limits.goalMaxTokens = 30_000) });
    const script = server.script('manifest "lead"', [
      turn.toolUse("spawn_agent", {
        manifest: { name: "helper", budget: { max_tokens: 10_000, reset_period_seconds: 2 } },
        message: "Spend.",
      }),
      turn.text("ok"),
    ]);
    const { goal_id } = h.rt.goals.submit({ goal: "Spend.", manifest: lead() });
    expect((await h.rt.goals.wait(goal_id, 15_000)).state).toBe("succeeded");
    const seen = lastToolResult(script.requests[1]!);
    expect(seen.content).toContain(
      "budget.reset_period_seconds: the parent's budget has no reset period, so a child's cannot have one",
    );
    expect(server.requestsMatching('manifest "helper"')).toHaveLength(0);
  });
});

describe("what a child inherits", () => {
  it("takes its parent's skills, limits and approvals when it names none, and skill_read refuses other skills", async () => {
    h = await openHarness(server);
    server.script('manifest "lead"', [
      turn.toolUse("spawn_agent", {
        manifest: { name: "helper", system_prompt: "You help.", capabilities: ["tool: skill_read"] },
        message: "Read skills.",
      }),
      turn.text("done"),
    ]);
    const kid = server.script('manifest "helper"', [
      turn.toolUses([
        { name: "skill_read", input: { name: "tdd-code-change" } },
        { name: "skill_read", input: { name: "research-with-citations" } },
      ]),
      turn.text("read"),
    ]);
    await h.rt.spawnAndRun(
      lead({
        skills: ["research-with-citations"],
        limits: { max_iterations: 7, max_children: 2, max_depth: 2 },
        approval_required: ["exec"],
      }),
      "Delegate.",
    );
    const system = kid.requests[0]!.system;
    expect(system).toContain("- research-with-citations:");
    expect(system).not.toContain("tdd-code-change");
    const results = kid.requests[1]!.body.messages.at(-1).content as {
      content: string;
      is_error?: boolean;
    }[];
    expect(results[0]).toMatchObject({ is_error: true });
    expect(results[0]!.content).toContain('skill "tdd-code-change" not found');
    expect(results[1]!.is_error).toBeUndefined();
    expect(results[1]!.content).toContain("No claim without a source"); // research-with-citations' SKILL.md
    const helper = h.rt.listAgents({ includeStopped: true }).find((a) => a.manifest === "helper")!;
    const rec = h.rt.registry.find(helper.agent_id)!;
    expect(rec.manifest.skills).toEqual(["research-with-citations"]);
    expect(rec.manifest.limits).toEqual({ max_iterations: 7, max_children: 2, max_depth: 2 });
    expect(rec.manifest.approval_required).toEqual(["exec"]);
  });

  it("gives a root without skills: every discovered skill, written out, and its children no more", async () => {
    h = await openHarness(server);
    const root = h.rt.spawnAgent(lead());
    const all = h.rt.skills.skills.map((s) => s.name);
    expect(all.length).toBeGreaterThan(1);
    expect(h.rt.registry.require(root.agent_id).manifest.skills).toEqual(all);
    expect(h.rt.registry.require(root.agent_id).manifest.limits).toEqual({
      max_iterations: h.rt.config.limits.maxIterations,
      max_children: h.rt.config.limits.maxChildren,
      max_depth: h.rt.config.limits.maxDepth,
    });
  });

  it("runs a child on another model the operator allows, and the parent's when it names none", async () => {
    h = await openHarness(server, { config: (c) => (c.models.allowed = [["anthropic/*"]]) });
    server.script('manifest "lead"', [
      turn.toolUses([
        {
          name: "spawn_agent",
          input: { manifest: { name: "helper", model: "anthropic/claude-other" }, message: "a" },
        },
        { name: "spawn_agent", input: { manifest: { name: "helper2" }, message: "b" } },
      ]),
      turn.text("done"),
    ]);
    const one = server.script('manifest "helper"', [turn.text("one")]);
    const two = server.script('manifest "helper2"', [turn.text("two")]);
    await h.rt.spawnAndRun(lead(), "Delegate.");
    expect(one.requests[0]!.model).toBe("claude-other");
    expect(two.requests[0]!.model).toBe("claude-test");
  });
});
