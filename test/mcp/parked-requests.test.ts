// The approval requests `aido mcp serve` keeps for calls that have not yet learned their id
// (approvals-bridge.ts ParkedRequests): bounded in all and for each id. The bound was per
// id only at first: one id no call of the session claims (another socket client's plan
// acting as the session's agent, a command's many connections) kept every request it
// named; then in all only, the oldest id's oldest going first, so one id's flood pushed out
// a real call's request parked before it.

import { describe, expect, it } from "vitest";
import type { WireEvent } from "../../src/client/types.js";
import { MAX_PARKED, MAX_PARKED_PER_ID, ParkedRequests } from "../../src/mcp/approvals-bridge.js";

const request = (n: number, requestId: string): WireEvent =>
  ({ type: "approval.requested", approval_id: `apr_${n}`, request_id: requestId }) as unknown as WireEvent;

describe("requests parked for calls that have not learned their id", () => {
  it("keep at most their id's share when one id names thousands, its oldest going first", () => {
    const parked = new ParkedRequests();
    for (let n = 0; n < 5000; n++) parked.park("req_one", request(n, "req_one"));
    expect(parked.size).toBe(MAX_PARKED_PER_ID);
    const kept = parked.take("req_one").map((e) => e.approval_id);
    expect(kept).toHaveLength(MAX_PARKED_PER_ID);
    expect(kept[0]).toBe(`apr_${5000 - MAX_PARKED_PER_ID}`);
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

  it("a flood naming one id never pushes out another call's request parked before it", () => {
    const parked = new ParkedRequests();
    parked.park("req_real", request(0, "req_real"));
    for (let n = 1; n <= 5000; n++) parked.park("req_flood", request(n, "req_flood"));
    expect(parked.take("req_real").map((e) => e.approval_id)).toEqual(["apr_0"]);
  });

  it("many ids flooding at once keep the total bounded and a quiet id's request kept", () => {
    const parked = new ParkedRequests();
    parked.park("req_real", request(0, "req_real"));
    for (let n = 1; n <= 20_000; n++) parked.park(`req_f${n % 40}`, request(n, `req_f${n % 40}`));
    expect(parked.size).toBe(MAX_PARKED);
    expect(parked.take("req_real").map((e) => e.approval_id)).toEqual(["apr_0"]);
  });
});

describe("requests parked under many ids, and answered ones", () => {
  it("~256 ids no running call has, each parking one, never push out a running call's request", () => {
    const parked = new ParkedRequests();
    parked.park("req_real", request(0, "req_real"));
    for (let n = 1; n <= 2000; n++) parked.park(`req_f${n}`, request(n, `req_f${n}`), true);
    expect(parked.size).toBe(MAX_PARKED);
    expect(parked.take("req_real").map((e) => e.approval_id)).toEqual(["apr_0"]);
  });

  it("once every running call knows its id, the ids left are the first to go", () => {
    const parked = new ParkedRequests(3);
    parked.park("req_old", request(1, "req_old"));
    parked.orphanAll();
    parked.park("req_live", request(2, "req_live"));
    parked.park("req_x", request(3, "req_x"), true);
    parked.park("req_y", request(4, "req_y"), true);
    expect(parked.take("req_live").map((e) => e.approval_id)).toEqual(["apr_2"]);
    expect(parked.take("req_old")).toEqual([]);
  });

  it("an answered request is no longer kept", () => {
    const parked = new ParkedRequests();
    parked.park("req_a", request(1, "req_a"));
    parked.park("req_a", request(2, "req_a"));
    parked.resolved("apr_1");
    expect(parked.size).toBe(1);
    expect(parked.take("req_a").map((e) => e.approval_id)).toEqual(["apr_2"]);
  });
});
