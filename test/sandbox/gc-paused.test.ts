// gc() of a goal's container frozen by its node's fence (cluster/fence.ts: docker pause
// through SandboxBackend.pause). The engine lists a frozen container as "paused", not
// "running", and the sweep took it for a stopped one: every sweep while the node was fenced
// (one a minute at most) removed the live goal's container, so a goal its node kept came
// back from the fence to a fresh container, what ran in it (its processes, its files outside
// the mounted folders) gone and its exec under way failed, audited as "stopped". A frozen
// container is a running one to the sweep: kept while its goal is live, removed as an orphan
// once it is not, and as expired past its TTL. One paused that no fence of this process holds
// still goes as stopped (frozen for good otherwise). The goal's MCP server containers are
// frozen with it and kept alike (before, they ran on through the fence). Real Docker.

import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { McpServerSpec } from "../../src/sandbox/mcp-container.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
beforeAll(() => {
  fx = makeSandboxFixture();
});
afterAll(async () => {
  await fx?.cleanup();
});

const docker = new Docker();
const stateOf = (id: string) =>
  docker
    .getContainer(id)
    .inspect()
    .then(
      (c) => (c.State.Paused ? "paused" : c.State.Status),
      () => "gone",
    );

/** A stdio MCP server that reads its stdin and answers nothing: a container that runs. */
const idleServer = (goalId: string): McpServerSpec => ({
  goalId,
  server: "idle",
  command: ["node", "-e", "process.stdin.resume()"],
  workspace: "none",
  mounts: [],
});

describe("gc of a container frozen by its node's fence", () => {
  it("keeps a live goal's frozen container, frozen, and it runs on once unfrozen", async () => {
    const goalId = "gc-paused-live";
    const sb = await fx.backend.acquire(goalId);
    await sb.exec({ confinement: "unconfined", command: "echo kept > /tmp/state" });
    expect(await fx.backend.pause(goalId)).toBe("paused");
    expect(await stateOf(sb.containerId)).toBe("paused");

    const report = await fx.backend.gc({ isGoalLive: () => true });
    expect(report.removedContainers).toEqual([]);
    expect(await stateOf(sb.containerId)).toBe("paused");

    await fx.backend.unpause(goalId);
    const again = await fx.backend.acquire(goalId);
    expect(again.containerId).toBe(sb.containerId);
    const r = await again.exec({ confinement: "unconfined", command: "cat /tmp/state" });
    expect(r.stdout.trim()).toBe("kept");
  }, 120_000);

  it("removes the frozen container of a goal that ended, as an orphan", async () => {
    const goalId = "gc-paused-ended";
    const sb = await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    const report = await fx.backend.gc({ isGoalLive: (g) => g !== goalId });
    expect(report.removedContainers).toEqual([
      expect.objectContaining({ goalId, containerId: sb.containerId, reason: "orphan" }),
    ]);
    expect(await stateOf(sb.containerId)).toBe("gone");
  }, 120_000);

  it("keeps a live goal's frozen MCP server container, frozen, and unfreezes it with the goal's", async () => {
    const goalId = "gc-paused-mcp";
    const sb = await fx.backend.acquire(goalId);
    const server = await fx.backend.startMcpServer(idleServer(goalId));
    expect(await fx.backend.pause(goalId)).toBe("paused");
    expect(await stateOf(server.containerId)).toBe("paused");

    const report = await fx.backend.gc({ isGoalLive: () => true });
    expect(report.removedContainers).toEqual([]);
    expect(await stateOf(server.containerId)).toBe("paused");

    await fx.backend.unpause(goalId);
    expect(await stateOf(server.containerId)).toBe("running");
    expect(await stateOf(sb.containerId)).toBe("running");
    await fx.backend.remove(goalId);
  }, 120_000);

  it("removes a frozen goal's MCP server container with the goal (a goal its node lost under the fence)", async () => {
    const goalId = "gc-paused-mcp-lost";
    const sb = await fx.backend.acquire(goalId);
    const server = await fx.backend.startMcpServer(idleServer(goalId));
    await fx.backend.pause(goalId);
    expect(await stateOf(server.containerId)).toBe("paused");
    await fx.backend.remove(goalId);
    expect(await stateOf(server.containerId)).toBe("gone");
    expect(await stateOf(sb.containerId)).toBe("gone");
  }, 120_000);

  it("starts no MCP server for a frozen goal until the engine has unpaused it", async () => {
    const goalId = "gc-paused-mcp-start";
    await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    let started: string | undefined;
    const starting = fx.backend.startMcpServer(idleServer(goalId)).then((s) => {
      started = s.containerId;
      return s;
    });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(started).toBeUndefined();
    await fx.backend.unpause(goalId);
    const server = await starting;
    expect(await stateOf(server.containerId)).toBe("running");
    await fx.backend.remove(goalId);
  }, 120_000);

  it("removes as stopped a paused container no fence of this process holds (an earlier process's, an unfreeze given up)", async () => {
    const goalId = "gc-paused-unheld";
    const sb = await fx.backend.acquire(goalId);
    await docker.getContainer(sb.containerId).pause();
    const report = await fx.backend.gc({ isGoalLive: () => true });
    expect(report.removedContainers).toEqual([
      expect.objectContaining({ goalId, containerId: sb.containerId, reason: "stopped" }),
    ]);
  }, 120_000);
});
