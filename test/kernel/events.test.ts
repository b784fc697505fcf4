// The event bus (kernel/events.ts): listeners get the events their filter asks for, each
// event once, with its type, time and goal; a listener's exception reaches nobody else.

import { describe, expect, it } from "vitest";
import { EventBus, type RuntimeEvent } from "../../src/kernel/events.js";

describe("the event bus", () => {
  it("delivers each event to the listeners whose goal and types match, as one shared event", () => {
    const bus = new EventBus();
    const all: RuntimeEvent[] = [];
    const goal: RuntimeEvent[] = [];
    const usage: RuntimeEvent[] = [];
    bus.subscribe({}, (e) => all.push(e));
    bus.subscribe({ goalId: "g-1" }, (e) => goal.push(e));
    bus.subscribe({ types: ["usage"] }, (e) => usage.push(e));
    bus.emit("tool.called", "g-2", { agentId: "a", tool: "exec", callId: "c1" });
    bus.emit("usage", "g-1", { agentId: "a", input_tokens: 3, output_tokens: 4 });
    expect(all.map((e) => e.type)).toEqual(["tool.called", "usage"]);
    expect(goal.map((e) => e.type)).toEqual(["usage"]);
    expect(usage).toHaveLength(1);
    expect(usage[0]).toBe(goal[0]);
    expect(all[1]).toMatchObject({ type: "usage", goalId: "g-1", agentId: "a", input_tokens: 3 });
    expect(Date.parse(all[0]!.time)).not.toBeNaN();
  });

  it("says whether any listener takes a type, whatever its goal", () => {
    const bus = new EventBus();
    expect(bus.wants("usage")).toBe(false);
    const off = bus.subscribe({ goalId: "g-1", types: ["agent.stopped"] }, () => {});
    expect(bus.wants("usage")).toBe(false);
    expect(bus.wants("agent.stopped")).toBe(true);
    bus.subscribe({ goalId: "g-2" }, () => {});
    expect(bus.wants("usage")).toBe(true);
    off();
    expect(bus.wants("agent.stopped")).toBe(true);
  });

  it("keeps delivering when a listener throws, and stops after unsubscribe", () => {
    const bus = new EventBus();
    const seen: string[] = [];
    bus.subscribe({}, () => {
      throw new Error("watcher bug");
    });
    const off = bus.subscribe({}, (e) => seen.push(e.type));
    bus.emit("goal.queued", "g-1", { goal: "x" });
    off();
    bus.emit("goal.queued", "g-1", { goal: "y" });
    expect(seen).toEqual(["goal.queued"]);
    expect(bus.listenerCount).toBe(1);
  });
});
