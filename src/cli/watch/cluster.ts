// cli/watch/cluster.ts — what `aido watch` shows of the cluster when its daemon is a node of
// one (docs/scale-out.md): each node, up or down, its load and last heartbeat, the node the
// watch talks to marked, and whether that node is fenced. Heartbeats are not events, so the
// command asks `cluster.status` again every few seconds and folds the answer in here; the
// goals' and approvals' nodes come with their events (each carries `node`) and goal.status.
// Pure, as state.ts: the same answer gives the same view.

import type { ClusterStatusResult } from "../../client/types.js";
import { refusalAdvice } from "../../cluster/refusal-advice.js";
import type { WatchState } from "./state.js";
import { oneLine } from "./text.js";

/** One node as the watch shows it. */
export interface NodeView {
  id: string;
  alive: boolean;
  lastHeartbeat: string | null;
  running: number;
  capacity: number;
  /** What is wrong with its record in Redis, when something is (cluster.status says). */
  malformed?: string;
}

export interface ClusterView {
  /** The node the watch talks to. */
  self: string;
  fenced: boolean;
  nodes: NodeView[];
  /** When the nodes shown were read (the last cluster.status answered): ISO time. */
  asOf?: string;
  /** Why the last cluster.status failed or Redis could not be read, if it did: what is shown is stale. */
  problem?: string;
  /** Why the cluster's goals and approvals could not be read (Redis away): this node's alone are shown. */
  unseeded?: string;
}

/**
 * Folds a cluster.status answer (or its failure, as text) read at `at` into the view; a lone
 * daemon's removes the panel (drawn only if a first answer failed). A failure keeps the nodes
 * last read, said stale since then.
 */
export function withClusterStatus(
  prev: WatchState,
  answer: ClusterStatusResult | string,
  at: string,
): WatchState {
  if (typeof answer !== "string" && !answer.enabled) {
    // No cluster: a panel a slow first answer's failure drew (never read) goes.
    if (prev.cluster === undefined) return prev;
    const s = structuredClone(prev);
    delete s.cluster;
    return s;
  }
  const s = structuredClone(prev);
  if (typeof answer === "string") {
    s.cluster ??= { self: "", fenced: false, nodes: [] };
    s.cluster.problem = answer;
    return s;
  }
  const view: ClusterView = {
    self: answer.node_id,
    fenced: answer.fence?.fenced === true,
    nodes: answer.nodes.map((n) => {
      const v: NodeView = {
        id: n.node_id,
        alive: n.alive,
        lastHeartbeat: n.last_heartbeat,
        running: n.running,
        capacity: n.capacity,
      };
      if (typeof n.malformed === "string") v.malformed = n.malformed;
      return v;
    }),
    asOf: at,
  };
  const cutOff = answer.redis?.unreachable
    ? `Redis cannot be reached: ${answer.redis.unreachable}`
    : answer.redis?.refused
      ? `Redis refuses this node's reads (${refusalAdvice(answer.redis.refused)}): ${answer.redis.refused}`
      : undefined;
  if (cutOff === undefined) {
    // Redis read again: no goal is shown from this node's own record any more (goal.status cluster).
    for (const g of Object.values(s.goals)) delete g.ownRecord;
  } else {
    // A node that cannot read Redis answers with itself alone, from its memory: the others
    // last read stay, said stale since they were read, rather than a panel of one "as of" now
    // (before any read, this node alone is shown).
    view.problem = cutOff;
    const own = view.nodes.find((n) => n.id === answer.node_id);
    const last = s.cluster?.nodes ?? [];
    view.nodes = last.length === 0 ? view.nodes : last.map((n) => (n.id === answer.node_id ? (own ?? n) : n));
    if (s.cluster?.asOf === undefined) delete view.asOf;
    else view.asOf = s.cluster.asOf;
  }
  if (s.cluster?.unseeded !== undefined) view.unseeded = s.cluster.unseeded;
  s.cluster = view;
  return s;
}

/** Says (`why`) or unsays (undefined) that the cluster's goals and approvals could not be read. */
export function withClusterUnseeded(prev: WatchState, why: string | undefined): WatchState {
  if (prev.cluster?.unseeded === why) return prev;
  const s = structuredClone(prev);
  s.cluster ??= { self: "", fenced: false, nodes: [] };
  if (why === undefined) delete s.cluster.unseeded;
  else s.cluster.unseeded = why;
  return s;
}

const clock = (iso: string | null): string => (iso && iso.length >= 19 ? iso.slice(11, 19) : "never");

/** The cluster panel: one line per node, then what is wrong, if anything. */
export function clusterLines(view: ClusterView, width: number): string[] {
  const self = view.self === "" ? "?" : oneLine(view.self, 40);
  const head = `cluster  this node ${self}${view.fenced ? "  FENCED: its goals wait until its lease is renewed" : ""}`;
  const lines = [head];
  for (const n of view.nodes) {
    const me = n.id === view.self ? " (this)" : "";
    const state = n.alive ? "up" : "DOWN";
    const bad = n.malformed ? `  MALFORMED: ${oneLine(n.malformed, width)}` : "";
    lines.push(
      `  ${oneLine(n.id, 40)}${me}  ${state}  load ${n.running}/${n.capacity}  heartbeat ${clock(n.lastHeartbeat)}${bad}`,
    );
  }
  if (view.problem) {
    const since = view.asOf === undefined ? "never read" : `as of ${clock(view.asOf)}`;
    lines.push(`  STALE (${since}): ${oneLine(view.problem, width)}`);
  }
  if (view.unseeded)
    lines.push(`  cluster goals unavailable: ${oneLine(view.unseeded, width)}; this node's shown`);
  return lines.map((l) => (l.length > width ? `${l.slice(0, Math.max(0, width - 1))}…` : l));
}
