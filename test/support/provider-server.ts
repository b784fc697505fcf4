// test/support/provider-server.ts — THE scripted LLM provider every agent test uses. A
// real HTTP server on 127.0.0.1 that speaks the Anthropic Messages API (POST /v1/messages)
// and OpenAI Chat Completions (POST /v1/chat/completions), JSON and streaming, so the real
// SDK clients talk to it over real HTTP (point ANTHROPIC_BASE_URL at `url`,
// OPENAI_BASE_URL / DEEPSEEK_BASE_URL / AIDO_OPENAI_COMPAT_BASE_URL at `openaiURL`,
// OLLAMA_HOST at `url`).
//
// Each agent gets its own script, chosen by a marker the test controls — usually a string
// in the system prompt:
//
//   const server = await startProviderServer();
//   server.script("name: writer", [
//     turn.toolUse("file_write", { path: "/output/a.md", content: "hi" }),
//     turn.text("done"),
//   ]);
//
// Turns are consumed in order; a turn may also be a function of the request (to answer
// from what the agent sent). The server records every request and the most requests it
// ever had in flight at once.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createGzip, gzipSync } from "node:zlib";
import {
  anthropicError,
  anthropicJson,
  anthropicSse,
  openaiError,
  openaiJson,
  openaiSse,
  type WireAnswer,
} from "./provider-wire.js";

export interface ScriptedUsage {
  input_tokens?: number;
  output_tokens?: number;
}

export interface ScriptedCall {
  name: string;
  input?: Record<string, unknown>;
  /** Sent instead of JSON.stringify(input): use to send broken JSON on purpose. */
  rawArguments?: string;
  id?: string;
}

interface TurnBase {
  /** Wait this long before answering (the request counts as in flight meanwhile). */
  delayMs?: number;
  /**
   * Answer only once this settles (after delayMs): a latch the test opens when its scenario is
   * where it wants the answer, instead of a delay that a busy machine outruns.
   */
  until?: Promise<unknown>;
}
interface AnswerBase extends TurnBase {
  stop?: string;
  /** The answer's id (default msg_<n> / chatcmpl_<n>): a self-hosted server may let the model shape it. */
  id?: string;
  usage?: ScriptedUsage;
  /** Streaming only: send this many SSE events, then stall with the connection open. */
  stallAfterEvents?: number;
  /** Streaming only: send this many SSE events, then end the response (a dropped stream). */
  cutAfterEvents?: number;
  /**
   * Send part of the answer, then destroy the socket (a connection lost mid-body): this
   * many SSE events when streaming, half the JSON otherwise.
   */
  dropMidBody?: { afterEvents: number };
  /** Compress the answer with gzip (as real providers do when the client accepts it). */
  gzip?: boolean;
}
export type Turn =
  | (AnswerBase & { kind: "text"; text: string })
  | (AnswerBase & { kind: "tool_use"; calls: ScriptedCall[]; text?: string })
  | (TurnBase & {
      kind: "error";
      status: number;
      message?: string;
      retryAfter?: number;
      retryAfterMs?: number;
    })
  /** Never answers; the request stays open until the client gives up or the server closes. */
  | { kind: "hang" }
  /**
   * A hostile answer: a 200 (JSON or event stream, as the request asked) whose body is
   * `chunk` sent `times` times (Infinity: until the client leaves), with backpressure, and
   * labelled gzip when `gzip` (a chunk of gzip members of zeros makes a compression bomb),
   * or with the content-encoding `encoding` as given.
   */
  | { kind: "flood"; chunk: Buffer; times: number; gzip?: boolean; encoding?: string };

export type TurnSource = Turn | ((req: RecordedRequest) => Turn);

/** Builders for turns; stop names are Anthropic's and map to OpenAI finish reasons. */
export const turn = {
  text: (text: string, opts: Omit<Extract<Turn, { kind: "text" }>, "kind" | "text"> = {}): Turn => ({
    kind: "text",
    text,
    ...opts,
  }),
  toolUse: (
    name: string,
    input: Record<string, unknown>,
    opts: Omit<Extract<Turn, { kind: "tool_use" }>, "kind" | "calls"> = {},
  ): Turn => ({ kind: "tool_use", calls: [{ name, input }], ...opts }),
  toolUses: (
    calls: ScriptedCall[],
    opts: Omit<Extract<Turn, { kind: "tool_use" }>, "kind" | "calls"> = {},
  ): Turn => ({
    kind: "tool_use",
    calls,
    ...opts,
  }),
  error: (status: number, opts: Omit<Extract<Turn, { kind: "error" }>, "kind" | "status"> = {}): Turn => ({
    kind: "error",
    status,
    ...opts,
  }),
  hang: (): Turn => ({ kind: "hang" }),
  flood: (chunk: Buffer, times: number, opts: { gzip?: boolean; encoding?: string } = {}): Turn => ({
    kind: "flood",
    chunk,
    times,
    ...opts,
  }),
};

