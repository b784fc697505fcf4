// client/client.ts — the small JSON-RPC client the CLI (and tests, and scripts) use to
// talk to agentd over its Unix socket. One connection carries many concurrent calls,
// matched to their responses by id; every call has a timeout. A subscription gets a
// connection of its own, so leaving it is just closing that connection (the daemon
// unsubscribes on close) and a stream never interleaves with call responses.
// When nothing listens on the socket the error says how to start the daemon.
// A request line longer than the daemon reads (daemon.max_line_bytes) is refused here,
// naming both sizes, before anything is sent; the daemon's answer to such a line names no
// request (id null), so should one arrive anyway (a limit configured lower than this client
// knows) it fails every request in flight on the connection, rather than leave them
// waiting for an answer that never comes.

import { createConnection, type Socket } from "node:net";
import { AidoError, ErrorCode } from "../errors.js";
import type { MethodName, MethodParams, MethodResult, RuntimeEventParams } from "./types.js";

/** An error the daemon answered with: the JSON-RPC number, and Aido's string code when it sent one. */
export class AidoRpcError extends AidoError {
  readonly rpcCode: number;
  constructor(rpcCode: number, message: string, data?: { code?: string; details?: Record<string, unknown> }) {
    const code = (data?.code ?? ErrorCode.internal) as ErrorCode;
    super(code, message, { ...(data?.details ?? {}), rpc_code: rpcCode });
    this.name = "AidoRpcError";
    this.rpcCode = rpcCode;
  }
}

export interface ConnectOptions {
  /**
   * The daemon's daemon.max_line_bytes: a request line over it is refused before it is sent.
   * Default: the default of the setting. A function is asked only for a line over
   * SMALL_LINE_BYTES (the CLI loads its configuration only then).
   */
  maxLineBytes?: number | (() => Promise<number>);
}

/** daemon.max_line_bytes by default (config-schema.ts DEFAULTS; not imported: the CLI loads no config parsers to connect). */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/** A line this long or shorter is sent without asking a lazy limit (it is below any sensible one). */
export const SMALL_LINE_BYTES = 64 * 1024;

export interface CallOptions {
  /** Give up after this long (default 30 s). goal.wait callers pass more than their timeout_ms. */
  timeoutMs?: number;
  /**
   * The id the daemon gave the call (its `request.started` notification, sent before it asks
   * anything): every approval request the call makes names it (request_id).
   */
  onStarted?: (requestId: string) => void;
}

export interface Subscription {
  /** Resolves when the stream ends: the goal ended, the daemon went away, or close() was called. */
  readonly done: Promise<void>;
  close(): void;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  onStarted?: (requestId: string) => void;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function daemonNotRunning(socketPath: string, cause?: unknown): AidoError {
  return new AidoError(
    ErrorCode.notFound,
    `the Aido daemon is not running (no socket at ${socketPath}): start it with \`aido daemon start\``,
    { socket: socketPath },
    cause === undefined ? undefined : { cause },
  );
}

function open(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    const onError = (e: NodeJS.ErrnoException) => {
      sock.destroy();
      if (e.code === "ENOENT" || e.code === "ECONNREFUSED" || e.code === "ENOTSOCK") {
        reject(daemonNotRunning(socketPath, e));
      } else {
        reject(
          new AidoError(
            ErrorCode.internal,
            `cannot connect to the Aido daemon at ${socketPath}: ${e.message}`,
          ),
        );
      }
    };
    sock.once("error", onError);
    sock.once("connect", () => {
      sock.off("error", onError);
      resolve(sock);
    });
  });
}

