// daemon/cluster-methods.ts — the socket methods that answer for the whole cluster when the
// daemon is a node of one (cluster/node.ts): goal.*, events.subscribe, approval.list and
// approval.respond, agent.list and audit.query of a goal, and cluster.status. Each is the lone daemon's method (methods.ts) with
// the cluster's view behind it: the goal's mirrored status, its events from Redis streams,
// answers routed to the node that owns the goal. Everything else stays per node.

import { handshakeRefusal } from "../cluster/connections.js";
import { readFailure } from "../cluster/context.js";
import { type ClusterEvent, readEvents, streamTip } from "../cluster/event-stream.js";
import type { ClusterNode } from "../cluster/node.js";
import { RedisKeys } from "../cluster/redis-keys.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { TERMINAL } from "../kernel/goal-store.js";
import { toWireEvent, type WireEvent } from "./events.js";
import {
  goalEndOf,
  type MethodContext,
  refuseWhileClosing,
  sessionReads,
  subscribeLocal,
  whileClientStays,
} from "./methods.js";
import type { MethodName, ParamsOf } from "./schemas.js";
import { goalManifest, submittedByOf } from "./submit-manifest.js";

type ClusterHandler<M extends MethodName> = (
  params: ParamsOf<M>,
  ctx: MethodContext,
  node: ClusterNode,
) => unknown;

export const clusterHandlers: { [M in MethodName]?: ClusterHandler<M> } = {
  "goal.submit": (p, ctx, node) => {
    refuseWhileClosing(ctx);
    return node.goals.submit({
      goal: p.goal,
      ...manifestOf(p, ctx),
      ...(p.inputs ? { inputs: p.inputs } : {}),
      ...(p.workspace !== undefined ? { workspace: p.workspace } : {}),
      ...(p.inputs_within !== undefined ? { inputsWithin: p.inputs_within } : {}),
      ...(p.inputs_as !== undefined ? { inputsReader: sessionReads(ctx, p.inputs_as) } : {}),
      ...submittedByOf(p),
    });
  },
  "goal.status": (p, _ctx, node) => node.goals.status(p.goal_id),
  "goal.wait": (p, ctx, node) =>
    whileClientStays(ctx, "the client that waited disconnected", (signal) =>
      node.goals.wait(p.goal_id, p.timeout_ms, signal),
    ),
  "goal.list": async (p, _ctx, node) => ({
    goals: await node.goals.list({
      ...(p.state ? { state: p.state } : {}),
      ...(p.limit ? { limit: p.limit } : {}),
    }),
  }),
  "goal.cancel": (p, _ctx, node) => node.goals.cancel(p.goal_id),
  // One goal's agents, from the node that runs it; without a goal, this node's own.
  "agent.list": (p, ctx, node) =>
    p.goal_id === undefined
      ? { agents: ctx.rt.listAgents(p.include_stopped ? { includeStopped: true } : {}) }
      : node.goals.agents(p.goal_id, p.include_stopped === true),
  // One goal's entries, from the node whose log holds them; without a goal, this node's log.
  "audit.query": (p, ctx, node) =>
    p.goal_id === undefined
      ? { entries: ctx.rt.audit.query(p) }
      : node.goals.auditOf({ ...p, goal_id: p.goal_id }),
  "approval.list": async (p, _ctx, node) => ({ approvals: await node.approvals(p) }),
  "approval.respond": (p, ctx, node) => node.goals.respond(p.id, p.decision, ctx.decidedBy),
  "events.subscribe": (p, ctx, node) => subscribeCluster(ctx, node, p.goal_id),
  "cluster.audit_verify": (_p, _ctx, node) => node.verifyAudit(),
  "cluster.status": async (_p, _ctx, node) => {
    const fence = node.fenceStatus();
    try {
      return {
        enabled: true,
        node_id: node.identity.nodeId,
        fence,
        nodes: await node.nodes(),
        redis: { persistence: await node.redisPersistence() },
      };
    } catch (e) {
      // Cut off from Redis (fenced or not), a node still answers: itself from memory, and
      // why Redis cannot be read — it does not answer (unreachable), or it refuses this
      // node's reads (refused: an ACL, not the network, is what to fix). Fenced: why its goals wait.
      const { redis: failure, reason } = readFailure(e, handshakeRefusal(node.redis));
      return {
        enabled: true,
        node_id: node.identity.nodeId,
        fence,
        nodes: [node.self()],
        redis: { persistence: "unknown", [failure]: node.redisText(reason) },
      };
    }
  },
};

