// Cluster mode: a kept goal's last unfreeze try that the engine answers slowly (a `docker
// unpause` under load). The last try was counted refused after a fixed 10 s and the goal given
// up, its containers removed, though the engine was thawing it and the node's lease (30 s by
// default) leaves that long before any other node would end the goal. The bound now follows the
// lease (cluster/fence.ts tryAgain): a last unpause answered within it thaws the goal in its own
// container; one answered past it is given up at the lease, not before.
// A real Runtime (scripted provider) whose DockerBackend speaks to the real engine through a
// proxy that refuses each goal's unpauses but the last and holds the last a while, a real
// redis-server stopped for the fence; a lease of 16 s, one goal per case.

import { describe, expect, it } from "vitest";
import { UNFREEZE_TRIES } from "../../src/cluster/fence.js";
import { until } from "../daemon/process.js";
import type { ProviderServer } from "../support/provider-server.js";
import {
  containerState,
  type FencedGoals,
  useCountedUnpauses,
  withFencedGoals,
} from "./support/fenced-goals.js";
import { withProvider } from "./support/file-cluster.js";

let server: ProviderServer;
withProvider((p) => ({ server } = p));

const LEASE_MS = 16_000;
/** Past the old fixed 10 s, within the lease. */
const SLOW_MS = 12_000;
/** Past the lease. */
const SLOWER_MS = LEASE_MS + 8_000;

const unpauses = useCountedUnpauses();

/** Fence one goal, refuse every unfreeze try but the last, and answer the last after `lastMs`. */
async function lastAnsweredAfter(
  marker: string,
  lastMs: number,
  check: (
    f: FencedGoals,
    last: { goalId: string; container: string; before: string; lastSentAt: number },
  ) => Promise<void>,
): Promise<void> {
  let lastSentAt = 0;
  try {
    await withFencedGoals(
      server,
      unpauses.engine,
      { nodeId: `n-${marker}`, markers: [marker], leaseMs: LEASE_MS },
      async (f) => {
        const [goalId = "", container = ""] = [f.goals[0], f.containers[0]];
        const before = (await containerState(container)).id;
        await f.fence();
        unpauses.answer = (_name, n) => {
          if (n < UNFREEZE_TRIES) return "refuse";
          if (n === UNFREEZE_TRIES) {
            lastSentAt = Date.now();
            return lastMs;
          }
          return undefined;
        };
        await f.lift({ unfenced: true });
        await until(() => (lastSentAt > 0 ? true : undefined), 20_000);
        await check(f, { goalId, container, before, lastSentAt });
        expect(f.toolEnds(goalId).sort()).toEqual([
          ["tool.completed", "file_list"],
          ["tool.completed", "file_read"],
        ]);
      },
    );
  } finally {
    unpauses.disarm();
  }
}

describe("cluster mode: a kept goal's last unfreeze try the engine answers slowly", () => {
  it("thaws the goal in its own container when the engine answers within the lease (past 10 s)", async () => {
    const marker = "unfreeze-lease-slow";
    await lastAnsweredAfter(marker, SLOW_MS, async (f, { goalId, container, before }) => {
      // Its unpause lands after SLOW_MS: its held call runs in its own container, not given up.
      await until(() => (f.requests(marker) >= 3 ? true : undefined), SLOW_MS + 20_000);
      expect(await containerState(container)).toEqual({ id: before, state: "running" });
      expect(givenUp(f, goalId)).toEqual([]);
    });
  }, 180_000);

  it("gives the goal up once the lease has passed without the engine's answer, not before", async () => {
    const marker = "unfreeze-lease-slower";
    await lastAnsweredAfter(marker, SLOWER_MS, async (f, { goalId, container, before, lastSentAt }) => {
      const goneAt = await until(async () => {
        const s = await containerState(container);
        return s.id !== before ? Date.now() : undefined;
      }, SLOWER_MS + 20_000);
      expect(goneAt - lastSentAt).toBeGreaterThanOrEqual(LEASE_MS - 1_000);
      // Its held call runs in the fresh container.
      await until(() => (f.requests(marker) >= 3 ? true : undefined), 30_000);
      expect(givenUp(f, goalId)).toHaveLength(1);
    });
  }, 180_000);
});

const givenUp = (f: FencedGoals, goalId: string) =>
  f.h.rt.audit.query({ goal_id: goalId }).filter((e) => e.kind === "cluster.unfreeze_given_up");