export class AidoClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffer = "";
  private closedError: Error | undefined;
  private readonly eventHandlers = new Set<(params: RuntimeEventParams) => void>();
  private readonly endHandlers = new Set<() => void>();
  /** Why the daemon refused this connection (an error naming no request, then the close): over daemon.max_connections. */
  private refusedWith: AidoRpcError | undefined;

  private constructor(
    readonly socketPath: string,
    private readonly sock: Socket,
    private maxLineBytes: number | (() => Promise<number>),
  ) {
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => this.onData(chunk));
    sock.on("error", (e) =>
      this.fail(new AidoError(ErrorCode.internal, `connection to the Aido daemon failed: ${e.message}`)),
    );
    sock.on("close", () =>
      this.fail(
        this.refusedWith ?? new AidoError(ErrorCode.internal, "the Aido daemon closed the connection"),
      ),
    );
  }

  static async connect(socketPath: string, opts: ConnectOptions = {}): Promise<AidoClient> {
    return new AidoClient(socketPath, await open(socketPath), opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  }

  /** Call one method and wait for its result (typed for the daemon's methods). */
  call<M extends MethodName>(
    method: M,
    params?: MethodParams<M>,
    opts?: CallOptions,
  ): Promise<MethodResult<M>>;
  call(method: string, params?: Record<string, unknown>, opts?: CallOptions): Promise<unknown>;
  call(method: string, params: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const line = JSON.stringify({ jsonrpc: "2.0", id, method, params });
    const bytes = Buffer.byteLength(line);
    if (typeof this.maxLineBytes === "number" || bytes <= SMALL_LINE_BYTES) {
      const limit = typeof this.maxLineBytes === "number" ? this.maxLineBytes : Number.POSITIVE_INFINITY;
      return bytes > limit
        ? Promise.reject(lineTooLong(method, bytes, limit))
        : this.send(id, method, line, opts);
    }
    return this.maxLineBytes().then((limit) =>
      bytes > limit ? Promise.reject(lineTooLong(method, bytes, limit)) : this.send(id, method, line, opts),
    );
  }

  private send(id: number, method: string, line: string, opts: CallOptions): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new AidoError(
            ErrorCode.cancelled,
            `${method}: no answer from the Aido daemon within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, {
        resolve,
        reject,
        timer,
        ...(opts.onStarted ? { onStarted: opts.onStarted } : {}),
      });
      this.sock.write(`${line}\n`);
    });
  }

  /**
   * The daemon said its line limit (session.open's max_line_bytes): a lower one than this
   * client knew replaces it, so a longer line is refused here, naming it, never sent.
   */
  lowerLineLimit(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes <= 0) return;
    if (typeof this.maxLineBytes === "number" && this.maxLineBytes <= bytes) return;
    this.maxLineBytes = bytes;
  }

  /** Listen to the `event` notifications this connection receives. */
  onEvent(handler: (params: RuntimeEventParams) => void): () => void {
    this.eventHandlers.add(handler);
    return () => this.eventHandlers.delete(handler);
  }

  /**
   * Stream the events of one goal (until it ends) or of all goals (until close()), on a
   * connection of its own.
   */
  static async subscribe(
    socketPath: string,
    goalId: string | undefined,
    onEvent: (params: RuntimeEventParams) => void,
  ): Promise<Subscription> {
    const client = await AidoClient.connect(socketPath);
    const done = new Promise<void>((resolve) => client.endHandlers.add(resolve));
    client.onEvent((ev) => {
      onEvent(ev);
      if (goalId !== undefined && ev.type === "goal.finished" && ev.goal_id === goalId) client.close();
    });
    try {
      await client.call("events.subscribe", goalId === undefined ? {} : { goal_id: goalId });
    } catch (e) {
      client.close();
      throw e;
    }
    return { done, close: () => client.close() };
  }

  close(): void {
    this.fail(new AidoError(ErrorCode.cancelled, "the client closed the connection"));
    this.sock.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl = this.buffer.indexOf("\n");
    while (nl !== -1) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() !== "") this.onLine(line);
      nl = this.buffer.indexOf("\n");
    }
  }

  private onLine(line: string): void {
    let msg: {
      id?: unknown;
      method?: unknown;
      params?: unknown;
      result?: unknown;
      error?: { code: number; message: string; data?: { code?: string; details?: Record<string, unknown> } };
    };
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg.method === "event" && msg.id === undefined) {
      for (const h of this.eventHandlers) h(msg.params as RuntimeEventParams);
      return;
    }
    if (msg.method === "request.started" && msg.id === undefined) {
      const p = msg.params as { id?: unknown; request_id?: unknown } | undefined;
      const started = typeof p?.id === "number" ? this.pending.get(p.id) : undefined;
      if (started?.onStarted && typeof p?.request_id === "string") started.onStarted(p.request_id);
      return;
    }
    if (msg.id === null && msg.error) {
      // The daemon could not tell which request it refuses (a line over its max_line_bytes):
      // every request in flight here may be the one, and none of them will be answered.
      const e = new AidoRpcError(
        msg.error.code,
        `the Aido daemon refused a request on this connection without naming it: ${msg.error.message}`,
        msg.error.data,
      );
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(e);
      }
      // Sent before closing a connection the daemon refuses (limit_exceeded): what a later call is told.
      if (msg.error.data?.code === ErrorCode.limitExceeded)
        this.refusedWith = new AidoRpcError(
          msg.error.code,
          `the Aido daemon closed the connection: ${msg.error.message}`,
          msg.error.data,
        );
      return;
    }
    const p = typeof msg.id === "number" ? this.pending.get(msg.id) : undefined;
    if (!p) return;
    this.pending.delete(msg.id as number);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new AidoRpcError(msg.error.code, msg.error.message, msg.error.data));
    else p.resolve(msg.result);
  }

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(id);
    }
    for (const h of this.endHandlers) h();
    this.endHandlers.clear();
  }
}

function lineTooLong(method: string, bytes: number, limit: number): AidoError {
  return new AidoError(
    ErrorCode.invalidInput,
    `${method}: the request is ${bytes} bytes, more than the Aido daemon reads in one line (daemon.max_line_bytes ${limit}); nothing was sent`,
    { method, bytes, max_line_bytes: limit },
  );
}
