// egress/proxy.ts — the egress proxy: one client stream at a time (handed over by the relay
// listener, its header already read), speaking HTTP CONNECT and plain HTTP with an absolute
// URI, for a caller its host named. The proxy decides nothing about who may reach what; it
// asks its host (EgressPolicy) and enforces the answer. For each connection, in order:
//   0. on arrival, the caller's share: a caller holding egress.max_connections_per_agent
//      streams already has the next refused (503) before a byte of it is read, and not
//      counted against its goal, so one agent holding streams open (idle ones too) cannot
//      take all of its goal's connections
//   1. the request, parsed by node:http (bounded headers; smuggling forms refused there),
//      in a bounded time; only `CONNECT host:port` and `METHOD http://host[:port]/...`
//      (no userinfo, a Host header that agrees) are served, one request per connection
//   2. Proxy-Authorization: Basic, checked by policy.authenticate (407 otherwise); a
//      call's own credentials name the call its human is asked for (policy.requestOf),
//      and while other calls of the agent run (policy.callsOf) that call may hold its
//      fair share of the caller's connections at most, callShare() (503 naming the call
//      beyond it), so one call's command opening connections without end cannot starve
//      its siblings; a call alone may hold them all. Connections with an ended call's
//      credentials (policy.endedCall) count together as one more call
//   3. the goal's connection limit
//   4. policy.decide for the host asked (an IP literal is `literal`); may wait for a human
//   5. the name resolved here (egress.hosts, else DNS), every address judged: an inward one
//      (private, loopback, link-local, metadata...) needs decide(literal address)
//   6. a TCP connection to a checked address, pinned: no second resolution (no rebinding)
//   7. CONNECT: 200, then the client's ClientHello (egress/sni.ts) whose SNI must name the
//      CONNECT host; nothing goes upstream before it passes
//   8. record "open" (an exception refuses), relay bytes with an idle timeout, record "close"
// Every refusal is recorded "denied" with its stage and reason, and the client reads the
// reason in a 400/403/407/502/503 body (a CONNECT refused after its 200 is closed).
// Steps 2-6 are proxy-admit.ts's, the parsing of the request forms proxy-forms.ts's, the
// ClientHello and the relaying proxy-relay.ts's, the calls' shares call-shares.ts's; this
// module owns the streams, the counts per goal and per caller, the records and the refusals.

import { lookup as dnsLookup } from "node:dns/promises";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { errorMessage } from "../errors.js";
import { CallShares, callerKey } from "./call-shares.js";
import { type AdmitContext, admit, connectPinned, type EgressResolver } from "./proxy-admit.js";
import { checkServerName, parseAbsoluteUri, parseAuthority, Refusal } from "./proxy-forms.js";
import { type Conn, forwardPlain, type Recorder, readClientHello, relayTunnel } from "./proxy-relay.js";
import type { EgressCaller, EgressPolicy, EgressProxy, EgressRecord } from "./types.js";

export type { EgressResolver } from "./proxy-admit.js";

export interface EgressProxyOptions {
  /** Static resolution (config egress.hosts): these names never go to DNS. */
  hosts: Readonly<Record<string, string>>;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Connections open at once per goal (caller.goalId). */
  maxConnections: number;
  /** Connections open at once per caller (one agent of the goal, or a server). */
  maxConnectionsPerCaller: number;
  /** The request's headers, and a CONNECT's ClientHello, must arrive within this (default 10 s). */
  headerTimeoutMs?: number;
  /** Largest request head (default 16 KiB). */
  maxHeaderBytes?: number;
  /** Default: the system resolver (dns.lookup, all answers, verbatim). */
  resolve?: EgressResolver;
}

const systemResolver: EgressResolver = (host) => dnsLookup(host, { all: true, verbatim: true });

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

export function createEgressProxy(policy: EgressPolicy, opts: EgressProxyOptions): EgressProxy {
  return new ProxyServer(policy, opts);
}

