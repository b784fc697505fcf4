// egress/proxy-relay.ts — the streams of a connection the proxy is checking or has checked:
// the TCP connection to a checked address (pinned: the address, never the name again), a
// CONNECT client's ClientHello read whole before anything goes upstream, the tunnel relayed
// both ways, and a plain request forwarded with the hop-by-hop and Proxy-*
// headers stripped and `Connection: close` both ways. Each counts bytes each way, closes
// both ends after idle_timeout_ms without a byte, and records "close" exactly once.

import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { isIP, type Socket, connect as tcpConnect } from "node:net";
import type { Duplex } from "node:stream";
import { errorMessage } from "../errors.js";
import { Refusal } from "./proxy-forms.js";
import { parseClientHello } from "./sni.js";
import type { EgressCall, EgressCaller, EgressPolicy } from "./types.js";

/**
 * The call credentials name now (policy.requestOf), asked again when a human is about to be
 * asked: the connection may have waited its turn past the call's end.
 */
export function callOf(policy: EgressPolicy, caller: EgressCaller, password: string): EgressCall | undefined {
  const requestOf = policy.requestOf?.bind(policy);
  const requestId = requestOf?.(caller, password);
  if (requestOf === undefined || requestId === undefined) return undefined;
  const cancelled = policy.cancelOf?.(caller, password);
  return {
    requestId,
    running: () => requestOf(caller, password) === requestId,
    ...(cancelled ? { cancelled } : {}),
  };
}

/** One client stream and what is known of its request. */
export interface Conn {
  id: number;
  caller: EgressCaller;
  stream: Duplex;
  host: string;
  port: number;
  method: string;
  requests: number;
  /** The call the connection's credentials named when it authenticated (EgressPolicy.requestOf). */
  call?: EgressCall | undefined;
  /** Its credentials are an ended call's (EgressPolicy.endedCall): counted with the caller's others. */
  endedCall?: boolean;
  /** The call share this connection is counted in (proxy.ts perCall), until it closes. */
  callKey?: string;
  /** Aborts when the client leaves or the proxy closes (ends a wait for a human). */
  abort: AbortController;
  headerTimer?: NodeJS.Timeout;
  /** A CONNECT's 200 was sent: a refusal after it can only close the tunnel. */
  tunnelOpen?: boolean;
  /** Set once recorded "open" or "denied": later refusals of it are not recorded again. */
  recorded?: "open" | "denied";
}

/** What the relays report to. */
export interface Recorder {
  idleTimeoutMs: number;
  /** "open", before the first byte upstream; throws to refuse. */
  open(conn: Conn, address: string): void;
  close(conn: Conn, address: string, bytes: { up: number; down: number }, ms: number, reason?: string): void;
}

/** A TCP connection to `address`, within `timeoutMs`, abandoned when `signal` aborts. */
export function connectOne(
  address: string,
  port: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: address, port, family: isIP(address) });
    const settle = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      s.off("error", fail);
    };
    const fail = (e: Error) => {
      settle();
      s.destroy();
      reject(e);
    };
    const onAbort = () => fail(new Error("the client left"));
    const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });
    s.once("error", fail);
    s.once("connect", () => {
      settle();
      resolve(s);
    });
  });
}

/**
 * A CONNECT client's first flight after the 200, whole (egress/sni.ts), within `timeoutMs`;
 * a Refusal (stage tls) when it is not one ClientHello, is late, or the client leaves.
 */
export function readClientHello(
  stream: Duplex,
  head: Buffer,
  timeoutMs: number,
): Promise<{ serverName: string | null; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = head;
    const done = (fn: () => void) => {
      clearTimeout(timer);
      stream.off("data", onData);
      stream.off("close", onClose);
      stream.pause();
      fn();
    };
    const refuse = (reason: string) => done(() => reject(new Refusal(403, "tls", reason)));
    const check = () => {
      const p = parseClientHello(buf);
      if (p.state === "invalid")
        refuse(`the tunnel's first bytes are not a valid TLS ClientHello: ${p.reason}`);
      else if (p.state === "done") done(() => resolve({ serverName: p.serverName, bytes: buf }));
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      check();
    };
    const onClose = () => refuse("the client left before its ClientHello");
    const timer = setTimeout(() => refuse(`no complete ClientHello within ${timeoutMs} ms`), timeoutMs);
    stream.on("data", onData);
    stream.once("close", onClose);
    stream.resume();
    if (buf.length > 0) check();
  });
}

