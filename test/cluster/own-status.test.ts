// test/cluster/own-status.test.ts — a node cut off from Redis lists itself from memory
// (cluster.status, node-status.ts ownStatus): up only while the lease its last heartbeat
// set still runs, as the other nodes read it; past it they take it for dead and may take its
// goals over, and saying "up" then misled the reader of `aido cluster status`.

import { describe, expect, it } from "vitest";
import { ownStatus } from "../../src/cluster/node-status.js";

const LEASE_MS = 3_000;
const ctx = {
  identity: { nodeId: "node-a", keyId: "k1", publicKeyPem: "", host: "h" },
  config: { cluster: { leaseMs: LEASE_MS }, limits: { maxConcurrentGoals: 2 } },
} as unknown as Parameters<typeof ownStatus>[0];

describe("a node cut off from Redis, as it lists itself", () => {
  const beat = Date.parse("2026-01-01T00:00:00Z");

  it("is up while its last heartbeat's lease runs", () => {
    expect(ownStatus(ctx, ["g1"], beat, beat + LEASE_MS - 1)).toMatchObject({
      node_id: "node-a",
      alive: true,
      last_heartbeat: "2026-01-01T00:00:00.000Z",
      running: 1,
      capacity: 2,
      goals: ["g1"],
    });
  });

  it("is down once that lease ran out, or when Redis never took a heartbeat", () => {
    expect(ownStatus(ctx, ["g1"], beat, beat + LEASE_MS).alive).toBe(false);
    expect(ownStatus(ctx, [], beat, beat + 10 * LEASE_MS).alive).toBe(false);
    expect(ownStatus(ctx, [], undefined, beat).alive).toBe(false);
  });
});
