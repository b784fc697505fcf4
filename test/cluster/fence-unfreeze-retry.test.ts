// Cluster mode, the fence's lift (cluster/fence.ts) when the engine refuses to unfreeze a kept
// goal's container. Before, one refusal (even a passing one) let the goal's held calls go into
// the container still paused (a path resolution then got no answer for 10 s and failed), and
// nothing unfroze it again: the sweep removed it as a stopped container under a goal its node
// kept. Now the goal stays frozen, its calls waiting, and the unfreeze is tried again with the
// heartbeats: the goal runs on in its own container. An engine that keeps refusing is given up
// after UNFREEZE_TRIES tries: the goal's container is removed, and the call held on it runs in
// a fresh container over the same workspace.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that refuses unpause requests, a real redis-server stopped for the fence, the node in
// this process.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UNFREEZE_TRIES } from "../../src/cluster/fence.js";
import { until } from "../daemon/process.js";
import { requireDocker } from "../support/docker.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import type { ProviderServer } from "../support/provider-server.js";
import { containerState, type FencedGoals, withFencedGoals } from "./support/fenced-goals.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

/** How many unpause requests the engine refuses from now on. */
let refusals = 0;
let engine: EngineProxy;
beforeAll(async () => {
  requireDocker();
  engine = await engineProxy((line) => {
    if (!/^POST \S+\/unpause$/.test(line) || refusals <= 0) return undefined;
    refusals--;
    return "refuse";
  });
});
afterAll(async () => {
  await engine?.close();
});

/**
 * The goal fenced (its file_read held, its container frozen), then Redis back with the engine
 * refusing `refused` unpauses; `check` runs once the goal's last tool call ended.
 */
async function liftRefused(
  nodeId: string,
  marker: string,
  refused: number,
  check: (f: FencedGoals & { goalId: string; container: string; before: string }) => Promise<void>,
): Promise<void> {
  try {
    await withFencedGoals(
      server,
      engine,
      { nodeId, markers: [marker], listAfter: true, letGo: () => (refusals = 0) },
      async (f) => {
        const [goalId = "", container = ""] = [f.goals[0], f.containers[0]];
        const before = (await containerState(container)).id;
        await f.fence();
        refusals = refused;
        await f.lift({ unfenced: true });
        // The goal's last tool call ended (its container is removed once the goal ends).
        await until(() => (f.requests(marker) >= 4 ? true : undefined), 40_000);
        await check({ ...f, goalId, container, before });
      },
    );
  } finally {
    refusals = 0;
  }
}

describe("cluster mode: a kept goal whose unfreeze the engine refuses", () => {
  it("stays frozen, its held call waiting, until a heartbeat's try unfreezes it: it runs on in its own container", async () => {
    await liftRefused(
      "n-unfreeze-retry",
      "unfreeze-once",
      1,
      async ({ toolEnds, goalId, container, before }) => {
        expect(toolEnds(goalId)).toEqual([
          ["tool.completed", "file_list"],
          ["tool.completed", "file_read"],
          ["tool.completed", "file_list"],
        ]);
        expect(refusals).toBe(0); // the lift's unpause was refused
        // The same container, running: not left paused for the sweep to remove.
        expect(await containerState(container)).toEqual({ id: before, state: "running" });
      },
    );
  }, 120_000);

  it("is given up after every try is refused: its container is removed, and the held call runs in a fresh one", async () => {
    await liftRefused(
      "n-unfreeze-gave-up",
      "unfreeze-never",
      1_000,
      async ({ h, toolEnds, goalId, container, before }) => {
        // The held call ran in a fresh container, and so did the next.
        expect(toolEnds(goalId)).toEqual([
          ["tool.completed", "file_list"],
          ["tool.completed", "file_read"],
          ["tool.completed", "file_list"],
        ]);
        const now = await containerState(container);
        expect(now.state).toBe("running");
        expect(now.id).not.toBe(before);
        // On the goal's record, with the engine's reason: its processes' memory is gone.
        const givenUp = h.rt.audit.query({ goal_id: goalId, kind: "cluster.unfreeze_given_up" });
        expect(givenUp.map((e) => e.payload)).toEqual([
          { tries: UNFREEZE_TRIES, reason: expect.any(String) },
        ]);
      },
    );
  }, 120_000);
});