/**
 * The manifest a client sent, held to this node's ceiling (the owner holds it to its own
 * too), and to its MCP session's reach with session_id: the job carries the held manifest.
 */
function manifestOf(p: ParamsOf<"goal.submit">, ctx: MethodContext): { manifest?: unknown } {
  const manifest = goalManifest(p, ctx);
  return manifest !== undefined ? { manifest } : {};
}

/** How often an all-goals subscription made while Redis was away asks for the stream's tip again. */
const TIP_RETRY_MS = 1_000;

/**
 * events.subscribe in a cluster. A goal this node runs streams from its own bus, as on a
 * lone daemon; any other goal from its Redis stream, from the moment of the subscription
 * until its goal.finished. Without a goal: this node's events and every other node's (those
 * from when Redis answers, when it did not at the subscription).
 */
async function subscribeCluster(
  ctx: MethodContext,
  node: ClusterNode,
  goalId: string | undefined,
): Promise<{ subscribed: true; goal_id: string | null }> {
  const self = node.identity.nodeId;
  if (goalId !== undefined) {
    const s = await node.goals.status(goalId); // not_found before anything is set up
    if ("node" in s && s.node === self && ctx.rt.goals.isLive(goalId))
      return subscribeLocal(ctx, goalId, self);
    // A goal from before cluster mode: it ran here too.
    if (!("node" in s) && !("submitted_via" in s)) return subscribeLocal(ctx, goalId, self);
  }
  const key = goalId === undefined ? RedisKeys.allEvents : RedisKeys.goalEvents(goalId);
  // Every goal's, with Redis away: this node's events at once, the others' once Redis answers.
  const tip = await streamTip(node.redis, key).catch((e: unknown) => {
    if (goalId === undefined) return undefined;
    throw new AidoError(
      ErrorCode.clusterUnavailable,
      `the events of goal ${goalId} are read from the cluster's Redis, which cannot be reached: ${errorMessage(e)}`,
      { goal_id: goalId },
    );
  });
  let ended = false;
  let reader: { stop(): void } | undefined;
  let offLocal = () => {};
  const send = (ev: WireEvent): "stop" | undefined => {
    if (ended) return "stop";
    ctx.conn.notify("event", ev);
    if (goalId !== undefined && ev.type === "goal.finished") {
      end();
      return "stop";
    }
    return undefined;
  };
  const end = () => {
    ended = true;
    reader?.stop();
    offLocal();
    offClose();
  };
  const offClose = ctx.conn.onClose(() => end());
  ctx.afterResponse(() => {
    if (ended) return;
    if (goalId === undefined) {
      // This node's own events from its bus (they are in the stream too: skipped there),
      // with the node they happened on, as every other node's carry it.
      offLocal = ctx.rt.events.subscribe({}, (ev) => void send({ ...toWireEvent(ev), node: self }));
    }
    const read = (from: string) => {
      if (ended) return;
      reader = readEvents(
        node.redis,
        key,
        from,
        (ev: ClusterEvent) => (goalId === undefined && ev.node === self ? undefined : send(ev)),
        () => {},
      );
    };
    if (tip !== undefined) read(tip);
    else
      void (async () => {
        while (!ended) {
          try {
            return read(await streamTip(node.redis, key));
          } catch {
            await new Promise((r) => setTimeout(r, TIP_RETRY_MS));
          }
        }
      })();
    if (goalId === undefined) return;
    // The goal may have ended before the subscription existed: say so, then end.
    void node.goals.status(goalId).then(
      (s) => {
        if (TERMINAL.has(s.state)) send(goalEndOf(s));
      },
      () => {},
    );
  });
  return { subscribed: true, goal_id: goalId ?? null };
}
