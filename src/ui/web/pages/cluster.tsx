// ui/web/pages/cluster.tsx — the Cluster panel on the goals page: when the daemon is a
// node of a cluster (docs/scale-out.md), every node that joined with whether it still
// heartbeats, its load and its last heartbeat, from cluster.status, and what is wrong with a
// node's record in Redis (malformed). Heartbeats are not events, so the panel asks again
// every few seconds (and when the goal list changes); a lone daemon answers enabled: false
// and the panel shows nothing. A node that is fenced or cannot reach Redis says so, here and
// on the goal page (ClusterNote), as `aido watch` does: cut off from Redis it lists itself
// alone, and the nodes last read stay, said stale since they were read.

import { useEffect, useRef } from "preact/hooks";
import { rpc } from "../api.js";
import { ErrorNote, Section, Time, useAnswer } from "../components.js";
import type { LiveStore } from "../live.js";
import type { ClusterNode, ClusterStatus } from "../wire.js";

const REFRESH_MS = 5_000;

/** cluster.status, asked again every few seconds and when `revision` changes. */
function useClusterStatus(revision: unknown) {
  const answer = useAnswer(() => rpc<ClusterStatus>("cluster.status", {}), [revision]);
  useEffect(() => {
    const t = setInterval(() => answer.reload(), REFRESH_MS);
    return () => clearInterval(t);
  }, []);
  return answer;
}

/** Whether this node is fenced and whether it can reach Redis, when either is wrong. */
export function ClusterNote({ status }: { status: ClusterStatus | undefined }) {
  if (!status?.enabled) return null;
  const fence = status.fence;
  const unreachable = status.redis?.unreachable;
  if (!fence?.fenced && unreachable === undefined) return null;
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
    </div>
  );
}

/** The fenced / Redis-unreachable note of the goal page. */
export function GoalClusterNote({ store }: { store: LiveStore }) {
  const answer = useClusterStatus(store.state.revisions.goals);
  return <ClusterNote status={answer.value} />;
}

export function ClusterPanel({ store }: { store: LiveStore }) {
  const answer = useClusterStatus(store.state.revisions.goals);
  // The nodes last read from Redis, and when: kept while this node cannot read it.
  const lastRead = useRef<{ nodes: ClusterNode[]; at: string } | undefined>(undefined);
  const s = answer.value;
  if (answer.error !== undefined && s === undefined) return <ErrorNote error={answer.error} />;
  if (!s?.enabled) return null;
  const unreachable = s.redis?.unreachable !== undefined;
  if (!unreachable) lastRead.current = { nodes: s.nodes, at: new Date().toISOString() };
  const kept = unreachable ? lastRead.current : undefined;
  // Cut off: this node as it says now, the others as last read.
  const nodes = kept ? kept.nodes.map((n) => s.nodes.find((m) => m.node_id === n.node_id) ?? n) : s.nodes;
  return (
    <Section title="Cluster">
      <ErrorNote error={answer.error} />
      <ClusterNote status={s} />
      {unreachable ? (
        <p class="muted" data-testid="cluster-stale">
          {kept ? (
            <>
              Other nodes as of <Time at={kept.at} />
            </>
          ) : (
            "The other nodes have not been read"
          )}
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
