// egress/proxy-forms.ts — what the egress proxy accepts as a request, read strictly: the
// CONNECT authority (host:port, [v6]:port), a plain request's absolute http:// URI (no
// userinfo, a Host header that names the same host and port), the host as network grants
// spell it (lower case, one trailing dot dropped, IPv6 canonical in brackets, an IP literal
// flagged; numeric forms such as 2130706433 or 0x7f.1 refused, since a resolver reads them
// as addresses), Basic proxy credentials, and the ClientHello's SNI against the CONNECT host.
// A request that fails any of these is a Refusal: the status, stage and reason the proxy
// answers and records.

import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import type { EgressStage, EgressTarget } from "./types.js";

/** Thrown inside a connection's handling: refuse with this status, stage and reason. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly stage: EgressStage,
    reason: string,
  ) {
    super(reason);
  }
}

const NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/** A host as the client wrote it -> the target as grants spell it. */
export function targetOf(rawHost: string, port: number): EgressTarget {
  let host = rawHost.toLowerCase();
  if (host.startsWith("[") && host.endsWith("]")) {
    const inner = host.slice(1, -1);
    // A zone id (fe80::1%eth0) names an interface of the proxy's host, never a peer; node's
    // isIP takes it, the URL parser does not.
    if (isIP(inner) !== 6 || inner.includes("%"))
      throw new Refusal(400, "request", `"${shown(rawHost)}" is not an IPv6 address (without a zone id)`);
    return { host: new URL(`http://[${inner}]/`).hostname, port, literal: true };
  }
  if (isIP(host) === 4) return { host, port, literal: true };
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (!NAME.test(host) || host.length > 253)
    throw new Refusal(400, "request", `"${shown(rawHost)}" is not a host name`);
  if (/^(\d+|0x[0-9a-f]*)$/.test(host.split(".").at(-1) ?? ""))
    throw new Refusal(
      400,
      "request",
      `"${shown(rawHost)}" is a numeric form of an address; write an address dotted (a.b.c.d)`,
    );
  return { host, port, literal: false };
}

function portOf(text: string): number {
  const port = /^[1-9]\d{0,4}$/.test(text) ? Number(text) : 0;
  if (port < 1 || port > 65535) throw new Refusal(400, "request", `port "${shown(text)}" is not 1..65535`);
  return port;
}

/** CONNECT's authority-form: host:port or [v6]:port, the port required. */
export function parseAuthority(authority: string): EgressTarget {
  const m = /^(\[[^\]]*\]|[^:[\]/@\s]+):([^:]*)$/.exec(authority);
  if (!m) throw new Refusal(400, "request", `CONNECT needs host:port, got "${shown(authority)}"`);
  return targetOf(m[1] as string, portOf(m[2] as string));
}

/** A plain request's absolute URI (http only), checked against its Host header. */
export function parseAbsoluteUri(req: IncomingMessage): { target: EgressTarget; path: string } {
  const raw = req.url ?? "";
  if (!/^http:\/\//i.test(raw)) {
    throw new Refusal(
      400,
      "request",
      /^https:\/\//i.test(raw)
        ? "https:// is reached through CONNECT, not as a plain request"
        : `a proxy request is CONNECT host:port or an absolute http:// URI, got "${shown(raw)}"`,
    );
  }
  const te = req.headers["transfer-encoding"];
  if (te !== undefined && te.trim().toLowerCase() !== "chunked")
    throw new Refusal(400, "request", `Transfer-Encoding "${shown(te)}" is not relayed (only chunked)`);
  const authority = /^http:\/\/([^/?#]*)/i.exec(raw)?.[1] ?? "";
  if (authority.includes("@"))
    throw new Refusal(400, "request", "credentials in the URL (user@host) are refused");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Refusal(400, "request", `"${shown(raw)}" is not a URL`);
  }
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority);
  if (!m || m[1] === "") throw new Refusal(400, "request", `no host in "${shown(raw)}"`);
  const port = m[2] === undefined || m[2] === "" ? 80 : portOf(m[2]);
  const target = targetOf(m[1] as string, port);
  const host = req.headers.host;
  if (host !== undefined) {
    const hm = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host.trim());
    const hostPort = hm?.[2] === undefined ? 80 : Number(hm[2]);
    const same = hm !== null && hostPort === port && sameHost(hm[1] as string, target.host);
    if (!same)
      throw new Refusal(
        400,
        "request",
        `the Host header "${shown(host)}" is not the URI's host ${target.host}:${port}`,
      );
  }
  return { target, path: `${url.pathname}${url.search}` };
}

function sameHost(raw: string, host: string): boolean {
  try {
    return targetOf(raw, 1).host === host;
  } catch {
    return false;
  }
}

/**
 * The SNI (lower case, a trailing dot dropped: sni.ts) must name the CONNECT host (the same,
 * targetOf); a hello without one only for an address.
 */
export function checkServerName(serverName: string | null, target: EgressTarget): void {
  if (serverName === null) {
    if (target.literal) return;
    throw new Refusal(
      403,
      "tls",
      `the ClientHello names no server (SNI); a tunnel to ${target.host} must name it`,
    );
  }
  if (serverName !== target.host)
    throw new Refusal(
      403,
      "tls",
      `the ClientHello names ${serverName}, not ${target.host} the CONNECT asked for`,
    );
}

/** Proxy-Authorization: Basic base64(user:password). */
export function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!m) return undefined;
  const text = Buffer.from(m[1] as string, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Client text in a reason: printable, at most 80 characters. */
function shown(s: string): string {
  const p = s.replace(/[^\x20-\x7e]/g, "?");
  return p.length > 80 ? `${p.slice(0, 80)}…` : p;
}
