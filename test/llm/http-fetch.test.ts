// The SDKs' HTTP path (llm/http-fetch.ts): the real Anthropic and OpenAI clients against
// the scripted provider over real sockets — streaming deltas as they arrive, aborts and
// timeouts, connections lost mid-body, refused connections, compressed answers, answers past
// the size caps (a gzip bomb, a body that never ends, thousands of stacked codings), keep-alive
// reuse, and no socket left behind — then the fetch itself against a bare server for what
// the provider server does not exercise (header and body forms, redirects, codings).

import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { httpFetch, responseTooLarge } from "../../src/llm/http-fetch.js";
import { createClient } from "../../src/llm/providers.js";
import type { TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { ask, FAST, failureOf, homeFor, KEYS, withInference } from "./harness.js";

let server: ProviderServer;
let home: TempHome;
beforeAll(async () => {
  server = await startProviderServer({ apiKeys: { anthropic: KEYS.anthropic, openai: KEYS.openai } });
  home = homeFor(server);
});
afterEach(() => server.reset());
afterAll(async () => {
  await server.close();
  home.cleanup();
});

const LONG_TEXT = "abcdefghijklmnopqrstuvwxyz0123456789";

async function until(cond: () => boolean, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((ok) => setTimeout(ok, 5));
  }
}