/** Relay a checked tunnel both ways, `first` (the ClientHello and what came with it) first. */
export function relayTunnel(
  rec: Recorder,
  conn: Conn,
  client: Duplex,
  upstream: Socket,
  first: Buffer,
): void {
  const address = upstream.remoteAddress ?? "";
  const started = Date.now();
  const bytes = { up: first.length, down: 0 };
  let reason: string | undefined;
  let idle: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      reason = `idle for ${rec.idleTimeoutMs} ms`;
      client.destroy();
      upstream.destroy();
    }, rec.idleTimeoutMs);
  };
  touch();
  upstream.write(first);
  client.on("data", (c: Buffer) => {
    bytes.up += c.length;
    touch();
    if (!upstream.write(c)) client.pause();
  });
  upstream.on("drain", () => client.resume());
  upstream.on("data", (c: Buffer) => {
    bytes.down += c.length;
    touch();
    if (!client.write(c)) upstream.pause();
  });
  client.on("drain", () => upstream.resume());
  client.on("end", () => upstream.end());
  upstream.on("end", () => client.end());
  upstream.on("error", (e) => {
    reason ??= `upstream: ${errorMessage(e)}`;
    client.destroy();
  });
  client.on("error", () => upstream.destroy());
  let closed = 0;
  const onClose = () => {
    closed++;
    if (closed === 1) {
      // One side is gone: the other gets a moment to flush its half, then goes too.
      setTimeout(() => {
        client.destroy();
        upstream.destroy();
      }, 1000).unref();
      return;
    }
    clearTimeout(idle);
    rec.close(conn, address, bytes, Date.now() - started, reason);
  };
  client.once("close", onClose);
  upstream.once("close", onClose);
  client.resume();
}

/** Headers that describe one hop, never forwarded (RFC 9110 7.6.1), and every Proxy-* header. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const named = new Set(
    String(headers.connection ?? "")
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k) || k.startsWith("proxy-")) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Forward one checked plain request over `upstream` and its response back. Records "open"
 * first (its exception propagates: nothing was sent), then "close" once both are done.
 */
export function forwardPlain(
  rec: Recorder,
  conn: Conn,
  req: IncomingMessage,
  res: ServerResponse,
  upstream: Socket,
  path: string,
): void {
  const address = upstream.remoteAddress ?? "";
  rec.open(conn, address);
  const started = Date.now();
  let reason: string | undefined;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    upstream.destroy();
    rec.close(
      conn,
      address,
      { up: upstream.bytesWritten, down: upstream.bytesRead },
      Date.now() - started,
      reason,
    );
  };
  upstream.setTimeout(rec.idleTimeoutMs, () => {
    reason = `idle for ${rec.idleTimeoutMs} ms`;
    upstream.destroy();
    conn.stream.destroy();
  });
  const hostHeader = conn.port === 80 ? conn.host : `${conn.host}:${conn.port}`;
  // A chunked body stays chunked upstream. Without this, node sends the decoded body of a
  // GET, HEAD, DELETE or OPTIONS unframed, and the upstream reads it as a second request
  // (to any Host the client wrote) that the proxy never judged.
  const framing = req.headers["transfer-encoding"] === undefined ? {} : { "transfer-encoding": "chunked" };
  const out = http.request({
    createConnection: () => upstream,
    method: req.method ?? "GET",
    path,
    setHost: false,
    headers: { ...endToEnd(req.headers), ...framing, host: hostHeader, connection: "close" },
  });
  out.on("response", (up) => {
    res.writeHead(up.statusCode ?? 502, up.statusMessage ?? "", {
      ...endToEnd(up.headers),
      connection: "close",
    });
    up.pipe(res);
    up.on("error", (e) => {
      reason ??= `upstream: ${errorMessage(e)}`;
      conn.stream.destroy();
    });
  });
  out.on("error", (e) => {
    reason ??= `upstream: ${errorMessage(e)}`;
    if (!res.headersSent) {
      const body = `aido egress: ${conn.host} port ${conn.port} failed: ${errorMessage(e)}\n`;
      res.writeHead(502, "Bad Gateway", { "content-type": "text/plain; charset=utf-8", connection: "close" });
      res.end(body);
    } else conn.stream.destroy();
  });
  req.pipe(out);
  res.once("close", finish);
  conn.stream.once("close", finish);
}
