// The approval requests `aido mcp serve` keeps for calls that have not yet learned their id
// (approvals-bridge.ts ParkedRequests): bounded in all, whatever ids they name. The bound
// was per id: one id no call of the session claims (another socket client's plan acting as
// the session's agent, a command's many connections) kept every request it named.

import { describe, expect, it } from "vitest";
import type { WireEvent } from "../../src/client/types.js";
import { MAX_PARKED, ParkedRequests } from "../../src/mcp/approvals-bridge.js";

const request = (n: number, requestId: string): WireEvent =>
  ({ type: "approval.requested", approval_id: `apr_${n}`, request_id: requestId }) as unknown as WireEvent;

describe("requests parked for calls that have not learned their id", () => {
  it("are bounded in all when one id names thousands, the oldest going first", () => {
    const parked = new ParkedRequests();
    for (let n = 0; n < 5000; n++) parked.park("req_one", request(n, "req_one"));
    expect(parked.size).toBe(MAX_PARKED);
    const kept = parked.take("req_one").map((e) => e.approval_id);
    expect(kept).toHaveLength(MAX_PARKED);
    expect(kept[0]).toBe(`apr_${5000 - MAX_PARKED}`);
    expect(kept.at(-1)).toBe("apr_4999");
    expect(parked.size).toBe(0);
  });

  it("are bounded across ids, and a call that claims its id takes its own requests only", () => {
    const parked = new ParkedRequests(4);
    parked.park("req_a", request(1, "req_a"));
    parked.park("req_b", request(2, "req_b"));
    parked.park("req_a", request(3, "req_a"));
    parked.park("req_c", request(4, "req_c"));
    parked.park("req_c", request(5, "req_c"));
    // The fifth pushed out the oldest: req_a's first.
    expect(parked.size).toBe(4);
    expect(parked.take("req_a").map((e) => e.approval_id)).toEqual(["apr_3"]);
    expect(parked.take("req_b").map((e) => e.approval_id)).toEqual(["apr_2"]);
    expect(parked.take("req_b")).toEqual([]);
    expect(parked.size).toBe(2);
  });
});
