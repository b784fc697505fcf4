// A goal frozen again while an unpause is under way (the fence falls again as it is lifted) is
// frozen once that unpause has landed (sandbox/frozen-goals.ts). But a lift's unfreeze may come
// before it lands: the engine holds the old unpause longer than the new fence's lift waits for
// its freeze (10 s, cluster/fence.ts). That newer unfreeze lets the goal go; the new fence's
// pause, still waiting for the old unpause, was then sent all the same, and froze the goal's
// container after its fence was lifted: frozen for good under a goal its node kept (its calls
// hung, and the sweep removed the container as a paused one nothing held). Now a pause whose
// freeze ended while it waited is not sent.
// And a goal that newer unpause let go, frozen again while the old one is still out: its pause
// was sent at once (the goal no longer frozen, no unpause under way on it), and the old unpause,
// landing after it, let the container run through that fence. Now a pause waits for every
// unpause of its goal still out. And the old unpause refused late, the new one under way: the
// waiting pause was sent, found the container running once the new one had landed, and froze it
// after the lift let the goal go. Now a pause is not sent once a newer unpause has begun.
// And an unpause still out that the engine does not answer for long: a freeze no longer waits
// for it past a few seconds (its container running through the new fence meanwhile); it pauses
// all the same, and again once that unpause lands.
// The real engine, behind a socket that holds the first unpause request a while.

