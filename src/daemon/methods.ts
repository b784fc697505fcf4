// daemon/methods.ts — what each socket method does, over the kernel's Runtime. Params
// arrive already validated (schemas.ts); every handler is a thin translation to the
// Runtime, plus the two things only the socket adds: the operator's ceiling on
// manifests (ceiling.ts; a goal an MCP session submits is held to the session's reach
// too: submit-manifest.ts) and per-connection lifetimes (a goal.wait or an event stream
// ends when its client leaves; the goal does not).

import { join } from "node:path";
import type { Config } from "../config.js";
import { withoutConfigSecrets } from "../config-secrets.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { GoalStatus } from "../kernel/goal-store.js";
import type { Runtime } from "../kernel/runtime.js";
import { type LoadedManifest, loadManifestFile, parseManifestValue } from "../manifest/load.js";
import type { InputReader } from "../sandbox/inputs.js";
import { newRequestId } from "../security/approval-origin.js";
import { parseAnchor } from "../security/audit-head.js";
import { enforceCeiling, loadManifestFromDirs, type SocketCeiling } from "./ceiling.js";
import { type GoalEndEvent, toWireEvent, type WireEvent } from "./events.js";
import { checkIntent } from "./intent-check.js";
import { bindSession, sessionOf } from "./principal.js";
import type { RpcId } from "./protocol.js";
import type { MethodName, ParamsOf } from "./schemas.js";
import { admitManifest, goalManifest, manifestAsValue, submittedByOf } from "./submit-manifest.js";
import { invokeToolWithEvents } from "./tool-invoke.js";

/**
 * The client a request came from, as handlers see it: a socket connection, or one HTTP
 * request of the dashboard (daemon/ui/rpc.ts). Work tied to the client ends when it leaves.
 */
export interface RequestClient {
  onClose(fn: () => void): () => void;
  /** Send a notification (an `event`); false when the client is gone. */
  notify(method: string, params: unknown): boolean;
}

/** What opens the dashboard (daemon/ui/server.ts) for `ui.open`. */
export interface UiControl {
  open(rotate: boolean): Promise<{ url: string; port: number; token_file: string }>;
}

/**
 * Run one method as the socket does (params checked by its schema, the same handler),
 * for a client that is not a socket connection: the dashboard's /api/rpc and event stream.
 */
export type MethodRunner = (
  method: MethodName,
  params: unknown,
  client: RequestClient,
  afterResponse: (fn: () => void) => void,
  decidedBy: string,
  /** The JSON-RPC id of the request (absent for a notification or a dashboard call). */
  rpcId?: RpcId,
) => Promise<unknown>;

export interface MethodContext {
  rt: Runtime;
  config: Config;
  ceiling: SocketCeiling;
  conn: RequestClient;
  /** Who decisions taken by this request are recorded as (`by` of approval.decided...). */
  decidedBy: string;
  ui: UiControl;
  /** Run after the response line is written. */
  afterResponse(fn: () => void): void;
  /** True once the daemon is shutting down: nothing new is started. */
  closing(): boolean;
  /** The request's JSON-RPC id, when it has one. */
  rpcId?: RpcId;
}

type Handler<M extends MethodName> = (params: ParamsOf<M>, ctx: MethodContext) => unknown;

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export function refuseWhileClosing(ctx: MethodContext): void {
  if (ctx.closing()) {
    throw new AidoError(ErrorCode.cancelled, "the Aido daemon is shutting down; nothing new is started", {});
  }
}

/**
 * goal.submit `inputs_as`: what the session of that agent may read of its project, which
 * every input entry is held to (Sessions.projectReads); a refusal is audited as goal.refused.
 */
export function sessionReads(ctx: MethodContext, agentId: string): InputReader {
  try {
    return ctx.rt.sessions.projectReads(agentId);
  } catch (e) {
    const reason = withoutConfigSecrets(errorMessage(e), ctx.rt.config);
    ctx.rt.audit.record("goal.refused", { field: "inputs_as", reason });
    throw e;
  }
}

/**
 * Run a call that may make the gate ask a human under an id of its own (approval-origin.ts),
 * handed to `fn` to pass down with the call: every approval request it asks for carries that
 * id, and the client learns it first, from
 * a `request.started` notification {id: the request's JSON-RPC id, request_id} on the
 * connection that sent it. A client that runs calls side by side routes each request to the
 * call it belongs to by that id (mcp/approvals-bridge.ts). The id is the daemon's, never
 * the client's: a client cannot claim another call's requests.
 */
