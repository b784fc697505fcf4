// The shared inference queue: a bound on calls in flight per provider, measured at the
// server (not by trusting our own counter), first come first served across agents, and
// queue wait reported per call.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { createClient } from "../../src/llm/providers.js";
import { type InferenceEvent, InferenceScheduler } from "../../src/llm/scheduler.js";
import type { LlmClient } from "../../src/llm/types.js";
import type { TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { homeFor } from "./harness.js";

let server: ProviderServer;
let home: TempHome;
let anthropic: LlmClient;
let openai: LlmClient;
beforeAll(async () => {
  server = await startProviderServer();
  home = homeFor(server, { AIDO_MAX_CONCURRENT_INFERENCE: "3" });
  anthropic = createClient(home.config, "anthropic/claude-test");
  openai = createClient(home.config, "openai/gpt-test");
});
afterEach(() => server.reset());
afterAll(async () => {
  await server.close();
  home.cleanup();
});

const ask = (system: string, signal?: AbortSignal) => ({
  system,
  messages: [{ role: "user" as const, content: "go" }],
  max_tokens: 16,
  ...(signal ? { signal } : {}),
});

describe("InferenceScheduler", () => {
  it("never has more than AIDO_MAX_CONCURRENT_INFERENCE calls in flight at the server (20 calls, N=3)", async () => {
    server.fallback((r) => turn.text(`answer to ${r.system}`, { delayMs: 40 }));
    const scheduler = InferenceScheduler.fromConfig(home.config);
    expect(scheduler.maxConcurrent).toBe(3);
    const calls = Array.from({ length: 20 }, (_, i) =>
      scheduler.complete(`agent-${i}`, anthropic, ask(`agent ${i}`)),
    );
    const results = await Promise.all(calls);
    expect(results.map((r) => r.response.content[0])).toEqual(
      Array.from({ length: 20 }, (_, i) => ({ type: "text", text: `answer to agent ${i}` })),
    );
    expect(server.requests).toHaveLength(20);
    expect(server.maxInFlight).toBe(3);
  });

  it("without the scheduler the same 20 calls all hit the server at once (the bound is the scheduler's doing)", async () => {
    server.fallback(() => turn.text("x", { delayMs: 40 }));
    await Promise.all(Array.from({ length: 20 }, (_, i) => anthropic.complete(ask(`agent ${i}`))));
    expect(server.maxInFlight).toBeGreaterThan(3);
  });

  it("starts waiting calls first come, first served across agents", async () => {
    server.fallback(() => turn.text("ok", { delayMs: 10 }));
    const started: string[] = [];
    const scheduler = new InferenceScheduler({
      maxConcurrent: 1,
      onEvent: (e) => {
        if (e.type === "inference.started") started.push(e.agentId);
      },
    });
    const order = ["writer", "researcher", "critic", "writer", "planner", "researcher", "critic", "planner"];
    await Promise.all(
      order.map((agent, i) => scheduler.complete(agent, anthropic, ask(`${agent} call ${i}`))),
    );
    expect(started).toEqual(order);
    expect(server.requests.map((r) => r.system)).toEqual(order.map((agent, i) => `${agent} call ${i}`));
  });

  it("reports how long each call waited for a slot, in the result and in events", async () => {
    server.fallback(() => turn.text("ok", { delayMs: 200 }));
    const events: InferenceEvent[] = [];
    const scheduler = new InferenceScheduler({ maxConcurrent: 1, onEvent: (e) => events.push(e) });
    const [first, second] = await Promise.all([
      scheduler.complete("a", anthropic, ask("a")),
      scheduler.complete("b", anthropic, ask("b")),
    ]);
    expect(first.waitMs).toBeLessThan(100);
    expect(second.waitMs).toBeGreaterThanOrEqual(180);
    expect(second.runMs).toBeGreaterThanOrEqual(180);
    expect(second.provider).toBe("anthropic");

    const forB = events.filter((e) => e.agentId === "b");
    expect(forB.map((e) => e.type)).toEqual(["inference.queued", "inference.started", "inference.finished"]);
    const finished = forB[2] as Extract<InferenceEvent, { type: "inference.finished" }>;
    expect(finished.waitMs).toBe(second.waitMs);
    expect(finished.ok).toBe(true);
    expect(finished.usage).toEqual(second.response.usage);
    expect(finished.provider).toBe("anthropic");
    expect(finished.model).toBe("claude-test");
  });

  it("bounds each provider separately: a busy Anthropic queue does not hold up OpenAI", async () => {
    server.fallback((r) => turn.text("ok", { delayMs: r.api === "anthropic" ? 1000 : 0 }));
    const events: InferenceEvent[] = [];
    const scheduler = new InferenceScheduler({ maxConcurrent: 1, onEvent: (e) => events.push(e) });
    // Calls in flight and waiting for a provider, as the scheduler's events tell them.
    const load = (provider: string) => {
      const n = (type: InferenceEvent["type"]) =>
        events.filter((e) => e.type === type && e.provider === provider).length;
      return {
        active: n("inference.started") - n("inference.finished"),
        pending: n("inference.queued") - n("inference.started"),
      };
    };
    const slow = [
      scheduler.complete("a1", anthropic, ask("a1")),
      scheduler.complete("a2", anthropic, ask("a2")),
    ];
    const fast = await scheduler.complete("o1", openai, ask("o1"));
    expect(fast.waitMs).toBeLessThan(100);
    expect(load("anthropic")).toEqual({ active: 1, pending: 1 });
    await Promise.all(slow);
    expect(load("anthropic")).toEqual({ active: 0, pending: 0 });
  });

  it("a call cancelled while queued fails at once and never reaches the server", async () => {
    server.fallback(() => turn.text("ok", { delayMs: 500 }));
    const scheduler = new InferenceScheduler({ maxConcurrent: 1 });
    let busyDone = false;
    const busy = scheduler.complete("a", anthropic, ask("first")).then(() => {
      busyDone = true;
    });
    const controller = new AbortController();
    const queued = scheduler.complete("b", anthropic, ask("second", controller.signal));
    setTimeout(() => controller.abort(), 30);
    const err = await queued.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AidoError);
    expect((err as AidoError).code).toBe("cancelled");
    // It did not wait for the slot to learn it was cancelled.
    expect(busyDone).toBe(false);
    await busy;
    // Give the freed slot a moment: the cancelled call must not use it.
    await new Promise((ok) => setTimeout(ok, 50));
    expect(server.requests.map((r) => r.system)).toEqual(["first"]);
  });

  it("a failed call frees its slot and reports the failure", async () => {
    server.script("boom", [turn.error(400, { message: "bad request" })]);
    server.fallback(() => turn.text("fine"));
    const events: InferenceEvent[] = [];
    const scheduler = new InferenceScheduler({ maxConcurrent: 1, onEvent: (e) => events.push(e) });
    await expect(scheduler.complete("a", anthropic, ask("boom"))).rejects.toThrow(/HTTP 400/);
    const ok = await scheduler.complete("b", anthropic, ask("next"));
    expect(ok.response.content).toEqual([{ type: "text", text: "fine" }]);
    const failed = events.find((e) => e.type === "inference.finished" && e.agentId === "a");
    expect(failed).toMatchObject({ ok: false, error: expect.stringContaining("HTTP 400") });
  });

  it("refuses a bound that is not a positive integer", () => {
    expect(() => new InferenceScheduler({ maxConcurrent: 0 })).toThrow(/positive integer/);
  });
});
