// mcp/http.ts — `aido mcp serve --http`: Streamable HTTP on one path (/mcp), stateful
// (Mcp-Session-Id), one daemon session per MCP session, closed when the MCP session ends
// (DELETE, or the server stopping). Loopback by default; another host needs
// --allow-remote and prints a warning.
//
// Every request passes three checks here, before the SDK sees it:
//   1. Host must be one of this server's own names (127.0.0.1, localhost, [::1] or the
//      bind host, with the port): a page on another origin that rebinds its DNS name to
//      127.0.0.1 sends its own name as Host and is refused (403).
//   2. Origin, when a browser sends one, must be http://<one of those names>: 403.
//   3. Authorization: Bearer <the token in $AIDO_HOME/mcp-token> (0600, made once, reused),
//      compared in constant time: 401 otherwise.
// The SDK's allowedHosts / allowedOrigins options are deprecated in 1.32 ("use external
// middleware") and apply only once a request reached a transport; doing it here covers
// every request, unknown session ids included.

import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { AidoClient } from "../client/client.js";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { ensurePrivateDir } from "../security/private-home.js";
import { connectDaemon, type SessionOptions } from "./daemon-link.js";
import { type McpSession, openMcpSession } from "./session.js";
import { aidoVersion, type ServeOptions } from "./stdio.js";

export const DEFAULT_PORT = 7767;
export const DEFAULT_IDLE_SECONDS = 1800;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

export interface HttpOptions extends ServeOptions {
  host: string;
  port: number;
  /** An MCP session with no request in flight for this long is ended (its client left without DELETE). */
  idleMs: number;
  /** A non-loopback host was asked for explicitly. */
  allowRemote: boolean;
}

export function tokenPath(config: Config): string {
  return join(config.home, "mcp-token");
}

