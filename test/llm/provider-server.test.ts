// The scripted provider server's own contract, which every agent test leans on: scripts are
// chosen per agent by a marker, consumed in order, may compute a turn from the request,
// and a request nobody scripted fails loudly instead of hanging a test; an answer can be held
// by a latch the test opens.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/llm/providers.js";
import { textOf } from "../../src/llm/types.js";
import type { TempHome } from "../support/home.js";
import { latch, type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { homeFor } from "./harness.js";

let server: ProviderServer;
let home: TempHome;
beforeAll(async () => {
  server = await startProviderServer();
  home = homeFor(server);
});
afterEach(() => server.reset());
afterAll(async () => {
  await server.close();
  home.cleanup();
});

const ask = (system: string, content = "go") => ({
  system,
  messages: [{ role: "user" as const, content }],
  max_tokens: 16,
});

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((ok) => setTimeout(ok, 10));
  }
}

describe("provider-server", () => {
  it("gives each agent its own script, chosen by its system prompt", async () => {
    const writer = server.script("name: writer", [turn.text("w1"), turn.text("w2")]);
    server.script(/name: (critic|reviewer)/, [turn.text("c1")]);
    const client = createClient(home.config, "anthropic/claude-test");
    const answers = [
      await client.complete(ask("You are an agent.\nname: writer")),
      await client.complete(ask("name: reviewer")),
      await client.complete(ask("name: writer")),
    ];
    expect(answers.map((a) => textOf(a.content))).toEqual(["w1", "c1", "w2"]);
    expect(writer.turnsLeft).toBe(0);
    expect(writer.requests.map((r) => r.seq)).toEqual([1, 3]);
    expect(server.requests.map((r) => r.script)).toEqual([
      "name: writer",
      "/name: (critic|reviewer)/",
      "name: writer",
    ]);
  });

  it("computes a turn from the request when the script holds a function", async () => {
    server.script(
      (r) => r.model === "gpt-test",
      [(r) => turn.text(`you said ${r.body.messages.at(-1).content}`)],
    );
    const r = await createClient(home.config, "openai/gpt-test").complete(ask("any", "hello"));
    expect(textOf(r.content)).toBe("you said hello");
  });

  it("answers a request no script matches with HTTP 418 naming the problem, and lists it", async () => {
    server.script("name: writer", [turn.text("only once")]);
    const client = createClient(home.config, "anthropic/claude-test");
    await client.complete(ask("name: writer"));
    await expect(client.complete(ask("name: writer"))).rejects.toThrow(
      /script "name: writer" has no turn left/,
    );
    await expect(client.complete(ask("name: ghost"))).rejects.toThrow(/no script matches/);
    expect(server.unmatched.map((r) => r.system)).toEqual(["name: writer", "name: ghost"]);
  });

  it("repeats the last turn when asked to", async () => {
    server.script("loop", [turn.text("again")], { repeatLast: true });
    const client = createClient(home.config, "openai/gpt-test");
    for (let i = 0; i < 3; i++) expect(textOf((await client.complete(ask("loop"))).content)).toBe("again");
  });

  it("counts a delayed request as in flight until it is answered", async () => {
    server.fallback(() => turn.text("slow", { delayMs: 1000 }));
    const client = createClient(home.config, "anthropic/claude-test");
    const pending = Promise.all([client.complete(ask("a")), client.complete(ask("b"))]);
    await until(() => server.requests.length === 2);
    expect(server.inFlight).toBe(2);
    await pending;
    expect(server.inFlight).toBe(0);
    expect(server.maxInFlight).toBe(2);
  });

  it("holds an answer until its latch opens, and records whether it was answered or the client left", async () => {
    const held = latch();
    server.script("held", [turn.text("let go", { until: held.promise })]);
    server.script("given up", [turn.text("never read", { until: latch().promise })]);
    const client = createClient(home.config, "anthropic/claude-test");
    const answer = client.complete(ask("held"));
    const abort = new AbortController();
    const givenUp = client.complete({ ...ask("given up"), signal: abort.signal }).catch((e: Error) => e);
    await until(() => server.requests.length === 2);
    await new Promise((ok) => setTimeout(ok, 200));
    expect(server.requests.map((r) => r.ended)).toEqual([undefined, undefined]);
    abort.abort();
    expect(await givenUp).toBeInstanceOf(Error);
    held.open();
    expect(textOf((await answer).content)).toBe("let go");
    await until(() => server.requests.every((r) => r.ended !== undefined));
    expect(Object.fromEntries(server.requests.map((r) => [r.system, r.ended]))).toEqual({
      held: "answered",
      "given up": "left",
    });
  });

  it("closes even while a request hangs", async () => {
    const other = await startProviderServer();
    other.script("hang", [turn.hang()]);
    const h = homeFor(other);
    try {
      const call = createClient(h.config, "anthropic/claude-test")
        .complete(ask("hang"))
        .catch((e: Error) => e);
      await until(() => other.requests.length === 1);
      expect(other.inFlight).toBe(1);
      await other.close();
      expect(await call).toBeInstanceOf(Error);
    } finally {
      h.cleanup();
    }
  });
});
