// Cluster mode: a kept goal cancelled while the fence's last unfreeze try is out (cluster/fence.ts
// tryAgain). That try waits up to a lease for the engine (10 s at least); the goal's cancel ends
// its held call and its goal removes its containers meanwhile. The try then settled as refused
// (no answer within its bound, or the engine's refusal of a container gone) and the fence took it
// for its own give-up: `cluster.unfreeze_given_up` was audited on the cancelled goal, and the log
// said its held calls ran in a fresh container, though nothing was given up and nothing ran; with
// a long lease that window is the whole lease. Now a try whose goal was removed meanwhile is no
// refusal (sandbox/frozen-goals.ts): nothing is audited, the goal is not tried again.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that refuses each goal's unpauses but the last and holds the last for the test's length,
// a real redis-server stopped for the fence.

import { describe, expect, it } from "vitest";
import { UNFREEZE_TRIES } from "../../src/cluster/fence.js";
import { until } from "../daemon/process.js";
import { latch, type ProviderServer } from "../support/provider-server.js";
import { useCountedUnpauses, withFencedGoals, within } from "./support/fenced-goals.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

const unpauses = useCountedUnpauses();

/** The bound of the last try at the harness's 1 s lease: LAST_ANSWER_MS. */
const LAST_BOUND_MS = 10_000;

describe("cluster mode: a goal cancelled while its last unfreeze try is out", () => {
  it("is not audited as given up, and its held call ends with the cancel", async () => {
    const marker = "unfreeze-cancel";
    const lastSeen = latch();
    const release = latch(); // what the held unpause waits for: the test's end
    try {
      await withFencedGoals(
        server,
        unpauses.engine,
        { nodeId: "n-unfreeze-cancel", markers: [marker], ends: "cancelled", letGo: () => release.open() },
        async (f) => {
          const goalId = f.goals[0] ?? "";
          await f.fence();
          unpauses.answer = (_name, n) => {
            if (n < UNFREEZE_TRIES) return "refuse";
            if (n === UNFREEZE_TRIES) {
              lastSeen.open();
              return { holdUntil: release.promise };
            }
            return undefined;
          };
          await f.lift({ unfenced: true });
          expect(await within(lastSeen.promise, 15_000)).not.toBe("pending");
          const sentAt = Date.now();
          // The held call waits at the goal's freeze: the cancel ends it, and the goal.
          await f.node.goals.cancel(goalId);
          await until(() => (f.h.rt.goals.status(goalId).state === "cancelled" ? true : undefined), 15_000);
          // Past the last try's bound: it has settled.
          await new Promise((r) => setTimeout(r, Math.max(0, sentAt + LAST_BOUND_MS + 3_000 - Date.now())));
          const givenUp = f.h.rt.audit
            .query({ goal_id: goalId })
            .filter((e) => e.kind === "cluster.unfreeze_given_up");
          expect(givenUp).toEqual([]);
          // Its file_list ran; its held file_read never did (ended by the cancel).
          const ends = f.toolEnds(goalId).map(([kind, tool]) => `${kind} ${tool}`);
          expect(ends).toContain("tool.completed file_list");
          expect(ends).not.toContain("tool.completed file_read");
        },
      );
    } finally {
      unpauses.disarm();
      release.open();
    }
  }, 180_000);
});