export function asCallRequest<T>(ctx: MethodContext, fn: (requestId: string) => Promise<T>): Promise<T> {
  const requestId = newRequestId();
  if (ctx.rpcId !== undefined && ctx.rpcId !== null)
    ctx.conn.notify("request.started", { id: ctx.rpcId, request_id: requestId });
  return fn(requestId);
}

/**
 * Run `fn` with a signal that aborts when this connection closes: a goal.wait or a
 * tool.invoke whose client left has nobody to answer, and ends (an approval it waits for
 * expires). Nothing is left registered on the connection afterwards.
 */
export async function whileClientStays<T>(
  ctx: MethodContext,
  why: string,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const left = new AbortController();
  const off = ctx.conn.onClose(() => left.abort(new AidoError(ErrorCode.cancelled, why, {})));
  try {
    return await fn(left.signal);
  } finally {
    off();
  }
}

/** events.subscribe: stream events (one goal's until it ends, or all) to this connection. */
export function subscribeLocal(
  ctx: MethodContext,
  goalId: string | undefined,
  /** In a cluster: this node's id, which every event then carries as `node`. */
  node?: string,
): { subscribed: true; goal_id: string | null } {
  const { rt, conn } = ctx;
  if (goalId !== undefined) rt.goals.status(goalId); // not_found before anything is set up
  const queued: WireEvent[] = [];
  let ready = false;
  let ended = false;
  const send = (ev: WireEvent) => {
    if (ended) return;
    conn.notify("event", node === undefined ? ev : { ...ev, node });
    if (goalId !== undefined && ev.type === "goal.finished") end();
  };
  const unsubscribe = rt.events.subscribe(goalId === undefined ? {} : { goalId }, (ev) => {
    const wire = toWireEvent(ev);
    if (ready) send(wire);
    else queued.push(wire);
  });
  const off = conn.onClose(unsubscribe);
  const end = () => {
    ended = true;
    unsubscribe();
    off();
  };
  ctx.afterResponse(() => {
    ready = true;
    for (const ev of queued.splice(0)) send(ev);
    if (goalId === undefined || ended) return;
    // The goal may have ended before the subscription existed: say so, then end.
    const s = rt.goals.status(goalId);
    if (TERMINAL.has(s.state)) send(goalEndOf(s));
  });
  return { subscribed: true, goal_id: goalId ?? null };
}

export function goalEndOf(s: GoalStatus): GoalEndEvent {
  const ev: GoalEndEvent = {
    type: "goal.finished",
    time: s.finished_at ?? new Date().toISOString(),
    goal_id: s.goal_id,
    state: s.state as GoalEndEvent["state"],
    usage: s.usage,
  };
  if (s.error !== undefined) ev.error = s.error;
  return ev;
}

