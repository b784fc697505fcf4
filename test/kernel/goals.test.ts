// The goal queue: durable rows, the bootstrap agent, the goal cap stopping the whole
// swarm, cancel, and what a restart does with running and queued goals. These goals'
// agents never touch a container (noContainers backend); the Docker-backed goal is in
// goal-docker.test.ts.

import { describe, expect, it } from "vitest";
import type { RuntimeEvent } from "../../src/kernel/events.js";
import { RESTART_REASON } from "../../src/kernel/goals.js";
import { type Harness, openHarness, useHarnessSuite } from "../agent/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let h: Harness;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);

const lead = {
  name: "lead",
  system_prompt: "You lead the goal.",
  capabilities: ["tool: spawn_agents", "tool: skill_read", "spawn_child: [alpha, beta]"],
};

describe("goals", () => {
  it("runs the bundled bootstrap manifest on the goal text and records result and usage", async () => {
    h = await openHarness(server);
    const boot = server.script('manifest "bootstrap"', [
      turn.text("Nothing to do: done.", { usage: { input_tokens: 100, output_tokens: 7 } }),
    ]);
    const events: RuntimeEvent[] = [];
    const { goal_id } = h.rt.goals.submit({ goal: "Say hello." });
    h.rt.events.subscribe({ goalId: goal_id }, (e) => events.push(e));
    const s = await h.rt.goals.wait(goal_id, 10_000);
    expect(s).toMatchObject({
      goal_id,
      state: "succeeded",
      result: "Nothing to do: done.",
      usage: { input_tokens: 100, output_tokens: 7 },
      output_dir: `${h.home.dir}/goals/${goal_id}/output`,
    });
    expect(boot.requests[0]!.model).toBe("claude-test"); // AIDO_MODEL overrides the bootstrap's model
    expect(JSON.stringify(boot.requests[0]!.body.messages[0])).toContain("Say hello.");
    expect(events.map((e) => e.type)).toContain("goal.finished");
    expect(h.rt.audit.query({ goal_id, kind: "goal.finished" })[0]!.payload).toMatchObject({
      state: "succeeded",
    });
    expect(h.rt.listAgents({ goalId: goal_id })).toHaveLength(0); // all stopped
  });

  it("shows the bootstrap the roles it may start, with their descriptions and what they hold, and a child only its own", async () => {
    h = await openHarness(server);
    const boot = server.script('manifest "bootstrap"', [
      turn.toolUse("spawn_agent", {
        manifest: {
          name: "researcher",
          capabilities: ["tool: spawn_agent", "spawn_child: [writer]"],
        },
        message: "Delegate the writing.",
      }),
      turn.text("done"),
    ]);
    const kid = server.script('manifest "researcher"', [turn.text("nothing to write")]);
    const { goal_id } = h.rt.goals.submit({ goal: "Say hello." });
    expect((await h.rt.goals.wait(goal_id, 10_000)).state).toBe("succeeded");
    const system = boot.requests[0]!.system;
    const roles = system.slice(system.indexOf("## Roles you can start"));
    for (const [name, description] of [
      ["coder", "Writes and runs code in /workspace; delivers code or data to /output when asked."],
      [
        "researcher",
        "Gathers facts from the inputs, files and (when granted) the web into notes in /workspace.",
      ],
      ["reviewer", "Checks deliverables against the goal and reports problems; changes nothing."],
      ["writer", "Turns notes and results into finished documents in /output."],
    ])
      expect(roles).toContain(`- ${name}: ${description}`);
    expect(roles).toContain('capabilities: ["tool: file_read", "tool: file_read_many"');
    expect(roles).toContain("skills: [research-with-citations]; budget: {max_tokens: 200000}");
    expect(roles).not.toContain("- bootstrap:"); // its spawn_child grant does not name itself
    const kidRoles = kid.requests[0]!.system.slice(kid.requests[0]!.system.indexOf("## Roles you can start"));
    expect(kidRoles).toContain("- writer: Turns notes");
    expect(kidRoles).not.toContain("- coder:");
  });

  it("refuses a submitted manifest that is invalid, naming the key", () => {
    return openHarness(server).then((opened) => {
      h = opened;
      expect(() => h.rt.goals.submit({ goal: "x", manifest: { name: "lead", capabilitiez: [] } })).toThrow(
        /capabilitiez/,
      );
      expect(() => h.rt.goals.submit({ goal: "  " })).toThrow(/goal: must be a non-empty string/);
    });
  });

  it("refuses a submitted manifest whose grants exceed the operator's ceiling", async () => {
    h = await openHarness(server, {
      config: (c) => {
        c.grantCeilings = [["tool: *", "file_read: /workspace/**"]];
      },
    });
    expect(() =>
      h.rt.goals.submit({
        goal: "x",
        manifest: { name: "lead", capabilities: ["file_read: /**", "tool: exec"] },
      }),
    ).toThrow(/operator's configured ceiling: "file_read: \/\*\*"/);
  });

  it("stops the whole swarm when a provider reports more than a call's bound: charged, audited, goal failed", async () => {
    h = await openHarness(server, {
      config: (c) => {
        c.limits.goalMaxTokens = 30_000;
      },
    });
    server.script('manifest "lead"', [
      turn.toolUse("spawn_agents", {
        children: [
          { manifest: { name: "alpha", capabilities: [], budget: { max_tokens: 8000 } }, message: "a" },
          {
            manifest: { name: "beta", capabilities: ["tool: skill_read"], budget: { max_tokens: 8000 } },
            message: "b",
          },
        ],
      }),
      turn.text("never reached"),
    ]);
    // alpha's request is a few KB, so no byte-level tokenizer makes 40,000 tokens of it: the
    // provider broke the bound. The tokens are charged, and the goal stops.
    server.script('manifest "alpha"', [
      turn.text("expensive", { usage: { input_tokens: 40_000, output_tokens: 10 } }),
    ]);
    const beta = server.script('manifest "beta"', [
      turn.toolUse("skill_read", { name: "write-report" }, { delayMs: 300 }),
      turn.text("never reached"),
    ]);
    const { goal_id } = h.rt.goals.submit({ goal: "Spend.", manifest: lead });
    const s = await h.rt.goals.wait(goal_id, 15_000);
    expect(s.state).toBe("failed");
    expect(s.error).toMatch(
      /^budget overspent: the provider reported 40010 tokens for a call bounded at \d+/,
    );
    expect(beta.requests.length).toBeLessThanOrEqual(1); // its second call was never sent
    const alpha = h.rt
      .listAgents({ goalId: goal_id, includeStopped: true })
      .find((a) => a.manifest === "alpha")!;
    const overspent = h.rt.audit.query({ goal_id, kind: "budget.overspent" });
    expect(overspent.map((e) => e.payload)).toEqual([
      expect.objectContaining({
        account: h.rt.registry.find(alpha.agent_id)!.budgetAccount,
        actual: 40_010,
      }),
    ]);
    const agents = h.rt.listAgents({ goalId: goal_id, includeStopped: true });
    expect(agents.map((a) => a.manifest).sort()).toEqual(["alpha", "beta", "lead"]);
    expect(agents.every((a) => a.state === "stopped")).toBe(true);
    expect(h.rt.budget.get(`goal:${goal_id}`).spent).toBeGreaterThanOrEqual(40_010);
  });

  it("cancels a running goal through the one removal path", async () => {
    h = await openHarness(server);
    server.script('manifest "lead"', [turn.hang()]);
    const { goal_id } = h.rt.goals.submit({ goal: "Hang.", manifest: lead });
    await new Promise<void>((ok) => {
      const off = h.rt.events.subscribe({ goalId: goal_id }, (e) => {
        if (e.type === "inference.started") {
          off();
          ok();
        }
      });
    });
    h.rt.goals.cancel(goal_id);
    const s = await h.rt.goals.wait(goal_id, 5_000);
    expect(s.state).toBe("cancelled");
    const stopped = h.rt.audit.query({ goal_id, kind: "agent.stopped" });
    expect(stopped[0]!.payload).toMatchObject({ reason: "goal cancelled" });
  });

  it("queues goals beyond limits.max_concurrent_goals and runs them in order", async () => {
    h = await openHarness(server, {
      config: (c) => {
        c.limits.maxConcurrentGoals = 1;
      },
    });
    server.script('manifest "lead"', [turn.text("first", { delayMs: 100 }), turn.text("second")]);
    const a = h.rt.goals.submit({ goal: "A", manifest: lead });
    const b = h.rt.goals.submit({ goal: "B", manifest: lead });
    expect(h.rt.goals.status(b.goal_id).state).toBe("queued");
    expect((await h.rt.goals.wait(b.goal_id, 5_000)).result).toBe("second");
    expect(h.rt.goals.status(a.goal_id).result).toBe("first");
  });

  it("fails a queued goal told to fail without starting it: it never reaches the model", async () => {
    h = await openHarness(server, {
      config: (c) => {
        c.limits.maxConcurrentGoals = 1;
      },
    });
    const named = (name: string) => ({ ...lead, name });
    server.script('manifest "lead-hold"', [turn.text("held the slot", { delayMs: 300 })]);
    server.script('manifest "lead-queued"', [turn.text("the failed goal ran")]);
    const a = h.rt.goals.submit({ goal: "A", manifest: named("lead-hold") });
    const b = h.rt.goals.submit({ goal: "B", manifest: named("lead-queued") });
    expect(h.rt.goals.status(b.goal_id).state).toBe("queued");
    // As a cluster node stops a goal another node took (cluster/lost-goals.ts).
    expect(h.rt.goals.fail(b.goal_id, "another node has it")).toBe(true);
    expect(h.rt.goals.status(b.goal_id)).toMatchObject({ state: "failed", error: "another node has it" });
    expect(h.rt.goals.isLive(b.goal_id)).toBe(false);
    await h.rt.goals.wait(a.goal_id, 5_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(h.rt.goals.status(b.goal_id).state).toBe("failed");
    expect(server.requestsMatching('manifest "lead-queued"')).toHaveLength(0);
    expect(h.rt.audit.query({ goal_id: b.goal_id, kind: "agent.spawned" })).toHaveLength(0);
  });

  it("after a restart fails goals left running and runs the queued ones", async () => {
    h = await openHarness(server, {
      config: (c) => {
        c.limits.maxConcurrentGoals = 1;
      },
    });
    const named = (name: string) => ({ ...lead, name });
    server.script('manifest "lead-a"', [turn.text("done before the crash")]);
    server.script('manifest "lead-b"', [turn.hang()]);
    server.script('manifest "lead-c"', [turn.text("C ran after the restart")]);
    const a = h.rt.goals.submit({ goal: "A", manifest: named("lead-a") });
    await h.rt.goals.wait(a.goal_id, 5_000);
    // What a crash leaves behind: a row still "running" (the process died mid-goal).
    h.rt.db.prepare("UPDATE goals SET state = 'running', finished_at = NULL WHERE id = ?").run(a.goal_id);
    const b = h.rt.goals.submit({ goal: "B", manifest: named("lead-b") }); // holds the only slot
    const c = h.rt.goals.submit({ goal: "C", manifest: named("lead-c") });
    expect(h.rt.goals.status(c.goal_id).state).toBe("queued");
    const rt = await h.reopen();
    expect(rt.goals.status(a.goal_id)).toMatchObject({ state: "failed", error: RESTART_REASON });
    expect(rt.goals.status(b.goal_id).state).toBe("failed"); // the runtime closed while it ran
    const sc = await rt.goals.wait(c.goal_id, 5_000);
    expect(sc).toMatchObject({ state: "succeeded", result: "C ran after the restart" });
  });
});
