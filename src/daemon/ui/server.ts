// daemon/ui/server.ts — the dashboard's HTTP server (docs/ui.md), started by the daemon
// at `ui.open` or at its start when config ui.port is set. It listens on 127.0.0.1
// only. Each connection is a stranger's until a request signs it in (connections.ts:
// strangers are few and short-lived). Every request passes the guard (guard.ts: Host,
// Origin, credential, page key, content type) before any route; refusals are audited.
// Routes: the sign-in link (a one-time code of signin.ts traded for the session cookie
// and the page key, in a page that keeps the key and goes on to `/`), the
// page's files (assets.ts), /api/rpc (rpc.ts), /api/events (sse.ts), goal uploads and
// output downloads (files.ts, outputs.ts; the page's through one-time tickets, download-tickets.ts). Handlers are the socket's (MethodRunner): the
// dashboard is another client of the same methods, not a second implementation.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Config } from "../../config.js";
import { errorMessage } from "../../errors.js";
import type { Runtime } from "../../kernel/runtime.js";
import { toRpcError } from "../errors.js";
import type { MethodRunner } from "../methods.js";
import { AssetTable } from "./assets.js";
import { ConnectionPool } from "./connections.js";
import { DownloadTickets } from "./download-tickets.js";
import { submitWithUploads } from "./files.js";
import {
  checkRequest,
  cookieName,
  DenialLog,
  type DenyReason,
  type GuardKeys,
  hasSession,
  isSignInVisit,
  type Refusal,
  signInLinkSpent,
  signsIn,
} from "./guard.js";
import { BodyError, readJsonBody, securityHeaders, sendError, sendJson, sendText } from "./http.js";
import { sendDownloadTicket, sendOutput, sendOutputList } from "./outputs.js";
import { answerRpc } from "./rpc.js";
import { SignInCodes } from "./signin.js";
import { openEventStream } from "./sse.js";
import { loadOrCreateToken, pageKey, sessionValue, tokenPath, writeNewToken } from "./token.js";

export interface UiDeps {
  config: Config;
  rt: Runtime;
  run: MethodRunner;
  log(m: string): void;
}

/** A request's headers must have arrived by then (a slow-loris client is cut). */
const HEADERS_TIMEOUT_MS = 5_000;
/** A whole request, body included (the largest upload on loopback takes far less). */
const REQUEST_TIMEOUT_MS = 60_000;

/** The page's script that keeps the page key a sign-in link's page carries (src/ui/web/signin.ts). */
const SIGN_IN_SCRIPT = "signin.js";
/** The sign-in page's meta element that carries the page key to that script. */
const PAGE_KEY_META = "aido-page-key";

/** The largest /api/rpc body (params of the allowlisted methods are small). */
const RPC_MAX_BYTES = 1024 * 1024;
const MIB = 1024 * 1024;

export class UiServer {
  private token: string;
  private readonly denials: DenialLog;
  private readonly assets: AssetTable;
  private readonly open = new Set<ServerResponse>();
  private readonly codes = new SignInCodes();
  private readonly tickets = new DownloadTickets();
  private readonly connections: ConnectionPool;

  private constructor(
    private readonly deps: UiDeps,
    private readonly server: Server,
    readonly port: number,
    token: string,
  ) {
    this.token = token;
    this.denials = new DenialLog(deps.rt.audit);
    this.assets = new AssetTable(deps.config.ui.assetsDir);
    this.connections = new ConnectionPool((socket) => this.denials.recordConnection("idle", socket));
  }

