// tools/web-fetch.ts — web_fetch {url}: the one tool that reaches the network, from the
// host (goal containers have none). Every hop is judged before it is made: the host
// against the agent's network grants (ctx.allowNetwork), and every address it resolves to
// against the address rules of net-address.ts (loopback, private, link-local, ... refused
// unless a grant names that address literally). The connection goes to the address that
// was vetted (pinned through `lookup`), so a second DNS answer cannot rebind it. Redirects
// are followed by hand, each one judged like the first. Size and time are capped.

import { lookup as dnsLookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { z } from "zod";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { ToolContext, ToolDef, ToolResult } from "../gate/types.js";
import { htmlToText } from "./html-text.js";
import { blockedReason, grantHostOf, hostAddressReason } from "./net-address.js";
import { boundOutput } from "./output.js";

const URL_MAX = 2048;

const input = z.strictObject({
  url: z
    .string()
    .max(URL_MAX)
    .refine((u) => !/[\0\s]/.test(u), "url must not contain whitespace or NUL")
    .refine(
      (u) => URL.canParse(u) && ["http:", "https:"].includes(new URL(u).protocol),
      "url must be http:// or https://",
    ),
});
type Input = z.infer<typeof input>;

/** The host as network grants spell it: lower case, IPv6 in brackets, no port. */
export function grantHostOfUrl(url: URL): string {
  return url.hostname.toLowerCase();
}

/** The port a URL connects to: its own, else its scheme's (443 for https, 80 for http). */
export function portOfUrl(url: URL): number {
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

/** How a host name becomes addresses: the system resolver (dns.lookup, all answers, verbatim). */
export type HostResolver = (host: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: HostResolver = (host) => dnsLookup(host, { all: true, verbatim: true });

/** `resolveHost` replaces the system resolver (a test's stand-in DNS answers). */
export function webFetchTool(
  cfg: Config["webFetch"],
  resolveHost: HostResolver = systemResolver,
): ToolDef<Input> {
  return {
    name: "web_fetch",
    description:
      "Fetch an http(s) URL from the host and return its text (HTML reduced to readable text). " +
      "Only hosts your network grants name; private and loopback addresses are refused.",
    input,
    mutates: false,
    async needs(i) {
      return [
        { kind: "tool", name: "web_fetch" },
        { kind: "network", host: grantHostOfUrl(new URL(i.url)), port: portOfUrl(new URL(i.url)) },
      ];
    },
    run: (i, ctx) => fetchText(new URL(i.url), cfg, ctx, resolveHost),
  };
}

interface Fetched {
  url: URL;
  status: number;
  contentType: string;
  body: Buffer;
  truncated: boolean;
}

async function fetchText(
  start: URL,
  cfg: Config["webFetch"],
  ctx: ToolContext,
  resolveHost: HostResolver,
): Promise<ToolResult> {
  const timeout = AbortSignal.timeout(cfg.timeoutMs);
  const signal = ctx.signal ? AbortSignal.any([timeout, ctx.signal]) : timeout;
  let url = start;
  let res: Fetched | { redirect: URL };
  for (let hop = 0; ; hop++) {
    const address = await vet(url, ctx, hop === 0 ? "url" : "redirect", resolveHost);
    try {
      res = await request(url, address, cfg.maxBytes, signal);
    } catch (e) {
      if (timeout.aborted)
        throw new AidoError(
          ErrorCode.toolFailed,
          `web_fetch: ${url.href} timed out after ${cfg.timeoutMs} ms`,
        );
      if (e instanceof AidoError) throw e;
      throw new AidoError(ErrorCode.toolFailed, `web_fetch: ${url.href} failed: ${errorMessage(e)}`, {
        url: url.href,
      });
    }
    if (!("redirect" in res)) break;
    if (hop + 1 > cfg.maxRedirects) {
      throw new AidoError(
        ErrorCode.toolFailed,
        `web_fetch: more than ${cfg.maxRedirects} redirects (last to ${res.redirect.href})`,
      );
    }
    url = res.redirect;
  }
  return {
    output: boundOutput(render(res), ctx.outputMaxBytes),
    data: {
      url: res.url.href,
      status: res.status,
      content_type: res.contentType,
      bytes: res.body.length,
      truncated: res.truncated,
    },
  };
}

/** Judge one hop: scheme, host grant, and every address the host resolves to. */
async function vet(
  url: URL,
  ctx: ToolContext,
  what: string,
  resolveHost: HostResolver,
): Promise<{ address: string; family: 4 | 6 }> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new AidoError(ErrorCode.policyDenied, `web_fetch: ${what} ${url.href} is not http(s)`, {
      url: url.href,
    });
  }
  const host = grantHostOfUrl(url);
  const port = portOfUrl(url);
  if (!ctx.allowNetwork?.(host, port)) {
    throw new AidoError(
      ErrorCode.capabilityDenied,
      `web_fetch: ${what} to host ${host} port ${port} refused: no network grant allows it, or it is not the host a human approved for this call (fetch it in a call of its own)`,
      {
        host,
        url: url.href,
      },
    );
  }
  const bare = host.startsWith("[") ? host.slice(1, -1) : host;
  const addresses = isIP(bare) ? [{ address: bare, family: isIP(bare) }] : await resolve(bare, resolveHost);
  for (const a of addresses) {
    const why = blockedReason(a.address) ?? hostAddressReason(a.address);
    if (why !== null && !ctx.allowNetwork(grantHostOf(a.address), port, { literal: true })) {
      throw new AidoError(
        ErrorCode.policyDenied,
        `web_fetch: ${what} host ${host} is ${a.address} (${why}); only a grant naming that address allows it`,
        { host, address: a.address },
      );
    }
  }
  const first = addresses[0]!;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

async function resolve(
  host: string,
  resolveHost: HostResolver,
): Promise<{ address: string; family: number }[]> {
  try {
    const all = await resolveHost(host);
    if (all.length === 0) throw new Error("no addresses");
    return all;
  } catch (e) {
    throw new AidoError(ErrorCode.toolFailed, `web_fetch: cannot resolve ${host}: ${errorMessage(e)}`, {
      host,
    });
  }
}

function request(
  url: URL,
  pinned: { address: string; family: 4 | 6 },
  maxBytes: number,
  signal: AbortSignal,
): Promise<Fetched | { redirect: URL }> {
  const lookup: LookupFunction = (_host, opts, cb) => {
    if ((opts as { all?: boolean }).all)
      (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [pinned]);
    else cb(null, pinned.address, pinned.family);
  };
  const mod = url.protocol === "https:" ? https : http;
  const bare = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return new Promise((resolvePromise, reject) => {
    const req = mod.request(
      {
        protocol: url.protocol,
        hostname: bare,
        port: url.port === "" ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: "GET",
        agent: false,
        lookup,
        signal,
        ...(url.protocol === "https:" && isIP(bare) === 0 ? { servername: bare } : {}),
        headers: {
          host: url.host,
          "user-agent": "aido-web-fetch/1",
          accept: "text/html,text/*,application/json;q=0.9,*/*;q=0.5",
          "accept-encoding": "identity",
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (status >= 300 && status < 400 && location) {
          res.destroy();
          if (!URL.canParse(location, url.href)) {
            reject(
              new AidoError(ErrorCode.toolFailed, `web_fetch: ${url.href} redirected to an invalid location`),
            );
            return;
          }
          resolvePromise({ redirect: new URL(location, url) });
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        const done = (truncated: boolean) =>
          resolvePromise({
            url,
            status,
            contentType: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(chunks),
            truncated,
          });
        res.on("data", (chunk: Buffer) => {
          if (size + chunk.length > maxBytes) {
            chunks.push(chunk.subarray(0, maxBytes - size));
            size = maxBytes;
            res.destroy();
            done(true);
            return;
          }
          chunks.push(chunk);
          size += chunk.length;
        });
        res.on("end", () => done(false));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const TEXTUAL =
  /^(text\/|application\/(json|xml|xhtml\+xml|javascript|ld\+json|rss\+xml|atom\+xml)|[^;]*\+json|[^;]*\+xml)/i;

function render(r: Fetched): string {
  const type = r.contentType.split(";")[0]!.trim().toLowerCase() || "unknown";
  const head = `URL: ${r.url.href}\nStatus: ${r.status}\nContent-Type: ${type}\n`;
  const cut = r.truncated
    ? `[body truncated: stopped reading at ${r.body.length} bytes (web_fetch.max_bytes)]\n`
    : "";
  if (type !== "unknown" && !TEXTUAL.test(type)) {
    return `${head}${cut}\n[binary content of type ${type}, ${r.body.length} bytes, not shown]`;
  }
  const text = decode(r.body, r.contentType);
  const body = type === "text/html" || type === "application/xhtml+xml" ? htmlToText(text) : text;
  return `${head}${cut}\n${body}`;
}

function decode(body: Buffer, contentType: string): string {
  const charset = /charset=["']?([\w-]+)/i.exec(contentType)?.[1] ?? "utf-8";
  try {
    return new TextDecoder(charset).decode(body);
  } catch {
    return new TextDecoder("utf-8").decode(body);
  }
}
