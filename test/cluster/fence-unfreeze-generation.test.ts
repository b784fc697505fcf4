// Cluster mode: a try to unfreeze a kept goal (cluster/fence.ts, unfreezeAgain) that the engine
// holds past a whole new fence and its lift. The new fence's freeze waits for that unpause
// (sandbox/frozen-goals.ts), and the lift waits for the freeze 10 s at most: the new lift then
// tries the goal itself while the old try is still out. Before, the old try's count went on in
// the new fence's: the old last try (the sixth), refused once answered, gave the goal up at once
// (its container removed, its held call sent into a fresh one) though the new fence had tried it
// once. Now each fence counts its own tries: the old try counts for nothing, the new fence's next
// try unfreezes the goal, and it runs on in its own container.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that refuses (and holds) unpause requests, a real redis-server stopped for each fence.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UNFREEZE_TRIES } from "../../src/cluster/fence.js";
import { until } from "../daemon/process.js";
import { requireDocker } from "../support/docker.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { latch, type ProviderServer } from "../support/provider-server.js";
import { containerState, withFencedGoals } from "./support/fenced-goals.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

/** How long the old fence's last try is held: past a new fence (0.75 s) and its lift's 10 s wait. */
const HOLD_MS = 16_000;

/** Unpause requests seen since the test armed the proxy (undefined: not armed). */
let unpauses: number | undefined;
const lastTryHeld = latch();
let engine: EngineProxy;
beforeAll(async () => {
  requireDocker();
  engine = await engineProxy((line) => {
    if (!/^POST \S+\/unpause$/.test(line) || unpauses === undefined) return undefined;
    unpauses++;
    // The lift's try and the next four refused; the last (the sixth) held, then refused; the new
    // lift's refused too; the new fence's next try passes.
    if (unpauses < UNFREEZE_TRIES) return "refuse";
    if (unpauses === UNFREEZE_TRIES) {
      lastTryHeld.open();
      return { refuseAfterMs: HOLD_MS };
    }
    if (unpauses === UNFREEZE_TRIES + 1) return "refuse";
    return undefined;
  });
});
afterAll(async () => {
  await engine?.close();
});

describe("cluster mode: a try to unfreeze a kept goal held past a new fence and its lift", () => {
  it("counts for nothing in the new fence: the goal is not given up, it runs on in its own container", async () => {
    const marker = "unfreeze-generation";
    try {
      await withFencedGoals(
        server,
        engine,
        {
          nodeId: "n-unfreeze-generation",
          markers: [marker],
          listAfter: true,
          letGo: () => (unpauses = undefined),
        },
        async (f) => {
          const [goalId = "", container = ""] = [f.goals[0], f.containers[0]];
          const before = (await containerState(container)).id;
          // The first fence: the goal frozen, its file_read held.
          await f.fence();
          unpauses = 0;
          await f.lift();
          // Its lift and four tries refused; the last try is out, held by the engine.
          await lastTryHeld.promise;
          // A whole new fence and lift while it is held.
          await f.fence();
          await f.lift();
          await until(() => (f.node.fenceStatus().fenced === false ? true : undefined), 30_000);
          // The new lift's try, refused while the old one is still held.
          await until(() => ((unpauses ?? 0) > UNFREEZE_TRIES ? true : undefined), 10_000);
          // The held call, then the next, ran in the goal's own container.
          await until(() => (f.requests(marker) >= 4 ? true : undefined), 40_000);
          expect(f.toolEnds(goalId)).toEqual([
            ["tool.completed", "file_list"],
            ["tool.completed", "file_read"],
            ["tool.completed", "file_list"],
          ]);
          expect(await containerState(container)).toEqual({ id: before, state: "running" });
          expect(unpauses).toBeGreaterThan(UNFREEZE_TRIES + 1); // unfrozen by the new fence's own try
        },
      );
    } finally {
      unpauses = undefined;
    }
  }, 150_000);
});
