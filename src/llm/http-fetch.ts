// llm/http-fetch.ts — the fetch the provider SDKs (Anthropic, OpenAI, the embedder) call,
// over node:http / node:https with keep-alive agents instead of Node's bundled undici
// fetch. Why: the SDKs' HTTP path was the largest single CPU cost of an agent turn, and
// about 0.3 ms of it per call was undici's fetch machinery and web streams, not the
// request itself. This is a faithful fetch for what the SDKs send and read:
//
// - Request: a string or URL (a Request object is refused), any method, headers as
//   Headers / record / pairs, a body of string, bytes, URLSearchParams, Blob, FormData
//   (serialised by the platform's own Response), ReadableStream or async iterable. Like
//   fetch it adds `accept: */*`, `accept-encoding: gzip, deflate` and a content-type for
//   string / form bodies when the caller set none.
// - Response: status, statusText, every header (repeated ones appended) and `url`. An
//   event stream (text/event-stream) is a real `Response` whose body yields each chunk as
//   it arrives, so streamed text deltas reach the agent as they come; any other body is
//   buffered before fetch resolves (the SDKs read those whole at once, and a buffered body
//   is the cheapest) and handed out as a BufferedResponse (buffered-response.ts: the same
//   interface without undici's web streams; not `instanceof Response`). gzip, deflate and br bodies are decoded as fetch does,
//   and like Node's fetch at most 5 codings stacked on one answer.
// - Bounded, unlike fetch: past BODY_LIMITS decoded bytes (a gzip bomb, a body that never
//   ends) the call fails as a broken body does, `TypeError("terminated", { cause })` with a
//   ResponseTooLarge cause that names the cap, and the socket is destroyed; an answer
//   labelled with more codings than BODY_LIMITS.codings fails the same way before a byte of
//   it is decoded. A provider base
//   URL may point at a self-hosted server or a proxy someone else controls, and one answer
//   must not be able to take the daemon's memory and every goal with it.
// - Errors as undici's fetch reports them, because that is what the SDKs classify: an
//   abort rejects (or errors the body) with the signal's reason, a DOMException named
//   AbortError by default (the SDKs' timeout and user abort); a failure before the
//   response is `TypeError("fetch failed", { cause })` and a connection lost mid-body
//   `TypeError("terminated", { cause })`, which the SDKs and failure.ts call connection
//   errors, so retry.ts retries them exactly as before.
// - A request that failed before its socket connected (nothing listening, no such host, TLS
//   refused) never reached a server: neverSent says so, and the budget refunds its call. One
//   aborted (its attempt timed out) before it connected, the SDK reports with no cause to
//   mark: reachOf tells the retry policy that its attempt connected nowhere.
// - Redirects are not followed: a 3xx is handed back as it is, and the SDKs report it as
//   an HTTP error that is not retried. Provider APIs do not redirect, and following one
//   would send the API key wherever the Location header points. `redirect: "error"`
//   rejects as fetch does.
// - Like Node 20's fetch, no proxy variable (HTTPS_PROXY and friends) is read.
//
// One keep-alive agent per protocol is shared by every client in the process: no cap on
// sockets per host (the inference semaphore bounds calls in flight), idle sockets are
// unref'd by Node (they keep no process alive) and closed after 4 s idle, undici's default,
// or sooner when the server's Keep-Alive header says so. An aborted request destroys its
// socket, so nothing half-read goes back to the pool.

import { AsyncLocalStorage } from "node:async_hooks";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import zlib from "node:zlib";
import { BufferedResponse } from "./buffered-response.js";

/** How long an idle keep-alive socket is kept (undici's default keepAliveTimeout). */
const IDLE_SOCKET_MS = 4_000;

const httpAgent = new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: "lifo" });
const httpsAgent = new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: "lifo" });

/** Statuses whose response has no body (fetch's "null body status"). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** Backpressure on a streamed body: the socket is paused once this much is unread. */
const STREAM_QUEUE: QueuingStrategy<Uint8Array> = { highWaterMark: 64 * 1024, size: (c) => c.byteLength };

