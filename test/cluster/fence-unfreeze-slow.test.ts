// Cluster mode, the fence's lift (cluster/fence.ts) when the engine does not answer a kept goal's
// unfreeze (a daemon slow or stuck on that container's freezer). The lift waited for each kept
// goal's unpause in turn, with no bound, and the node was sure of its goals only once the lift
// returned: one goal's unanswered unpause held every goal of the node (their model and tool
// calls, events and ends) and every later look, for as long as the engine took. Now the lift
// waits for an unfreeze as long as for the freeze (10 s): one not answered by then counts as a
// refused try (the goal stays frozen, tried again with the heartbeats) and the node goes on.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that holds the first unpause request, a real redis-server stopped for the fence.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../daemon/process.js";
import { requireDocker } from "../support/docker.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import type { ProviderServer } from "../support/provider-server.js";
import { withFencedGoals, within } from "./support/fenced-goals.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

/** How long the engine holds the lift's unpause (then passes it on). */
const HOLD_MS = 40_000;
let holdNext = false;
let engine: EngineProxy;
beforeAll(async () => {
  requireDocker();
  engine = await engineProxy((line) => {
    if (!holdNext || !/^POST \S+\/unpause$/.test(line)) return undefined;
    holdNext = false;
    return HOLD_MS;
  });
});
afterAll(async () => {
  await engine?.close();
});

describe("cluster mode: a kept goal whose unfreeze the engine does not answer", () => {
  it("holds neither the node's other goals nor itself past the lift's wait: it runs on once a later try unfreezes it", async () => {
    const marker = "unfreeze-slow";
    try {
      await withFencedGoals(
        server,
        engine,
        { nodeId: "n-unfreeze-slow", markers: [marker], letGo: () => (holdNext = false) },
        async (f) => {
          const goalId = f.goals[0] ?? "";
          await f.fence();
          holdNext = true; // the lift's unpause: held by the engine
          await f.lift({ unfenced: true });
          // Another goal's tool call (one not frozen) goes on once the lift has waited its 10 s.
          expect(await within(f.node.beforeToolCall("g_another"), 20_000)).toBeUndefined();
          // The held call ran in the goal's own container, unfrozen by a later try, long before the
          // engine answered the lift's unpause.
          await until(() => (f.requests(marker) >= 3 ? true : undefined), 15_000);
          expect(f.toolEnds(goalId).sort()).toEqual([
            ["tool.completed", "file_list"],
            ["tool.completed", "file_read"],
          ]);
        },
      );
    } finally {
      holdNext = false;
    }
  }, 150_000);
});