  /** Listen on 127.0.0.1:`port` (0: a free port). */
  static async start(deps: UiDeps, port: number): Promise<UiServer> {
    const token = loadOrCreateToken(deps.config.home, deps.log);
    const server = createServer({
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: 1_000,
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const ui = new UiServer(deps, server, (server.address() as AddressInfo).port, token);
    server.on("connection", (socket: Socket) => ui.connections.admit(socket));
    server.on("request", (req, res) => ui.handle(req, res));
    deps.log(`dashboard on http://127.0.0.1:${ui.port}/ (aido ui prints a sign-in link)`);
    return ui;
  }

  /** A new sign-in link: its code works for one visit, within SIGN_IN_CODE_TTL_MS. */
  signInUrl(): string {
    return `http://127.0.0.1:${this.port}/?code=${this.codes.mint()}`;
  }

  get tokenFile(): string {
    return tokenPath(this.deps.config.home);
  }

  /**
   * A new token: every cookie, sign-in link and download ticket of the old one stops working
   * at once (a ticket a thief got with the old page key would open a file beside the new
   * cookie, which reaches a server on another port at the next visit), and the
   * exchanges they opened (event streams, a goal.wait) are cut: a stolen cookie's open
   * stream would otherwise keep reading every event after the rotation. Every signed-in
   * connection is signed out too (closed unless it signs in again within the sign-in
   * window): kept alive, a stolen cookie's would hold the signed-in cap.
   */
  rotate(): void {
    this.token = writeNewToken(this.deps.config.home);
    this.codes.clear();
    this.tickets.clear();
    for (const res of this.open) res.destroy();
    this.connections.signOutAll();
  }

  /** Stop listening and end every open response (event streams included). */
  async close(): Promise<void> {
    const stopped = new Promise<void>((r) => this.server.close(() => r()));
    for (const res of this.open) res.end();
    this.server.closeAllConnections();
    await stopped;
  }

  private get keys(): GuardKeys {
    return { port: this.port, token: this.token };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.open.add(res);
    res.once("close", () => this.open.delete(res));
    let url: URL;
    try {
      url = new URL(req.url ?? "/", `http://127.0.0.1:${this.port}`);
    } catch {
      url = new URL("http://127.0.0.1/invalid");
    }
    securityHeaders(res, url.pathname === "/" || url.pathname.startsWith("/api/"));
    const refusal = checkRequest(req, this.keys, url);
    if (refusal) {
      this.refuse(req, res, refusal, url.pathname);
      return;
    }
    // A sign-in link's connection signs in once its code is checked (signInVisit). The
    // cookie alone (the page's files) is answered on a connection that stays a stranger's.
    if (!isSignInVisit(req, url) && signsIn(req, this.keys) && !this.signedIn(req, res, url.pathname)) return;
    this.route(req, res, url).catch((e) => {
      this.deps.log(`ui: ${req.method} ${url.pathname} failed: ${errorMessage(e)}`);
      if (!res.headersSent)
        sendError(res, 500, "internal", "internal error in the Aido daemon (details are in its log)");
      else res.destroy();
    });
  }

  private refuse(req: IncomingMessage, res: ServerResponse, r: Refusal, path: string): void {
    this.denials.record(r.reason, req, path);
    sendText(res, r.status, r.message);
  }

  /**
   * The request showed the credential: its connection leaves the strangers' pool. False
   * (after a 503 that closes it) when the signed-in connections are at their cap.
   */
  private signedIn(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (this.connections.signIn(req.socket)) return true;
    this.denials.record("busy", req, path);
    res.setHeader("Connection", "close");
    sendText(res, 503, "Too many open dashboard connections; close some tabs and reload.\n");
    return false;
  }

  private denied(req: IncomingMessage, reason: DenyReason, path: string): void {
    this.denials.record(reason, req, path);
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const get = req.method === "GET" || req.method === "HEAD";
    if (isSignInVisit(req, url)) return this.signInVisit(req, res, url);
    if (path === "/" && get) {
      return this.sendAsset(res, "index.html", true);
    }
    if (path.startsWith("/assets/") && get) {
      const name = path.slice("/assets/".length);
      if (this.assets.get(name) === undefined) {
        this.denied(req, "path", path);
        return sendText(res, 404, "not found\n");
      }
      return this.sendAsset(res, name, false);
    }
    if (path === "/api/rpc" && req.method === "POST") {
      const body = await this.body(req, res, RPC_MAX_BYTES);
      if (body === undefined) return;
      const answer = await answerRpc(body, this.deps.run, res, this.deps.log, (reason) =>
        this.denied(req, reason, `${path} ${String((body as { method?: unknown }).method).slice(0, 64)}`),
      );
      return sendJson(res, 200, answer);
    }
    if (path === "/api/events" && get) {
      const goalId = url.searchParams.get("goal_id") ?? undefined;
      try {
        await openEventStream(res, goalId, this.deps.run, this.deps.log);
      } catch (e) {
        const err = toRpcError(e, this.deps.log);
        sendJson(res, err.data?.code === "not_found" ? 404 : 400, { error: err });
      }
      return;
    }
    if (path === "/api/goals" && req.method === "POST") {
      const body = await this.body(req, res, this.deps.config.ui.maxUploadMb * MIB);
      if (body === undefined) return;
      return submitWithUploads(body, this.deps, res);
    }
    if (path === "/api/downloads" && req.method === "POST") {
      const body = await this.body(req, res, RPC_MAX_BYTES);
      if (body === undefined) return;
      return sendDownloadTicket(res, this.deps.rt, body, this.tickets, () => this.denied(req, "path", path));
    }
    if (path.startsWith("/download/") && get) {
      const ticket = path.slice("/download/".length);
      // The ticket (only the page, with its key, could get one) signs the connection in: a
      // stranger's would be closed after the sign-in window or pushed out by any local
      // user's idle sockets, cutting a download that takes longer. Before it is spent: a
      // 503 at the signed-in cap leaves it for the retry. A HEAD answers the GET's headers
      // without spending it: a download manager (some browsers too) asks one first, and the
      // GET that follows must still get the file.
      const open = this.tickets.peek(ticket);
      if (open !== undefined && !this.signedIn(req, res, "/download/…")) return;
      const d = req.method === "HEAD" ? open : this.tickets.take(ticket);
      if (d === undefined) {
        this.denied(req, "ticket", "/download/…");
        return sendText(
          res,
          404,
          "This download link was used already or has expired; download the file again from the dashboard.\n",
        );
      }
      return sendOutput(res, this.deps.rt, encodeURIComponent(d.goalId), encodeURIComponent(d.name), () =>
        this.denied(req, "path", "/download/…"),
      );
    }
    const outputs = /^\/api\/goals\/([^/]+)\/outputs(?:\/(.+))?$/.exec(path);
    if (outputs && get) {
      const [, goal, name] = outputs;
      if (name === undefined) return sendOutputList(res, this.deps.rt, goal as string);
      return sendOutput(res, this.deps.rt, goal as string, name, () => this.denied(req, "path", path));
    }
    if (path.startsWith("/api/")) return sendError(res, 404, "not_found", `no route ${req.method} ${path}`);
    this.denied(req, "path", path);
    sendText(res, 404, "not found\n");
  }

  /**
   * A sign-in link: its code is spent and traded for the session cookie and the page key
   * (guard.ts), in a page whose script (signin.js) keeps the key in the dashboard's origin's
   * storage and replaces itself with `/` (the hash route kept), which takes the code out of
   * the address bar and the tab's history. That page also serves a link opened from another
   * site's page (aido ui --open's hand-off), where a redirect would stay cross-site and the
   * SameSite=Strict cookie would not go with it: the script's navigation is the dashboard's
   * own. A browser already signed in that opens a spent link again (a reload, its history)
   * just goes on to `/`, given no key: its page has it.
   */
  private signInVisit(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const code = url.searchParams.get("code") ?? "";
    const fresh = this.codes.valid(code);
    if (!fresh && !hasSession(req, this.keys)) {
      this.codes.spend(code); // a code that was open but expired goes now
      this.refuse(req, res, signInLinkSpent(), "/?code=…");
      return;
    }
    // At the signed-in cap: 503, and the code stays open for a retry once a tab is closed.
    // A spent link with the cookie alone goes on to `/` and, as the page's files, signs
    // nothing in.
    if (fresh && !this.signedIn(req, res, "/?code=…")) return;
    if (fresh && this.codes.spend(code)) {
      const page = `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="${PAGE_KEY_META}" content="${pageKey(this.token)}"><title>Aido</title><script src="/assets/${SIGN_IN_SCRIPT}"></script><p>Signing in to the Aido dashboard…</p><noscript>The Aido dashboard needs JavaScript.</noscript>\n`;
      res.writeHead(200, {
        "Set-Cookie": `${cookieName(this.port)}=${sessionValue(this.token)}; HttpOnly; SameSite=Strict; Path=/`,
        "Content-Type": "text/html; charset=utf-8",
        "Content-Length": Buffer.byteLength(page),
      });
      res.end(page);
      return;
    }
    const site = req.headers["sec-fetch-site"];
    if (site === "cross-site" || site === "same-site") {
      // Opened from another site's page: a redirect would stay cross-site (no cookie with it).
      const page = `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=/"><title>Aido</title><p>Signed in. <a href="/">Open the dashboard</a></p>\n`;
      res.writeHead(200, {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Length": Buffer.byteLength(page),
      });
      res.end(page);
      return;
    }
    res.writeHead(303, { Location: "/", "Content-Length": 0 });
    res.end();
  }

  private sendAsset(res: ServerResponse, name: string, shell: boolean): void {
    const asset = this.assets.get(name);
    if (asset === undefined) {
      if (shell) {
        sendText(res, 503, "The dashboard's page is not built: run `npm run build`.\n");
        return;
      }
      sendText(res, 404, "not found\n");
      return;
    }
    res.writeHead(200, { "Content-Type": asset.type, "Content-Length": asset.body.length });
    res.end(asset.body);
  }

  /** The JSON body, or undefined after answering 413/400. */
  private async body(req: IncomingMessage, res: ServerResponse, max: number): Promise<unknown> {
    try {
      return await readJsonBody(req, max);
    } catch (e) {
      if (!(e instanceof BodyError)) throw e;
      res.setHeader("Connection", "close");
      sendError(res, e.status, e.status === 413 ? "too_large" : "invalid_input", e.message);
      return undefined;
    }
  }
}