/**
 * The most decoded bytes read from one answer. Generous on purpose; they only stop what no
 * provider sends:
 * - buffered (JSON) answers, 32 MiB: the largest real ones are an embedding batch (128
 *   inputs of up to 8192 dimensions as JSON floats, about 23 MB) and a Messages/Chat answer
 *   at the highest output caps (128k tokens of text, a few MB of JSON);
 * - event streams, 64 MiB in total: every token delta is an event with about 150 bytes of
 *   framing, so a 128k-token answer is about 20 MB on the wire, and the SDKs keep the whole
 *   answer as it streams, so an endless stream grows memory even if each event is small;
 * - one line of an event stream, 1 MiB: the longest real line is one event's JSON (a
 *   message_start, a tool call's argument fragment), a few KB. The SDKs' line decoders
 *   hold an unfinished line and search it again as chunks come: one endless line costs
 *   memory and CPU long before the total cap (a stream of zeros took seconds to reach it);
 * - content codings stacked on one answer, 5 (Node's fetch has the same cap): each is a
 *   decoder with its own buffers the body passes through, and no provider sends more than
 *   one. A header of 3,000 "gzip" over a 93 KB body took two minutes of CPU and 120 MiB
 *   for an 11-byte answer, and the byte caps only count what comes out of the last one.
 */
export const BODY_LIMITS = {
  buffered: 32 * 1024 * 1024,
  stream: 64 * 1024 * 1024,
  line: 1024 * 1024,
  codings: 5,
} as const;

/** Why a call failed when its answer passed BODY_LIMITS (the cause of fetch's TypeError). */
export class ResponseTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number, streamed: boolean, what: "answer" | "line" | "codings" = "answer") {
    const on = what === "line" ? "one line of a streamed" : streamed ? "a streamed" : "a buffered";
    super(
      what === "codings"
        ? `the answer is labelled with more than ${limit} content codings (content-encoding), the cap on ` +
            "a provider answer; the server at this base URL does not answer like a provider (a decoder chain bomb)"
        : `the ${what} passed ${limit / (1024 * 1024)} MiB decoded, the cap on ${on} provider answer; ` +
            "the server at this base URL does not answer like a provider (a compression bomb or an endless body)",
    );
    this.name = "ResponseTooLarge";
    this.limit = limit;
  }
}

/** The ResponseTooLarge in e's cause chain, however the SDK wrapped it (bounded: a chain may loop). */
export function responseTooLarge(e: unknown): ResponseTooLarge | undefined {
  return inCauses(e, (at) => (at instanceof ResponseTooLarge ? at : undefined));
}

/** The first error of e's cause chain that `pick` takes (bounded: a chain may loop). */
function inCauses<T>(e: unknown, pick: (at: Error) => T | undefined): T | undefined {
  let at = e;
  for (let depth = 0; depth < 8 && at instanceof Error; depth++) {
    const found = pick(at);
    if (found !== undefined) return found;
    at = at.cause;
  }
  return undefined;
}

/** The errors of requests that failed before their socket connected (see the header). */
const unsent = new WeakSet<object>();
/** Whether e (or an error in its cause chain) is a request that never reached a server. */
export function neverSent(e: unknown): boolean {
  return inCauses(e, (at) => (unsent.has(at) ? true : undefined)) ?? false;
}

/** What the requests made inside one attempt (reachOf) did: any made, any connected. */
interface AttemptReach {
  requested: boolean;
  connected: boolean;
}
const attemptReach = new AsyncLocalStorage<AttemptReach>();

/**
 * Run one attempt of a provider call (llm/retry.ts); `unsent()` says, once it failed,
 * whether it made requests here and none of them connected. An attempt aborted (its
 * timeout) while its socket was still connecting, or its TLS handshake still going, rejects
 * with the SDK's own abort or timeout error, which carries no cause to mark (neverSent):
 * counted as a timeout the provider may have billed, each attempt at a host that drops
 * the connection was charged its bound. False when no request went through this fetch
 * (another fetch cannot say): the attempt counts as sent.
 */
export function reachOf<T>(attempt: () => Promise<T>): { result: Promise<T>; unsent: () => boolean } {
  const reach: AttemptReach = { requested: false, connected: false };
  return { result: attemptReach.run(reach, attempt), unsent: () => reach.requested && !reach.connected };
}

