// A goal's call waiting on its frozen container (cluster/fence.ts: the node's fence paused
// it) goes on only once the engine has unpaused it. The backend let waiting acquires go as it
// sent the unpause, and a call that went on at once had its exec refused by an engine still
// holding the container paused ("is paused, unpause the container before exec"). The engine
// here is the real one, behind a socket that holds every unpause request a while (an engine
// slow to unfreeze: cgroup freezer under load). A call made on a handle of the goal while it is
// frozen is sent only once it is unfrozen: before, it went to the frozen executor, and a freeze
// longer than its answer time (10 s for a path resolution) failed it.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const HOLD_MS = 800;

let engine: EngineProxy;
let fx: SandboxFixture;
beforeAll(async () => {
  engine = await engineProxy((line) => (/^POST \S+\/unpause$/.test(line) ? HOLD_MS : undefined));
  fx = makeSandboxFixture(() => {}, { docker: engine.docker });
});
afterAll(async () => {
  await fx?.cleanup();
  await engine?.close();
});

describe("a call waiting on its goal's frozen container", () => {
  it("runs once the engine has unpaused it, not as the unpause is sent", async () => {
    const goalId = "unpause-order";
    await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    const waiting = fx.backend
      .acquire(goalId)
      .then((sb) => sb.exec({ confinement: "unconfined", command: "echo went-on" }));
    await fx.backend.unpause(goalId);
    const r = await waiting;
    expect(r.stdout.trim()).toBe("went-on");
  }, 120_000);

  it("sends a call made on a frozen goal's handle only once it is unfrozen: the freeze does not use up its answer time", async () => {
    const goalId = "unpause-handle";
    const sb = await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    let settled = false;
    const resolving = sb.realpath("/workspace").finally(() => {
      settled = true;
    });
    // Longer than a path resolution's answer time (10 s, docker-sandbox.ts).
    await new Promise((r) => setTimeout(r, 11_000));
    expect(settled).toBe(false);
    await fx.backend.unpause(goalId);
    expect(await resolving).toBe("/workspace");
  }, 120_000);

  it("holds its waiting calls when it is frozen again while an unpause is under way", async () => {
    const goalId = "unpause-again";
    await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    let went = false;
    const waiting = fx.backend.acquire(goalId).then(() => {
      went = true;
    });
    const unpausing = fx.backend.unpause(goalId);
    await fx.backend.pause(goalId); // the fence falls again while the engine unfreezes
    await unpausing;
    await new Promise((r) => setTimeout(r, 200));
    expect(went).toBe(false);
    await fx.backend.unpause(goalId);
    await waiting;
    expect(went).toBe(true);
  }, 120_000);
});
