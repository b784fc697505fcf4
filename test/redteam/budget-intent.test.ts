// Red team: an intent's budget_tokens and the calls the ledger charges more than the
// provider reported. A goal charges its intent with what each model call reported
// (GoalRunner.addUsage), but the ledger charges some calls what they reserved instead: a
// provider reporting no usage (budget.usage_unreported), a call given up after it was sent
// (budget.charged_aborted). Those charges never reached the intent: its tokens_spent read
// 0 after goals whose accounts were charged their caps, so each goal started with the
// whole budget again and an intent's budget_tokens capped nothing. Now the goal is told
// what each call was charged, and the intent counts exactly what its goals' accounts were.
// Through a real daemon, over its socket.

import { mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { type FixtureOptions, manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { until } from "../daemon/process.js";
import { turn } from "../support/provider-server.js";

let scratch: string | undefined;
const suite = useDaemonPerTest({
  afterEach: () => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = undefined;
  },
});

const BUDGET = 20_000;

/** A daemon, a client, and an intent with BUDGET on a fresh project folder. */
async function intentWithBudget(opts: FixtureOptions = {}): Promise<{ c: AidoClient; project: string }> {
  const fx = await suite.start(opts);
  scratch = mkdtempSync(join(tmpdir(), "aido-budget-intent-"));
  const c = await fx.client();
  await c.call("intent.set", { workspace: scratch, objective: "within budget", budget_tokens: BUDGET });
  return { c, project: scratch };
}

/** The sum of `charged` over one kind of entry of the goal. */
async function chargedBy(c: AidoClient, goal_id: string, kind: string): Promise<number> {
  const { entries } = await c.call("audit.query", { kind, goal_id });
  return entries.reduce((n, e) => n + (e.payload as { charged: number }).charged, 0);
}

/** Submit a goal from `project` running `m`, and wait for its end. */
async function runUnder(c: AidoClient, project: string, m: Record<string, unknown>) {
  const { goal_id } = await c.call("goal.submit", { goal: "work", manifest: m, workspace: project });
  return { goal_id, s: await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }) };
}

async function tokensSpent(c: AidoClient, project: string): Promise<number> {
  return (await c.call("intent.status", { workspace: project })).intent?.tokens_spent ?? -1;
}

