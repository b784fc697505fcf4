// daemon/ui/guard.ts — who may talk to the dashboard, checked before any route runs.
// In order: the Host header (DNS rebinding: a page of evil.example whose name now
// resolves to 127.0.0.1 sends Host evil.example), the Origin header when there is one
// (another site's page in the user's browser) and Sec-Fetch-Site (a page of another
// local port embedding the dashboard's files, which sends no Origin), then the credential
// (the session cookie or a Bearer token; a sign-in link's code is checked by its route),
// then, for a cookie, the page key beside it on everything but the page's own files:
// browsers send 127.0.0.1's cookies to every port of it, so a server of another local
// user on another port receives the cookie as soon as the user's browser loads anything
// from it, and could replay it; the page key (an X-Aido-Key header) is kept where only
// the dashboard's origin reads it (token.ts pageKey, signin.ts in the page). Then for
// POST the content type (a cross-site form can only send urlencoded, multipart or
// text/plain) and an Origin or Bearer header (a browser always sends Origin on POST; a
// script without it must show the token). Each refusal is audited as ui.denied,
// rate-limited per reason (DenialLog) so a flood of bad requests cannot flood the audit
// log.

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { AuditLog } from "../../security/audit.js";
import { pageKey, sameSecret, sessionValue } from "./token.js";

declare module "../../security/audit-events.js" {
  interface AuditPayloads {
    /** A dashboard request refused (daemon/ui/guard.ts); at most one per reason per minute. */
    "ui.denied": { reason: DenyReason; remote: string; method: string; path: string; suppressed?: number };
  }
}

export type DenyReason =
  | "host"
  | "origin"
  | "token"
  /** The session cookie without the page key beside it, on a request past the page's own files. */
  | "page_key"
  | "content_type"
  | "method"
  | "params"
  | "path"
  /** A connection closed for not signing in in time, or pushed out by a newer one (connections.ts). */
  | "idle"
  /** A signed-in request refused because the signed-in connections are at their cap. */
  | "busy"
  /** A download address whose ticket is unknown, spent or lapsed (download-tickets.ts). */
  | "ticket";

export interface Refusal {
  status: number;
  reason: DenyReason;
  message: string;
}

export interface GuardKeys {
  port: number;
  token: string;
}

/** The header the dashboard's page sends its page key in (token.ts pageKey). */
const PAGE_KEY_HEADER = "x-aido-key";

export function cookieName(port: number): string {
  return `aido_ui_${port}`;
}

export function allowedOrigins(port: number): string[] {
  return [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
}

const NOT_SIGNED_IN = "Not signed in to the Aido dashboard. Run `aido ui` and open the URL it prints.\n";

const NO_PAGE_KEY =
  "The session cookie alone opens only the dashboard's page: this request also needs the page key (X-Aido-Key) that the sign-in link gave the dashboard's page. Run `aido ui` and open the URL it prints.\n";

/** The checks that come before routing; undefined when the request may go on. */
export function checkRequest(req: IncomingMessage, keys: GuardKeys, url: URL): Refusal | undefined {
  // One Host, and a request line in origin-form (`/path`): Node keeps the first of two Host
  // headers, and an absolute-form line (`GET http://evil.example/`) names its own host,
  // which HTTP says wins over the header.
  const hosts = req.headersDistinct.host ?? [];
  const host = hosts.length === 1 && (req.url ?? "").startsWith("/") ? hosts[0] : undefined;
  if (host !== `127.0.0.1:${keys.port}` && host !== `localhost:${keys.port}`) {
    return { status: 421, reason: "host", message: "Host header is not this dashboard's address\n" };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !allowedOrigins(keys.port).includes(origin)) {
    return { status: 403, reason: "origin", message: "cross-origin request refused\n" };
  }
  // Another port of this machine is the same site, so SameSite=Strict still sends the
  // cookie with its <img>, <video> or <script>, which carry no Origin. The browser says where
  // a request comes from: only the dashboard's own page, or an address typed or opened
  // from outside the browser (`none`), may go on.
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none" && !isSignInNavigation(req, url)) {
    return {
      status: 403,
      reason: "origin",
      message: `request from another site refused (Sec-Fetch-Site: ${site.slice(0, 20)})\n`,
    };
  }
  const bearer = bearerOf(req);
  const viaBearer = bearer !== undefined && sameSecret(bearer, keys.token);
  if (!isSignInVisit(req, url) && !viaBearer && !hasSession(req, keys)) {
    return { status: 401, reason: "token", message: NOT_SIGNED_IN };
  }
  if (!viaBearer && !isSignInVisit(req, url) && !isPageFile(req, url) && !hasPageKey(req, keys)) {
    return { status: 401, reason: "page_key", message: NO_PAGE_KEY };
  }
  if (req.method === "POST") {
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json") {
      return { status: 415, reason: "content_type", message: "POST bodies must be application/json\n" };
    }
    if (origin === undefined && !viaBearer) {
      return {
        status: 403,
        reason: "origin",
        message: "a POST needs an Origin header or the Bearer token\n",
      };
    }
  }
  return undefined;
}