import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EngineAnswer, type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const HOLD_MS = 3_000;
let holdNext = false;
/** What the next request matching each entry is answered (each entry used once). */
let plan: { match: RegExp; answer: EngineAnswer }[] = [];
let engine: EngineProxy;
/** What the backend logged. */
const logs: string[] = [];
let fx: SandboxFixture;
beforeAll(async () => {
  engine = await engineProxy((line) => {
    const i = plan.findIndex((p) => p.match.test(line));
    if (i >= 0) return plan.splice(i, 1)[0]?.answer;
    if (!holdNext || !/^POST \S+\/unpause$/.test(line)) return undefined;
    holdNext = false;
    return HOLD_MS;
  });
  fx = makeSandboxFixture(() => {}, { docker: engine.docker, log: (m) => logs.push(m) });
});
afterAll(async () => {
  await fx?.cleanup();
  await engine?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The opening every case shares: the goal's container up (an exec ran in it) and frozen (its
 * node's fence); `paused` reads the engine's word on it, `runsOn` checks that a call runs in it
 * (the goal let go at last), then removes the goal.
 */
async function frozenGoal(goalId: string) {
  const sb = await fx.backend.acquire(goalId);
  await sb.exec({ confinement: "unconfined", command: "true" });
  await fx.backend.pause(goalId);
  const name = fx.backend.containerName(goalId);
  const container = new Docker().getContainer(name);
  return {
    sb,
    name,
    paused: async () => (await container.inspect()).State.Paused,
    runsOn: async () => {
      const r = await sb.exec({ confinement: "unconfined", command: "echo on", timeoutMs: 5_000 });
      expect(r.stdout.trim()).toBe("on");
      await fx.backend.remove(goalId);
    },
  };
}

describe("a goal frozen again while an unpause the engine holds is under way", () => {
  it("is not frozen by that freeze once a newer unpause let it go", async () => {
    const goalId = "stale-pause";
    const g = await frozenGoal(goalId);
    holdNext = true;
    const held = fx.backend.unpause(goalId); // the old lift's, held by the engine
    await sleep(500);
    const again = fx.backend.pause(goalId); // a new fence: waits for the held unpause
    await sleep(200);
    await fx.backend.unpause(goalId); // the new fence's lift, not waiting for that freeze
    await held.catch(() => {}); // the engine: not paused any more
    await again;
    expect(await g.paused()).toBe(false);
    await g.runsOn();
  }, 120_000);
});

describe("a goal frozen again while an older unpause the engine holds is still out", () => {
  it("is frozen only once that unpause has landed, though a newer unpause let the goal go meanwhile", async () => {
    const goalId = "stale-unpause";
    const g = await frozenGoal(goalId);
    holdNext = true;
    const held = fx.backend.unpause(goalId); // the old lift's, held by the engine
    await sleep(500);
    const again = fx.backend.pause(goalId); // a second fence: waits for the held unpause
    await sleep(200);
    await fx.backend.unpause(goalId); // its lift, not waiting for that freeze: the goal goes
    // A third fence while the old unpause is still out: its pause must land after that unpause.
    const third = fx.backend.pause(goalId);
    await Promise.all([held.catch(() => {}), again, third]);
    expect(await g.paused()).toBe(true);
    await fx.backend.unpause(goalId);
    await g.runsOn();
  }, 120_000);
});

describe("a goal frozen again while an unpause the engine refuses late is under way", () => {
  it("is not frozen by that freeze once a newer unpause has begun", async () => {
    const goalId = "stale-refused";
    const g = await frozenGoal(goalId);
    const unpause = /^POST \S+\/unpause$/;
    plan = [{ match: unpause, answer: { refuseAfterMs: 1_000 } }];
    const held = fx.backend.unpause(goalId).catch(() => {}); // the old lift's: refused, late
    await sleep(200);
    const again = fx.backend.pause(goalId); // a second fence: waits for it
    await sleep(200);
    plan = [{ match: unpause, answer: 2_000 }];
    const lift = fx.backend.unpause(goalId); // its lift's, slow to land
    await sleep(300);
    // The waiting freeze, once the old unpause is refused, looks at the container only after
    // the new unpause landed: it found it running.
    plan = [{ match: new RegExp(`^GET \\S*/containers/${g.name}/json`), answer: 2_500 }];
    await Promise.all([held, again, lift]);
    plan = [];
    expect(await g.paused()).toBe(false);
    await g.runsOn();
  }, 120_000);
});

describe("a goal frozen while an unpause of it the engine does not answer is out", () => {
  it("is frozen after a short wait all the same, and again once that unpause lands", async () => {
    const goalId = "stale-unanswered";
    const g = await frozenGoal(goalId);
    plan = [{ match: /^POST \S+\/unpause$/, answer: 20_000 }];
    const held = fx.backend.unpause(goalId).catch(() => {}); // the lift's: not answered for long
    await sleep(500);
    await fx.backend.unpause(goalId); // a later try: the goal goes
    expect(await g.paused()).toBe(false);
    // A new fence: its freeze does not wait for the unanswered unpause past a few seconds (the
    // fence's lift waits for it 10 s at most, and the container ran meanwhile).
    const settled = await Promise.race([
      fx.backend.pause(goalId).then(() => "frozen"),
      new Promise((r) => setTimeout(() => r("pending"), 8_000)),
    ]);
    expect(settled).toBe("frozen");
    expect(await g.paused()).toBe(true);
    // The old unpause lands: the goal, still frozen, is frozen again after it.
    await held;
    await sleep(1_000);
    expect(await g.paused()).toBe(true);
    await fx.backend.unpause(goalId);
    await g.runsOn();
  }, 120_000);
});

describe("a goal whose pause, sent again once an unanswered unpause landed, is refused", () => {
  it("is logged as a freeze refusal, and stays held (its calls wait) while its container runs", async () => {
    const goalId = "stale-late-refused";
    const g = await frozenGoal(goalId);
    plan = [{ match: /^POST \S+\/unpause$/, answer: 12_000 }];
    const held = fx.backend.unpause(goalId).catch(() => {}); // the lift's: not answered for long
    await sleep(500);
    await fx.backend.unpause(goalId); // a later try: the goal goes
    await fx.backend.pause(goalId); // a new fence: frozen after the short wait
    expect(await g.paused()).toBe(true);
    // The pause sent again once the old unpause lands: refused.
    plan = [{ match: /^POST \S+\/pause$/, answer: "refuse" }];
    await held;
    await sleep(1_500);
    expect(plan).toEqual([]); // it was sent
    expect(
      logs.filter((l) => l.includes(`goal ${goalId},`) && l.includes("could not be frozen again")),
    ).toHaveLength(1);
    // The goal stays held: a call waits for the lift, though its container runs.
    expect(await g.paused()).toBe(false);
    const calling = g.sb.exec({ confinement: "unconfined", command: "echo on", timeoutMs: 5_000 });
    const waited = await Promise.race([
      calling.then(() => "ran"),
      new Promise((r) => setTimeout(() => r("waiting"), 1_000)),
    ]);
    expect(waited).toBe("waiting");
    await fx.backend.unpause(goalId);
    expect((await calling).stdout.trim()).toBe("on");
    await fx.backend.remove(goalId);
  }, 120_000);
});
