// gc() of a goal's container that stopped (stopped by the engine, or its task ended it)
// after its TTL ran out: it is an expired container, as a running one past its TTL is. It
// was reported "stopped" (the stopped check came first), so the daemon's sweeper never
// ended its goal: the goal went on, and its next call got a fresh container with a fresh TTL.

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/database.js";
import { SandboxSweeper } from "../../src/kernel/sandbox-sweeper.js";
import { goalFolders } from "../../src/sandbox/folders.js";
import { AuditLog } from "../../src/security/audit.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
beforeAll(() => {
  fx = makeSandboxFixture();
});
afterAll(async () => {
  await fx?.cleanup();
});

const docker = new Docker();
const exists = (id: string) =>
  docker
    .getContainer(id)
    .inspect()
    .then(
      () => true,
      () => false,
    );

describe("gc of a container that stopped after its TTL", () => {
  it("removes it as expired, with its ended goal's folders, as it does a running expired one", async () => {
    const goals = ["gc-stopped-ended", "gc-running-ended", "gc-stopped-live", "gc-running-live"];
    const ids = new Map<string, string>();
    for (const g of goals) {
      const sb = await fx.backend.acquire(g);
      ids.set(g, sb.containerId);
      writeFileSync(join(goalFolders(fx.config.goalsDir, g).output, "left.txt"), "x\n");
    }
    for (const g of ["gc-stopped-ended", "gc-stopped-live"])
      await docker.getContainer(ids.get(g) as string).stop({ t: 0 });
    const later = Math.floor(Date.now() / 1000) + fx.config.sandbox.ttlSeconds + 60;
    const report = await fx.backend.gc({
      isGoalLive: (g) => g.endsWith("-live"),
      nowSeconds: later,
      removeExpiredFolders: true,
    });
    expect(report.failedContainers).toEqual([]);
    const removed = new Map(report.removedContainers.map((c) => [c.goalId, c]));
    for (const g of goals) {
      expect(removed.get(g), g).toMatchObject({ containerId: ids.get(g), reason: "expired" });
      expect(await exists(ids.get(g) as string), g).toBe(false);
    }
    for (const g of ["gc-stopped-ended", "gc-running-ended"])
      expect(existsSync(goalFolders(fx.config.goalsDir, g).root), g).toBe(false);
    for (const g of ["gc-stopped-live", "gc-running-live"])
      expect(existsSync(join(goalFolders(fx.config.goalsDir, g).output, "left.txt")), g).toBe(true);
    expect(await fx.backend.reattach()).toEqual([]);
  }, 120_000);

  it("still removes a stopped container before its TTL as stopped", async () => {
    const sb = await fx.backend.acquire("gc-stopped-early");
    await docker.getContainer(sb.containerId).stop({ t: 0 });
    const report = await fx.backend.gc({ isGoalLive: () => true });
    expect(report.removedContainers).toEqual([
      expect.objectContaining({ goalId: "gc-stopped-early", reason: "stopped" }),
    ]);
  });

  it("ends, through the daemon's sweeper, the live goal whose container stopped past its TTL", async () => {
    const short = makeSandboxFixture((c) => {
      c.sandbox.ttlSeconds = 1;
    });
    const db = openDatabase(short.config.dbPath);
    try {
      const sb = await short.backend.acquire("gc-stopped-expired");
      await docker.getContainer(sb.containerId).stop({ t: 0 });
      await new Promise((r) => setTimeout(r, 2_100)); // past its aido.expires label
      const ended: string[] = [];
      await new SandboxSweeper({
        config: short.config,
        backend: short.backend,
        audit: new AuditLog({ db, signer: RuntimeKey.load(short.config.keysDir) }),
        isLive: () => true,
        expired: (goalId, reason) => ended.push(`${goalId}: ${reason}`),
        released: async () => {},
        log: () => {},
      }).sweep();
      expect(ended).toEqual(["gc-stopped-expired: the goal's sandbox reached sandbox.ttl_seconds (1 s)"]);
      expect(await exists(sb.containerId)).toBe(false);
    } finally {
      db.close();
      await short.cleanup();
    }
  });
});
