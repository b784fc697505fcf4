// A goal's TTL across a daemon restart (sandbox/goal-expiry.ts): the process after it adopts the
// expiry from the goal's container's aido.expires label. Only a running container without a
// network was adopted at reattach; a stopped one (the engine stopped it, its task ended it) was
// then swept as stopped, its label with it, and the goal's next container counted a fresh TTL
// from its start: the restart gave a live goal a new lifetime. The sweep now keeps the expiry of
// a live goal's container it removes. The real engine; two backends over one AIDO_HOME.

import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerBackend } from "../../src/sandbox/docker.js";
import { LABEL } from "../../src/sandbox/docker-containers.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const TTL_S = 600;
let fx: SandboxFixture;
let again: DockerBackend | undefined;
beforeAll(() => {
  fx = makeSandboxFixture((c) => {
    c.sandbox.ttlSeconds = TTL_S;
    c.sandbox.warmPool = 0;
  });
});
afterAll(async () => {
  await again?.removeAll();
  await fx?.cleanup();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const expiresOf = async (name: string) =>
  Number((await new Docker().getContainer(name).inspect()).Config.Labels[LABEL.expires]);

describe("a live goal whose container stopped across a daemon restart", () => {
  it("keeps its expiry: the sweep's removal of the stopped container does not start a fresh TTL", async () => {
    const goalId = "ttl-restart-stopped";
    const sb = await fx.backend.acquire(goalId);
    expect((await sb.exec({ confinement: "unconfined", command: "echo up" })).stdout.trim()).toBe("up");
    const name = fx.backend.containerName(goalId);
    const first = await expiresOf(name);
    await new Docker().getContainer(name).kill();
    await sleep(2_100); // a fresh TTL would end later than the first by at least this much
    // The next process: nothing to re-attach (stopped), its sweep removes it as stopped.
    again = new DockerBackend(fx.config, { labels: { "aido.test": "sandbox" } });
    expect(await again.reattach()).toEqual([]);
    const swept = await again.gc({ isGoalLive: async (g) => g === goalId });
    expect(swept.removedContainers.map((r) => [r.goalId, r.reason])).toEqual([[goalId, "stopped"]]);
    const sb2 = await again.acquire(goalId);
    expect((await sb2.exec({ confinement: "unconfined", command: "echo again" })).stdout.trim()).toBe(
      "again",
    );
    expect(await expiresOf(name)).toBe(first);
    await again.remove(goalId);
  }, 120_000);
});
