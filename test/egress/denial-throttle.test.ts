// The refusal throttle on its own (egress/denial-throttle.ts): identical refusals counted
// into `repeats`, a scope's distinct refusals past DISTINCT_PER_WINDOW counted into one
// summary a window, a steady flood costing one summary a window, and the counts open when
// the runtime closes written by flush(). The proxy path is in bounds.test.ts.

import { describe, expect, it } from "vitest";
import {
  DenialThrottle,
  DISTINCT_KEYS_MAX,
  DISTINCT_PER_WINDOW,
  FLOOD_SAMPLE,
  type FloodCount,
  floodInWords,
} from "../../src/egress/denial-throttle.js";

type Written = { entry: string; repeats: number } | { first: string; count: FloodCount<string> };

function throttle(windowMs = 60_000) {
  const written: Written[] = [];
  const t = new DenialThrottle<string>(
    {
      entry: (entry, repeats) => written.push({ entry, repeats }),
      flood: (first, count) => written.push({ first, count }),
    },
    (e) => {
      throw e;
    },
    windowMs,
  );
  const refuse = (scope: string, key: string, stage = "capability") => t.report(scope, key, stage, key);
  return { t, written, refuse };
}

describe("DenialThrottle", () => {
  it("writes a scope's first distinct refusals, then counts the rest into one summary written at flush", () => {
    const { t, written, refuse } = throttle();
    for (let i = 0; i < 100; i++) refuse("agent-a", `host-${i}`, i % 2 ? "capability" : "limit");
    refuse("agent-a", "host-50");
    refuse("agent-a", "host-3"); // identical to a written one: a repeat
    expect(written).toHaveLength(DISTINCT_PER_WINDOW);
    t.flush();
    // host-3's repeat count would be one more entry past the scope's 20: the summary counts it.
    const summary = written.find((w) => "first" in w);
    expect(summary).toEqual({
      first: `host-${DISTINCT_PER_WINDOW}`,
      count: {
        refusals: 100 - DISTINCT_PER_WINDOW + 2,
        distinct: 100 - DISTINCT_PER_WINDOW + 1,
        distinctCapped: false,
        stages: { limit: 40, capability: 42 },
        sample: Array.from({ length: FLOOD_SAMPLE }, (_, i) => `host-${DISTINCT_PER_WINDOW + i}`),
      },
    });
    expect(written.filter((w) => "repeats" in w && w.repeats > 0)).toEqual([]);
  });

  it("holds at most DISTINCT_KEYS_MAX keys of a burst of invented hosts, and its summary says the count is a lower bound", () => {
    const { t, written, refuse } = throttle();
    const burst = 400_000;
    const key = (i: number) =>
      `agent-a|capability|CONNECT|invented-host-number-${i}.example.com:443|not granted`;
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < burst; i++) refuse("agent-a", key(i));
    // Every key past the cap was garbage at once: what stays is the set of held ones.
    const heapGrown = process.memoryUsage().heapUsed - heapBefore;
    refuse("agent-a", key(burst - 1)); // seen, but not held: still counted as a refusal
    t.flush();
    const summary = written.find((w) => "first" in w) as { count: FloodCount<string> };
    expect(summary.count).toMatchObject({
      refusals: burst - DISTINCT_PER_WINDOW + 1,
      distinct: DISTINCT_KEYS_MAX,
      distinctCapped: true,
      stages: { capability: burst - DISTINCT_PER_WINDOW + 1 },
    });
    expect(floodInWords(summary.count)).toContain(
      `${burst - DISTINCT_PER_WINDOW + 1} refusals (at least ${DISTINCT_KEYS_MAX} distinct;`,
    );
    expect(heapGrown).toBeLessThan(24 * 1024 * 1024);
  });

  it("writes a repeat count as one of the scope's entries, so refusals kept repeating do not grow the rate", async () => {
    const { t, written, refuse } = throttle(100);
    const known: string[] = [];
    const perWindow: number[] = [];
    for (let w = 0; w < 6; w++) {
      const before = written.length;
      known.push(...Array.from({ length: DISTINCT_PER_WINDOW }, (_, i) => `k-${known.length + i}`));
      for (let r = 0; r < 3; r++) {
        for (const k of known) refuse("agent-a", k);
        await new Promise((r) => setTimeout(r, 40));
      }
      perWindow.push(written.length - before);
    }
    t.flush();
    for (const n of perWindow) expect(n).toBeLessThanOrEqual(2 * (DISTINCT_PER_WINDOW + 1));
    const counted = written.reduce((n, w) => n + ("first" in w ? w.count.refusals : 1 + w.repeats), 0);
    expect(counted).toBe(3 * DISTINCT_PER_WINDOW * (1 + 2 + 3 + 4 + 5 + 6));
  });

  it("writes the first refusal of a stage the flood has not written, once while the flood lasts", async () => {
    const { t, written, refuse } = throttle(100);
    for (let i = 0; i < 30; i++) refuse("agent-a", `junk-${i}`);
    refuse("agent-a", "inward-1", "address");
    refuse("agent-a", "inward-2", "address");
    expect(written.at(-1)).toEqual({ entry: "inward-1", repeats: 0 });
    await new Promise((r) => setTimeout(r, 150));
    const after = written.length;
    // The next window of the same flood: written already, so counted.
    for (let i = 0; i < 5; i++) refuse("agent-a", `again-${i}`, "address");
    expect(written).toHaveLength(after);
    t.flush();
    const floods = written.filter((w) => "first" in w);
    expect(floods.map((w) => w.count.stages)).toEqual([{ capability: 10, address: 1 }, { address: 5 }]);
  });

  it("keeps scopes apart: one caller's flood leaves another's refusals written", () => {
    const { written, refuse } = throttle();
    for (let i = 0; i < 50; i++) refuse("agent-a", `a-${i}`);
    refuse("agent-b", "b-0");
    expect(written.at(-1)).toEqual({ entry: "b-0", repeats: 0 });
  });

  it("counts the window after a summary too, so a steady flood costs one summary a window", async () => {
    const { t, written, refuse } = throttle(100);
    for (let i = 0; i < 30; i++) refuse("agent-a", `first-${i}`);
    await new Promise((r) => setTimeout(r, 150));
    const after = written.length;
    for (let i = 0; i < 30; i++) refuse("agent-a", `second-${i}`);
    expect(written).toHaveLength(after);
    t.flush();
    const floods = written.filter((w) => "first" in w);
    expect(floods.map((w) => w.count.refusals)).toEqual([30 - DISTINCT_PER_WINDOW, 30]);
  });
});
