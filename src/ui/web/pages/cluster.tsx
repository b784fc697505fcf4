// ui/web/pages/cluster.tsx — the Cluster panel on the goals page: when the daemon is a
// node of a cluster (docs/scale-out.md), every node that joined with whether it still
// heartbeats, its load and its last heartbeat, from cluster.status, and what is wrong with a
// node's record in Redis (malformed). Heartbeats are not events, so the panel asks again
// a few seconds after each answer (and when the goal list changes); a lone daemon answers
// enabled: false and the panel shows nothing. A node that is fenced, cannot reach Redis or
// is refused by it says so, here and on the goal page (ClusterNote), as `aido watch` does:
// cut off from Redis it lists itself alone, and the nodes last read stay, said STALE since
// they were read. So are they when cluster.status is late or fails: a Redis that stalls
// (a silent partition) makes the node's answer slow, and a table kept without a word would
// say all is well until the socket drops.

import { useEffect, useRef, useState } from "preact/hooks";
import { rpc } from "../api.js";
import { ErrorNote, Section, Time } from "../components.js";
import type { LiveStore } from "../live.js";
import { withGoals } from "../live.js";
import type { ClusterNode, ClusterStatus, Goal } from "../wire.js";

/**
 * cluster.status is asked again this long after each answer (never while one is awaited), and
 * at most once in this long however many goal events arrive.
 */
const REFRESH_MS = 5_000;
/** An answer not back after this long: what is shown is said stale. */
const LATE_MS = 5_000;
/**
 * An ask not answered after this long is given up and asked again (a request the socket or
 * HTTP never answers left the panel STALE, never asking again until the page was reloaded).
 */
const ASK_BOUND_MS = 30_000;

interface ClusterAnswer {
  value: ClusterStatus | undefined;
  /** The last ask's failure, until one is answered. */
  error: unknown;
  /** When the ask under way began, once it is late (LATE_MS). */
  lateSince: string | undefined;
}

/**
 * cluster.status, asked again REFRESH_MS after each answer, and sooner when `revision`
 * changes: REFRESH_MS after the last ask began (a goal event marks "ask soon": many of them,
 * a busy cluster's, asked back to back before). An answer is never dropped for being slow (a
 * 5 s setInterval that restarted the ask threw away every answer slower than 5 s: a stalled
 * Redis left the last healthy table up), up to ASK_BOUND_MS: then it is given up, said so,
 * and asked again.
 */
function useClusterStatus(revision: unknown): ClusterAnswer {
  const [value, setValue] = useState<ClusterStatus | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [lateSince, setLateSince] = useState<string | undefined>(undefined);
  const loop = useRef<{ soon: () => void } | undefined>(undefined);
  useEffect(() => {
    let stopped = false;
    const state: {
      asking: boolean;
      /** When the last ask began (ms). */
      asked: number;
      timer?: ReturnType<typeof setTimeout>;
      ask: () => void;
      soon: () => void;
    } = {
      asking: false,
      asked: 0,
      ask: () => {
        if (stopped || state.asking) return;
        clearTimeout(state.timer);
        state.asking = true;
        state.asked = Date.now();
        const began = new Date().toISOString();
        const late = setTimeout(() => !stopped && setLateSince(began), LATE_MS);
        rpc<ClusterStatus>("cluster.status", {}, { timeoutMs: ASK_BOUND_MS })
          .then(
            (v) => {
              if (stopped) return;
              setValue(v);
              setError(undefined);
            },
            (e: unknown) => !stopped && setError(e),
          )
          .finally(() => {
            clearTimeout(late);
            state.asking = false;
            if (stopped) return;
            setLateSince(undefined);
            state.timer = setTimeout(state.ask, REFRESH_MS);
          });
      },
      // Ask REFRESH_MS after the last ask began (at once if that is past), not at once.
      soon: () => {
        if (stopped || state.asking) return;
        clearTimeout(state.timer);
        state.timer = setTimeout(state.ask, Math.max(0, state.asked + REFRESH_MS - Date.now()));
      },
    };
    loop.current = state;
    state.ask();
    return () => {
      stopped = true;
      clearTimeout(state.timer);
    };
  }, []);
  // The goal list changed: ask soon (at most once per REFRESH_MS), unless an ask is under way.
  useEffect(() => loop.current?.soon(), [revision]);
  return { value, error, lateSince };
}

/** Why what is shown of the cluster may be out of date, if it may be (Redis aside: ClusterNote says that). */
function lateOrFailed(answer: ClusterAnswer): string | undefined {
  if (answer.lateSince !== undefined)
    return `this node has not answered cluster.status for ${LATE_MS / 1000} s or more (its Redis may be stalled)`;
  if (answer.error !== undefined)
    return `cluster.status failed: ${answer.error instanceof Error ? answer.error.message : String(answer.error)}; asked again every ${REFRESH_MS / 1000} s`;
  return undefined;
}

/**
 * What to look at for a refusal of this node's reads: the ACL user only for an ACL refusal (a
 * copy of src/cluster/refusal-advice.ts, which the page's bundle does not reach).
 */
export function refusalAdvice(why: string): string {
  if (/\b(NOPERM|WRONGPASS|NOAUTH)\b|invalid password|invalid username-password/.test(why))
    return "check the ACL user in the node's Redis URL";
  if (/\bWRONGTYPE\b/.test(why))
    return "a key in Redis holds another type than the cluster writes there (a Redis writer's?): see the key named, not this node's user";
  if (/\bREADONLY\b/.test(why))
    return "the node's Redis URL names a read-only replica (after a failover?): point it at the primary";
  return "see the Redis server's own state (its memory, its disk, its log), not this node's user";
}

