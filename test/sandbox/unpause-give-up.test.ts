// A goal whose unfreeze the fence gives up (cluster/fence.ts: the last of UNFREEZE_TRIES refused)
// has its containers removed and its held calls let go, in a fresh container. The node can be
// fenced again while those removals are under way (the engine slow to remove a paused
// container): the new fence's freeze then found the goal still frozen and only marked it so,
// and the give-up let it go all the same once its removals were done. Its held calls ran on
// through the new fence, in a fresh container nothing froze, while a survivor may already run
// the goal. The engine here is the real one, behind a socket that refuses the goal container's
// unpause and holds its removal.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const GOAL = "give-up-again";
const REMOVE_HOLD_MS = 1_500;

let refuseUnpause = true;
let removalSeen = () => {};
const removal = new Promise<void>((r) => {
  removalSeen = r;
});

let engine: EngineProxy;
let fx: SandboxFixture;
beforeAll(async () => {
  engine = await engineProxy((line) => {
    if (refuseUnpause && line.endsWith(`_goal_${GOAL}/unpause`)) return "refuse";
    if (/^DELETE \S+_goal_give-up-again\?/.test(line)) {
      removalSeen();
      return REMOVE_HOLD_MS;
    }
    return undefined;
  });
  fx = makeSandboxFixture(() => {}, { docker: engine.docker });
});
afterAll(async () => {
  await fx?.cleanup();
  await engine?.close();
});

describe("a goal whose unfreeze is given up", () => {
  it("stays frozen, its held calls held, when its node is fenced again while its containers are removed", async () => {
    const sb = await fx.backend.acquire(GOAL);
    await fx.backend.pause(GOAL);
    let ran = false;
    const held = sb.exec({ confinement: "unconfined", command: "echo ran" }).then((r) => {
      ran = true;
      return r;
    });
    const givingUp = fx.backend.unpause(GOAL, { last: true }).then(
      () => "unfrozen",
      () => "refused",
    );
    await removal;
    await fx.backend.pause(GOAL); // the fence falls again as the give-up removes the containers
    expect(await givingUp).toBe("refused");
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await fx.backend.untilThawed(GOAL, AbortSignal.timeout(100))).toBe(false); // still frozen
    expect(ran).toBe(false);
    // The new fence's lift: the held call runs, in a fresh container over the same workspace.
    refuseUnpause = false;
    await fx.backend.unpause(GOAL);
    expect((await held).stdout.trim()).toBe("ran");
  }, 120_000);
});