type OutgoingBody = string | Uint8Array | AsyncIterable<Uint8Array> | null;

/** The fetch to pass as the SDKs' `fetch` option. */
export async function httpFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  if (typeof input !== "string" && !(input instanceof URL)) {
    throw new TypeError("http-fetch takes a URL string or URL, not a Request object");
  }
  const url = typeof input === "string" ? new URL(input) : input;
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`http-fetch: unsupported protocol ${url.protocol}`);
  }
  if ("dispatcher" in init) {
    // undici's own option (a proxy agent, say): silently ignoring it would change where requests go.
    throw new TypeError("http-fetch does not take an undici dispatcher");
  }
  const method = (init.method ?? "GET").toUpperCase();
  const headers = outgoingHeaders(init.headers);
  const body = await outgoingBody(init.body, headers);
  if (body !== null && (method === "GET" || method === "HEAD")) {
    throw new TypeError("Request with GET/HEAD method cannot have body.");
  }
  const signal = init.signal ?? undefined;
  if (signal?.aborted) throw abortReason(signal);
  headers.accept ??= "*/*";
  headers["accept-encoding"] ??= "gzip, deflate";
  return send(url, method, headers, body, signal, init.redirect ?? "follow");
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: OutgoingBody,
  signal: AbortSignal | undefined,
  redirect: NonNullable<RequestInit["redirect"]>,
): Promise<Response> {
  /** The attempt this request is part of (reachOf), told whether it connected. */
  const reach = attemptReach.getStore();
  if (reach) reach.requested = true;
  return new Promise<Response>((resolve, reject) => {
    const secure = url.protocol === "https:";
    const req = (secure ? https : http).request(url, {
      method,
      headers,
      agent: secure ? httpsAgent : httpAgent,
    });
    /** Set once the response is handed out with a live body; it takes the errors then. */
    let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
    let settled = false;
    /** Headers arrived: an error from here on is a connection lost mid-body. */
    let responded = false;
    const fail = (e: unknown) => {
      if (stream) {
        const s = stream;
        stream = undefined;
        s.error(e);
      } else if (!settled) {
        settled = true;
        reject(e);
      }
      done();
    };
    const onAbort = () => {
      fail(abortReason(signal as AbortSignal));
      req.destroy();
    };
    const done = () => signal?.removeEventListener("abort", onAbort);
    signal?.addEventListener("abort", onAbort, { once: true });

    /** The socket connected (a pooled one already was): from here the server may have the request. */
    let connected = false;
    const markConnected = () => {
      connected = true;
      if (reach) reach.connected = true;
    };
    req.on("socket", (s) => {
      if (!s.connecting) markConnected();
      else s.once(secure ? "secureConnect" : "connect", markConnected);
    });
    req.on("error", (e) => {
      const failed = new TypeError(responded ? "terminated" : "fetch failed", { cause: e });
      if (!connected) unsent.add(failed);
      fail(failed);
    });
    // Closed with no answer and no error: Node does that to a 101 on a request that asked for
    // no upgrade. Without this the call would wait for its timeout (undici fails it at once).
    req.on("close", () => {
      if (!responded) fail(new TypeError("fetch failed", { cause: new Error("closed without an answer") }));
    });
    req.on("response", (res) => {
      responded = true;
      try {
        onResponse(res);
      } catch (e) {
        // e.g. a status Response refuses (outside 200-599), a header value Headers refuses or
        // too many codings: nothing was handed out yet, so the fetch itself rejects.
        stream = undefined;
        fail(new TypeError("fetch failed", { cause: e }));
        req.destroy();
      }
    });
    const onResponse = (res: IncomingMessage) => {
      if (
        redirect === "error" &&
        res.statusCode !== undefined &&
        res.statusCode >= 300 &&
        res.statusCode < 400
      ) {
        req.destroy();
        return fail(new TypeError("fetch failed", { cause: new Error("unexpected redirect") }));
      }
      const status = res.statusCode ?? 0;
      const init: ResponseInit = {
        status,
        statusText: res.statusMessage ?? "",
        headers: incomingHeaders(res),
      };
      if (NULL_BODY_STATUS.has(status) || method === "HEAD") {
        res.on("error", () => {});
        res.on("close", done);
        res.resume();
        const response = withURL(new Response(null, init), url);
        settled = true;
        return resolve(response);
      }
      const source = decoded(res);
      // A connection lost mid-body: Node destroys the message with "aborted" (ECONNRESET).
      const lost = (e: unknown) => fail(new TypeError("terminated", { cause: e }));
      source.on("error", lost);
      if (source !== res) res.on("error", lost);
      /** Decoded bytes so far (and in the current line of a stream); past a cap the call fails. */
      let received = 0;
      let line = 0;
      let overCap = false;
      const over = (cap: ResponseTooLarge): true => {
        overCap = true;
        fail(new TypeError("terminated", { cause: cap }));
        req.destroy();
        if (source !== res) source.destroy();
        return true;
      };
      const capped = (chunk: Buffer, limit: number, streamed: boolean): boolean => {
        if (overCap) return true;
        received += chunk.byteLength;
        if (received > limit) return over(new ResponseTooLarge(limit, streamed));
        if (!streamed) return false;
        // The SDKs' event decoders hold a line until it ends (BODY_LIMITS.line).
        const first = lineBreak(chunk, "first");
        if (first === -1) line += chunk.byteLength;
        else if (line + first > BODY_LIMITS.line) line += first;
        else line = chunk.byteLength - 1 - lineBreak(chunk, "last");
        if (line > BODY_LIMITS.line) return over(new ResponseTooLarge(BODY_LIMITS.line, true, "line"));
        return false;
      };
      if (isEventStream(res)) {
        const bodyStream = new ReadableStream<Uint8Array>(
          {
            start(c) {
              stream = c;
            },
            pull() {
              source.resume();
            },
            cancel() {
              stream = undefined;
              done();
              req.destroy();
            },
          },
          STREAM_QUEUE,
        );
        source.on("data", (chunk: Buffer) => {
          if (!stream || capped(chunk, BODY_LIMITS.stream, true)) return;
          stream.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((stream.desiredSize ?? 0) <= 0) source.pause();
        });
        source.on("end", () => {
          const s = stream;
          stream = undefined;
          done();
          s?.close();
        });
        const response = withURL(new Response(bodyStream, init), url);
        settled = true;
        return resolve(response);
      }
      const parts: Buffer[] = [];
      source.on("data", (chunk: Buffer) => {
        if (capped(chunk, BODY_LIMITS.buffered, false)) parts.length = 0;
        else parts.push(chunk);
      });
      source.on("end", () => {
        if (settled || overCap) return;
        let response: Response;
        try {
          const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
          response = new BufferedResponse(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
            status,
            statusText: init.statusText ?? "",
            headers: init.headers as Headers,
            url: url.href,
          });
        } catch (e) {
          return fail(new TypeError("fetch failed", { cause: e }));
        }
        settled = true;
        done();
        resolve(response);
      });
    };
    writeBody(req, body, fail);
  });
}

