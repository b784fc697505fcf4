// A goal's sandbox TTL counts from when its first container was started, and the sweep leaves a
// container whose start is under way (sandbox/goal-expiry.ts). It counted from the container's
// creation (its aido.expires label): a start slower than the TTL (an engine under load) was
// swept mid-way as expired (a CI run saw a standalone agent's container killed during its start,
// 137), and a container that started late lost the time its start took from its TTL. The real
// engine, behind a socket that holds the goal container's start a while.

import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../src/sandbox/docker-containers.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { latch } from "../support/provider-server.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const GOAL = "ttl-slow-start";
const TTL_S = 2;
/** How long the engine holds the container's start: past its TTL. */
const START_HOLD_MS = 5_000;
let holdStart = false;
/** Opened as the engine holds the next start. */
let startSeen = latch();

let engine: EngineProxy;
let fx: SandboxFixture;
beforeAll(async () => {
  engine = await engineProxy((line) => {
    if (!holdStart || !/^POST \S*\/containers\/[^/]+\/start$/.test(line)) return undefined;
    holdStart = false;
    startSeen.open();
    return START_HOLD_MS;
  });
  fx = makeSandboxFixture(
    (c) => {
      c.sandbox.ttlSeconds = TTL_S;
      c.sandbox.warmPool = 0;
    },
    { docker: engine.docker },
  );
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await fx?.cleanup();
  // A server start the sweep broke leaves its attach connection open: the proxy's close waited for it.
  await Promise.race([engine?.close(), sleep(10_000)]);
});
const nowSeconds = () => Math.floor(Date.now() / 1000);
const live = { isGoalLive: async () => true };

describe("a goal's container whose start takes longer than its TTL", () => {
  it("is not swept while it starts, and its TTL counts from its start", async () => {
    holdStart = true;
    const acquiring = fx.backend.acquire(GOAL);
    await startSeen.promise;
    await sleep(TTL_S * 1000 + 1_500);
    // Created past its TTL, still starting: the sweep leaves it.
    const during = await fx.backend.gc(live);
    expect(during.removedContainers).toEqual([]);
    const sb = await acquiring;
    const startedAt = nowSeconds();
    expect((await sb.exec({ confinement: "unconfined", command: "echo up" })).stdout.trim()).toBe("up");
    // Past its creation + TTL (its label), within its start + TTL: it stays.
    const info = await new Docker().getContainer(fx.backend.containerName(GOAL)).inspect();
    const label = Number(info.Config.Labels[LABEL.expires]);
    expect(label).toBeLessThan(startedAt + TTL_S);
    const after = await fx.backend.gc({ ...live, nowSeconds: label });
    expect(after.removedContainers).toEqual([]);
    // Past its start + TTL: expired.
    const past = await fx.backend.gc({ ...live, nowSeconds: startedAt + TTL_S });
    expect(past.removedContainers.map((r) => [r.goalId, r.reason])).toEqual([[GOAL, "expired"]]);
    await fx.backend.remove(GOAL);
  }, 120_000);

  it("sweeps a restart under way once the goal's TTL (from its first start) has passed", async () => {
    // An agent whose container keeps dying (its task ends the container's `sleep`) has it
    // started again at its next call: a restart under way when the sweep looks, or one done
    // since it listed, was left (starting), and a goal kept restarting past its TTL outlived it.
    const goalId = "ttl-restart-loop";
    const sb = await fx.backend.acquire(goalId);
    expect((await sb.exec({ confinement: "unconfined", command: "echo up" })).stdout.trim()).toBe("up");
    const expires = nowSeconds() + TTL_S;
    await new Docker().getContainer(fx.backend.containerName(goalId)).kill();
    await expect(sb.exec({ confinement: "unconfined", command: "true" })).rejects.toThrow();
    startSeen = latch();
    holdStart = true;
    const restarting = sb.exec({ confinement: "unconfined", command: "echo again" });
    restarting.catch(() => {}); // the sweep removes its container mid-start: it fails
    await startSeen.promise;
    const swept = await fx.backend.gc({ ...live, nowSeconds: expires + 1 });
    expect(swept.removedContainers.map((r) => [r.goalId, r.reason])).toEqual([[goalId, "expired"]]);
    await restarting.catch(() => {});
    await fx.backend.remove(goalId);
  }, 120_000);

  it("leaves an MCP server's container whose start is under way", async () => {
    const goalId = "ttl-slow-mcp";
    startSeen = latch();
    holdStart = true;
    const starting = fx.backend.startMcpServer({
      goalId,
      server: "idle",
      command: ["node", "-e", "process.stdin.resume()"],
      workspace: "none",
      mounts: [],
    });
    starting.catch(() => {}); // awaited below: a start the sweep broke fails the test there
    await startSeen.promise;
    // Made, not started, not yet held as live: the sweep leaves it (before: an orphan, removed).
    const during = await fx.backend.gc(live);
    expect(during.removedContainers).toEqual([]);
    const server = await starting;
    expect((await new Docker().getContainer(server.containerId).inspect()).State.Running).toBe(true);
    await server.stop();
    await fx.backend.remove(goalId);
  }, 120_000);
});
