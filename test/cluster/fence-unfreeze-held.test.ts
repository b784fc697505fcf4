// Cluster mode: a try again at a kept goal's unfreeze (cluster/fence.ts) that the engine never
// answers. The tries again ran in one loop, one goal after the other: a try the engine held kept
// every other goal's from being made until it was answered, and for good when it never was (a
// daemon stuck on that container's freezer): their held calls waited for ever under a node that
// kept them. Now each goal is tried on its own, and a try not answered within 10 s counts as
// refused: the other goal is unfrozen at its next try, the held one's goal at a later try.
// The last try, held for good too: it was awaited for as long as the engine took, the goal frozen
// and its calls held meanwhile. Now it counts as refused after 10 s as well, and the goal is given
// up as on a refusal: its held call runs in a fresh container.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that refuses each goal's first unpauses and holds one for the test's length, a real
// redis-server stopped for the fence.

import { describe, expect, it } from "vitest";
import { UNFREEZE_TRIES } from "../../src/cluster/fence.js";
import { until } from "../daemon/process.js";
import { latch, type ProviderServer } from "../support/provider-server.js";
import { containerState, useCountedUnpauses, withFencedGoals, within } from "./support/fenced-goals.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

const unpauses = useCountedUnpauses();

const paused = async (name: string) => (await containerState(name)).state === "paused";

describe("cluster mode: a kept goal's try again that the engine never answers", () => {
  it("holds no other goal's tries: the other goal is unfrozen at its next try, the held one's at a later one", async () => {
    const markers = ["unfreeze-held-a", "unfreeze-held-b"];
    const heldSeen = latch();
    const release = latch(); // what the held unpause waits for: the test's end
    try {
      await withFencedGoals(
        server,
        unpauses.engine,
        { nodeId: "n-unfreeze-held", markers, letGo: () => release.open() },
        async (f) => {
          const { goals, containers } = f;
          await f.fence();
          const held = containers[0];
          // The lift's unpause refused for both; the held goal's first try again held for ever, the
          // other's refused once more; the next tries pass.
          unpauses.answer = (name, n) => {
            if (n === 1) return "refuse";
            if (n === 2 && name === held) {
              heldSeen.open();
              return { holdUntil: release.promise };
            }
            if (n === 2) return "refuse";
            return undefined;
          };
          await f.lift({ unfenced: true });
          expect(await within(heldSeen.promise, 10_000)).not.toBe("pending");
          // The other goal: its try again refused once more, the next unfreezes it (heartbeats every
          // 250 ms), and its held call runs in its own container while the held unpause is still out.
          await until(() => (f.requests(markers[1] ?? "") >= 3 ? true : undefined), 8_000);
          expect(await paused(containers[1] ?? "")).toBe(false);
          // The held goal: its try not answered within 10 s counts as refused, and the next unfreezes it.
          await until(() => (f.requests(markers[0] ?? "") >= 3 ? true : undefined), 25_000);
          expect(await paused(containers[0] ?? "")).toBe(false);
          for (const goal_id of goals)
            expect(f.toolEnds(goal_id).sort()).toEqual([
              ["tool.completed", "file_list"],
              ["tool.completed", "file_read"],
            ]);
        },
      );
    } finally {
      unpauses.disarm();
      release.open();
    }
  }, 180_000);

  it("gives the goal up when its last try is not answered within 10 s either: the held call runs in a fresh container", async () => {
    const marker = "unfreeze-last-held";
    const lastSeen = latch();
    const release = latch(); // what the held unpause waits for: the test's end
    try {
      await withFencedGoals(
        server,
        unpauses.engine,
        { nodeId: "n-unfreeze-last-held", markers: [marker], letGo: () => release.open() },
        async (f) => {
          const [goalId = "", container = ""] = [f.goals[0], f.containers[0]];
          const before = (await containerState(container)).id;
          await f.fence();
          // The lift's and every try but the last refused; the last held for the test's length.
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
          // Given up 10 s after the last try was sent: the goal's container removed, the held call
          // run in a fresh one (before, it waited for the engine's answer, here the test's end).
          await until(() => (f.requests(marker) >= 3 ? true : undefined), 30_000);
          expect(f.toolEnds(goalId).sort()).toEqual([
            ["tool.completed", "file_list"],
            ["tool.completed", "file_read"],
          ]);
          const now = await containerState(container);
          expect(now.state).toBe("running");
          expect(now.id).not.toBe(before);
        },
      );
    } finally {
      unpauses.disarm();
      release.open();
    }
  }, 180_000);
});
