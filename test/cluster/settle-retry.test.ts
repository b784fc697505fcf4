// An approval settled while Redis refuses its node's writes: the node that settled it
// answers approval.list from its own record at once, and the outcome Redis did not take is
// written again with the node's heartbeats, so every node shows it settled once Redis takes
// writes again. Redis refuses for real: the owner joins as an ACL user of its own whose
// write commands are revoked for the moment (reads still answer). Real redis-server, real
// daemons.

import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";
import { addNodeUser } from "./support/node-user.js";

let server: ProviderServer;
let redis: RedisServer;
let raw: Redis;

withCluster((c) => ({ server, redis, raw } = c));

describe("an approval whose outcome Redis refused to take", () => {
  it("reads settled on its node at once, and on every node once Redis takes writes again", async () => {
    const marker = "settle-refused";
    server.script(forGoal(marker), [
      turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
      // The goal runs on after the answer, so its end is not written while writes are refused.
      turn.text(`finished ${marker}`, { delayMs: 1_500 }),
    ]);
    const user = await addNodeUser(raw, redis.url, "settle-owner");
    const owner = await startNode(server, user.url, "settle-owner", { capacity: 1 });
    const o = await owner.client();
    const { goal_id } = await o.call("goal.submit", {
      goal: `write ${marker}`,
      manifest: manifest({ approve: true }),
    });
    const pending = await until(async () =>
      (await o.call("approval.list", {})).approvals.find((x) => x.goal_id === goal_id),
    );
    expect(pending.node).toBe("settle-owner");
    const other = await startNode(server, redis.url, "settle-other", { capacity: 1 });
    const b = await other.client();
    expect((await b.call("approval.list", {})).approvals.map((x) => x.id)).toContain(pending.id);

    await raw.call("ACL", "SETUSER", "settle-owner", "-@write");
    let restored = false;
    const restore = async () => {
      if (restored) return;
      restored = true;
      await raw.call("ACL", "SETUSER", "settle-owner", "+@all");
    };
    try {
      expect(await o.call("approval.respond", { id: pending.id, decision: "deny" })).toMatchObject({
        status: "decided",
      });
      await until(
        () =>
          owner.child.output().includes(`mirroring approval ${pending.id}'s outcome failed`)
            ? true
            : undefined,
        5_000,
      );
      // The mirror still holds it pending: the outcome was not written.
      expect(await raw.hexists("aido:approvals", pending.id)).toBe(1);
      expect(await raw.exists(`aido:approval:${pending.id}`)).toBe(0);
      // Its own node answers from its own record: settled, not pending.
      expect((await o.call("approval.list", {})).approvals.map((x) => x.id)).not.toContain(pending.id);
      expect(
        (await o.call("approval.list", { status: "decided" })).approvals.find((x) => x.id === pending.id),
      ).toMatchObject({ status: "decided", decision: "deny", node: "settle-owner" });
    } finally {
      await restore();
    }

    // Redis takes writes again: the outcome is written with the owner's next heartbeats.
    const t0 = Date.now();
    await until(async () => {
      const list = await b.call("approval.list", { status: "decided" });
      return list.approvals.find((x) => x.id === pending.id);
    }, 5_000);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect((await b.call("approval.list", {})).approvals.map((x) => x.id)).not.toContain(pending.id);
    expect(await raw.hexists("aido:approvals", pending.id)).toBe(0);
    expect(await b.call("goal.wait", { goal_id, timeout_ms: 20_000 })).toMatchObject({ state: "succeeded" });
  }, 60_000);
});
