// cli/watch/cluster.ts — what `aido watch` shows of the cluster when its daemon is a node of
// one (docs/scale-out.md): each node, up or down, its load and last heartbeat, the node the
// watch talks to marked, and whether that node is fenced. Heartbeats are not events, so the
// command asks `cluster.status` again every few seconds and folds the answer in here; the
// goals' and approvals' nodes come with their events (each carries `node`) and goal.status.
// Pure, as state.ts: the same answer gives the same view.

import type { ClusterStatusResult } from "../../client/types.js";
import type { WatchState } from "./state.js";
import { oneLine } from "./text.js";

/** One node as the watch shows it. */
export interface NodeView {
  id: string;
  alive: boolean;
  lastHeartbeat: string | null;
  running: number;
  capacity: number;
}

export interface ClusterView {
  /** The node the watch talks to. */
  self: string;
  fenced: boolean;
  nodes: NodeView[];
  /** Why the last cluster.status failed or Redis could not be read, if it did. */
  problem?: string;
}

/** Folds a cluster.status answer (or its failure, as text) into the view; a lone daemon's changes nothing. */
export function withClusterStatus(prev: WatchState, answer: ClusterStatusResult | string): WatchState {
  if (typeof answer !== "string" && !answer.enabled) return prev;
  const s = structuredClone(prev);
  if (typeof answer === "string") {
    if (s.cluster) s.cluster.problem = answer;
    return s;
  }
  const view: ClusterView = {
    self: answer.node_id,
    fenced: answer.fence?.fenced === true,
    nodes: answer.nodes.map((n) => ({
      id: n.node_id,
      alive: n.alive,
      lastHeartbeat: n.last_heartbeat,
      running: n.running,
      capacity: n.capacity,
    })),
  };
  if (answer.redis?.unreachable) view.problem = `Redis cannot be reached: ${answer.redis.unreachable}`;
  s.cluster = view;
  return s;
}

const clock = (iso: string | null): string => (iso && iso.length >= 19 ? iso.slice(11, 19) : "never");

/** The cluster panel: one line per node, then what is wrong, if anything. */
export function clusterLines(view: ClusterView, width: number): string[] {
  const head = `cluster  this node ${oneLine(view.self, 40)}${view.fenced ? "  FENCED: its goals wait until its lease is renewed" : ""}`;
  const lines = [head];
  for (const n of view.nodes) {
    const me = n.id === view.self ? " (this)" : "";
    const state = n.alive ? "up" : "DOWN";
    lines.push(
      `  ${oneLine(n.id, 40)}${me}  ${state}  load ${n.running}/${n.capacity}  heartbeat ${clock(n.lastHeartbeat)}`,
    );
  }
  if (view.problem) lines.push(`  ${oneLine(view.problem, width)}`);
  return lines.map((l) => (l.length > width ? `${l.slice(0, Math.max(0, width - 1))}…` : l));
}
