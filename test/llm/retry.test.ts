// Failures: what is retried (and how long we wait), what fails at once, and what the
// error tells the user to fix. Real SDKs, real HTTP, scripted failures.

import { type AddressInfo, createServer, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AidoError, ErrorCode } from "../../src/errors.js";
import { retryAfterMs } from "../../src/llm/failure.js";
import { createClient } from "../../src/llm/providers.js";
import { backoffDelay } from "../../src/llm/retry.js";
import type { TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { ask, FAST, failureOf, homeFor, KEYS, withInference } from "./harness.js";

let server: ProviderServer;
let home: TempHome;
beforeAll(async () => {
  server = await startProviderServer({
    apiKeys: { anthropic: KEYS.anthropic, openai: KEYS.openai },
    models: ["claude-test", "gpt-test"],
  });
  home = homeFor(server);
});
afterEach(() => server.reset());
afterAll(async () => {
  await server.close();
  home.cleanup();
});

describe.each(["anthropic/claude-test", "openai/gpt-test"])("%s", (ref) => {
  it("honours retry-after on a 429 and then succeeds", async () => {
    server.script("rate", [turn.error(429, { retryAfter: 1 }), turn.text("after the limit")]);
    const retries: number[] = [];
    const client = createClient(home.config, ref, { ...FAST, onRetry: (e) => retries.push(e.delayMs) });
    const t0 = performance.now();
    const r = await client.complete(ask("rate"));
    const waited = performance.now() - t0;
    expect(r.content).toEqual([{ type: "text", text: "after the limit" }]);
    expect(server.requests).toHaveLength(2);
    expect(retries).toEqual([1000]);
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(5000);
  });

  it("honours retry-after-ms over retry-after", async () => {
    server.script("rate-ms", [turn.error(429, { retryAfterMs: 300, retryAfter: 30 }), turn.text("ok")]);
    const client = createClient(home.config, ref, FAST);
    const t0 = performance.now();
    await client.complete(ask("rate-ms", { stream: true }));
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(280);
    expect(waited).toBeLessThan(3000);
  });

  it("retries 500s and a 529 with backoff until one succeeds", async () => {
    server.script("flaky", [turn.error(500), turn.error(529), turn.error(503), turn.text("finally")]);
    const r = await createClient(home.config, ref, FAST).complete(ask("flaky"));
    expect(r.content).toEqual([{ type: "text", text: "finally" }]);
    expect(server.requests).toHaveLength(4);
  });

  it("gives up after config.inference.maxRetries retries and says how many attempts it made", async () => {
    server.script("down", [turn.error(500, { message: "upstream exploded" })], { repeatLast: true });
    const config = withInference(home.config, { maxRetries: 2 });
    const err = await failureOf(createClient(config, ref, FAST).complete(ask("down")));
    expect(err.code).toBe("provider_failed");
    expect(err.message).toContain("after 3 attempts");
    expect(err.message).toContain("upstream exploded");
    expect(server.requests).toHaveLength(3);
  });

  it("retries a request that hangs past the per-request timeout", async () => {
    server.script("slow", [turn.hang(), turn.text("awake")]);
    const config = withInference(home.config, { requestTimeoutMs: 300 });
    const r = await createClient(config, ref, FAST).complete(ask("slow", { stream: true }));
    expect(r.content).toEqual([{ type: "text", text: "awake" }]);
    expect(server.requests).toHaveLength(2);
  });

  it("retries a stream that stalls after its first events (the timeout covers the whole answer)", async () => {
    server.script("stall", [
      turn.text("a long answer that stops", { stallAfterEvents: 3 }),
      turn.text("complete"),
    ]);
    const config = withInference(home.config, { requestTimeoutMs: 400 });
    const deltas: string[] = [];
    const r = await createClient(config, ref, FAST).complete(
      ask("stall", { stream: true, onText: (d) => deltas.push(d) }),
    );
    expect(r.content).toEqual([{ type: "text", text: "complete" }]);
    expect(server.requests).toHaveLength(2);
    expect(deltas.join("").endsWith("complete")).toBe(true);
  });

  it("retries a stream that ends before the answer is complete instead of returning half an answer", async () => {
    server.script("cut", [
      turn.toolUse("file_write", { path: "/output/x.md", content: "long" }, { cutAfterEvents: 4 }),
      turn.text("whole"),
    ]);
    const r = await createClient(home.config, ref, FAST).complete(ask("cut", { stream: true }));
    expect(r.content).toEqual([{ type: "text", text: "whole" }]);
    expect(server.requests).toHaveLength(2);
  });

  it("tells `resending` before each retry of an attempt the provider may have billed, and only then", async () => {
    server.script("billed", [
      turn.text("cut", { dropMidBody: { afterEvents: 1 } }),
      turn.hang(),
      turn.error(500),
      turn.text("whole"),
    ]);
    const config = withInference(home.config, { requestTimeoutMs: 300, maxRetries: 3 });
    const told: string[] = [];
    const r = await createClient(config, ref, FAST).complete(
      ask("billed", {
        stream: true,
        resending: (billed) => told.push(`${billed}@${server.requests.length}`),
      }),
    );
    expect(r.content).toEqual([{ type: "text", text: "whole" }]);
    expect(server.requests).toHaveLength(4);
    // The cut and the timeout were paid before their retries left; the 500 was a refusal.
    expect(told).toEqual(["connection@1", "timeout@2"]);
  });

  it("sends nothing more when `resending` refuses the retry", async () => {
    server.script("refused", [turn.text("cut", { dropMidBody: { afterEvents: 1 } }), turn.text("whole")]);
    const refusal = new AidoError(ErrorCode.budgetExceeded, "no room for the retry", {});
    const err = await failureOf(
      createClient(home.config, ref, FAST).complete(
        ask("refused", {
          stream: true,
          resending: () => {
            throw refusal;
          },
        }),
      ),
    );
    expect(err).toBe(refusal);
    expect(server.requests).toHaveLength(1);
  });

  it("fails with the timeout named when every attempt hangs", async () => {
    server.script("dead", [turn.hang()], { repeatLast: true });
    const config = withInference(home.config, { requestTimeoutMs: 200, maxRetries: 1 });
    const err = await failureOf(createClient(config, ref, FAST).complete(ask("dead")));
    expect(err.code).toBe("provider_failed");
    expect(err.message).toMatch(/no answer within 200 ms after 2 attempts/);
  });

  it("stops at once, without retrying, when the caller aborts", async () => {
    server.script("abort", [turn.hang()], { repeatLast: true });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const t0 = performance.now();
    const err = await failureOf(
      createClient(home.config, ref, FAST).complete(ask("abort", { signal: controller.signal })),
    );
    expect(err.code).toBe("cancelled");
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(server.requests).toHaveLength(1);
  });

  it("does not retry a 400: the request itself is wrong", async () => {
    server.script("bad", [turn.error(400, { message: "messages: field required" }), turn.text("never")]);
    const err = await failureOf(createClient(home.config, ref, FAST).complete(ask("bad")));
    expect(err.code).toBe("provider_failed");
    expect(err.message).toContain("HTTP 400");
    expect(server.requests).toHaveLength(1);
  });
});

describe("configuration errors fail at once and name what to fix", () => {
  it("a refused Anthropic key (401) names ANTHROPIC_API_KEY and is not retried", async () => {
    const wrong = homeFor(server, { ANTHROPIC_API_KEY: "sk-ant-wrong" });
    try {
      const err = await failureOf(
        createClient(wrong.config, "anthropic/claude-test", FAST).complete(ask("x")),
      );
      expect(err.code).toBe("provider_config");
      expect(err.message).toContain("anthropic");
      expect(err.message).toContain("ANTHROPIC_API_KEY");
      expect(server.requests).toHaveLength(1);
    } finally {
      wrong.cleanup();
    }
  });

  it("a refused OpenAI key (401) names OPENAI_API_KEY and is not retried", async () => {
    const wrong = homeFor(server, { OPENAI_API_KEY: "sk-wrong" });
    try {
      const err = await failureOf(
        createClient(wrong.config, "openai/gpt-test", FAST).complete(ask("x", { stream: true })),
      );
      expect(err.code).toBe("provider_config");
      expect(err.message).toContain("openai");
      expect(err.message).toContain("OPENAI_API_KEY");
      expect(server.requests).toHaveLength(1);
    } finally {
      wrong.cleanup();
    }
  });

  it("a scripted 403 is a key problem too, named for the provider that answered", async () => {
    // The server knows only the OpenAI key, so DeepSeek gets past auth with it and the script answers.
    const ds = homeFor(server, { DEEPSEEK_API_KEY: KEYS.openai });
    try {
      server.script("forbidden", [turn.error(403, { message: "not allowed for this organization" })]);
      const err = await failureOf(
        createClient(ds.config, "deepseek/gpt-test", FAST).complete(ask("forbidden")),
      );
      expect(err.code).toBe("provider_config");
      expect(err.message).toContain("deepseek/gpt-test");
      expect(err.message).toContain("DEEPSEEK_API_KEY");
      expect(err.message).toContain("not allowed for this organization");
      expect(server.requests).toHaveLength(1);
    } finally {
      ds.cleanup();
    }
  });

  it("an unknown model (404) names the model and the endpoint variable, without retrying", async () => {
    const err = await failureOf(createClient(home.config, "anthropic/claude-nope", FAST).complete(ask("x")));
    expect(err.code).toBe("provider_config");
    expect(err.message).toContain("anthropic/claude-nope");
    expect(err.message).toContain("ANTHROPIC_BASE_URL");
    expect(server.requests).toHaveLength(1);
  });

  it("a missing key fails before any request, naming the variable to set", () => {
    const bare = homeFor(server, { OPENAI_API_KEY: "" });
    try {
      expect(() => createClient(bare.config, "openai/gpt-test")).toThrow(/set OPENAI_API_KEY/);
      const noAnthropic = { ...bare.config, providers: { ...bare.config.providers, anthropic: {} } };
      expect(() => createClient(noAnthropic, "anthropic/claude-test")).toThrow(/set ANTHROPIC_API_KEY/);
      expect(server.requests).toHaveLength(0);
    } finally {
      bare.cleanup();
    }
  });

  it("openai-compat without AIDO_OPENAI_COMPAT_BASE_URL names that variable", () => {
    expect(() => createClient(home.config, "openai-compat/some-model")).toThrow(
      /set AIDO_OPENAI_COMPAT_BASE_URL/,
    );
  });

  it("an unknown provider or a model without a provider is refused with the list of providers", () => {
    const unknown = () => createClient(home.config, "mistral/large");
    expect(unknown).toThrow(/unknown provider "mistral"/);
    expect(unknown).toThrow(/anthropic, openai, deepseek, ollama, openai-compat/);
    expect(() => createClient(home.config, "claude-sonnet")).toThrow(/no provider prefix/);
    expect(() => createClient(home.config, "anthropic/")).toThrow(/names no model/);
    try {
      unknown();
    } catch (e) {
      expect((e as AidoError).code).toBe("provider_config");
    }
  });

  it("a base URL that is not http(s) is refused naming its variable", () => {
    const bad = homeFor(server, { ANTHROPIC_BASE_URL: "file:///etc/passwd" });
    try {
      expect(() => createClient(bad.config, "anthropic/claude-test")).toThrow(
        /ANTHROPIC_BASE_URL="file:\/\/\/etc\/passwd"/,
      );
    } finally {
      bad.cleanup();
    }
  });

  it("an unreachable endpoint is retried without `resending` (nothing was sent: no charge), then names the URL and the variable", async () => {
    const closed = homeFor(server, { OPENAI_BASE_URL: "http://127.0.0.1:9/v1" });
    try {
      const config = withInference(closed.config, { maxRetries: 1 });
      const told: string[] = [];
      const err = await failureOf(
        createClient(config, "openai/gpt-test", FAST).complete(
          ask("x", { resending: (billed) => told.push(billed) }),
        ),
      );
      expect(told, "a refused connection billed nothing: its retry runs on the same reservation").toEqual([]);
      expect(err.details).toMatchObject({ sent: false });
      expect(err.code).toBe("provider_failed");
      expect(err.message).toContain("http://127.0.0.1:9/v1");
      expect(err.message).toContain("OPENAI_BASE_URL");
      expect(err.message).toContain("after 2 attempts");
    } finally {
      closed.cleanup();
    }
  });

  it("an endpoint whose TLS handshake never completes times out unsent: retried without `resending`, and the call says sent: false", async () => {
    // A TCP peer that takes the connection and never answers the ClientHello (a stuck
    // TLS-terminating middlebox, a wrong port): no request left this process. Counted as a
    // timeout the provider may have billed, each attempt was charged its bound.
    const sockets = new Set<Socket>();
    const mute = createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", r));
    const { port } = mute.address() as AddressInfo;
    const stuck = homeFor(server, { OPENAI_BASE_URL: `https://127.0.0.1:${port}/v1` });
    try {
      const config = withInference(stuck.config, { maxRetries: 2, requestTimeoutMs: 300 });
      const told: string[] = [];
      const err = await failureOf(
        createClient(config, "openai/gpt-test", FAST).complete(
          ask("x", { resending: (billed) => told.push(billed) }),
        ),
      );
      expect(err.details).toMatchObject({ failure: "timeout" });
      expect(err.message).toContain("after 3 attempts");
      expect(told, "no attempt reached a server: its retry runs on the same reservation").toEqual([]);
      expect(err.details, "refunded by the budget (agent/inference.ts)").toMatchObject({ sent: false });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => mute.close(r));
      stuck.cleanup();
    }
  });
});

describe("backoff arithmetic", () => {
  it("full jitter stays below base * 2^attempt and below the cap", () => {
    const p = { baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(0, p, () => 0.999)).toBe(99);
    expect(backoffDelay(3, p, () => 0.999)).toBe(799);
    expect(backoffDelay(10, p, () => 0.999)).toBe(999);
    expect(backoffDelay(5, p, () => 0)).toBe(0);
  });

  it("reads retry-after in seconds, as an HTTP date, and retry-after-ms first", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(retryAfterMs(new Headers({ "retry-after": "2" }), now)).toBe(2000);
    expect(retryAfterMs(new Headers({ "retry-after": "Wed, 01 Jan 2025 00:00:05 GMT" }), now)).toBe(5000);
    expect(retryAfterMs(new Headers({ "retry-after": "2", "retry-after-ms": "150" }), now)).toBe(150);
    expect(retryAfterMs(new Headers({ "retry-after": "soon" }), now)).toBeUndefined();
    expect(retryAfterMs(new Headers({ "retry-after": "-3" }), now)).toBeUndefined();
  });
});
