// A goal whose unfreeze the fence gives up (its last try refused) has its containers removed and
// its held calls let go once they are, into a fresh container. An earlier try (the fence counted
// it refused when the engine did not answer it in time, but it is still out) may land while
// that removal is under way: it let the held calls go at once, into the container being removed
// (an exec cut off by the removal, a write half made). Now they wait for the removal and run in
// the fresh container. The engine here is the real one, behind a socket that holds the earlier
// unpause, refuses the last, and holds the container's removal until the earlier one has landed.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { latch } from "../support/provider-server.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const GOAL = "give-up-landed";
const earlyLands = latch(); // what the earlier unpause waits for
const removalGoes = latch(); // what the removal waits for
const removalSeen = latch();
let removals = 0;
let unpauses = 0;

let engine: EngineProxy;
let fx: SandboxFixture;
beforeAll(async () => {
  engine = await engineProxy((line) => {
    if (line.endsWith(`_goal_${GOAL}/unpause`)) {
      unpauses++;
      if (unpauses === 1) return { holdUntil: earlyLands.promise };
      if (unpauses === 2) return "refuse";
      return undefined;
    }
    if (new RegExp(`^DELETE \\S+_goal_${GOAL}\\?`).test(line) && removals++ === 0) {
      removalSeen.open();
      return { holdUntil: removalGoes.promise };
    }
    return undefined;
  });
  fx = makeSandboxFixture(() => {}, { docker: engine.docker });
});
afterAll(async () => {
  earlyLands.open();
  removalGoes.open();
  await fx?.cleanup();
  await engine?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a goal given up while an earlier unfreeze try of it is still out", () => {
  it("lets its held calls go only once its containers are removed, when that try lands during the removal", async () => {
    const sb = await fx.backend.acquire(GOAL);
    await sb.exec({ confinement: "unconfined", command: "echo old > /tmp/mark" });
    await fx.backend.pause(GOAL);
    const held = sb.exec({ confinement: "unconfined", command: "cat /tmp/mark 2>/dev/null || echo fresh" });
    // The fence's earlier try: the engine holds it (the fence counted it refused at its bound).
    const early = fx.backend.unpause(GOAL).then(
      () => "answered",
      () => "refused",
    );
    await sleep(500);
    // The last try, refused: the goal is given up, its container's removal held.
    const last = fx.backend.unpause(GOAL, { last: true }).then(
      () => "answered",
      () => "refused",
    );
    await removalSeen.promise;
    earlyLands.open(); // the earlier try lands during the removal
    expect(await early).toBe("answered");
    await sleep(2_000); // time for a held call let go to reach the old container
    removalGoes.open();
    expect(await last).toBe("refused");
    // The held call ran in a fresh container, not in the one being removed.
    expect((await held).stdout.trim()).toBe("fresh");
    await fx.backend.remove(GOAL);
  }, 120_000);
});