/** Whether this node is fenced and whether it can reach Redis, when either is wrong. */
export function ClusterNote({ status }: { status: ClusterStatus | undefined }) {
  if (!status?.enabled) return null;
  const fence = status.fence;
  const unreachable = status.redis?.unreachable;
  const refused = status.redis?.refused;
  if (!fence?.fenced && unreachable === undefined && refused === undefined) return null;
  return (
    <div class="error" role="alert" data-testid="cluster-note">
      {fence?.fenced ? (
        <p data-testid="cluster-fenced">
          This node is fenced
          {fence.fenced_since ? (
            <>
              {" "}
              since <Time at={fence.fenced_since} />
            </>
          ) : null}
          : it could not renew its lease, and its goals wait until Redis answers and it has looked which are
          still its own.
        </p>
      ) : null}
      {unreachable !== undefined ? (
        <p class="text" data-testid="cluster-unreachable">
          Redis cannot be reached from this node ({unreachable}): what is shown of the cluster is stale; this
          node answers for its own goals from its own records.
        </p>
      ) : null}
      {refused !== undefined ? (
        <p class="text" data-testid="cluster-refused">
          Redis refuses this node's reads ({refused}): {refusalAdvice(refused)}. What is shown of the cluster
          is stale; this node answers for its own goals from its own records.
        </p>
      ) : null}
    </div>
  );
}

/**
 * The goal page's cluster notes: this node fenced or cut off from Redis, and a goal status
 * answered from this node's own record (goal.status `cluster`): the cluster's view only as of
 * its last heartbeat, another node may have ended or taken the goal since. Once Redis answers
 * again the goal is read again, and the mark goes.
 */
export function GoalClusterNote({ store, goalId }: { store: LiveStore; goalId: string }) {
  const answer = useClusterStatus(store.state.revisions.goals);
  const s = answer.value;
  const mark = store.state.goals[goalId]?.cluster;
  const healthy = s?.enabled === true && s.redis?.unreachable === undefined && s.redis?.refused === undefined;
  const marked = mark !== undefined;
  // At most once per cluster.status answer: a goal.status still marked (Redis flapping) is
  // not asked again at once.
  useEffect(() => {
    if (!healthy || !marked) return;
    rpc<Goal>("goal.status", { goal_id: goalId }).then(
      (g) => store.update((st) => withGoals(st, [{ ...g, cluster: g.cluster }])),
      () => undefined,
    );
  }, [s, healthy, marked, goalId, store]);
  return (
    <>
      <ClusterNote status={s} />
      {mark ? (
        <p class="error text" role="alert" data-testid="goal-own-record">
          This goal's status is this node's own record: the cluster's Redis{" "}
          {mark.redis === "refused" ? "refuses this node's reads" : "cannot be reached"} ({mark.reason}). The
          cluster last heard from this node {mark.as_of ? <Time at={mark.as_of} /> : "never"}; another node
          may have ended or taken this goal since.
        </p>
      ) : null}
    </>
  );
}

export function ClusterPanel({ store }: { store: LiveStore }) {
  const answer = useClusterStatus(store.state.revisions.goals);
  // The nodes last read from Redis, and when: kept while this node cannot read it.
  const lastRead = useRef<{ nodes: ClusterNode[]; at: string } | undefined>(undefined);
  const s = answer.value;
  if (answer.error !== undefined && s === undefined) return <ErrorNote error={answer.error} />;
  if (!s?.enabled) return null;
  const unreachable = s.redis?.unreachable !== undefined || s.redis?.refused !== undefined;
  const late = lateOrFailed(answer);
  if (!unreachable && late === undefined && lastRead.current?.nodes !== s.nodes)
    lastRead.current = { nodes: s.nodes, at: new Date().toISOString() };
  const kept = unreachable ? lastRead.current : undefined;
  // Cut off: this node as it says now, the others as last read.
  const nodes = kept ? kept.nodes.map((n) => s.nodes.find((m) => m.node_id === n.node_id) ?? n) : s.nodes;
  return (
    <Section title="Cluster">
      <ClusterNote status={s} />
      {unreachable || late !== undefined ? (
        <p class="error text" data-testid="cluster-stale">
          STALE{" "}
          {lastRead.current ? (
            <>
              since <Time at={lastRead.current.at} />: other nodes as of then
            </>
          ) : (
            ": the other nodes have not been read"
          )}
          {late !== undefined ? `; ${late}` : ""}
        </p>
      ) : null}
      <table class="cluster" data-testid="cluster">
        <thead>
          <tr>
            <th scope="col">Node</th>
            <th scope="col">State</th>
            <th scope="col">Load (running / capacity)</th>
            <th scope="col">Last heartbeat</th>
            <th scope="col">Host</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr key={n.node_id} data-node={n.node_id}>
              <td class="mono">
                {n.node_id}
                {n.node_id === s.node_id ? <span class="muted"> (this node)</span> : null}
                {typeof n.malformed === "string" ? (
                  <p class="error text" data-testid="node-malformed">
                    {n.malformed}
                  </p>
                ) : null}
              </td>
              <td>
                <span class={`badge ${n.alive ? "badge-running" : "badge-failed"}`}>
                  {n.alive ? "up" : "down"}
                </span>
              </td>
              <td>
                {n.running} / {n.capacity}
              </td>
              <td>
                <Time at={n.last_heartbeat} />
              </td>
              <td class="mono">{n.host}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
