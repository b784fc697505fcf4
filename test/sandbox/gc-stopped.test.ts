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

// A goal's TTL counted from each container it had: one that stopped before its TTL (the
// engine stopped it, or a task that could signal its `sleep` ended it) was replaced, at the
// goal's next call or after a sweep removed it as "stopped", by a container with a TTL of
// its own, so a goal whose container kept dying was never expired. And one that stopped past
// its TTL, replaced at the goal's next call before a sweep saw it, took the goal on the same.
describe("a goal whose container stopped", () => {
  const expiresOf = async (id: string) =>
    (await docker.getContainer(id).inspect()).Config.Labels["aido.expires"];

  it("before its TTL gets a container that expires when its first one does", async () => {
    const ttl = fx.config.sandbox.ttlSeconds;
    const sb = await fx.backend.acquire("ttl-kept");
    const startEnded = Date.now();
    const first = Number(await expiresOf(sb.containerId));
    // The first label counts from the container's creation, the goal's expiry from its start's
    // end (goal-expiry.ts), a second later when the start crossed a second: the goal's expiry is
    // between the two. A fresh TTL, counted after this wait, is past both.
    const kept = (n: number) => n >= first && n <= Math.floor(startEnded / 1000) + ttl;
    await new Promise((r) => setTimeout(r, 1_100));
    await docker.getContainer(sb.containerId).stop({ t: 0 });
    // The first call after it died fails (and says so); the next one gets a new container.
    await sb.exec({ confinement: "unconfined", argv: ["true"] }).catch(() => undefined);
    await sb.exec({ confinement: "unconfined", argv: ["true"] });
    const second = Number(await expiresOf(sb.containerId));
    expect(kept(second), `${second} in ${first}..${Math.floor(startEnded / 1000) + ttl}`).toBe(true);
    await docker.getContainer(sb.containerId).stop({ t: 0 });
    const report = await fx.backend.gc({ isGoalLive: () => true });
    expect(report.removedContainers).toEqual([
      expect.objectContaining({ goalId: "ttl-kept", reason: "stopped" }),
    ]);
    const again = await fx.backend.acquire("ttl-kept");
    expect(Number(await expiresOf(again.containerId))).toBe(second);
  });

  it("past its TTL, replaced at the goal's next call before a sweep, still has the goal ended by the sweep", async () => {
    const short = makeSandboxFixture((c) => {
      c.sandbox.ttlSeconds = 3;
    });
    const db = openDatabase(short.config.dbPath);
    try {
      const sb = await short.backend.acquire("ttl-stopped-late");
      await new Promise((r) => setTimeout(r, 3_100)); // past its aido.expires label
      await docker.getContainer(sb.containerId).stop({ t: 0 });
      await sb.exec({ confinement: "unconfined", argv: ["true"] }).catch(() => undefined);
      await sb.exec({ confinement: "unconfined", argv: ["true"] });
      const ended: string[] = [];
      await new SandboxSweeper({
        config: short.config,
        backend: short.backend,
        audit: new AuditLog({ db, signer: RuntimeKey.load(short.config.keysDir) }),
        isLive: () => true,
        expired: (goalId) => ended.push(goalId),
        released: async () => {},
        log: () => {},
      }).sweep();
      expect(ended).toEqual(["ttl-stopped-late"]);
    } finally {
      db.close();
      await short.cleanup();
    }
  });
});

describe("a goal given a warm-pool slot that waited past its TTL", () => {
  it("is not ended as expired by the next sweep: such a slot is not handed out", async () => {
    // A slot's TTL counts from when it started: a daemon idle longer than the TTL handed its
    // next goal a container already past its aido.expires label, and the next sweep ended
    // that goal as expired (`reached sandbox.ttl_seconds`) moments after it began.
    const pooled = makeSandboxFixture((c) => {
      c.sandbox.warmPool = 1;
      c.sandbox.ttlSeconds = 2;
    });
    try {
      await pooled.backend.start();
      expect(pooled.backend.warmSlots).toBe(1);
      await new Promise((r) => setTimeout(r, 2_100)); // the idle slot is past its label
      // The slot's label is at most `asked` (it started 2.1 s before); a container made for the
      // goal counts its TTL from after `asked`. Compared with the time after the acquire, a
      // start slower than a second (an engine under load) made a fresh container look stale.
      const asked = Math.floor(Date.now() / 1000);
      const sb = await pooled.backend.acquire("pool-stale-goal");
      const labels = (await docker.getContainer(sb.containerId).inspect()).Config.Labels;
      expect(Number(labels["aido.expires"])).toBeGreaterThanOrEqual(asked + 2);
      // A second after the slot's label: the stale slot's goal would be expired by now.
      const report = await pooled.backend.gc({ isGoalLive: () => true, nowSeconds: asked + 1 });
      expect(report.removedContainers.filter((c) => c.goalId === "pool-stale-goal")).toEqual([]);
    } finally {
      await pooled.cleanup();
    }
  });
});
