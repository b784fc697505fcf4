// tools/mcp/connection.ts — one live MCP client session with an external server: connect
// (Streamable HTTP with headers from the daemon's environment, or stdio in the server's own
// container, sandbox/mcp-container.ts), initialize, tools/list (every page; the tools over
// the size caps, their own inputSchema's or the server's in all, are kept out of it,
// definitions.ts admitTools, and reported to the owner once per definition), a fresh list when the server sends
// notifications/tools/list_changed (coalesced: one re-list in flight and at most one more
// queued, however many notifications arrive, so a server flooding them costs one listing
// at a time, not one per notification; and paced: a re-list starts at most once per
// RELIST_INTERVAL_MS, so a server sending one notification after each listing cannot keep
// the daemon listing back to back), tool calls, close. Every request is capped by the
// server's timeout_ms, and every answer of a remote server by MAX_MESSAGE_BYTES. An end
// nobody asked for (the server exited, flooded, broke the protocol) is reported to the
// owner with the transport's reason (`ended`), and the calls in flight fail with that
// reason rather than a bare "Connection closed". A call that times out is followed by a
// ping: a server that answers neither has stopped answering, and its connection is closed
// and reported as ended ("timed out"), so the next call does not wait on it again (a slow
// tool of a live server keeps its connection). Every request of a stdio server is timed in the
// server's own time (request-time.ts): sent once its container is not frozen (its node's fence),
// its timeout (and the ping's) not running while it is.
// A call cancelled while the server runs it (its caller's signal: the agent stopped, the
// goal cancelled; its timeout; the connection closing under it) is cancelled at the server
// too: the SDK sends notifications/cancelled, and close() lets those reach the server
// (bounded) before the transport goes, so a remote server stops work nobody waits for.
// Header values are secrets: read from the environment variable the operator named at
// connect, sent, and never written anywhere. An error a library raises could quote a
// header, so every message leaving this module has the values cut out (`redact`), and so
// has every tool result. A stdio server's secrets are the proxy credentials in its
// environment (a server with network entries), in the spellings tools print by themselves:
// before, they were not cut out at all, and a server printing its environment, a proxy URL
// or curl -v's header (in a result, or in the stderr an end's reason quotes) showed them to
// the model and the audit.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type CallToolResult,
  McpError,
  ErrorCode as McpErrorCode,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { Config, McpServerConfig } from "../../config.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import type { McpServerContainer } from "../../sandbox/mcp-container.js";
import { MAX_MESSAGE_BYTES } from "../../sandbox/mcp-transport.js";
import { blankSecrets, MIN_SECRET_LENGTH } from "../../security/blank-secrets.js";
import { inert } from "../../security/terminal-text.js";
import { admitTools, definitionOf, type McpToolDefinition, type OversizedTool } from "./definitions.js";
import { timedRequest } from "./request-time.js";

/**
 * A remote server's header values, read from the daemon's environment; a variable that is
 * not set is a config_invalid error naming the header and the variable (never a request
 * without it).
 */
export function headerValues(
  server: Extract<McpServerConfig, { transport: "http" }>,
  headerValue: Config["mcp"]["headerValue"],
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [header, variable] of Object.entries(server.headers)) {
    const value = headerValue(variable);
    if (value === undefined || value === "") {
      throw new AidoError(
        ErrorCode.configInvalid,
        `MCP server ${server.name}: header ${header} is read from the environment variable ${variable}, which is not set in the daemon's environment`,
        { server: server.name, header, variable },
      );
    }
    headers[header] = value;
  }
  return headers;
}

/** What connecting needs besides the server's config. */
export interface ConnectDeps {
  headerValue: Config["mcp"]["headerValue"];
  /**
   * Start a stdio server's container (for a goal, or a probe's pseudo-goal); one waiting for
   * its frozen goal's thaw ends as `signal` aborts.
   */
  startStdio(
    server: Extract<McpServerConfig, { transport: "stdio" }>,
    signal?: AbortSignal,
  ): Promise<McpServerContainer>;
  /**
   * The connection ended without close() being called (the server exited, broke the
   * protocol, flooded): `reason` is the transport's explanation, redacted, inert, bounded;
   * `gone` settles once a stdio server's container is removed (a new one may take its name).
   */
  ended?(conn: McpConnection, reason: string, gone: Promise<void>): void;
  /**
   * A listing refused tools for the size of their inputSchema: those not reported before by
   * this connection (a server re-listing the same oversized definition is reported once).
   */
  oversized?(conn: McpConnection, refused: OversizedTool[]): void;
}

/** Longest reason kept for an ended connection (the transport's text quotes the server's stderr). */
const REASON_MAX = 1000;

