// test/ui/fixture.ts — the dashboard over real HTTP against a real daemon (the daemon
// fixture, scripted provider): open it with ui.open as `aido ui` does, then speak raw
// HTTP/1.1 with exactly the headers a test chooses (Host, Origin, Cookie...), which
// fetch() would otherwise fill in or refuse to send.

import { request } from "node:http";
import type { DaemonFixture } from "../daemon/fixture.js";

export interface UiHandle {
  url: string;
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
  const token = new URL(r.url).searchParams.get("token") as string;
  return {
    url: r.url,
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

/** The session cookie the token visit sets (name=value). */
export async function signIn(ui: UiHandle): Promise<string> {
  const r = await raw(ui.port, { path: `/?token=${ui.token}`, headers: { Host: ui.host } });
  if (r.status !== 303) throw new Error(`token visit answered ${r.status}: ${r.text}`);
  const set = ([] as string[]).concat(r.headers["set-cookie"] ?? [])[0] ?? "";
  return set.split(";")[0] as string;
}

/** A browser's POST /api/rpc from the dashboard's page. */
export async function rpc(
  ui: UiHandle,
  cookie: string,
  method: string,
  params: unknown = {},
): Promise<RawResponse> {
  return raw(ui.port, {
    method: "POST",
    path: "/api/rpc",
    headers: { Host: ui.host, Origin: ui.origin, Cookie: cookie, "Content-Type": "application/json" },
    body: JSON.stringify({ method, params }),
  });
}
