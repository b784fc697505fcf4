// A kept goal's unfreeze is tried again with the heartbeats (cluster/fence.ts), a try the engine
// does not answer within 10 s counting as refused while its unpause is still out. That unpause
// landing lets the goal go (sandbox/frozen-goals.ts); a later try, the last, refused by the engine
// after that, gave the goal up all the same: the containers of a goal its node kept, running
// again, an exec maybe under way in them, were removed. Now a refused unpause of a goal let go
// meanwhile by another is no refusal: nothing is frozen, nothing is given up.
// The real engine, behind a socket that holds the first unpause and refuses the second late.

import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EngineAnswer, type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const GOAL = "last-thawed";
/** What the next unpause requests are answered, in turn. */
let plan: EngineAnswer[] = [];
let engine: EngineProxy;
let fx: SandboxFixture;
beforeAll(async () => {
  engine = await engineProxy((line) =>
    line.endsWith(`_goal_${GOAL}/unpause`) && plan.length > 0 ? plan.shift() : undefined,
  );
  fx = makeSandboxFixture(() => {}, { docker: engine.docker });
});
afterAll(async () => {
  await fx?.cleanup();
  await engine?.close();
});

describe("a goal's last unfreeze try refused after an earlier try let the goal go", () => {
  it("is not given up: its container stays, running, and its calls go on", async () => {
    const sb = await fx.backend.acquire(GOAL);
    await sb.exec({ confinement: "unconfined", command: "true" });
    const name = fx.backend.containerName(GOAL);
    const id = (await new Docker().getContainer(name).inspect()).Id;
    await fx.backend.pause(GOAL);
    // A try the fence counted refused after 10 s: the engine answers it late, and it passes.
    plan = [2_000, { refuseAfterMs: 4_000 }];
    const early = fx.backend.unpause(GOAL);
    const deadline = Date.now() + 5_000;
    while (plan.length > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(plan).toHaveLength(1); // its unpause is out
    // The last try, sent while the container is still paused: refused once the other landed.
    const last = fx.backend.unpause(GOAL, { last: true }).then(
      () => "unfrozen",
      (e: unknown) => `refused: ${String(e)}`,
    );
    await early;
    expect(plan).toEqual([]); // the last try's unpause was sent before the early one landed
    const answered = await last;
    const state = await new Docker()
      .getContainer(name)
      .inspect()
      .then(
        (c) => c.State,
        () => "removed",
      );
    expect(state).toMatchObject({ Running: true, Paused: false });
    expect(answered).toBe("unfrozen");
    const r = await sb.exec({ confinement: "unconfined", command: "echo on", timeoutMs: 5_000 });
    expect(r.stdout.trim()).toBe("on");
    // The same container, not a fresh one over the workspace.
    expect((await new Docker().getContainer(name).inspect()).Id).toBe(id);
    await fx.backend.remove(GOAL);
  }, 120_000);
});