class ProxyServer implements EgressProxy {
  private readonly server: http.Server;
  private readonly conns = new Map<Duplex, Conn>();
  private readonly perGoal = new Map<string, number>();
  /** Streams open per caller, keyed by callerKey(). */
  private readonly perCaller = new Map<string, number>();
  /** Each call's share of its caller's connections (call-shares.ts). */
  private readonly shares: CallShares;
  /** What admit() checks each request against. */
  private readonly checks: AdmitContext;
  private readonly headerTimeoutMs: number;
  private readonly maxHeaderBytes: number;
  private readonly recorder: Recorder;
  private nextId = 1;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly policy: EgressPolicy,
    private readonly opts: EgressProxyOptions,
  ) {
    this.shares = new CallShares(policy, opts.maxConnectionsPerCaller);
    this.checks = {
      policy,
      hosts: opts.hosts,
      resolver: opts.resolve ?? systemResolver,
      maxConnections: opts.maxConnections,
      openOfGoal: (goalId) => this.perGoal.get(goalId) ?? 0,
      claimCallShare: (conn) => this.shares.claim(conn),
    };
    this.headerTimeoutMs = opts.headerTimeoutMs ?? 10_000;
    this.maxHeaderBytes = opts.maxHeaderBytes ?? 16 * 1024;
    this.recorder = {
      idleTimeoutMs: opts.idleTimeoutMs,
      open: (conn, address) => {
        try {
          this.record(conn, { phase: "open", address });
        } catch (e) {
          // Fail closed: a connection that is not on record carries nothing.
          throw new Refusal(503, "audit", `the connection could not be recorded: ${errorMessage(e)}`);
        }
        conn.recorded = "open";
      },
      close: (conn, address, bytes, ms, reason) => {
        try {
          this.record(conn, {
            phase: "close",
            address,
            bytesUp: bytes.up,
            bytesDown: bytes.down,
            durationMs: ms,
            ...(reason ? { reason } : {}),
          });
        } catch {
          // The connection is over; a close the audit log could not take is its own failure.
        }
      },
    };
    // Never listens: handle() hands it each stream. Its own timers are off; headerTimer
    // bounds the head, the relays the idle time after it.
    this.server = http.createServer({
      maxHeaderSize: this.maxHeaderBytes,
      requireHostHeader: false,
      requestTimeout: 0,
      headersTimeout: 0,
      keepAliveTimeout: 0,
    });
    this.server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      void this.onRequest(req, res);
    });
    this.server.on("connect", (req: IncomingMessage, stream: Duplex, head: Buffer) => {
      void this.onConnect(req, stream, head);
    });
    this.server.on("upgrade", (req: IncomingMessage, stream: Duplex) => {
      const conn = this.conns.get(stream);
      if (!conn) return void stream.destroy();
      if (conn.requests > 0) return this.pipelined(conn, req);
      this.began(conn, req);
      this.refuseRaw(conn, new Refusal(400, "request", "Upgrade is not relayed; use CONNECT for a tunnel"));
    });
    this.server.on("clientError", (err: NodeJS.ErrnoException, stream: Duplex) => {
      const conn = this.conns.get(stream);
      if (!conn || err.code === "ECONNRESET" || !stream.writable) return void stream.destroy();
      const big = err.code === "HPE_HEADER_OVERFLOW";
      const why = big
        ? `request head larger than ${this.maxHeaderBytes} bytes`
        : `malformed request (${err.code ?? errorMessage(err)})`;
      this.refuseRaw(conn, new Refusal(big ? 431 : 400, "request", why));
    });
  }

  handle(stream: Duplex, caller: EgressCaller): void {
    if (this.closing) {
      stream.destroy();
      return;
    }
    const conn: Conn = {
      id: this.nextId++,
      caller,
      stream,
      host: "",
      port: 0,
      method: "",
      requests: 0,
      abort: new AbortController(),
    };
    this.conns.set(stream, conn);
    const key = callerKey(caller);
    const held = this.perCaller.get(key) ?? 0;
    if (held >= this.opts.maxConnectionsPerCaller) {
      // Refused on arrival, unread, and never counted against the goal: a check made only
      // once a request arrived would let streams held open without one (or refused ones
      // the client keeps open) take the connections the caller's siblings are owed.
      stream.once("close", () => this.conns.delete(stream));
      stream.on("error", () => stream.destroy());
      this.refuseRaw(
        conn,
        new Refusal(
          503,
          "limit",
          `${caller.agentId} has ${held} connections open, the most one caller may hold (egress.max_connections_per_agent: ${this.opts.maxConnectionsPerCaller}); the rest of its goal's egress.max_connections stay for the goal's other agents`,
        ),
      );
      return;
    }
    this.perCaller.set(key, held + 1);
    this.perGoal.set(caller.goalId, (this.perGoal.get(caller.goalId) ?? 0) + 1);
    conn.headerTimer = setTimeout(() => {
      this.refuseRaw(
        conn,
        new Refusal(400, "request", `no complete request within ${this.headerTimeoutMs} ms`),
      );
    }, this.headerTimeoutMs);
    stream.once("close", () => {
      clearTimeout(conn.headerTimer);
      conn.abort.abort(new Error("the client left"));
      this.conns.delete(stream);
      const n = (this.perGoal.get(caller.goalId) ?? 1) - 1;
      if (n <= 0) this.perGoal.delete(caller.goalId);
      else this.perGoal.set(caller.goalId, n);
      const m = (this.perCaller.get(key) ?? 1) - 1;
      if (m <= 0) this.perCaller.delete(key);
      else this.perCaller.set(key, m);
      this.shares.release(conn);
    });
    stream.on("error", () => stream.destroy());
    this.server.emit("connection", stream);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const ended = [...this.conns.keys()].map(
        (s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once("close", () => resolve()))),
      );
      for (const s of this.conns.keys()) s.destroy();
      await Promise.all(ended);
    })();
    return this.closing;
  }

  // --- the two request forms ----------------------------------------------------------

  private async onConnect(req: IncomingMessage, stream: Duplex, head: Buffer): Promise<void> {
    const conn = this.conns.get(stream);
    if (!conn) return void stream.destroy();
    if (conn.requests > 0) return this.pipelined(conn, req);
    this.began(conn, req);
    let upstream: Socket | undefined;
    try {
      const target = parseAuthority(req.url ?? "");
      conn.host = target.host;
      conn.port = target.port;
      const addresses = await admit(this.checks, conn, req, target);
      upstream = await connectPinned(conn, addresses, target.port, this.opts.connectTimeoutMs);
      stream.write("HTTP/1.1 200 Connection established\r\n\r\n");
      conn.tunnelOpen = true;
      const hello = await readClientHello(stream, head, this.headerTimeoutMs);
      checkServerName(hello.serverName, target);
      this.recorder.open(conn, upstream.remoteAddress ?? "");
      relayTunnel(this.recorder, conn, stream, upstream, hello.bytes);
    } catch (e) {
      upstream?.destroy();
      this.refuseRaw(conn, asRefusal(e));
    }
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const conn = this.conns.get(req.socket);
    if (!conn) return void req.socket.destroy();
    res.shouldKeepAlive = false;
    if (conn.requests > 0) {
      // The connection ends with the first response; this one never goes anywhere.
      req.resume();
      return this.pipelined(conn, req);
    }
    this.began(conn, req);
    let upstream: Socket | undefined;
    try {
      const { target, path } = parseAbsoluteUri(req);
      conn.host = target.host;
      conn.port = target.port;
      const addresses = await admit(this.checks, conn, req, target);
      upstream = await connectPinned(conn, addresses, target.port, this.opts.connectTimeoutMs);
      forwardPlain(this.recorder, conn, req, res, upstream, path);
    } catch (e) {
      upstream?.destroy();
      const r = asRefusal(e);
      this.refused(conn, r);
      const body = `aido egress: ${r.message}\n`;
      res.writeHead(r.status, STATUS_TEXT[r.status] ?? "Refused", {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(body),
        connection: "close",
        ...(r.status === 407 ? { "proxy-authenticate": 'Basic realm="aido-egress"' } : {}),
      });
      res.end(body);
    }
  }

  // --- one request per connection ---------------------------------------------------------

  /**
   * A request behind the first on one connection (a plain request, a CONNECT or an Upgrade
   * pipelined after it): never served, since one connection carries one judged request;
   * recorded. A CONNECT or Upgrade takes the stream from the parser, so it is closed.
   */
  private pipelined(conn: Conn, req: IncomingMessage): void {
    this.tryRecord(conn, {
      phase: "denied",
      host: "",
      port: 0,
      method: req.method ?? "",
      stage: "request",
      reason: "a second request on one connection (one request per connection: open a new one)",
    });
    if (req.method === "CONNECT" || req.headers.upgrade !== undefined) conn.stream.destroy();
  }

  private began(conn: Conn, req: IncomingMessage): void {
    clearTimeout(conn.headerTimer);
    conn.requests++;
    conn.method = req.method ?? "";
  }

  // --- records and refusals --------------------------------------------------------------

  private record(conn: Conn, e: Pick<EgressRecord, "phase"> & Partial<EgressRecord>): void {
    this.policy.record({
      caller: conn.caller,
      host: conn.host,
      port: conn.port,
      method: conn.method,
      connection: conn.id,
      ...e,
    });
  }

  private tryRecord(conn: Conn, e: Pick<EgressRecord, "phase"> & Partial<EgressRecord>): void {
    try {
      this.record(conn, e);
    } catch {
      // The client is refused either way; the audit log reports its own failure.
    }
  }

  /** Record a refusal once (a connection already open or refused is not recorded again). */
  private refused(conn: Conn, r: Refusal): void {
    if (conn.recorded) return;
    conn.recorded = "denied";
    this.tryRecord(conn, { phase: "denied", stage: r.stage, reason: r.message });
  }

  /** Refuse on the raw stream (CONNECT, unparsable requests): a response unless after a 200, then close. */
  private refuseRaw(conn: Conn, r: Refusal): void {
    clearTimeout(conn.headerTimer);
    this.refused(conn, r);
    const { stream } = conn;
    if (stream.destroyed) return;
    if (conn.tunnelOpen) return void stream.destroy(); // after the 200: nothing to say in HTTP
    const body = `aido egress: ${r.message}\n`;
    const challenge = r.status === 407 ? 'Proxy-Authenticate: Basic realm="aido-egress"\r\n' : "";
    stream.end(
      `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? "Refused"}\r\n` +
        `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `${challenge}Connection: close\r\n\r\n${body}`,
    );
    setTimeout(() => stream.destroy(), 1000).unref();
  }
}

function asRefusal(e: unknown): Refusal {
  return e instanceof Refusal ? e : new Refusal(502, "upstream", errorMessage(e));
}
