// test/ui/fixture.ts — the dashboard over real HTTP against a real daemon (the daemon
// fixture, scripted provider): open it with ui.open as `aido ui` does, then speak raw
// HTTP/1.1 with exactly the headers a test chooses (Host, Origin, Cookie...), which
// fetch() would otherwise fill in or refuse to send.

import { readFileSync } from "node:fs";
import { request } from "node:http";
import type { DaemonFixture } from "../daemon/fixture.js";
import type { Json } from "../support/provider-server.js";

export interface UiHandle {
  /** The sign-in link ui.open gave (its code works once). */
  url: string;
  /** A fresh sign-in link (ui.open again, as a second `aido ui`). */
  signInUrl(): Promise<string>;
  port: number;
  token: string;
  tokenFile: string;
  /** Host and Origin a browser on the dashboard's page sends. */
  host: string;
  origin: string;
}

export async function openUi(fx: DaemonFixture, rotate = false): Promise<UiHandle> {
  const c = await fx.client();
  const r = await c.call("ui.open", rotate ? { rotate: true } : {});
  const token = readFileSync(r.token_file, "utf8").trim();
  return {
    url: r.url,
    signInUrl: async () => (await (await fx.client()).call("ui.open", {})).url,
    port: r.port,
    token,
    tokenFile: r.token_file,
    host: `127.0.0.1:${r.port}`,
    origin: `http://127.0.0.1:${r.port}`,
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** One request with exactly these headers (no Host unless given). */
export function raw(port: number, r: RawRequest, address = "127.0.0.1"): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: address,
        port,
        method: r.method ?? "GET",
        path: r.path,
        headers: r.headers ?? {},
        setHost: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString("utf8") });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(r.body);
  });
}

/**
 * What the dashboard's signed-in page sends with each API request: the session cookie
 * (name=value) and the page key of the sign-in page, in its header.
 */
export interface Session {
  Cookie: string;
  "X-Aido-Key": string;
}

/** The cookie and the page key a sign-in link's visit gives (the page it answers carries the key). */
export function sessionOf(visit: RawResponse): Session {
  if (visit.status !== 200) throw new Error(`sign-in visit answered ${visit.status}: ${visit.text}`);
  const set = ([] as string[]).concat(visit.headers["set-cookie"] ?? [])[0] ?? "";
  const key = /<meta name="aido-page-key" content="([A-Za-z0-9_-]+)">/.exec(visit.text)?.[1];
  if (key === undefined) throw new Error(`sign-in page without a page key: ${visit.text}`);
  return { Cookie: set.split(";")[0] as string, "X-Aido-Key": key };
}

/** The session a fresh sign-in link's visit gives. */
export async function signIn(ui: UiHandle): Promise<Session> {
  const link = new URL(await ui.signInUrl());
  return sessionOf(
    await raw(ui.port, { path: `${link.pathname}${link.search}`, headers: { Host: ui.host } }),
  );
}

/** A browser's POST /api/rpc from the dashboard's page. */
export async function rpc(
  ui: UiHandle,
  session: Session,
  method: string,
  params: unknown = {},
): Promise<RawResponse> {
  return raw(ui.port, {
    method: "POST",
    path: "/api/rpc",
    headers: { Host: ui.host, Origin: ui.origin, ...session, "Content-Type": "application/json" },
    body: JSON.stringify({ method, params }),
  });
}

export interface EventStream {
  status: number;
  /** Events received so far, with their SSE ids. */
  events: { id: number; data: Record<string, unknown> }[];
  /** Comment lines (heartbeats, the opening line). */
  comments: string[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/** GET an SSE path with the session (as the page's stream does) and parse it as it arrives. */
export function openStream(ui: UiHandle, session: Session, path: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port: ui.port, path, headers: { Host: ui.host, ...session }, setHost: false },
      (res) => {
        let buffer = "";
        let endStream: () => void = () => {};
        const stream: EventStream = {
          status: res.statusCode ?? 0,
          events: [],
          comments: [],
          ended: new Promise<void>((r) => {
            endStream = r;
          }),
          close: () => req.destroy(),
        };
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffer += chunk;
          for (let i = buffer.indexOf("\n\n"); i >= 0; i = buffer.indexOf("\n\n")) {
            const block = buffer.slice(0, i);
            buffer = buffer.slice(i + 2);
            let id = 0;
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) stream.comments.push(line.slice(1).trim());
              else if (line.startsWith("id: ")) id = Number(line.slice(4));
              else if (line.startsWith("data: ")) stream.events.push({ id, data: JSON.parse(line.slice(6)) });
            }
          }
        });
        res.on("end", () => endStream());
        res.on("close", () => endStream());
        resolve(stream);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Poll until `probe` returns a value (every 20 ms, up to `ms`). */
export async function eventually<T>(probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A POST of JSON from the dashboard's page (session and Origin), answer parsed. */
export async function postJson(
  ui: UiHandle,
  session: Session,
  path: string,
  body: unknown,
): Promise<{ status: number; json: Json }> {
  const r = await raw(ui.port, {
    method: "POST",
    path,
    headers: { Host: ui.host, Origin: ui.origin, ...session, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: JSON.parse(r.text) };
}

/** A session's header lines, for a request written byte for byte. */
export function sessionLines(s: Session): string {
  return `Cookie: ${s.Cookie}\r\nX-Aido-Key: ${s["X-Aido-Key"]}\r\n`;
}