/**
 * The page's own files (the HTML shell and /assets/), which hold nothing of the daemon's:
 * the cookie alone opens them, so that a tab can load the page that holds the page key.
 * And a download address (/download/<ticket>): a browser download carries no header of the
 * page's, and its one-time ticket only the page, with its key, could get.
 */
function isPageFile(req: IncomingMessage, url: URL): boolean {
  return (
    (req.method === "GET" || req.method === "HEAD") &&
    (url.pathname === "/" || url.pathname.startsWith("/assets/") || url.pathname.startsWith("/download/"))
  );
}

/**
 * The request shows a credential that signs its connection in (connections.ts): the
 * Bearer token, or the cookie with the page key (or with an open download ticket: the
 * download route signs its connection in, server.ts). The cookie alone opens the page's
 * files but signs nothing in: a stolen cookie's connections would otherwise fill the
 * signed-in cap and keep the user's page out.
 */
export function signsIn(req: IncomingMessage, keys: GuardKeys): boolean {
  const bearer = bearerOf(req);
  if (bearer !== undefined && sameSecret(bearer, keys.token)) return true;
  return hasSession(req, keys) && hasPageKey(req, keys);
}

/** The request carries the page key of the current token, once. */
function hasPageKey(req: IncomingMessage, keys: GuardKeys): boolean {
  const given = req.headersDistinct[PAGE_KEY_HEADER] ?? [];
  return given.length === 1 && sameSecret(given[0] as string, pageKey(keys.token));
}

/** `GET /?code=…`: a sign-in link, whose code its route checks (server.ts). */
export function isSignInVisit(req: IncomingMessage, url: URL): boolean {
  return req.method === "GET" && url.pathname === "/" && url.searchParams.has("code");
}

/**
 * A sign-in link opened as a top-level page from another site's page: `aido ui --open`
 * hands the browser a page of its own (a file in $AIDO_HOME, so that the link is on no
 * command line) that goes on to the link, and the browser calls that cross-site. The code
 * is the credential here: another site can send a browser to `/?code=`, but a code it does
 * not have is refused, and nothing else is reachable this way.
 */
export function isSignInNavigation(req: IncomingMessage, url: URL): boolean {
  return (
    isSignInVisit(req, url) &&
    req.headers["sec-fetch-mode"] === "navigate" &&
    req.headers["sec-fetch-dest"] === "document"
  );
}

/** A sign-in link whose code was used already, has expired or was never issued. */
export function signInLinkSpent(): Refusal {
  return {
    status: 401,
    reason: "token",
    message:
      "This Aido dashboard sign-in link was used already or has expired. Run `aido ui` for a new one.\n",
  };
}

function bearerOf(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(h);
  return m?.[1];
}

export function hasSession(req: IncomingMessage, keys: GuardKeys): boolean {
  const name = cookieName(keys.port);
  const expected = sessionValue(keys.token);
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    if (sameSecret(part.slice(eq + 1).trim(), expected)) return true;
  }
  return false;
}

const MINUTE_MS = 60_000;

/**
 * ui.denied entries, at most one per reason per minute. A refusal inside the minute is
 * counted, and the next entry of that reason says how many were left out.
 */
export class DenialLog {
  private readonly last = new Map<DenyReason, { at: number; suppressed: number }>();

  constructor(
    private readonly audit: AuditLog,
    private readonly now: () => number = Date.now,
  ) {}

  record(reason: DenyReason, req: IncomingMessage, path: string): void {
    this.append(reason, req.socket, (req.method ?? "").slice(0, 16), path.slice(0, 200));
  }

  /** A connection refused before (or without) a request of its own. */
  recordConnection(reason: DenyReason, socket: Socket): void {
    this.append(reason, socket, "", "");
  }

  private append(reason: DenyReason, socket: Socket, method: string, path: string): void {
    const t = this.now();
    const prev = this.last.get(reason);
    if (prev && t - prev.at < MINUTE_MS) {
      prev.suppressed++;
      return;
    }
    this.last.set(reason, { at: t, suppressed: 0 });
    this.audit.record("ui.denied", {
      reason,
      remote: socket.remoteAddress ?? "unknown",
      method,
      path,
      ...(prev && prev.suppressed > 0 ? { suppressed: prev.suppressed } : {}),
    });
  }
}