describe.each(["anthropic/claude-test", "openai/gpt-test"])("%s over http-fetch", (ref) => {
  it("hands text deltas to the agent while the server is still sending, and an abort ends the call and its socket", async () => {
    server.script("stream", [turn.text(LONG_TEXT, { stallAfterEvents: 4 })]);
    const abort = new AbortController();
    const deltas: string[] = [];
    const call = createClient(home.config, ref, FAST).complete(
      ask("stream", { stream: true, signal: abort.signal, onText: (d) => deltas.push(d) }),
    );
    // The server has stalled mid-answer: whatever the agent saw arrived before the end.
    await until(() => deltas.length > 0);
    expect(server.inFlight).toBe(1);
    expect(LONG_TEXT.startsWith(deltas.join(""))).toBe(true);
    const open = server.openConnections;
    abort.abort();
    const err = await failureOf(call);
    expect(err.code).toBe("cancelled");
    expect(server.requests).toHaveLength(1);
    // The aborted request's socket is destroyed, not returned to the pool half-read.
    await until(() => server.inFlight === 0 && server.openConnections === open - 1);
  });

  it("closes the socket of a call aborted before its answer came", async () => {
    server.script("wait", [turn.hang()]);
    const abort = new AbortController();
    const call = createClient(home.config, ref, FAST).complete(ask("wait", { signal: abort.signal }));
    await until(() => server.inFlight === 1);
    const open = server.openConnections;
    abort.abort();
    expect((await failureOf(call)).code).toBe("cancelled");
    await until(() => server.inFlight === 0 && server.openConnections === open - 1);
  });

  it("classifies a stalled stream as a timeout, retries it, and leaves no socket behind", async () => {
    server.script("stall", [turn.text(LONG_TEXT, { stallAfterEvents: 4 })], { repeatLast: true });
    const config = withInference(home.config, { requestTimeoutMs: 200, maxRetries: 1 });
    const err = await failureOf(createClient(config, ref, FAST).complete(ask("stall", { stream: true })));
    expect(err.code).toBe("provider_failed");
    expect(err.details.failure).toBe("timeout");
    expect(err.message).toMatch(/no answer within 200 ms after 2 attempts/);
    await until(() => server.inFlight === 0);
  });

  it("retries a stream whose connection is lost mid-body as a connection error", async () => {
    server.script("drop", [
      turn.text(LONG_TEXT, { dropMidBody: { afterEvents: 4 } }),
      turn.text("second try"),
    ]);
    const retries: string[] = [];
    const r = await createClient(home.config, ref, {
      ...FAST,
      onRetry: (e) => retries.push(e.failure.kind),
    }).complete(ask("drop", { stream: true }));
    expect(r.content).toEqual([{ type: "text", text: "second try" }]);
    expect(retries).toEqual(["connection"]);
  });

  it("retries a JSON answer whose connection is lost mid-body as a connection error", async () => {
    server.script("drop-json", [
      turn.text(LONG_TEXT, { dropMidBody: { afterEvents: 0 } }),
      turn.text("whole"),
    ]);
    const retries: string[] = [];
    const r = await createClient(home.config, ref, {
      ...FAST,
      onRetry: (e) => retries.push(e.failure.kind),
    }).complete(ask("drop-json"));
    expect(r.content).toEqual([{ type: "text", text: "whole" }]);
    expect(retries).toEqual(["connection"]);
  });

  it("fails a gzip bomb at the cap, JSON and streamed, without holding it and without a retry", async () => {
    // 16 gzip members of 64 MiB of zeros each: about 1 MB on the wire, 1 GiB decoded.
    const member = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    for (const stream of [false, true]) {
      server.reset();
      server.script("bomb", [turn.flood(member, 16, { gzip: true })], { repeatLast: true });
      const before = process.memoryUsage().rss;
      const err = await failureOf(createClient(home.config, ref, FAST).complete(ask("bomb", { stream })));
      const grown = process.memoryUsage().rss - before;
      expect(err.code).toBe("provider_failed");
      expect(err.details.failure).toBe("other");
      // Zeros have no line break: a stream fails at the cap on one line.
      expect(err.message).toContain(stream ? "line passed 1 MiB decoded" : "answer passed 32 MiB decoded");
      expect(grown).toBeLessThan(400 * 1024 * 1024);
      expect(server.requests).toHaveLength(1);
      await until(() => server.inFlight === 0);
    }
  });

  it("fails an answer that never ends at the cap, JSON and streamed, and closes its socket", async () => {
    const event = ref.startsWith("anthropic")
      ? `event: ping\ndata: ${JSON.stringify({ type: "ping", pad: "a".repeat(2000) })}\n\n`
      : `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 0, model: "m", choices: [{ index: 0, delta: { content: "a".repeat(2000) } }] })}\n\n`;
    const endless = { json: Buffer.from("a".repeat(64 * 1024)), sse: Buffer.from(event.repeat(512)) };
    for (const stream of [false, true]) {
      server.reset();
      server.script("endless", [turn.flood(stream ? endless.sse : endless.json, Number.POSITIVE_INFINITY)]);
      const err = await failureOf(createClient(home.config, ref, FAST).complete(ask("endless", { stream })));
      expect(err.code).toBe("provider_failed");
      expect(err.message).toContain(`answer passed ${stream ? 64 : 32} MiB decoded`);
      await until(() => server.inFlight === 0);
    }
  });

  it("refuses an answer labelled with thousands of stacked codings at once, without a retry", async () => {
    // 3,000 gzip layers over 11 bytes: 93 KB on the wire, a chain of 3,000 decoders to read.
    let chunk = Buffer.from('{"ok":true}');
    for (let i = 0; i < 3_000; i++) chunk = gzipSync(chunk);
    const encoding = Array(3_000).fill("gzip").join(",");
    for (const stream of [false, true]) {
      server.reset();
      server.script("chain", [turn.flood(chunk, 1, { encoding })], { repeatLast: true });
      const started = Date.now();
      const err = await failureOf(createClient(home.config, ref, FAST).complete(ask("chain", { stream })));
      expect(err.code).toBe("provider_failed");
      expect(err.details.failure).toBe("other");
      expect(err.message).toContain("labelled with more than 5 content codings");
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(server.requests).toHaveLength(1);
      await until(() => server.inFlight === 0);
    }
  });

  it("decodes gzip answers, JSON and streamed", async () => {
    server.script("zip", [turn.text(LONG_TEXT, { gzip: true }), turn.text(LONG_TEXT, { gzip: true })]);
    const client = createClient(home.config, ref, FAST);
    expect((await client.complete(ask("zip"))).content).toEqual([{ type: "text", text: LONG_TEXT }]);
    const deltas: string[] = [];
    const streamed = await client.complete(ask("zip", { stream: true, onText: (d) => deltas.push(d) }));
    expect(streamed.content).toEqual([{ type: "text", text: LONG_TEXT }]);
    expect(deltas.length).toBeGreaterThan(1);
    expect(server.requests[0]?.headers["accept-encoding"]).toBe("gzip, deflate");
  });

  it("honours retry-after on a 500 read through http-fetch's headers", async () => {
    server.script("busy", [turn.error(500, { retryAfterMs: 30 }), turn.text("ok")]);
    const delays: number[] = [];
    const r = await createClient(home.config, ref, {
      ...FAST,
      onRetry: (e) => delays.push(e.delayMs),
    }).complete(ask("busy"));
    expect(r.content).toEqual([{ type: "text", text: "ok" }]);
    expect(delays).toEqual([30]);
  });

  it("reuses one keep-alive connection for sequential calls", async () => {
    // A server of its own, so no other test's pooled socket is counted.
    const own = await startProviderServer();
    try {
      own.script("seq", [turn.text("one"), turn.text("two"), turn.text("three", { gzip: true })]);
      const ownHome = homeFor(own);
      try {
        const client = createClient(ownHome.config, ref, FAST);
        await client.complete(ask("seq"));
        await client.complete(ask("seq", { stream: true }));
        await client.complete(ask("seq"));
        expect(own.requests).toHaveLength(3);
        expect(own.connections).toBe(1);
      } finally {
        ownHome.cleanup();
      }
    } finally {
      await own.close();
    }
  });

  it("reports a refused connection as one the user can fix, after the retries", async () => {
    const closed = await unusedPort();
    const refused = homeFor(server, {
      ANTHROPIC_BASE_URL: `http://127.0.0.1:${closed}`,
      OPENAI_BASE_URL: `http://127.0.0.1:${closed}/v1`,
    });
    try {
      const config = withInference(refused.config, { maxRetries: 1 });
      const err = await failureOf(createClient(config, ref, FAST).complete(ask("nobody")));
      expect(err.code).toBe("provider_failed");
      expect(err.details.failure).toBe("connection");
      expect(err.details.attempts).toBe(2);
      expect(err.message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+.* after 2 attempts/);
    } finally {
      refused.cleanup();
    }
  });

  it("does not follow a redirect: the 307 is an HTTP error, not retried, and the key stays home", async () => {
    let elsewhere = 0;
    const target = await bareServer((_req, res) => {
      elsewhere++;
      res.end("{}");
    });
    const redirecting = await bareServer((_req, res) => {
      res.writeHead(307, { location: `${target.url}/v1/messages`, "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "moved" } }));
    });
    const moved = homeFor(server, {
      ANTHROPIC_BASE_URL: redirecting.url,
      OPENAI_BASE_URL: `${redirecting.url}/v1`,
    });
    try {
      const err = await failureOf(createClient(moved.config, ref, FAST).complete(ask("moved")));
      expect(err.details.status).toBe(307);
      expect(err.details.attempts).toBe(1);
      expect(elsewhere).toBe(0);
    } finally {
      moved.cleanup();
      await redirecting.close();
      await target.close();
    }
  });
});

describe("httpFetch against a bare server", () => {
  let bare: Awaited<ReturnType<typeof bareServer>>;
  let seen: { method: string; headers: IncomingMessage["headers"]; body: string }[] = [];
  let answer: (req: IncomingMessage, res: import("node:http").ServerResponse) => void;
  beforeAll(async () => {
    bare = await bareServer((req, res) => {
      const parts: Buffer[] = [];
      req.on("data", (b: Buffer) => parts.push(b));
      req.on("end", () => {
        seen.push({ method: req.method ?? "", headers: req.headers, body: Buffer.concat(parts).toString() });
        answer(req, res);
      });
    });
  });
  afterEach(() => {
    seen = [];
  });
  afterAll(() => bare.close());
  const ok = (_req: IncomingMessage, res: import("node:http").ServerResponse) => res.end("ok");

  it("sends headers given as Headers, a record or pairs, and adds what fetch adds", async () => {
    answer = ok;
    await httpFetch(bare.url, { method: "post", headers: new Headers({ "X-A": "1" }), body: "t" });
    await httpFetch(bare.url, {
      method: "POST",
      headers: { "x-b": "2", "content-type": "application/json" },
      body: "{}",
    });
    await httpFetch(bare.url, {
      headers: [
        ["x-c", "3"],
        ["X-C", "4"],
      ],
    });
    expect(seen.map((s) => s.method)).toEqual(["POST", "POST", "GET"]);
    expect(seen[0]?.headers["x-a"]).toBe("1");
    expect(seen[0]?.headers["content-type"]).toBe("text/plain;charset=UTF-8");
    expect(seen[0]?.headers.accept).toBe("*/*");
    expect(seen[1]?.headers["content-type"]).toBe("application/json");
    expect(seen[2]?.headers["x-c"]).toBe("3, 4");
  });

  it("sends bytes, form, multipart, blob and streamed bodies", async () => {
    answer = ok;
    await httpFetch(bare.url, { method: "POST", body: new TextEncoder().encode("bytes") });
    await httpFetch(bare.url, { method: "POST", body: new URLSearchParams({ a: "1 2" }) });
    const form = new FormData();
    form.append("field", "value");
    await httpFetch(bare.url, { method: "POST", body: form });
    await httpFetch(bare.url, { method: "POST", body: new Blob(["blob"], { type: "text/x-blob" }) });
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("str"));
        c.enqueue(new TextEncoder().encode("eam"));
        c.close();
      },
    });
    await httpFetch(bare.url, { method: "POST", body: stream, duplex: "half" } as RequestInit);
    expect(seen.map((s) => s.body)).toEqual([
      "bytes",
      "a=1+2",
      expect.stringContaining('name="field"\r\n\r\nvalue'),
      "blob",
      "stream",
    ]);
    expect(seen[1]?.headers["content-type"]).toBe("application/x-www-form-urlencoded;charset=UTF-8");
    expect(seen[2]?.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    expect(seen[3]?.headers["content-type"]).toBe("text/x-blob");
    expect(seen[4]?.headers["transfer-encoding"]).toBe("chunked");
  });

  it("refuses what it does not support, clearly", async () => {
    await expect(httpFetch(new Request(bare.url))).rejects.toThrow(/not a Request object/);
    await expect(httpFetch(bare.url, { method: "GET", body: "x" })).rejects.toThrow(/cannot have body/);
    await expect(httpFetch(bare.url, { dispatcher: {} } as RequestInit)).rejects.toThrow(/dispatcher/);
  });

  it("returns status, statusText, repeated headers, url, and null bodies where fetch has them", async () => {
    answer = (req, res) => {
      res.setHeader("x-multi", ["a", "b"]);
      if (req.url === "/empty") {
        res.writeHead(204, "Nothing");
        return res.end();
      }
      res.writeHead(418, "Teapot", { "content-type": "text/plain" });
      res.end("short and stout");
    };
    const r = await httpFetch(`${bare.url}/tea`);
    expect([r.status, r.statusText, r.ok, r.url]).toEqual([418, "Teapot", false, `${bare.url}/tea`]);
    expect(r.headers.get("x-multi")).toBe("a, b");
    expect(await r.text()).toBe("short and stout");
    const empty = await httpFetch(`${bare.url}/empty`);
    expect([empty.status, empty.body]).toEqual([204, null]);
  });

  it("fails a response it cannot represent instead of leaving the call hanging", async () => {
    answer = (_req, res) => {
      res.writeHead(999, { "content-type": "text/event-stream" });
      res.end("data: x\n\n");
    };
    await expect(httpFetch(bare.url)).rejects.toMatchObject({ name: "TypeError", message: "fetch failed" });
  });

  it("fails at once when the server switches protocols on a request that asked for no upgrade", async () => {
    // Node closes such a request without 'response' or 'error': the call must not wait for
    // its timeout (every retry would hold an inference slot that long). undici fails it too.
    answer = (_req, res) => {
      res.socket?.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n");
    };
    await expect(httpFetch(bare.url, { signal: AbortSignal.timeout(2_000) })).rejects.toMatchObject({
      name: "TypeError",
      message: "fetch failed",
    });
  });

  it("decodes up to 5 stacked codings and refuses a sixth as Node's fetch does", async () => {
    const layers = (n: number) => {
      let body = Buffer.from(`${n} layers`);
      for (let i = 0; i < n; i++) body = gzipSync(body);
      return body;
    };
    answer = (req, res) => {
      const n = Number((req.url ?? "").slice(1));
      res.writeHead(200, { "content-encoding": Array(n).fill("gzip").join(", ") });
      res.end(layers(n));
    };
    expect(await (await httpFetch(`${bare.url}/5`)).text()).toBe("5 layers");
    const err = await httpFetch(`${bare.url}/6`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: "TypeError", message: "fetch failed" });
    expect(responseTooLarge(err)?.message).toMatch(/labelled with more than 5 content codings/);
  });

  it("decodes gzip, deflate and br", async () => {
    const codings = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync };
    answer = (req, res) => {
      const coding = (req.url ?? "").slice(1) as keyof typeof codings;
      res.writeHead(200, { "content-encoding": coding });
      res.end(codings[coding](`plain via ${coding}`));
    };
    for (const c of Object.keys(codings)) {
      expect(await (await httpFetch(`${bare.url}/${c}`)).text()).toBe(`plain via ${c}`);
    }
  });

  it("rejects with the AbortError the SDKs recognise, before and after the request starts", async () => {
    answer = () => {}; // never answers
    const aborted = new AbortController();
    aborted.abort();
    await expect(httpFetch(bare.url, { signal: aborted.signal })).rejects.toMatchObject({
      name: "AbortError",
    });
    const later = new AbortController();
    const p = httpFetch(bare.url, { signal: later.signal });
    await until(() => seen.length === 1);
    later.abort();
    await expect(p).rejects.toMatchObject({ name: "AbortError" });
  });

  it("fails a refused connection as undici does: TypeError 'fetch failed' with the cause", async () => {
    const port = await unusedPort();
    await expect(httpFetch(`http://127.0.0.1:${port}/`)).rejects.toMatchObject({
      name: "TypeError",
      message: "fetch failed",
      cause: { code: "ECONNREFUSED" },
    });
  });
});

async function bareServer(
  handler: (req: IncomingMessage, res: import("node:http").ServerResponse) => void,
): Promise<{ url: string; close: () => Promise<void> }> {
  const s: Server = createServer(handler);
  await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: () => {
      s.closeAllConnections();
      return new Promise<void>((ok) => s.close(() => ok()));
    },
  };
}

async function unusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}