export const handlers: { [M in MethodName]: Handler<M> } = {
  "goal.submit": (p, ctx) => {
    refuseWhileClosing(ctx);
    const manifest = goalManifest(p, ctx);
    return ctx.rt.goals.submit({
      goal: p.goal,
      ...(manifest !== undefined ? { manifest } : {}),
      ...(p.inputs ? { inputs: p.inputs } : {}),
      ...(p.workspace !== undefined ? { workspace: p.workspace } : {}),
      ...(p.inputs_within !== undefined ? { inputsWithin: p.inputs_within } : {}),
      ...(p.inputs_as !== undefined ? { inputsReader: sessionReads(ctx, p.inputs_as) } : {}),
      ...submittedByOf(p),
    });
  },
  "goal.status": (p, { rt }) => rt.goals.status(p.goal_id),
  "goal.wait": (p, ctx) =>
    whileClientStays(ctx, "the client that waited disconnected", (signal) =>
      ctx.rt.goals.wait(p.goal_id, p.timeout_ms, signal),
    ),
  "goal.list": (p, { rt }) => ({
    goals: rt.goals.list({ ...(p.state ? { state: p.state } : {}), ...(p.limit ? { limit: p.limit } : {}) }),
  }),
  "goal.cancel": (p, { rt }) => rt.goals.cancel(p.goal_id),

  "agent.spawn": (p, ctx) => {
    refuseWhileClosing(ctx);
    if (p.manifest_path !== undefined) {
      const loaded = loadManifestFromDirs(p.manifest_path, ctx.config.daemon.manifestDirs);
      enforceCeiling(ctx.ceiling, loaded);
      return ctx.rt.spawnAgent(manifestAsValue(loaded), `agent.spawn ${loaded.source}`);
    }
    return ctx.rt.spawnAgent(admitManifest(p.manifest, "agent.spawn manifest", ctx.ceiling));
  },
  "agent.list": (p, { rt }) => ({
    agents: rt.listAgents({
      ...(p.goal_id ? { goalId: p.goal_id } : {}),
      ...(p.include_stopped ? { includeStopped: true } : {}),
    }),
  }),
  "agent.status": (p, { rt }) => rt.agentStatus(p.agent_id),
  "agent.stop": (p, { rt }) => rt.stopAgent(p.agent_id, "stopped over the socket (agent.stop)"),
  "agent.run": (p, ctx) => {
    refuseWhileClosing(ctx);
    return ctx.rt.runAgent(p.agent_id, p.message);
  },
  "agent.spawn_and_run": (p, ctx) => {
    refuseWhileClosing(ctx);
    return ctx.rt.spawnAndRun(
      admitManifest(p.manifest, "agent.spawn_and_run manifest", ctx.ceiling),
      p.message,
    );
  },

  "tool.list": (_p, { rt }) => ({ tools: rt.listTools() }),
  "tool.invoke": async (p, ctx) => {
    refuseWhileClosing(ctx);
    const r = await asCallRequest(ctx, (requestId) =>
      whileClientStays(ctx, "the client that made the call disconnected", (signal) =>
        invokeToolWithEvents(ctx.rt, p.agent_id, p.tool, p.input, signal, requestId),
      ),
    );
    return {
      output: r.output,
      is_error: r.isError === true,
      ...(r.data !== undefined ? { data: r.data } : {}),
    };
  },

  "approval.list": (p, { rt }) => ({
    approvals: rt.approvals
      .list({
        status: p.status ?? "pending",
        ...(p.limit !== undefined ? { limit: p.limit } : {}),
        ...(p.offset !== undefined ? { offset: p.offset } : {}),
      })
      .map((a) => ({ ...a, lineage: rt.registry.lineage(a.agent_id) })),
  }),
  "approval.respond": (p, { rt, decidedBy }) => rt.approvals.respond(p.id, p.decision, decidedBy),
  "approval.grants": (p, { rt }) => ({ grants: rt.approvals.grants(p.all === true) }),
  "approval.revoke": (p, { rt, decidedBy }) => rt.approvals.revoke(p.grant_id, decidedBy),
  "mcp.list": async (p, { rt }) => ({ servers: await rt.mcp.status(p.server, p.send_headers ?? false) }),
  "mcp.approve": (p, { rt, decidedBy }) => rt.mcp.approve(p.server, p.expect, decidedBy),

  "audit.verify": (p, { rt }) => {
    const r = rt.audit.verify(p.anchor === undefined ? {} : { anchor: parseAnchor(p.anchor) });
    return {
      ok: r.ok,
      entries: r.entries,
      ...(r.first_bad_seq !== undefined ? { first_bad_seq: r.first_bad_seq } : {}),
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
      ...(r.head_seq !== undefined ? { head_seq: r.head_seq } : {}),
    };
  },
  "audit.query": (p, { rt }) => ({ entries: rt.audit.query(p) }),

  "events.subscribe": (p, ctx) => subscribeLocal(ctx, p.goal_id),
  "cluster.status": () => ({ enabled: false, nodes: [] }),
  "cluster.audit_verify": () => {
    throw new AidoError(
      ErrorCode.usage,
      "this daemon is not in a cluster (set cluster.redis_url in config.yaml or AIDO_REDIS_URL)",
      {},
    );
  },

  // Who the request speaks for is the daemon's to say (principal.ts): an MCP session's
  // connection is that session whatever `by` it sends.
  "intent.set": (p, { rt, conn }) => rt.intents.set({ ...p, session: sessionOf(conn) }),
  "intent.step": (p, { rt }) => rt.intents.step(p),
  "intent.status": (p, { rt }) =>
    p.intent_id !== undefined
      ? rt.intents.statusOf(p.intent_id, p.history)
      : rt.intents.status({ workspace: p.workspace as string, history: p.history }),
  "intent.clear": (p, { rt, conn }) => rt.intents.clear({ ...p, session: sessionOf(conn) }),
  "intent.check": async (p, ctx) => {
    refuseWhileClosing(ctx);
    const { intent, result } = await asCallRequest(ctx, (requestId) =>
      whileClientStays(ctx, "the client that asked for the check disconnected", (signal) =>
        checkIntent(ctx.rt, p, signal, requestId),
      ),
    );
    return { intent_id: intent.id, ...result };
  },
  "plan.simulate": (p, ctx) => {
    refuseWhileClosing(ctx);
    return asCallRequest(ctx, () =>
      whileClientStays(ctx, "the client that asked for the simulation disconnected", (signal) =>
        ctx.rt.plans.simulate(p.agent_id, p.steps, { ...(p.shadow ? { shadow: true } : {}), signal }),
      ),
    );
  },
  "plan.create": (p, ctx) => {
    refuseWhileClosing(ctx);
    return ctx.rt.plans.create(p.agent_id, p.title, p.steps);
  },
  "plan.execute": (p, ctx) => {
    refuseWhileClosing(ctx);
    return asCallRequest(ctx, (requestId) =>
      whileClientStays(ctx, "the client that executed the plan disconnected", (signal) =>
        ctx.rt.plans.execute(
          p.plan_id,
          {
            ...(p.agent_id ? { agentId: p.agent_id } : {}),
            ...(p.on_failure ? { onFailure: p.on_failure } : {}),
            signal,
          },
          (agentId, tool, input, s, beforeRun) =>
            invokeToolWithEvents(ctx.rt, agentId, tool, input, s, requestId, beforeRun),
        ),
      ),
    );
  },
  "plan.list": (p, { rt }) => ({
    plans: rt.plans.list(p.agent_id).filter((plan) => p.goal_id === undefined || plan.goal_id === p.goal_id),
  }),
  "session.open": (p, ctx) => {
    refuseWhileClosing(ctx);
    let manifest: LoadedManifest;
    try {
      manifest = sessionManifest(p, ctx);
    } catch (e) {
      // A manifest that does not parse or passes the ceiling: refused before any agent exists.
      ctx.rt.audit.record("session.refused", {
        reason: errorMessage(e),
        ...(p.workspace !== undefined ? { workspace: p.workspace } : {}),
      });
      throw e;
    }
    const info = ctx.rt.sessions.open({
      manifest,
      ...(p.workspace !== undefined ? { workspace: p.workspace } : {}),
      ...(p.client !== undefined ? { client: p.client } : {}),
    });
    bindSession(ctx.conn, info.session_id);
    // The MCP server that opened it died or left: the session ends with its connection.
    ctx.conn.onClose(() => {
      if (ctx.rt.sessions.ofAgent(info.agent_id)) {
        ctx.rt.sessions.close(info.session_id, "the connection that opened the session closed");
      }
    });
    // The daemon's line limit: the client refuses a longer line itself, rather than have the
    // daemon answer it with an error naming no request (which fails every call in flight).
    return { ...info, max_line_bytes: ctx.config.daemon.maxLineBytes };
  },
  "session.close": (p, { rt }) => rt.sessions.close(p.session_id, "closed over the socket (session.close)"),
  "session.refused": (p, { rt }) => rt.sessions.refused(p.session_id, p.tool, p.reason),
  "ui.open": (p, { ui }) => ui.open(p.rotate === true),
  "snapshot.list": async (p, { rt }) => ({ snapshots: await rt.snapshots.list(p.goal_id) }),
  "snapshot.restore": async (p, ctx) => {
    refuseWhileClosing(ctx);
    const { rt } = ctx;
    await rt.snapshots.requireSnapshot(p.goal_id, p.snapshot_id);
    const root = rt.snapshots.liveRoot(p.goal_id);
    const input = { id: p.snapshot_id };
    const { agent_id, result } = await whileClientStays(
      ctx,
      "the client that asked for the restore disconnected",
      async (signal) =>
        root !== undefined
          ? {
              agent_id: root,
              result: await invokeToolWithEvents(rt, root, "snapshot_restore", input, signal),
            }
          : rt.snapshots.restoreAsOperator(p.goal_id, p.snapshot_id, ctx.decidedBy, signal),
    );
    const data = result.data as { files_restored: number; files_failed: unknown[] };
    return {
      goal_id: p.goal_id,
      snapshot_id: p.snapshot_id,
      agent_id,
      as: root !== undefined ? "root_agent" : "operator",
      files_restored: data.files_restored,
      files_failed: data.files_failed,
    };
  },
};

/**
 * A session's manifest: the client's (YAML text or object), one from the daemon's
 * manifest directories, or the shipped manifests/mcp-session.yaml; held to the ceiling.
 */
function sessionManifest(p: ParamsOf<"session.open">, ctx: MethodContext): LoadedManifest {
  if (p.manifest !== undefined) {
    return parseManifestValue(
      admitManifest(p.manifest, "session.open manifest", ctx.ceiling),
      "session.open manifest",
    );
  }
  const loaded =
    p.manifest_path !== undefined
      ? loadManifestFromDirs(p.manifest_path, ctx.config.daemon.manifestDirs)
      : loadManifestFile(join(ctx.config.packageRoot, "manifests", "mcp-session.yaml"));
  enforceCeiling(ctx.ceiling, loaded);
  return loaded;
}
