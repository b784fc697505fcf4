// Which callers' credentials a goal's tool outputs blank (EgressCallers.credentialsIn): the
// goal's agents' and its MCP servers' (their pseudo-goals, mcp-callers.ts), read from an index
// by goal kept in step with every slot added and freed. A goal's end (plumbing.ts close: each
// server's pseudo-goal, then the goal) leaves none of them behind, and a caller that comes
// after (a server started again, a new agent) is found, not a stale entry.

import { describe, expect, it } from "vitest";
import { EgressCallers } from "../../src/egress/callers.js";
import { mcpCallerId, mcpEgressId, mcpProxyUser } from "../../src/egress/mcp-callers.js";

const users = (callers: EgressCallers, goalId: string) =>
  callers
    .credentialsIn(goalId)
    .map((c) => c.user)
    .sort();

function serverSlot(callers: EgressCallers, goalId: string, server: string) {
  return callers.slotOf(
    { goalId: mcpEgressId(goalId, server), agentId: mcpCallerId(server) },
    mcpProxyUser(server),
  );
}

describe("EgressCallers.credentialsIn", () => {
  it("holds the goal's agents and its MCP servers, and no other goal's", () => {
    const callers = new EgressCallers();
    callers.slotOf({ goalId: "g_1", agentId: "a_1" });
    serverSlot(callers, "g_1", "fetch");
    callers.slotOf({ goalId: "g_12", agentId: "a_2" });
    serverSlot(callers, "g_12", "fetch");
    expect(users(callers, "g_1")).toEqual(["a_1", "mcp.fetch"]);
    expect(users(callers, "g_12")).toEqual(["a_2", "mcp.fetch"]);
    expect(users(callers, "g_3")).toEqual([]);
  });

  it("holds nothing of a goal that ended, and the callers of a goal of that id made after", () => {
    const callers = new EgressCallers();
    const old = callers.slotOf({ goalId: "g_1", agentId: "a_1" });
    const oldServer = serverSlot(callers, "g_1", "fetch");
    callers.slotOf({ goalId: "g_2", agentId: "a_2" });
    // The goal's end, as plumbing.ts close() frees it: each server's pseudo-goal, then the goal.
    callers.freeGoal(mcpEgressId("g_1", "fetch"));
    callers.freeGoal("g_1");
    expect(callers.credentialsIn("g_1")).toEqual([]);
    expect(users(callers, "g_2")).toEqual(["a_2"]);

    const again = serverSlot(callers, "g_1", "fetch");
    const agent = callers.slotOf({ goalId: "g_1", agentId: "a_3" });
    const passwords = callers.credentialsIn("g_1").map((c) => c.password);
    expect(passwords.sort()).toEqual([again.password, agent.password].sort());
    expect(passwords).not.toContain(old.password);
    expect(passwords).not.toContain(oldServer.password);
  });

  it("finds a server started again after its last caller was freed, and not one that stopped", () => {
    const callers = new EgressCallers();
    callers.slotOf({ goalId: "g_1", agentId: "a_1" });
    const first = serverSlot(callers, "g_1", "fetch");
    callers.free({ goalId: mcpEgressId("g_1", "fetch"), agentId: mcpCallerId("fetch") });
    expect(users(callers, "g_1")).toEqual(["a_1"]);

    const second = serverSlot(callers, "g_1", "fetch");
    const passwords = callers.credentialsIn("g_1").map((c) => c.password);
    expect(passwords).toContain(second.password);
    expect(passwords).not.toContain(first.password);
  });

  it("drops an agent's credentials when it stops, wherever it ran", () => {
    const callers = new EgressCallers();
    callers.slotOf({ goalId: "g_1", agentId: "a_1" });
    serverSlot(callers, "g_1", "fetch");
    callers.freeAgent("a_1");
    expect(users(callers, "g_1")).toEqual(["mcp.fetch"]);
    callers.freeAgent(mcpCallerId("fetch"));
    expect(callers.credentialsIn("g_1")).toEqual([]);
    const later = callers.slotOf({ goalId: "g_1", agentId: "a_4" });
    expect(callers.credentialsIn("g_1").map((c) => c.password)).toEqual([later.password]);
  });
});