function writeBody(req: http.ClientRequest, body: OutgoingBody, fail: (e: unknown) => void): void {
  if (body === null) return void req.end();
  if (typeof body === "string" || body instanceof Uint8Array) return void req.end(body);
  (async () => {
    for await (const chunk of body) {
      if (req.destroyed) return;
      if (!req.write(chunk)) await new Promise((ok) => req.once("drain", ok));
    }
    req.end();
  })().catch((e) => {
    fail(new TypeError("fetch failed", { cause: e }));
    req.destroy();
  });
}

/** The body decoded as fetch decodes it (codings applied in reverse order, unknown ones kept). */
function decoded(res: IncomingMessage): Readable {
  const coding = res.headers["content-encoding"];
  if (!coding) return res;
  const codings = coding
    .toLowerCase()
    .split(",")
    .map((c) => c.trim())
    .filter((c) => c !== "");
  if (codings.length > BODY_LIMITS.codings) throw new ResponseTooLarge(BODY_LIMITS.codings, false, "codings");
  let out: Readable = res;
  for (const c of codings.reverse()) {
    const decoder =
      c === "gzip" || c === "x-gzip"
        ? zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH })
        : c === "deflate"
          ? zlib.createInflate({
              flush: zlib.constants.Z_SYNC_FLUSH,
              finishFlush: zlib.constants.Z_SYNC_FLUSH,
            })
          : c === "br"
            ? zlib.createBrotliDecompress({
                flush: zlib.constants.BROTLI_OPERATION_FLUSH,
                finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH,
              })
            : undefined;
    if (!decoder) return out;
    const from = out;
    from.on("error", (e) => decoder.destroy(e));
    out = from.pipe(decoder);
  }
  return out;
}