describe("an intent's budget_tokens and calls charged more than they reported", () => {
  it("counts the bound charged for usage a provider did not report, and refuses the next goal", async () => {
    const { c, project } = await intentWithBudget();
    const silent = suite.server.script(
      'manifest "silent"',
      [turn.toolUse("skill_read", { name: "s" }, { usage: { input_tokens: 0, output_tokens: 0 } })],
      { repeatLast: true },
    );
    const { goal_id } = await c.call("goal.submit", {
      goal: "spend",
      manifest: { ...manifest("silent"), capabilities: ["tool: skill_read"] },
      workspace: project,
    });
    const s = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    expect(s.state).toBe("failed");
    const charged = await chargedBy(c, goal_id, "budget.usage_unreported");
    // Each call was charged about 6,000 (its bound): the goal's cap, the intent's budget,
    // held three of them.
    expect(charged).toBeGreaterThan(BUDGET / 2);
    expect(charged).toBeLessThanOrEqual(BUDGET);
    expect(await tokensSpent(c, project)).toBe(charged);
    expect(s.usage.input_tokens + s.usage.output_tokens).toBe(charged);
    // What is left is less than one call's bound: the next goal, capped to it, sends
    // nothing, instead of starting with the whole budget again.
    const sent = silent.requests.length;
    const next = await c.call("goal.submit", {
      goal: "more",
      manifest: { ...manifest("silent"), capabilities: ["tool: skill_read"] },
      workspace: project,
    });
    expect((await c.call("goal.wait", { goal_id: next.goal_id, timeout_ms: 20_000 })).state).toBe("failed");
    expect(silent.requests.length).toBe(sent);
    expect(await tokensSpent(c, project)).toBe(charged);
  });

  it("counts a call given up after it was sent (goal.cancel with the call at the provider)", async () => {
    const { c, project } = await intentWithBudget();
    const held = suite.server.script('manifest "held"', [turn.hang()]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "hold",
      manifest: manifest("held"),
      workspace: project,
    });
    await until(() => held.requests.length === 1 || undefined, 10_000);
    await c.call("goal.cancel", { goal_id });
    const s = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    expect(s.state).toBe("cancelled");
    const charged = await chargedBy(c, goal_id, "budget.charged_aborted");
    expect(charged).toBeGreaterThan(0);
    expect(await tokensSpent(c, project)).toBe(charged);
  });

  it("counts a child's call at the provider once when its bootstrap is stopped and the goal ends", async () => {
    const { c, project } = await intentWithBudget();
    suite.server.script('manifest "lead"', [
      turn.toolUse(
        "spawn_agent",
        { manifest: { name: "writer" }, message: "work" },
        { usage: { input_tokens: 400, output_tokens: 100 } },
      ),
    ]);
    const kid = suite.server.script('manifest "writer"', [turn.hang()]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "lead",
      manifest: { ...manifest("lead"), capabilities: ["tool: spawn_agent", "spawn_child: [writer]"] },
      workspace: project,
    });
    await until(() => kid.requests.length === 1 || undefined, 10_000);
    const { agent_id } = await c.call("goal.status", { goal_id });
    await c.call("agent.stop", { agent_id: agent_id as string });
    await c.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    // The lead's call (500 reported) and the child's, charged its bound as the goal ended.
    const charged = await chargedBy(c, goal_id, "budget.charged_aborted");
    expect(charged).toBeGreaterThan(0);
    expect(await tokensSpent(c, project)).toBe(500 + charged);
  });

  // A hostile provider's usage past Number.MAX_SAFE_INTEGER (2^60, 1e308) was not committed
  // (the ledger refuses it) but was told to the goal as reported: its usage read 2^60, and
  // the intent's tokens_spent with it. No call can cost that: it is charged its bound.
  it.each([
    ["anthropic/claude-test", { input_tokens: 2 ** 60, output_tokens: 10 }],
    ["openai/gpt-test", { input_tokens: 1e308, output_tokens: 10 }],
    ["anthropic/claude-test", { input_tokens: 900, output_tokens: 2 ** 60 }],
  ])(
    "%s reporting %j: charged its bound, the goal's usage and the intent stay exact",
    async (model, usage) => {
      const { c, project } = await intentWithBudget({ env: { AIDO_MODEL: model } });
      suite.server.script('manifest "liar"', [turn.text("done", { usage })]);
      const { goal_id, s } = await runUnder(c, project, manifest("liar"));
      const charged = await chargedBy(c, goal_id, "budget.usage_unreported");
      expect(charged).toBeGreaterThan(0);
      expect(charged).toBeLessThan(BUDGET);
      expect(Number.isSafeInteger(s.usage.input_tokens) && Number.isSafeInteger(s.usage.output_tokens)).toBe(
        true,
      );
      expect(s.usage.input_tokens + s.usage.output_tokens).toBe(charged);
      expect(await tokensSpent(c, project)).toBe(charged);
    },
  );

  // A wrong base URL: no provider ever had these calls, so the intent must not pay for them.
  // A server that takes the connection and drops it may have had the request: that stays
  // charged, also when the retry then finds nothing listening. One whose every attempt timed
  // out still connecting (its TLS handshake never answered) reached no server either: each
  // attempt was charged its bound as a timeout the provider may have billed.
  it.each([
    ["a base URL nothing listens on (connection refused): refunded", "refuses"],
    ["a https base URL whose TLS handshake is never answered (every attempt times out): refunded", "stalls"],
    ["a server that accepts the connection and drops it: charged its bound", "drops"],
    ["a server that drops the first attempt, then the retry is refused: charged its bound", "drops once"],
  ] as const)("%s", async (_, mode) => {
    const { url, close } = await unreliableServer(mode);
    const unsent = mode === "refuses" || mode === "stalls";
    try {
      const { c, project } = await intentWithBudget({
        env: { ANTHROPIC_BASE_URL: url, OPENAI_BASE_URL: `${url}/v1` },
        config: (cfg) => {
          cfg.inference.maxRetries = 1;
          if (mode === "stalls") cfg.inference.requestTimeoutMs = 1_000;
        },
      });
      const { goal_id, s } = await runUnder(c, project, manifest("any"));
      expect(s.state).toBe("failed");
      const charged = await chargedBy(c, goal_id, "budget.charged_failed");
      if (unsent) expect(charged).toBe(0);
      else expect(charged).toBeGreaterThan(0);
      expect(s.error).toMatch(
        mode === "stalls" ? /no connection to https:.* within 1000 ms/ : /cannot reach/,
      );
      expect(await tokensSpent(c, project)).toBe(charged);
      expect(s.usage.input_tokens + s.usage.output_tokens).toBe(charged);
    } finally {
      await close();
    }
  });
});

/**
 * A base URL whose server drops every connection it accepts ("drops"), only the first one
 * and then stops listening ("drops once"), where nothing listens ("refuses"), or an https
 * one whose server takes the connection and never answers the TLS handshake ("stalls").
 */
async function unreliableServer(
  mode: "refuses" | "drops" | "drops once" | "stalls",
): Promise<{ url: string; close(): Promise<void> }> {
  const held = new Set<Socket>();
  const server = createServer((socket) => {
    if (mode === "stalls") {
      held.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => held.delete(socket));
      return;
    }
    socket.destroy();
    if (mode === "drops once") server.close();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const scheme = mode === "stalls" ? "https" : "http";
  const url = `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () => {
    for (const s of held) s.destroy();
    return new Promise<void>((r) => (server.listening ? server.close(() => r()) : r()));
  };
  if (mode === "refuses") await close();
  return { url, close };
}
