// Episodic memory across goals: what one goal's agent stores, the next goal's bootstrap
// is shown before it starts (AIDO_PERSISTENT_MEMORY=1), marked with its provenance; without
// persistence, a goal's memories end with the goal.

import { describe, expect, it } from "vitest";
import { type Harness, openHarness } from "../agent/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { useProviderServer } from "../support/provider-suite.js";

let server: ProviderServer;
let h: Harness;

useProviderServer({
  started: (s) => {
    server = s;
  },
  afterEach: () => h?.close(),
});

const keeper = {
  name: "keeper",
  system_prompt: "You keep notes.",
  capabilities: ["tool: memory_store", "tool: memory_query"],
};
const FACT = "The staging database for the billing service listens on port 6543";

async function runTwoGoals(): Promise<string> {
  const script = server.script('manifest "keeper"', [
    turn.toolUse("memory_store", { content: FACT, category: "fact" }),
    turn.text("Noted."),
    turn.text("Port 6543, from memory."),
  ]);
  const first = h.rt.goals.submit({
    goal: "Find where the billing staging database listens.",
    manifest: keeper,
  });
  expect((await h.rt.goals.wait(first.goal_id, 15_000)).state).toBe("succeeded");
  const second = h.rt.goals.submit({
    goal: "Which port does the billing staging database use?",
    manifest: keeper,
  });
  expect((await h.rt.goals.wait(second.goal_id, 15_000)).state).toBe("succeeded");
  expect(script.requests).toHaveLength(3);
  return JSON.stringify(script.requests[2]!.body.messages[0]);
}

describe("memory across goals", () => {
  it("shows the second goal's bootstrap what the first goal stored, with its provenance", async () => {
    h = await openHarness(server, { env: { AIDO_PERSISTENT_MEMORY: "1" } });
    const firstMessage = await runTwoGoals();
    expect(firstMessage).toContain("port 6543");
    expect(firstMessage).toMatch(/memory \d+, fact/);
    expect(firstMessage).toContain("from tool output"); // a model's memory_store is not trusted input
  });

  it("keeps a goal's memories to that goal without AIDO_PERSISTENT_MEMORY", async () => {
    h = await openHarness(server);
    const firstMessage = await runTwoGoals();
    expect(firstMessage).not.toContain("6543");
  });

  it("survives a restart of the runtime", async () => {
    h = await openHarness(server, { env: { AIDO_PERSISTENT_MEMORY: "1" } });
    const script = server.script('manifest "keeper"', [
      turn.toolUse("memory_store", { content: FACT, category: "fact" }),
      turn.text("Noted."),
      turn.text("From memory."),
    ]);
    const first = h.rt.goals.submit({ goal: "Find the billing staging database port.", manifest: keeper });
    await h.rt.goals.wait(first.goal_id, 15_000);
    await h.reopen();
    const second = h.rt.goals.submit({
      goal: "What is the billing staging database port?",
      manifest: keeper,
    });
    expect((await h.rt.goals.wait(second.goal_id, 15_000)).state).toBe("succeeded");
    expect(JSON.stringify(script.requests[2]!.body.messages[0])).toContain("port 6543");
  });
});