/** Where the first or last CR or LF is in chunk, or -1. */
function lineBreak(chunk: Buffer, which: "first" | "last"): number {
  const lf = which === "first" ? chunk.indexOf(10) : chunk.lastIndexOf(10);
  const cr = which === "first" ? chunk.indexOf(13) : chunk.lastIndexOf(13);
  if (lf === -1 || cr === -1) return Math.max(lf, cr);
  return which === "first" ? Math.min(lf, cr) : Math.max(lf, cr);
}

function isEventStream(res: IncomingMessage): boolean {
  return /^\s*text\/event-stream/i.test(res.headers["content-type"] ?? "");
}

function incomingHeaders(res: IncomingMessage): Headers {
  const h = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) h.append(raw[i] as string, raw[i + 1] as string);
  return h;
}

function outgoingHeaders(init: RequestInit["headers"]): Record<string, string> {
  // No prototype: a header named "constructor" is not already "in" the object.
  const out: Record<string, string> = Object.create(null);
  if (!init) return out;
  const add = (k: string, v: string) => {
    const key = k.toLowerCase();
    out[key] = key in out ? `${out[key]}, ${v}` : v;
  };
  if (init instanceof Headers) {
    for (const [k, v] of init) add(k, v);
  } else if (Array.isArray(init) || Symbol.iterator in init) {
    for (const pair of init as Iterable<readonly string[]>) {
      if (pair.length !== 2) throw new TypeError("http-fetch: a header pair must have a name and a value");
      add(pair[0] as string, pair[1] as string);
    }
  } else for (const [k, v] of Object.entries(init)) if (v !== undefined) add(k, String(v));
  return out;
}

/** The request body as bytes, text or a chunk source, with the content-type fetch would add. */
async function outgoingBody(
  body: RequestInit["body"],
  headers: Record<string, string>,
): Promise<OutgoingBody> {
  if (body === null || body === undefined) return null;
  if (typeof body === "string") {
    headers["content-type"] ??= "text/plain;charset=UTF-8";
    headers["content-length"] = String(Buffer.byteLength(body));
    return body;
  }
  if (body instanceof URLSearchParams) {
    headers["content-type"] ??= "application/x-www-form-urlencoded;charset=UTF-8";
    const text = body.toString();
    headers["content-length"] = String(Buffer.byteLength(text));
    return text;
  }
  if (ArrayBuffer.isView(body) || body instanceof ArrayBuffer) {
    const bytes = ArrayBuffer.isView(body)
      ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
      : new Uint8Array(body);
    headers["content-length"] = String(bytes.byteLength);
    return bytes;
  }
  if (body instanceof Blob || body instanceof FormData) {
    // The platform's own encoder: multipart boundaries and Blob types exactly as fetch sends them.
    const encoded = new Response(body);
    const type = encoded.headers.get("content-type");
    if (type !== null) headers["content-type"] ??= type;
    const bytes = new Uint8Array(await encoded.arrayBuffer());
    headers["content-length"] = String(bytes.byteLength);
    return bytes;
  }
  if (body instanceof ReadableStream || Symbol.asyncIterator in body) {
    delete headers["content-length"];
    return body as unknown as AsyncIterable<Uint8Array>;
  }
  throw new TypeError("http-fetch: unsupported request body type");
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

function withURL(response: Response, url: URL): Response {
  Object.defineProperty(response, "url", { value: url.href });
  return response;
}
