// daemon/ui/http.ts — how the dashboard answers: the security headers every response
// carries, JSON and text answers, and reading a JSON body under a size cap (a body over
// the cap is refused as it streams in, never buffered whole).

import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";

export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export function securityHeaders(res: ServerResponse, noStore: boolean): void {
  res.setHeader("Content-Security-Policy", CSP);
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("X-Frame-Options", "DENY");
  // Another page (another local port's, say) that opens the dashboard in a window keeps no
  // handle on it (no navigating its tab, no counting its frames), and none of the
  // dashboard's answers can be loaded into another origin's page.
  res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
  res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
  if (noStore) res.setHeader("Cache-Control", "no-store");
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** `{"error": {code, message}}` for /api routes other than /api/rpc. */
export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

export class BodyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The request's body parsed as JSON; BodyError 413 past `maxBytes`, 400 when it does not parse. */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > maxBytes) {
      reject(new BodyError(413, `request body over ${maxBytes} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > maxBytes) {
        over = true;
        chunks.length = 0;
        reject(new BodyError(413, `request body over ${maxBytes} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
      if (over) return;
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch (e) {
        reject(new BodyError(400, `the body is not JSON: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  });
}

/** 400 naming the body's first problem and where it is. */
export function sendInvalid(res: ServerResponse, error: z.ZodError): void {
  const i = error.issues[0];
  const field = i
    ? [...i.path, ...(i.code === "unrecognized_keys" ? [i.keys[0]] : [])].join(".") || "body"
    : "body";
  sendError(res, 400, "invalid_input", `${field}: ${i?.message ?? "invalid"}`);
}
