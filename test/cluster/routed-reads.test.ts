// What a node takes of a read another node routed to it through Redis (cluster/routed-reads.ts):
// whoever can write to Redis can put such a command in a node's stream, so the owner answers
// only one goal's records, reads each field only as what it must be, and bounds the entries.

import { describe, expect, it } from "vitest";
import { ROUTED_AUDIT_LIMIT, routedAuditQuery, routedGoal } from "../../src/cluster/routed-reads.js";

describe("routed reads", () => {
  it("answers one goal's records only: a command without a goal is refused, never read as every goal's", () => {
    for (const bad of [undefined, "", 42, null, { $ne: 1 }])
      expect(() => routedGoal(bad, "agent.list")).toThrow(/a routed agent\.list names no goal/);
    expect(() => routedAuditQuery({ kind: "tool.denied" })).toThrow(/a routed audit\.query names no goal/);
    expect(() => routedAuditQuery("g1")).toThrow(/names no goal/);
  });

  it("takes each field only as what it must be, and at most the routed limit of entries", () => {
    expect(routedAuditQuery({ goal_id: "g1" })).toEqual({ goal_id: "g1", limit: ROUTED_AUDIT_LIMIT });
    expect(
      routedAuditQuery({
        goal_id: "g1",
        agent_id: 7,
        kind: ["x"],
        limit: 1e12,
        after_seq: -3,
        before_seq: 0,
        sql: "1=1",
      }),
    ).toEqual({ goal_id: "g1", limit: ROUTED_AUDIT_LIMIT });
    expect(
      routedAuditQuery({
        goal_id: "g1",
        agent_id: "a1",
        kind: "tool.invoked",
        limit: 5,
        after_seq: 0,
        before_seq: 9,
      }),
    ).toEqual({ goal_id: "g1", agent_id: "a1", kind: "tool.invoked", limit: 5, after_seq: 0, before_seq: 9 });
    expect(routedAuditQuery({ goal_id: "g1", limit: 2.5 }).limit).toBe(ROUTED_AUDIT_LIMIT);
  });
});
