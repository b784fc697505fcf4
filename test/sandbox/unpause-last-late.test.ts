// A goal's last unfreeze try (its fence's, `last`) that the engine does not answer within
// LAST_ANSWER_MS counts as refused (sandbox/frozen-goals.ts), but the engine may still land it
// later. A freeze that falls meanwhile (a new fence) pauses the goal's containers after every
// unpause of it still out, and again once such an unpause lands. The last try counted as landed
// at its timeout: the new fence's pause sent again then found the container still paused (its
// unpause still held by the engine) and was refused, and the unpause, landing after it, let the
// container run through the new fence, the goal held and its audit saying it frozen. Now it
// counts as out until the engine answers it: the pause is sent again once it has landed.
// And the goal given up at that bound (no new fence): its containers are removed and a held call
// runs in a fresh one under the same name. The unpause, reaching the engine late (its name read
// then), let that fresh container run through the next fence, its pause sent at once. Now that
// freeze waits for it, as for any unpause still out, and pauses after it.
// The real engine, behind a socket that holds the last try's unpause past LAST_ANSWER_MS.

import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LAST_ANSWER_MS } from "../../src/sandbox/frozen-goals.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const GOAL = "last-late";
const GIVEN_UP = "last-late-given-up";
/** How long the engine holds the last try's unpause: past its bound, then it lands. */
const HOLD_MS = LAST_ANSWER_MS + 4_000;
let holdNext = false;
let engine: EngineProxy;
const logs: string[] = [];
let fx: SandboxFixture;
beforeAll(async () => {
  engine = await engineProxy((line) => {
    if (!holdNext || !/_goal_last-late(-given-up)?\/unpause$/.test(line)) return undefined;
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

describe("a goal frozen again while its last unfreeze try, unanswered past its bound, is still out", () => {
  it("is frozen again once that unpause lands, not left running through the new fence", async () => {
    const sb = await fx.backend.acquire(GOAL);
    await sb.exec({ confinement: "unconfined", command: "true" });
    await fx.backend.pause(GOAL);
    const container = new Docker().getContainer(fx.backend.containerName(GOAL));
    const paused = async () => (await container.inspect()).State.Paused;
    holdNext = true;
    const sentAt = Date.now();
    const last = fx.backend.unpause(GOAL, { last: true }).then(
      () => "answered",
      () => "refused",
    );
    await sleep(500);
    // A new fence: its pause waits a while for the unpause still out, then goes (refused: the
    // container is still paused), and is sent again once that unpause lands.
    const again = fx.backend.pause(GOAL).catch(() => {});
    // Not given up: the goal was frozen again since the try began.
    expect(await last).toBe("refused");
    await again;
    // The held unpause lands; the pause sent again after it has time to land too.
    await sleep(Math.max(0, sentAt + HOLD_MS - Date.now()) + 3_000);
    expect(holdNext).toBe(false);
    expect(await paused()).toBe(true);
    // The new fence's lift lets it go: its calls run in the same container.
    await fx.backend.unpause(GOAL);
    const r = await sb.exec({ confinement: "unconfined", command: "echo on", timeoutMs: 5_000 });
    expect(r.stdout.trim()).toBe("on");
    await fx.backend.remove(GOAL);
  }, 120_000);
});

describe("a goal given up at its last try's bound while that unpause is still out", () => {
  it("has its fresh container frozen by the next fence after that unpause reaches the engine", async () => {
    const sb = await fx.backend.acquire(GIVEN_UP);
    await sb.exec({ confinement: "unconfined", command: "true" });
    await fx.backend.pause(GIVEN_UP);
    const container = new Docker().getContainer(fx.backend.containerName(GIVEN_UP));
    holdNext = true;
    const sentAt = Date.now();
    // Not answered within its bound: given up, the goal's container removed.
    expect(
      await fx.backend.unpause(GIVEN_UP, { last: true }).then(
        () => "answered",
        () => "refused",
      ),
    ).toBe("refused");
    const id = (await container.inspect().catch(() => undefined))?.Id;
    // The held call runs in a fresh container; then a new fence falls.
    const r = await sb.exec({ confinement: "unconfined", command: "echo fresh", timeoutMs: 10_000 });
    expect(r.stdout.trim()).toBe("fresh");
    expect((await container.inspect()).Id).not.toBe(id);
    await fx.backend.pause(GIVEN_UP).catch(() => {});
    await sleep(Math.max(0, sentAt + HOLD_MS - Date.now()) + 3_000);
    expect(holdNext).toBe(false);
    expect((await container.inspect()).State.Paused).toBe(true);
    await fx.backend.unpause(GIVEN_UP);
    await fx.backend.remove(GIVEN_UP);
  }, 120_000);
});
