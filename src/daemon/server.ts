// daemon/server.ts — agentd: the Runtime behind a Unix socket. startDaemon opens the
// Runtime (which recovers what a previous process left: running goals are failed with
// the reason, queued goals start), claims the socket (socket.ts), writes the pid file
// and serves JSON-RPC until it is closed. Every runtime event is also written as one JSON
// line on stdout, so `docker logs` shows the swarm at work.
//
// Shutdown policy (SIGTERM, SIGINT, or close()):
//   1. stop accepting connections and refuse new work on open ones;
//   2. close the Runtime: goals still running are stopped through the one removal path
//      and end "failed" with the reason recorded; goals still queued stay queued and run
//      at the next start; persistent agents stay paused for the next start. A cluster
//      node first stops taking jobs and ends its MCP sessions while still a member, so
//      their goals queued in Redis or running on other nodes are cancelled (ClusterNode
//      endSessions), then leaves the cluster;
//   3. close client connections, remove the socket file and the pid file.
// A second signal during shutdown exits at once (status 1).

import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import type { Writable } from "node:stream";
import { ClusterNode } from "../cluster/node.js";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { Runtime, type RuntimeOptions } from "../kernel/runtime.js";
import { ensurePrivateFile } from "../security/private-home.js";
import { type SocketCeiling, socketCeiling } from "./ceiling.js";
import { clusterHandlers } from "./cluster-methods.js";
import { Connection } from "./connection.js";
import { RpcCode, RpcError } from "./errors.js";
import { toWireEvent } from "./events.js";
import {
  handlers,
  type MethodContext,
  type MethodRunner,
  type RequestClient,
  type UiControl,
} from "./methods.js";
import type { RpcRequest } from "./protocol.js";
import { ConnectionRefusals } from "./refuse.js";
import { isMethodName, METHOD_NAMES, parseParams } from "./schemas.js";
import { listenPrivate } from "./socket.js";
import { sweepUploads } from "./ui/files.js";
import { UiServer } from "./ui/server.js";

/** The reason the sessions a leaving cluster node ends are given (their goals' error names it). */
const DAEMON_SHUT_DOWN = "the daemon shut down";

export interface DaemonOptions {
  /** Attached to the terminal (or supervisor). false: see detach.ts. Here it decides signal handling. */
  foreground?: boolean;
  /** Handle SIGTERM/SIGINT (default: when foreground). In-process tests leave it off. */
  handleSignals?: boolean;
  /** Where the event log goes (default process.stdout); null: nowhere. */
  eventLog?: Writable | null;
  /** Diagnostics (default: stderr). */
  log?: (message: string) => void;
  /** Passed to Runtime.open (tests pass a backend or tool set). */
  runtime?: RuntimeOptions;
}

export interface Daemon {
  readonly runtime: Runtime;
  readonly socketPath: string;
  readonly pid: number;
  /** Shut down as the policy above says; resolves when the socket and pid file are gone. Idempotent. */
  close(): Promise<void>;
  /** Resolves once the daemon has shut down (by close() or a signal). */
  readonly closed: Promise<void>;
  /** Open client connections (tests check nothing leaks). */
  readonly connectionCount: number;
}

