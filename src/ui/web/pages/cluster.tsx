// ui/web/pages/cluster.tsx — the Cluster panel on the goals page: when the daemon is a
// node of a cluster (docs/scale-out.md), every node that joined with whether it still
// heartbeats, its load and its last heartbeat, from cluster.status. Heartbeats are not
// events, so the panel asks again every few seconds (and when the goal list changes); a
// lone daemon answers enabled: false and the panel shows nothing.

import { useEffect } from "preact/hooks";
import { rpc } from "../api.js";
import { ErrorNote, Section, Time, useAnswer } from "../components.js";
import type { LiveStore } from "../live.js";
import type { ClusterStatus } from "../wire.js";

const REFRESH_MS = 5_000;

export function ClusterPanel({ store }: { store: LiveStore }) {
  const answer = useAnswer(() => rpc<ClusterStatus>("cluster.status", {}), [store.state.revisions.goals]);
  useEffect(() => {
    const t = setInterval(() => answer.reload(), REFRESH_MS);
    return () => clearInterval(t);
  }, []);
  const s = answer.value;
  if (answer.error !== undefined && s === undefined) return <ErrorNote error={answer.error} />;
  if (!s?.enabled) return null;
  return (
    <Section title="Cluster">
      <ErrorNote error={answer.error} />
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
          {s.nodes.map((n) => (
            <tr key={n.node_id} data-node={n.node_id}>
              <td class="mono">
                {n.node_id}
                {n.node_id === s.node_id ? <span class="muted"> (this node)</span> : null}
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