/** A latch for a turn's `until`: its answer waits until the test opens it. */
export interface Latch {
  readonly promise: Promise<void>;
  open(): void;
}

export function latch(): Latch {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export interface RecordedRequest {
  seq: number;
  api: "anthropic" | "openai";
  path: string;
  headers: Record<string, string>;
  body: Json;
  model: string;
  /** System prompt (Anthropic `system`, or OpenAI system/developer messages joined). */
  system: string;
  stream: boolean;
  toolNames: string[];
  /** Label of the script that answered, if any. */
  script?: string;
  /** Milliseconds since the server started. */
  receivedAt: number;
  /**
   * How the exchange ended, once it has: "answered" (the whole answer was handed to the
   * connection) or "left" (the client closed it first, e.g. it gave the call up).
   */
  ended?: "answered" | "left";
}

/** A JSON body from the wire: untyped on purpose, tests assert on its exact shape. */
// biome-ignore lint/suspicious/noExplicitAny: see above
export type Json = any;

export type Match = string | RegExp | ((req: RecordedRequest) => boolean);

export interface Script {
  readonly label: string;
  readonly requests: RecordedRequest[];
  readonly turnsLeft: number;
}

export interface ProviderServerOptions {
  /** Keys the server accepts; a request with another key gets a real-looking 401. */
  apiKeys?: { anthropic?: string; openai?: string };
  /** Models the server knows; others get a 404 like the real APIs'. Default: any. */
  models?: string[];
}

export interface ProviderServer {
  /** Base for Anthropic and Ollama: http://127.0.0.1:PORT */
  readonly url: string;
  /** Base for OpenAI-style clients: http://127.0.0.1:PORT/v1 */
  readonly openaiURL: string;
  readonly requests: RecordedRequest[];
  /** Requests no script could answer (they got HTTP 418 naming the problem). */
  readonly unmatched: RecordedRequest[];
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** TCP connections ever accepted, and those open now (keep-alive reuse shows here). */
  readonly connections: number;
  readonly openConnections: number;
  script(match: Match, turns: TurnSource[], opts?: { label?: string; repeatLast?: boolean }): Script;
  /** Answers requests no script matched. */
  fallback(fn: (req: RecordedRequest) => Turn): void;
  requestsMatching(match: Match): RecordedRequest[];
  /** Forget scripts, requests and counters (keeps options). */
  reset(): void;
  close(): Promise<void>;
}

interface ScriptState {
  label: string;
  match: Match;
  turns: TurnSource[];
  next: number;
  repeatLast: boolean;
  requests: RecordedRequest[];
}

export async function startProviderServer(options: ProviderServerOptions = {}): Promise<ProviderServer> {
  const t0 = Date.now();
  let scripts: ScriptState[] = [];
  let fallback: ((req: RecordedRequest) => Turn) | undefined;
  const requests: RecordedRequest[] = [];
  const unmatched: RecordedRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let connections = 0;
  let openConnections = 0;

  const matches = (m: Match, r: RecordedRequest) =>
    typeof m === "string" ? r.system.includes(m) : m instanceof RegExp ? m.test(r.system) : m(r);

  function pickTurn(r: RecordedRequest): Turn {
    const candidates = scripts.filter((s) => matches(s.match, r));
    const live = candidates.find((s) => s.next < s.turns.length || (s.repeatLast && s.turns.length > 0));
    if (live) {
      const source = live.turns[Math.min(live.next, live.turns.length - 1)]!;
      live.next++;
      live.requests.push(r);
      r.script = live.label;
      return typeof source === "function" ? source(r) : source;
    }
    if (fallback) return fallback(r);
    unmatched.push(r);
    const why =
      candidates.length > 0 ? `script "${candidates[0]!.label}" has no turn left` : "no script matches";
    return {
      kind: "error",
      status: 418,
      message: `provider-server: ${why} for request #${r.seq} (system: ${JSON.stringify(r.system.slice(0, 120))})`,
    };
  }

  const server: Server = createServer((req, res) => {
    let done = false;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const finish = () => {
      if (done) return;
      done = true;
      inFlight--;
    };
    res.on("close", finish);
    handle(req, res).catch((e) => {
      if (res.destroyed) return;
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `provider-server bug: ${(e as Error).message}` } }));
    });
  });

  server.on("connection", (socket) => {
    connections++;
    openConnections++;
    socket.on("close", () => openConnections--);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const path = (req.url ?? "").split("?")[0]!;
    const api = path.endsWith("/v1/messages")
      ? "anthropic"
      : path.endsWith("/chat/completions")
        ? "openai"
        : null;
    if (req.method !== "POST" || api === null) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `provider-server: no route ${req.method} ${path}` } }));
      return;
    }
    let body: Json;
    try {
      body = JSON.parse(raw);
    } catch {
      return sendError(res, api, 400, "provider-server: body is not JSON");
    }
    const r = record(api, path, req, body);
    res.once("close", () => {
      r.ended = res.writableFinished ? "answered" : "left";
    });
    // Anthropic takes x-api-key or a bearer token (the SDK sends the latter); OpenAI a bearer.
    const bearer = req.headers.authorization?.replace(/^Bearer /, "");
    const key = api === "anthropic" ? (req.headers["x-api-key"] ?? bearer) : bearer;
    const wanted = api === "anthropic" ? options.apiKeys?.anthropic : options.apiKeys?.openai;
    if (wanted !== undefined && key !== wanted) {
      const msg =
        api === "anthropic"
          ? "invalid x-api-key"
          : `Incorrect API key provided: ${String(key).slice(0, 3)}***.`;
      return sendError(res, api, 401, msg);
    }
    if (options.models && !options.models.includes(r.model)) {
      return sendError(res, api, 404, `model: ${r.model}`);
    }
    const t = pickTurn(r);
    if (t.kind === "hang") return; // res stays open; "close" fires when the client leaves
    if (t.kind === "flood") {
      res.writeHead(200, {
        "content-type": r.stream ? "text/event-stream" : "application/json",
        ...(t.gzip || t.encoding ? { "content-encoding": t.encoding ?? "gzip" } : {}),
      });
      for (let i = 0; i < t.times && !res.destroyed; i++) {
        if (!res.write(t.chunk)) {
          await new Promise<void>((ok) => {
            const go = () => {
              res.off("drain", go);
              res.off("close", go);
              ok();
            };
            res.on("drain", go);
            res.on("close", go);
          });
        }
      }
      if (!res.destroyed) res.end();
      return;
    }
    if (t.delayMs) {
      await new Promise((ok) => setTimeout(ok, t.delayMs));
      if (res.destroyed) return;
    }
    if (t.until) {
      await t.until.catch(() => {});
      if (res.destroyed) return;
    }
    if (t.kind === "error") {
      const headers: Record<string, string> = {};
      if (t.retryAfter !== undefined) headers["retry-after"] = String(t.retryAfter);
      if (t.retryAfterMs !== undefined) headers["retry-after-ms"] = String(t.retryAfterMs);
      return sendError(res, api, t.status, t.message ?? `scripted ${t.status}`, headers);
    }
    const answer = toAnswer(t, r);
    const created = Math.floor(Date.now() / 1000);
    const gzip = t.gzip === true ? createGzip() : undefined;
    if (!r.stream) {
      const json = JSON.stringify(api === "anthropic" ? anthropicJson(answer) : openaiJson(answer, created));
      const bytes = gzip ? gzipSync(json) : Buffer.from(json);
      res.writeHead(200, {
        "content-type": "application/json",
        "request-id": `req_${r.seq}`,
        "content-length": String(bytes.length),
        ...(gzip ? { "content-encoding": "gzip" } : {}),
      });
      if (t.dropMidBody) {
        res.write(bytes.subarray(0, bytes.length >> 1));
        setTimeout(() => res.destroy(), 20);
        return;
      }
      res.end(bytes);
      return;
    }
    const events =
      api === "anthropic"
        ? anthropicSse(answer)
        : openaiSse(answer, created, body.stream_options?.include_usage === true);
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    });
    // Each event is flushed on its own, so a gzip stream still arrives event by event.
    const out = gzip ?? res;
    if (gzip) gzip.pipe(res);
    const send = (e: string) =>
      new Promise<void>((ok) =>
        gzip ? gzip.write(e, () => gzip.flush(() => ok())) : res.write(e, () => ok()),
      );
    for (const [i, e] of events.entries()) {
      if (res.destroyed) return;
      if (t.stallAfterEvents !== undefined && i >= t.stallAfterEvents) return; // open until the client leaves
      if (t.cutAfterEvents !== undefined && i >= t.cutAfterEvents) break;
      if (t.dropMidBody && i >= t.dropMidBody.afterEvents) {
        setTimeout(() => res.destroy(), 20);
        return;
      }
      await send(e);
    }
    out.end();
  }

  function record(
    api: "anthropic" | "openai",
    path: string,
    req: IncomingMessage,
    body: Json,
  ): RecordedRequest {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
    const r: RecordedRequest = {
      seq: requests.length + 1,
      api,
      path,
      headers,
      body,
      model: String(body?.model ?? ""),
      system: systemOf(api, body),
      stream: body?.stream === true,
      toolNames: (Array.isArray(body?.tools) ? body.tools : []).map((t: Json) =>
        String(t?.name ?? t?.function?.name),
      ),
      receivedAt: Date.now() - t0,
    };
    requests.push(r);
    return r;
  }

  let idCounter = 0;
  function toAnswer(t: Extract<Turn, { kind: "text" | "tool_use" }>, r: RecordedRequest): WireAnswer {
    const text = t.kind === "text" ? t.text : (t.text ?? "");
    const calls =
      t.kind === "tool_use"
        ? t.calls.map((c, i) => ({
            id: c.id ?? `${r.api === "anthropic" ? "toolu" : "call"}_${r.seq}_${i}`,
            name: c.name,
            args: c.rawArguments ?? JSON.stringify(c.input ?? {}),
          }))
        : [];
    const outChars = text.length + calls.reduce((n, c) => n + c.name.length + c.args.length, 0);
    return {
      id: t.id ?? `${r.api === "anthropic" ? "msg" : "chatcmpl"}_${++idCounter}`,
      model: r.model,
      text,
      calls,
      stop: t.stop ?? (t.kind === "tool_use" ? "tool_use" : "end_turn"),
      usage: {
        input_tokens: t.usage?.input_tokens ?? Math.ceil(JSON.stringify(r.body).length / 4),
        output_tokens: t.usage?.output_tokens ?? Math.max(1, Math.ceil(outChars / 4)),
      },
    };
  }

  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    openaiURL: `${url}/v1`,
    requests,
    unmatched,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get connections() {
      return connections;
    },
    get openConnections() {
      return openConnections;
    },
    script(match, turns, opts = {}) {
      const s: ScriptState = {
        label: opts.label ?? (typeof match === "string" ? match : String(match)),
        match,
        turns: [...turns],
        next: 0,
        repeatLast: opts.repeatLast ?? false,
        requests: [],
      };
      scripts.push(s);
      return {
        label: s.label,
        requests: s.requests,
        get turnsLeft() {
          return Math.max(0, s.turns.length - s.next);
        },
      };
    },
    fallback(fn) {
      fallback = fn;
    },
    requestsMatching(match) {
      return requests.filter((r) => matches(match, r));
    },
    reset() {
      scripts = [];
      fallback = undefined;
      requests.length = 0;
      unmatched.length = 0;
      maxInFlight = inFlight;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

function systemOf(api: "anthropic" | "openai", body: Json): string {
  if (api === "anthropic") {
    if (typeof body?.system === "string") return body.system;
    if (Array.isArray(body?.system)) return body.system.map((b: Json) => String(b?.text ?? "")).join("\n");
    return "";
  }
  const msgs: Json[] = Array.isArray(body?.messages) ? body.messages : [];
  return msgs
    .filter((m) => m?.role === "system" || m?.role === "developer")
    .map((m) =>
      typeof m.content === "string" ? m.content : (m.content ?? []).map((p: Json) => p?.text ?? "").join(""),
    )
    .join("\n");
}

function sendError(
  res: ServerResponse,
  api: "anthropic" | "openai",
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(
    JSON.stringify(api === "anthropic" ? anthropicError(status, message) : openaiError(status, message)),
  );
}