export async function startDaemon(config: Config, opts: DaemonOptions = {}): Promise<Daemon> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`agentd: ${m}\n`));
  const eventLog = opts.eventLog === undefined ? process.stdout : opts.eventLog;
  const connections = new Set<Connection>();
  let closing = false;
  // The socket is claimed first: binding it is the lock that keeps a second daemon from
  // opening the Runtime (whose recovery would fail the live daemon's running goals).
  // Requests that arrive before the Runtime is open wait for it.
  let markReady: (rt: Runtime) => void = () => {};
  const ready = new Promise<Runtime>((r) => {
    markReady = r;
  });
  let ceiling: SocketCeiling | undefined;
  let cluster: ClusterNode | undefined;

  let ui: Promise<UiServer> | undefined;
  const run: MethodRunner = async (method, raw, client, afterResponse, decidedBy, rpcId) => {
    const params = parseParams(method, raw);
    const rt = await ready;
    const ctx: MethodContext = {
      rt,
      config,
      ceiling: ceiling as SocketCeiling,
      conn: client,
      decidedBy,
      ui: uiControl,
      afterResponse,
      closing: () => closing,
      ...(rpcId !== undefined ? { rpcId } : {}),
    };
    const clustered = cluster ? clusterHandlers[method] : undefined;
    if (cluster && clustered) {
      return (clustered as (p: unknown, ctx: MethodContext, node: ClusterNode) => unknown)(
        params,
        ctx,
        cluster,
      );
    }
    const handler = handlers[method] as (p: unknown, ctx: MethodContext) => unknown;
    return handler(params, ctx);
  };
  const startUi = (port: number): Promise<UiServer> => {
    ui ??= ready.then((rt) => UiServer.start({ config, rt, run, log }, port));
    ui.catch(() => {
      ui = undefined; // a port in use: the next ui.open tries again
    });
    return ui;
  };
  const uiControl: UiControl = {
    async open(rotate) {
      if (closing) throw new AidoError(ErrorCode.cancelled, "the Aido daemon is shutting down", {});
      const server = await startUi(config.ui.port);
      if (rotate) server.rotate();
      return { url: server.signInUrl(), port: server.port, token_file: server.tokenFile };
    },
  };

  const dispatch = async (req: RpcRequest, conn: RequestClient, afterResponse: (fn: () => void) => void) => {
    if (!isMethodName(req.method)) {
      throw new RpcError(RpcCode.methodNotFound, `unknown method "${req.method}"`, {
        code: "not_found",
        details: { methods: METHOD_NAMES },
      });
    }
    return run(req.method, req.params, conn, afterResponse, "socket client", req.id);
  };

  const refusals = new ConnectionRefusals(config.daemon.maxConnections, log);
  const server = await listenPrivate(config.socketPath, (sock) => {
    if (closing) {
      sock.destroy();
      return;
    }
    // Each connection holds a descriptor: a local client opening thousands would exhaust
    // the daemon's. One over daemon.max_connections gets one error line and is closed.
    if (connections.size >= config.daemon.maxConnections) {
      refusals.refuse(sock, connections.size);
      return;
    }
    const conn = new Connection(sock, {
      maxLineBytes: config.daemon.maxLineBytes,
      dispatch,
      log,
      onClose: (c) => connections.delete(c),
    });
    connections.add(conn);
  });
  let rt: Runtime;
  try {
    rt = await Runtime.open(config, {
      log,
      ...opts.runtime,
      // From the first event: goals a previous process left end (or start and end) while
      // the runtime opens, and their events belong in the log too.
      ...(eventLog ? { onEvent: (ev) => void eventLog.write(`${JSON.stringify(toWireEvent(ev))}\n`) } : {}),
      // Cluster mode: the goal is marked in Redis before its first model call (cluster/node.ts).
      ...(config.cluster
        ? {
            beforeFirstModelCall: (goalId: string) =>
              cluster?.beforeFirstModelCall(goalId) ?? Promise.resolve(),
          }
        : {}),
      // Cluster mode: before each model call, a cluster-wide slot (inference.cluster_max_concurrent)
      // and, after a pause past the node's lease, the node's look at which goals are still its own.
      ...(config.cluster
        ? {
            inferenceSlot: (provider: string, signal?: AbortSignal) =>
              cluster?.inferenceSlot(provider, signal) ?? Promise.resolve(() => {}),
            // And before each tool call runs: held while the node is not sure of the goal
            // (fenced: it could not renew its lease; or paused past it).
            beforeToolCall: (goalId: string, signal?: AbortSignal) =>
              cluster?.beforeToolCall(goalId, signal) ?? Promise.resolve(),
          }
        : {}),
    });
  } catch (e) {
    closing = true;
    for (const c of [...connections]) c.close();
    refusals.close();
    await new Promise<void>((r) => server.close(() => r()));
    removeIfOurs(config.pidPath, config.socketPath);
    throw e;
  }
  if (config.cluster) cluster = await ClusterNode.start(config, rt, log);
  ceiling = socketCeiling(config, log);
  markReady(rt);
  // Dashboard uploads a previous process staged for goals that are no longer waiting for them.
  sweepUploads(config.home, rt);
  if (config.ui.port !== 0) {
    try {
      await startUi(config.ui.port);
    } catch (e) {
      log(`the dashboard could not listen on 127.0.0.1:${config.ui.port} (ui.port): ${errorMessage(e)}`);
    }
  }
  ensurePrivateFile(config.pidPath);
  writeFileSync(config.pidPath, `${process.pid}\n`);

  let resolveClosed: () => void = () => {};
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  let closingPromise: Promise<void> | undefined;
  const signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"];
  const onSignal = (sig: NodeJS.Signals) => {
    if (closingPromise) {
      log(`${sig} again during shutdown: exiting now`);
      process.exit(1);
    }
    log(`${sig}: shutting down`);
    void close();
  };

  const close = (): Promise<void> => {
    closingPromise ??= (async () => {
      closing = true;
      const stopped = new Promise<void>((r) => server.close(() => r()));
      // The dashboard first: its event streams end, its requests stop.
      if (ui) await ui.then((u) => u.close()).catch(() => {});
      if (cluster) {
        // A node takes no more goals; its MCP sessions end while it is still a member (their
        // goals cancelled wherever they are queued or run); those it runs end now (as the
        // runtime would end them), and their ends reach Redis before the runtime and its
        // database close.
        await cluster.stopTaking();
        await cluster.endSessions(DAEMON_SHUT_DOWN);
        await rt.goals.close();
        await cluster.stop();
      }
      try {
        await rt.close();
      } catch (e) {
        log(`closing the runtime failed: ${errorMessage(e)}`);
      }
      // Let answers to requests the runtime just ended (goal.wait, agent.run) go out.
      await Promise.race([
        Promise.allSettled([...connections].flatMap((c) => [...c.inFlight])),
        new Promise((r) => setTimeout(r, 1000)),
      ]);
      for (const c of [...connections]) c.close();
      refusals.close();
      await stopped;
      removeIfOurs(config.pidPath, config.socketPath);
      if (handleSignals) for (const s of signals) process.off(s, onSignal);
      resolveClosed();
    })();
    return closingPromise;
  };

  const handleSignals = opts.handleSignals ?? opts.foreground ?? false;
  if (handleSignals) for (const s of signals) process.on(s, onSignal);
  log(`listening on ${config.socketPath} (pid ${process.pid})`);

  return {
    runtime: rt,
    socketPath: config.socketPath,
    pid: process.pid,
    close,
    closed,
    get connectionCount() {
      return connections.size;
    },
  };
}

/** Remove the pid file (only if it still names us) and the socket file. */
function removeIfOurs(pidPath: string, socketPath: string): void {
  try {
    if (readFileSync(pidPath, "utf8").trim() === String(process.pid)) unlinkSync(pidPath);
  } catch {
    // already gone
  }
  try {
    unlinkSync(socketPath);
  } catch {
    // server.close() may have removed it
  }
}
