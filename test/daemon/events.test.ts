// events.subscribe: what a watcher sees of one goal or of all, the end of a goal's stream,
// the daemon's own event log (its stdout), and clients that leave in the middle.

import { describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import type { WireEvent } from "../../src/client/types.js";
import { turn } from "../support/provider-server.js";
import { manifest, useDaemonPerTest } from "./fixture.js";
import { rawConnect } from "./raw.js";

const suite = useDaemonPerTest();

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("events.subscribe", () => {
  it("streams a goal's events from the moment of subscription and ends with its goal.finished", async () => {
    suite.server.script('manifest "solo"', [
      turn.text("done", { delayMs: 1000, usage: { input_tokens: 7, output_tokens: 1 } }),
    ]);
    const fx = await suite.start();
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "watch me", manifest: manifest("solo") });
    const seen: WireEvent[] = [];
    const sub = await AidoClient.subscribe(fx.home.config.socketPath, goal_id, (ev) => seen.push(ev));
    await sub.done;
    const types = seen.map((e) => e.type);
    expect(types).toContain("usage");
    expect(types).toContain("agent.stopped");
    expect(types.at(-1)).toBe("goal.finished");
    expect(types.indexOf("usage")).toBeLessThan(types.indexOf("agent.stopped"));
    expect(seen.every((e) => e.goal_id === goal_id && typeof e.time === "string")).toBe(true);
    expect(seen.find((e) => e.type === "usage")).toMatchObject({ input_tokens: 7, output_tokens: 1 });
    expect(seen.at(-1)).toMatchObject({ state: "succeeded", usage: { input_tokens: 7, output_tokens: 1 } });
    // The daemon's own log carries every event as a JSON line, from the queueing on.
    const logged = fx.eventLog.map((l) => JSON.parse(l) as WireEvent).filter((e) => e.goal_id === goal_id);
    expect(logged.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        "goal.queued",
        "goal.started",
        "agent.spawned",
        "usage",
        "agent.stopped",
        "goal.finished",
      ]),
    );
    expect(logged.map((e) => e.type).indexOf("agent.spawned")).toBeLessThan(
      logged.map((e) => e.type).indexOf("usage"),
    );
  });

  it("streams every goal's events to a subscriber without a goal_id", async () => {
    suite.server.script('manifest "solo"', [turn.text("done")], { repeatLast: true });
    const fx = await suite.start();
    const c = await fx.client();
    const seen: WireEvent[] = [];
    const sub = await AidoClient.subscribe(fx.home.config.socketPath, undefined, (ev) => seen.push(ev));
    const a = await c.call("goal.submit", { goal: "a", manifest: manifest("solo") });
    const b = await c.call("goal.submit", { goal: "b", manifest: manifest("solo") });
    await until(() => seen.filter((e) => e.type === "goal.finished").length === 2);
    expect(new Set(seen.filter((e) => e.type === "goal.finished").map((e) => e.goal_id))).toEqual(
      new Set([a.goal_id, b.goal_id]),
    );
    sub.close();
    await sub.done;
  });

  it("tells a subscriber to a goal that already ended how it ended, then ends the stream", async () => {
    suite.server.script('manifest "solo"', [turn.text("done")]);
    const fx = await suite.start();
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "quick", manifest: manifest("solo") });
    await c.call("goal.wait", { goal_id, timeout_ms: 10_000 });
    const raw = await rawConnect(fx.home.config.socketPath);
    raw.send(
      `${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "events.subscribe", params: { goal_id } })}\n`,
    );
    expect(await raw.next()).toEqual({ jsonrpc: "2.0", id: 1, result: { subscribed: true, goal_id } });
    expect(await raw.next()).toMatchObject({
      jsonrpc: "2.0",
      method: "event",
      params: { type: "goal.finished", goal_id, state: "succeeded" },
    });
    raw.close();
  });

  it("shows a wanted approval to watchers", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const seen: WireEvent[] = [];
    const sub = await AidoClient.subscribe(fx.home.config.socketPath, undefined, (ev) => seen.push(ev));
    const a = await c.call("agent.spawn", {
      manifest: manifest("memo", {
        capabilities: ["tool: memory_store"],
        approval_required: ["memory_store"],
      }),
    });
    const call = c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "memory_store",
      input: { content: "x", category: "fact" },
    });
    await until(() => seen.some((e) => e.type === "approval.requested"));
    const wanted = seen.find((e) => e.type === "approval.requested")!;
    expect(wanted).toMatchObject({ agent_id: a.agent_id, tool: "memory_store" });
    await c.call("approval.respond", { id: wanted.approval_id as string, decision: "allow_once" });
    await call;
    await until(() => seen.some((e) => e.type === "tool.completed"));
    expect(seen.find((e) => e.type === "approval.decided")).toMatchObject({ decision: "allow_once" });
    expect(seen.find((e) => e.type === "tool.called")).toMatchObject({
      agent_id: a.agent_id,
      tool: "memory_store",
    });
    // A denial is an event too.
    const denied = c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "memory_query",
      input: { query: "x" },
    });
    await expect(denied).rejects.toThrow();
    await until(() => seen.some((e) => e.type === "tool.denied"));
    expect(seen.find((e) => e.type === "tool.denied")).toMatchObject({
      tool: "memory_query",
      code: "capability_denied",
    });
    // A socket call's audit entries name it as its events do: a watcher (the dashboard's
    // goal page) matches the two by that id.
    const called = seen.find((e) => e.type === "tool.called")!.call_id as string;
    expect(called).toMatch(/^rpc_[0-9a-f]{12}$/);
    const entries = (await c.call("audit.query", { agent_id: a.agent_id })).entries;
    const byCall = entries.filter((e) => (e.payload as { call_id?: string }).call_id === called);
    expect(byCall.map((e) => e.kind)).toEqual(["tool.invoked"]);
    const deniedId = seen.find((e) => e.type === "tool.denied")!.call_id as string;
    expect(
      entries.filter((e) => (e.payload as { call_id?: string }).call_id === deniedId).map((e) => e.kind),
    ).toEqual(["tool.denied"]);
    sub.close();
  });
});

describe("clients that leave", () => {
  it("drops the subscription of a client that leaves mid-stream, and the goal still finishes", async () => {
    suite.server.script('manifest "slow"', [turn.text("finally", { delayMs: 1500 })]);
    const fx = await suite.start();
    const bus = fx.daemon.runtime.events;
    const baseline = bus.listenerCount;
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "slow", manifest: manifest("slow") });
    const seen: WireEvent[] = [];
    const sub = await AidoClient.subscribe(fx.home.config.socketPath, goal_id, (ev) => seen.push(ev));
    const waiter = await fx.client();
    const wait = waiter.call("goal.wait", { goal_id, timeout_ms: 600_000 }).catch((e: Error) => e);
    // Both the stream and the wait hold a listener while their clients are here...
    await until(() => bus.listenerCount === baseline + 2);
    sub.close();
    waiter.close();
    expect(await wait).toBeInstanceOf(Error);
    // ...and none once they left, while the goal runs on.
    await until(() => bus.listenerCount === baseline && suite.fx.daemon.connectionCount === 1);
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 10_000 })).state).toBe("succeeded");
    expect(seen.some((e) => e.type === "goal.finished")).toBe(false);
  });
});