/** The bearer token: made once (0600), then reused. */
export function ensureToken(config: Config): string {
  ensurePrivateDir(config.home);
  const file = tokenPath(config);
  try {
    writeFileSync(file, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  chmodSync(file, 0o600);
  const token = readFileSync(file, "utf8").trim();
  if (token.length < 32) {
    throw new AidoError(
      ErrorCode.configInvalid,
      `${file} holds no usable token: delete it to make a new one`,
    );
  }
  return token;
}

function hostNames(host: string, port: number): Set<string> {
  const names = new Set<string>();
  for (const h of new Set([...LOOPBACK, host]))
    names.add(h.includes(":") ? `[${h}]:${port}` : `${h}:${port}`);
  return names;
}

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function reply(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new AidoError(ErrorCode.invalidInput, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  return text === "" ? undefined : JSON.parse(text);
}

export interface HttpServer {
  url: string;
  close(): Promise<void>;
}

export async function serveHttp(opts: HttpOptions): Promise<HttpServer> {
  if (!LOOPBACK.has(opts.host) && !opts.allowRemote) {
    throw new AidoError(
      ErrorCode.usage,
      `--host ${opts.host} is not a loopback address: add --allow-remote to serve MCP beyond this machine (anyone who reaches it with the token acts as the session)`,
    );
  }
  if (!LOOPBACK.has(opts.host)) {
    opts.log(
      `WARNING: serving MCP on ${opts.host}, beyond this machine; the bearer token is all that guards it`,
    );
  }
  const token = ensureToken(opts.config);
  // The daemon is started (or found) once; each MCP session then has a connection of its own.
  (await connectDaemon(opts.config, opts.env, opts.log)).close();
  const version = aidoVersion(opts.config);
  interface Held {
    transport: StreamableHTTPServerTransport;
    session: McpSession;
    /** Requests being answered, and when the last one ended. */
    inFlight: number;
    lastSeen: number;
  }
  const sessions = new Map<string, Held>();
  // A client that vanished without DELETE: its session (and container) end after idleMs.
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [id, held] of sessions) {
        if (held.inFlight > 0 || now - held.lastSeen < opts.idleMs) continue;
        opts.log(`MCP session ${id} idle for ${Math.round(opts.idleMs / 1000)} s: ending it`);
        void held.transport.close();
      }
    },
    Math.min(60_000, Math.max(250, opts.idleMs / 4)),
  );
  sweep.unref();
  let names = new Set<string>();
  let origins = new Set<string>();

  /** Sessions being opened (not yet in `sessions`): counted against the cap too. */
  let starting = 0;
  const maxSessions = opts.config.daemon.mcpMaxHttpSessions;

  const startSession = async (req: IncomingMessage, res: ServerResponse, body: unknown) => {
    // Each session holds daemon connections (its own, its event stream, its calls') and a
    // container: a client opening thousands would exhaust the daemon's descriptors.
    if (sessions.size + starting >= maxSessions) {
      const why = `${sessions.size + starting} MCP sessions are open, daemon.mcp_max_http_sessions is ${maxSessions}`;
      opts.log(`refused an MCP session: ${why}`);
      return reply(res, 503, `aido mcp serve refuses a new session: ${why}; end one (DELETE) and try again`, {
        "retry-after": "5",
      });
    }
    starting += 1;
    try {
      await openHttpSession(req, res, body);
    } finally {
      starting -= 1;
    }
  };

  const openHttpSession = async (req: IncomingMessage, res: ServerResponse, body: unknown) => {
    const client = await AidoClient.connect(opts.config.socketPath, {
      maxLineBytes: opts.config.daemon.maxLineBytes,
    });
    const sessionOpts: SessionOptions = {
      ...(opts.workspace !== undefined ? { workspace: opts.workspace } : {}),
      ...(opts.manifestFile !== undefined ? { manifestFile: opts.manifestFile } : {}),
      client: `http ${String(req.headers["user-agent"] ?? "").slice(0, 100)}`,
    };
    let session: McpSession;
    try {
      session = await openMcpSession(client, {
        ...sessionOpts,
        config: opts.config,
        version,
        allowApprove: opts.allowApprove,
        log: opts.log,
      });
    } catch (e) {
      client.close();
      throw e;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, session, inFlight: 0, lastSeen: Date.now() });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
      void session.close();
    };
    // The daemon session ended (agent.stop, daemon gone): so does the MCP session.
    void session.bridge.ended.then(() => transport.close());
    await session.server.connect(transport);
    try {
      await transport.handleRequest(req, res, body);
    } finally {
      // The transport refused the initialize before the session began (a wrong Accept or
      // Content-Type: 406, 415): it is in no table, so nothing would ever close it, and it
      // held its daemon session, connections and container outside the cap. It ends now.
      if (transport.sessionId === undefined || !sessions.has(transport.sessionId)) await transport.close();
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!names.has(String(req.headers.host ?? ""))) {
      return reply(
        res,
        403,
        `Host header ${JSON.stringify(req.headers.host ?? "")} is not this server's (DNS rebinding?)`,
      );
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has(origin)) {
      return reply(res, 403, `Origin ${JSON.stringify(origin)} may not use this server`);
    }
    const auth = String(req.headers.authorization ?? "");
    if (!auth.startsWith("Bearer ") || !sameToken(auth.slice(7).trim(), token)) {
      return reply(res, 401, `missing or wrong bearer token (it is in ${tokenPath(opts.config)})`, {
        "www-authenticate": 'Bearer realm="aido"',
      });
    }
    if (url.pathname !== "/mcp") return reply(res, 404, "the MCP endpoint is /mcp");
    const body = req.method === "POST" ? await readBody(req) : undefined;
    const id = req.headers["mcp-session-id"];
    const known = typeof id === "string" ? sessions.get(id) : undefined;
    if (known) {
      // Counted until the response ends: an SSE stream (a call waiting for a human) is in flight.
      known.inFlight += 1;
      res.once("close", () => {
        known.inFlight -= 1;
        known.lastSeen = Date.now();
      });
      return known.transport.handleRequest(req, res, body);
    }
    if (id === undefined && req.method === "POST" && isInitializeRequest(body))
      return startSession(req, res, body);
    return reply(
      res,
      id === undefined ? 400 : 404,
      id === undefined ? "no Mcp-Session-Id: initialize first" : "unknown or ended MCP session",
    );
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((e) => {
      opts.log(`HTTP request failed: ${errorMessage(e)}`);
      if (!res.headersSent)
        reply(
          res,
          e instanceof SyntaxError ? 400 : 500,
          e instanceof SyntaxError ? "body is not JSON" : errorMessage(e),
        );
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(opts.port, opts.host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  names = hostNames(opts.host, port);
  origins = new Set([...names].map((n) => `http://${n}`));
  const shown = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const url = `http://${shown}:${port}/mcp`;
  opts.log(`serving MCP on ${url} (bearer token in ${tokenPath(opts.config)})`);
  return {
    url,
    async close() {
      clearInterval(sweep);
      for (const { transport } of [...sessions.values()]) await transport.close().catch(() => {});
      await Promise.all([...sessions.values()].map((s) => s.session.close()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