/**
 * fetch for a remote server, each response's body cut off past MAX_MESSAGE_BYTES (the cap
 * the stdio transport puts on one message): the SDK reads a JSON answer whole, so a server
 * streaming gigabytes would otherwise fill the daemon's memory.
 */
async function boundedFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  if (!res.body) return res;
  let seen = 0;
  const body = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        seen += chunk.byteLength;
        if (seen > MAX_MESSAGE_BYTES)
          out.error(new Error(`it sent a response larger than ${MAX_MESSAGE_BYTES} bytes; it was cut off`));
        else out.enqueue(chunk);
      },
    }),
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** How long the ping after a timed-out call waits, at most (and never past the server's timeout). */
const PING_MAX_MS = 5000;

/** How long close() waits, at most, for the cancellations of calls in flight to be sent. */
const CANCEL_FLUSH_MS = 1000;

/** What a server is told when a call is cancelled: nothing of the caller's own reason. */
const CANCELLED_BY_CALLER = "the caller cancelled the call";
const CANCELLED_BY_CLOSE = "the client is closing the connection";

/** At most this many tools/list pages are read (a server cannot page forever). */
const MAX_PAGES = 20;
/** Oversized definitions a connection remembers having reported. */
const REPORTED_OVERSIZED_MAX = 10_000;
/** Least time between the starts of two re-lists that list_changed asked for. */
const RELIST_INTERVAL_MS = 1_000;

export class McpConnection {
  readonly server: McpServerConfig;
  private readonly client: Client;
  private readonly secrets: readonly string[];
  private readonly container: McpServerContainer | undefined;
  private live: Map<string, McpToolDefinition> = new Map();
  /** The tools of the last listing refused for their size (definitions.ts admitTools). */
  private tooLarge: Map<string, OversizedTool> = new Map();
  /** Which oversized definitions were reported (by name and hash). */
  private readonly reportedOversized = new Set<string>();
  private readonly onOversized: ConnectDeps["oversized"];
  private closed = false;
  /** The transport's last error: what an unexpected end is explained by. */
  private lastError: unknown;
  /** Why the connection ended on its own (set before the calls in flight are failed). */
  private endedBecause: string | undefined;
  /** An end nobody asked for: settles once its container is removed (close() waits for it). */
  private gone: Promise<void> = Promise.resolve();
  /** The calls in flight: close() cancels them. */
  private readonly inflight = new Set<AbortController>();
  /** notifications/cancelled being sent: close() waits for them (bounded). */
  private readonly cancelling = new Set<Promise<void>>();
  /** The re-list list_changed started, while it runs. */
  private relisting: Promise<void> | undefined;
  /** A list_changed came while a re-list ran: one more follows it (however many came). */
  private relistAgain = false;
  /** When the last re-list started (Date.now()). */
  private relistedAt = 0;

  private constructor(
    server: McpServerConfig,
    client: Client,
    secrets: readonly string[],
    container: McpServerContainer | undefined,
    onOversized: ConnectDeps["oversized"],
  ) {
    this.server = server;
    this.client = client;
    this.secrets = secrets;
    this.container = container;
    this.onOversized = onOversized;
  }

  /**
   * Connect, initialize and list the tools; an unreachable server is a sandbox_unavailable error.
   * `signal`: the open is no longer wanted (every call waiting for it cancelled): its waits for a
   * frozen goal's thaw (the start, the connect, the listing) end, and so does the open.
   */
  static async open(
    server: McpServerConfig,
    deps: ConnectDeps,
    signal?: AbortSignal,
  ): Promise<McpConnection> {
    if (server.transport === "stdio") {
      const container = await deps.startStdio(server, signal);
      // Its proxy credentials (a server with network entries): a server prints its environment,
      // a proxy URL in an error or curl -v's header as readily as any program.
      return McpConnection.start(
        server,
        container.transport,
        container.secrets ?? [],
        container,
        deps,
        signal,
      );
    }
    const headers = headerValues(server, deps.headerValue);
    const transport = new StreamableHTTPClientTransport(new URL(server.url), {
      requestInit: { headers, redirect: "error" },
      fetch: boundedFetch,
    });
    // A value of fewer than MIN_SECRET_LENGTH characters is a setting (a version "2"), not a
    // credential: listed, it would be cut wherever it stands alone ("API 2" would read
    // "API [redacted]"); before, errors lost it everywhere (an "HTTP 502" its 2).
    const secrets = Object.values(headers).filter((v) => v.length >= MIN_SECRET_LENGTH);
    return McpConnection.start(server, transport, secrets, undefined, deps, signal);
  }

  private static async start(
    server: McpServerConfig,
    transport: Transport,
    secrets: readonly string[],
    container: McpServerContainer | undefined,
    deps: ConnectDeps,
    signal: AbortSignal | undefined,
  ): Promise<McpConnection> {
    const client = new Client({ name: "aido", version: "1" });
    const conn = new McpConnection(server, client, secrets, container, deps.oversized);
    // The SDK sends a cancellation without handing back its promise: kept, so that close()
    // does not tear the transport down under it.
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
      const sent = send(message, options);
      if ("method" in message && message.method === "notifications/cancelled") {
        const settled = sent.catch(() => undefined);
        conn.cancelling.add(settled);
        void settled.then(() => conn.cancelling.delete(settled));
      }
      return sent;
    };
    // The transport explains an end through onerror, then closes; the client then fails the
    // calls in flight with a bare "Connection closed", after onclose: by then the reason is kept.
    client.onerror = (e) => {
      conn.lastError = e;
    };
    client.onclose = () => {
      if (conn.closed) return;
      conn.closed = true;
      const why = conn.lastError === undefined ? "the connection closed" : errorMessage(conn.lastError);
      conn.endedBecause = inert(conn.redact(why)).slice(0, REASON_MAX);
      const gone = conn.container ? conn.container.stop().catch(() => undefined) : Promise.resolve();
      conn.gone = gone;
      deps.ended?.(conn, conn.endedBecause, gone);
    };
    try {
      await timedRequest(container?.freezes, server.timeoutMs, signal, (o) => client.connect(transport, o));
      await conn.refresh(signal);
    } catch (e) {
      await conn.close();
      throw conn.failure("cannot be reached", e);
    }
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      conn.relist();
    });
    return conn;
  }

  /** The tools the server offers now, by name (as of the last tools/list), but for the oversized. */
  get tools(): ReadonlyMap<string, McpToolDefinition> {
    return this.live;
  }

  /** The tools of the last tools/list refused for the size of their inputSchema, by name. */
  get oversized(): ReadonlyMap<string, OversizedTool> {
    return this.tooLarge;
  }

  /** tools/list again, every page; tools over the schema size caps are kept apart. */
  async refresh(signal?: AbortSignal): Promise<void> {
    const next: McpToolDefinition[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const params = cursor === undefined ? {} : { cursor };
      const r = await this.request(signal, (o) => this.client.listTools(params, o));
      for (const t of r.tools) next.push(definitionOf(t));
      cursor = r.nextCursor;
      if (cursor === undefined) break;
    }
    const { admitted, oversized } = admitTools(next);
    this.live = admitted;
    this.tooLarge = oversized;
    const fresh = [...oversized.values()].filter(
      (t) => !this.reportedOversized.has(`${t.name}\u0000${t.hash}`),
    );
    // Bounded: a server making up new oversized definitions at each listing would grow it
    // without end; past the bound it starts over (those definitions may be reported again).
    if (this.reportedOversized.size + fresh.length > REPORTED_OVERSIZED_MAX) this.reportedOversized.clear();
    for (const t of fresh) this.reportedOversized.add(`${t.name}\u0000${t.hash}`);
    if (fresh.length > 0) this.onOversized?.(this, fresh);
  }

  /**
   * The server said its tools changed: list again, coalesced and paced. A re-list already
   * running (or waiting) takes note and runs once more when it ends (what changed during it
   * is seen then), so whatever the server floods, one tools/list is in flight and at most
   * one waits; and a re-list waits until RELIST_INTERVAL_MS after the last one started, so
   * a steady stream of notifications costs one listing a second, not one per notification.
   * Waiting loses nothing the gate relies on: the listing is the server's own word, which
   * it could change without telling. A list that cannot be read leaves the last one: the
   * gate compares each call's definition with its pin anyway.
   */
  private relist(): void {
    if (this.relisting) {
      this.relistAgain = true;
      return;
    }
    this.relisting = (async () => {
      do {
        const wait = this.relistedAt + RELIST_INTERVAL_MS - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
        if (this.closed) return;
        this.relistAgain = false;
        this.relistedAt = Date.now();
        await this.refresh().catch(() => undefined);
      } while (this.relistAgain && !this.closed);
    })().finally(() => {
      this.relisting = undefined;
    });
  }

  /** tools/call; a transport or protocol failure is a tool_failed error (its text redacted). */
  async call(tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    // Cancelled with the caller's signal, or by close(); the server is told only that it was.
    const cancel = new AbortController();
    const relay = () => cancel.abort(CANCELLED_BY_CALLER);
    if (signal?.aborted) relay();
    else signal?.addEventListener("abort", relay, { once: true });
    this.inflight.add(cancel);
    try {
      const r = await this.request(cancel.signal, (o) =>
        this.client.callTool({ name: tool, arguments: args }, undefined, o),
      );
      return this.redactedIn(r) as CallToolResult;
    } catch (e) {
      if (signal?.aborted)
        throw this.failure(`did not finish the call of ${tool}`, signal.reason, ErrorCode.toolFailed);
      if (this.endedBecause === undefined && isTimeout(e)) await this.probe(tool, cancel.signal);
      if (signal?.aborted)
        throw this.failure(`did not finish the call of ${tool}`, signal.reason, ErrorCode.toolFailed);
      if (this.endedBecause !== undefined)
        throw this.failure(
          `failed the call of ${tool}: the connection ended`,
          this.endedBecause,
          ErrorCode.toolFailed,
        );
      throw this.failure(`failed the call of ${tool}`, e, ErrorCode.toolFailed);
    } finally {
      signal?.removeEventListener("abort", relay);
      this.inflight.delete(cancel);
    }
  }

  /**
   * A call of `tool` timed out: is the server still there? A ping it does not answer either
   * ends the connection as an end of its own (the owner drops it and audits why). The call's
   * caller (or close()) can still end it (`signal`): the ping waits for a frozen server,
   * however long its node's fence holds; a ping so cut short proves nothing (the connection
   * is kept). Before, a cancel did not reach it, and the call waited for the goal's thaw.
   */
  private async probe(tool: string, signal: AbortSignal | undefined): Promise<void> {
    const timeout = Math.min(this.server.timeoutMs, PING_MAX_MS);
    try {
      await timedRequest(this.container?.freezes, timeout, signal, (o) => this.client.ping(o));
    } catch (e) {
      if (this.closed || signal?.aborted) return; // ended meanwhile, or no longer wanted
      this.lastError = new Error(
        `timed out: it answered neither a call of ${tool} within ${this.server.timeoutMs} ms nor a ping within ${timeout} ms after (${errorMessage(e)})`,
      );
      // Fires client.onclose: reported through `ended` with lastError as the reason.
      await this.client.close().catch(() => undefined);
    }
  }

  /** A request capped by the server's timeout_ms, in the server's time (request-time.ts). */
  private request<T>(signal: AbortSignal | undefined, send: (o: RequestOptions) => Promise<T>): Promise<T> {
    return timedRequest(this.container?.freezes, this.server.timeoutMs, signal, send);
  }

  /** Close the session; a stdio server's container is removed with it. */
  async close(): Promise<void> {
    // Ended already (the SDK closes the transport when its connect fails): its container (and a
    // stdio server's network, tools/mcp/stdio-start.ts) being removed, close() settles once they
    // are. Before, it settled at once: an open that failed reported with them still there.
    if (this.closed) return this.gone;
    this.closed = true;
    // The server is told to stop what it runs for us, and given a moment to hear it.
    for (const c of this.inflight) c.abort(CANCELLED_BY_CLOSE);
    if (this.cancelling.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(this.cancelling),
        new Promise((r) => {
          timer = setTimeout(r, Math.min(this.server.timeoutMs, CANCEL_FLUSH_MS));
        }),
      ]);
      clearTimeout(timer);
    }
    await this.client.close().catch(() => undefined);
    await this.container?.stop();
  }

  /** `text` with every secret of the server cut out: a remote one's header values, a stdio one's proxy credentials. */
  redact(text: string): string {
    return blankSecrets(text, this.secrets, "[redacted]");
  }

  /**
   * `value` (a tool's result) with every string in it redacted: a server's tool prints what
   * its process holds as readily as an error does (its environment, a proxy URL, curl -v's
   * header), and the result goes to the model. Every secret is cut however short it is
   * (open() lists no header value under MIN_SECRET_LENGTH); before, results kept each one
   * under 8 characters, a 7-character token too.
   */
  private redactedIn(value: unknown): unknown {
    if (this.secrets.length === 0) return value;
    if (typeof value === "string") return this.redact(value);
    if (Array.isArray(value)) return value.map((v) => this.redactedIn(v));
    if (value === null || typeof value !== "object") return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.redactedIn(v)]));
  }

  private failure(what: string, e: unknown, code: ErrorCode = ErrorCode.sandboxUnavailable): AidoError {
    return new AidoError(code, `MCP server ${this.server.name} ${what}: ${this.redact(errorMessage(e))}`, {
      server: this.server.name,
    });
  }
}

/** The SDK's own request timeout (timeout_ms passed), as opposed to any other failure. */
function isTimeout(e: unknown): boolean {
  return e instanceof McpError && e.code === McpErrorCode.RequestTimeout;
}
