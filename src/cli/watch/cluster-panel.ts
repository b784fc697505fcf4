// cli/watch/cluster-panel.ts — what `aido watch` asks of a cluster node outside its stream
// (cluster.ts draws it): cluster.status, at the start and every few seconds (heartbeats are
// not events), and, watching every goal, the goals running or queued anywhere and the
// approvals waiting (the stream only carries news). Every call is bounded: a cluster.status
// that hung (a daemon stopped, a Redis that does not answer) left the panel as it was,
// unsaid, and stopped its refreshing for good; now the panel says it is stale and since when,
// and asks again at the next turn. Redis away at the start no longer fails the watch: it
// starts with this node's own goals, says the cluster's could not be read, and reads them
// once cluster.status answers again.

import type { AidoClient } from "../../client/client.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import { withClusterStatus, withClusterUnseeded } from "./cluster.js";
import { withAgentsGoals, withGoalStatuses, withPendingApprovals } from "./seed.js";
import type { WatchState } from "./state.js";

/** How often the panel asks cluster.status again. */
export const CLUSTER_REFRESH_MS = 5_000;
/** How long one question of the panel waits for its answer. */
export const CLUSTER_ANSWER_MS = 4_000;
/** How many of the cluster's running (and queued) goals an all-goals watch starts with. */
const SEEDED_GOALS = 200;

/** `p`, or an error naming `what` once `ms` passed; its late answer is dropped. */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  p.catch(() => {});
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const away = (e: unknown) => !(e instanceof AidoError) || e.code === ErrorCode.clusterUnavailable;

/**
 * The cluster panel of a watch over `client`; `apply` folds a change into the view. Watching
 * every goal (`goalId` undefined) it seeds the cluster's goals, and the approvals when
 * `approvalsUnread` (the watch's own approval.list found Redis away). Undefined on a lone
 * daemon; else stop() ends the refreshing.
 */
export async function clusterPanel(
  client: AidoClient,
  goalId: string | undefined,
  apply: (f: (s: WatchState) => WatchState) => void,
  opts: { approvalsUnread?: boolean } = {},
): Promise<{ stop(): void } | undefined> {
  const now = () => new Date().toISOString();
  const status = () => bounded(client.call("cluster.status", {}), CLUSTER_ANSWER_MS, "cluster.status");
  let stopped = false;
  try {
    const first = await status();
    if (!first.enabled) return undefined;
    apply((s) => withClusterStatus(s, first, now()));
  } catch (e) {
    // A lone daemon answers at once; this one is a node whose Redis (or itself) is slow.
    if (!away(e)) throw e;
    apply((s) => withClusterStatus(s, `cluster.status failed: ${errorMessage(e)}`, now()));
  }
  let goalsUnread = goalId === undefined;
  let approvalsUnread = opts.approvalsUnread === true;
  /** The cluster's goals and approvals, until read once; what keeps them unread is said. */
  const seed = async () => {
    try {
      if (goalsUnread) {
        for (const state of ["running", "queued"] as const) {
          const { goals } = await bounded(
            client.call("goal.list", { state, limit: SEEDED_GOALS }),
            CLUSTER_ANSWER_MS,
            "goal.list",
          );
          if (stopped) return;
          apply((s) => withGoalStatuses(s, goals));
        }
        goalsUnread = false;
      }
      if (approvalsUnread) {
        const waiting = await bounded(
          client.call("approval.list", { status: "pending", limit: 1000 }),
          CLUSTER_ANSWER_MS,
          "approval.list",
        );
        if (stopped) return;
        apply((s) => withPendingApprovals(s, waiting.approvals));
        approvalsUnread = false;
      }
      apply((s) => withClusterUnseeded(s, undefined));
    } catch (e) {
      if (!away(e)) throw e;
      if (stopped) return;
      apply((s) => withClusterUnseeded(s, errorMessage(e)));
      if (goalsUnread) apply((s) => withAgentsGoals(s, s.cluster?.self));
    }
  };
  await seed();
  let asking = false;
  const timer = setInterval(() => {
    if (asking) return;
    asking = true;
    status()
      .then(
        // An answer that comes after the watch ended is dropped (the screen has its summary).
        async (r) => {
          if (stopped) return;
          apply((s) => withClusterStatus(s, r, now()));
          // A lone daemon whose first answer was slow: there is no panel to refresh.
          if (!r.enabled) clearInterval(timer);
          if ((goalsUnread || approvalsUnread) && r.enabled && !r.redis?.unreachable) await seed();
        },
        (e) =>
          stopped || apply((s) => withClusterStatus(s, `cluster.status failed: ${errorMessage(e)}`, now())),
      )
      .catch(() => {})
      .finally(() => {
        asking = false;
      });
  }, CLUSTER_REFRESH_MS);
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
