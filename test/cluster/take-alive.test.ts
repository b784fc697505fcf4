// A survivor's take of a goal whose owner it judged dead, when the owner renews its lease
// between that judgement and the take (a partition that heals): the owner's look then reads
// the goal as still its own and keeps running it, so the take must not land. Before, the
// death check (the lease key gone) was a few Redis round trips before the take's
// compare-and-set, which read only the goal's hash: the survivor took a goal the owner kept,
// and it ran on two nodes until the owner's next look. Now the take scripts read the owner's
// lease key in the same script, and the survivor leaves the goal to its owner.
// Real redis-server; the survivor's intake is the real one (stand-in-node.ts), its liveness
// the real one (node-status.ts) with a latch after the death check, where the owner renews.

import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import { diedWithin, isAlive } from "../../src/cluster/node-status.js";
import type { GoalStatus } from "../../src/kernel/goal-store.js";
import { latch } from "../support/provider-server.js";
import { withRedisHome } from "./support/file-cluster.js";
import { claimedGoal, jobOf, standInNode } from "./support/stand-in-node.js";

const OWNER = "n-owner";
const SURVIVOR = "n-survivor";
let raw: Redis;
let home: string;
withRedisHome("aido-take-alive-", (r) => ({ raw, home } = r));

/** A survivor whose death check of the owner holds, once it found the owner dead, until `go`. */
function survivor() {
  const reached = latch();
  const go = latch();
  const audited: string[] = [];
  const started: string[] = [];
  const ended = (id: string): GoalStatus => ({
    goal_id: id,
    state: "succeeded",
    usage: { input_tokens: 0, output_tokens: 0 },
    output_dir: "",
    goal: `run ${id}`,
    created_at: new Date().toISOString(),
  });
  const node = standInNode({
    nodeId: SURVIVOR,
    redis: raw,
    home,
    // What the goal would do here: started (recorded) and ended at once.
    goals: {
      submit: (_s: unknown, opts: { goalId: string }) => {
        started.push(opts.goalId);
        return { goal_id: opts.goalId };
      },
      status: ended,
      wait: async (id: string) => ended(id),
    },
    audit: (kind) => audited.push(kind),
    liveness: (ctx) => ({
      isAlive: (n) => isAlive(ctx, n),
      diedWithin: async (n) => {
        const dead = await diedWithin(ctx, n);
        reached.open();
        await go.promise;
        return dead;
      },
      connectedForALease: async () => {},
    }),
  });
  return { ...node, reached, go, audited, started };
}

describe("a survivor's take of a goal whose owner renewed after it was judged dead", () => {
  for (const modelStarted of [false, true]) {
    const how = modelStarted
      ? "fail it (a model call had started)"
      : "take it over (no model call had started)";
    it(`does not ${how}: the owner keeps it`, async () => {
      const goalId = modelStarted ? "g_aliveafterstart" : "g_alivebeforestart";
      await claimedGoal(raw, goalId, { via: OWNER, node: OWNER, modelStarted });
      const before = await raw.hgetall(`aido:goal:${goalId}`);
      const s = survivor();
      const take = s.intake.process(jobOf(goalId, OWNER)).then(
        (r) => ({ returned: r }),
        (e: unknown) => ({ threw: String(e) }),
      );
      try {
        // The survivor found the owner's lease key gone...
        await s.reached.promise;
        // ...and the owner renews it (its partition healed), then looks: the goal is still its own.
        await raw.set(`aido:node:${OWNER}:alive`, String(Date.now()), "PX", 3_000);
        expect((await new GoalMirror(raw).status(goalId))?.node).toBe(OWNER);
        s.go.open();

        // The job fails here (a sweep puts it back should the owner give the goal back); the
        // goal is the owner's, as the owner's look found it.
        expect(await take).toEqual({ threw: `Error: goal ${goalId} still runs on node ${OWNER}` });
        expect(await raw.hgetall(`aido:goal:${goalId}`)).toEqual(before);
        expect(s.started).toEqual([]);
        expect(s.audited).toEqual([]);
      } finally {
        s.go.open();
        await raw.del(`aido:node:${OWNER}:alive`);
      }
    });
  }

  it("takes it over once the owner's lease key is gone at the take", async () => {
    const goalId = "g_deadattake";
    await claimedGoal(raw, goalId, { via: OWNER, node: OWNER });
    const s = survivor();
    const take = s.intake.process(jobOf(goalId, OWNER));
    await s.reached.promise;
    s.go.open();
    expect(await take).toBe("succeeded");
    expect(s.started).toEqual([goalId]);
    expect(s.audited).toEqual(["cluster.goal_taken_over"]);
    expect(await raw.hmget(`aido:goal:${goalId}`, "owner", "requeued_from")).toEqual([SURVIVOR, OWNER]);
  });
});
