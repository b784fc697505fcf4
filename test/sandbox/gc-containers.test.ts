// gc() past a container the engine will not remove. One such container (the engine answers
// 500 for it) threw out of gc(): the containers after it stayed, the egress and folder sweeps
// were skipped, and the ones removed before it went unreported (not audited, their goals not
// released), on every sweep for as long as it stayed. The engine refuses for real: the
// container's own folder in the engine's data root is made immutable (chattr +i), so the
// engine kills the container and then cannot delete its files.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/database.js";
import { SandboxSweeper } from "../../src/kernel/sandbox-sweeper.js";
import { AuditLog } from "../../src/security/audit.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { freezeFolder } from "../support/undeletable.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
beforeAll(() => {
  fx = makeSandboxFixture();
});
afterAll(async () => {
  await fx?.cleanup();
});

/** The engine's own folder of a container: what makes its removal fail when frozen. */
function engineFolderOf(containerId: string): string {
  const root = execFileSync("docker", ["info", "--format", "{{.DockerRootDir}}"], {
    encoding: "utf8",
  }).trim();
  const dir = join(root, "containers", containerId);
  if (!existsSync(dir) || process.getuid?.() !== 0)
    throw new Error(
      `this test makes the engine fail a removal by freezing ${dir}: it needs root and the engine's data root on this host`,
    );
  return dir;
}

describe("gc of containers the engine will not remove", () => {
  it("goes on past the container, reports it with the engine's answer, the sweeper logs it, and the next sweep removes it", async () => {
    // Listed newest first: the stuck one comes between the other two.
    const before = await fx.backend.acquire("gc-before");
    const stuck = await fx.backend.acquire("gc-stuck");
    const after = await fx.backend.acquire("gc-after");
    const ids = { before: before.containerId, stuck: stuck.containerId, after: after.containerId };
    // A warm-pool folder no process owns: the folder sweep, which comes after the containers.
    const staleSlot = join(fx.config.home, "sandbox-pool", "staleslot");
    mkdirSync(join(staleSlot, "workspace"), { recursive: true });
    const release = freezeFolder(engineFolderOf(ids.stuck));
    try {
      const report = await fx.backend.gc({ isGoalLive: () => false });
      expect(report.removedContainers.map((c) => c.goalId).sort()).toEqual(["gc-after", "gc-before"]);
      expect(report.failedContainers).toEqual([
        expect.objectContaining({ goalId: "gc-stuck", containerId: ids.stuck, reason: "orphan" }),
      ]);
      expect(report.failedContainers[0]?.error).toMatch(
        new RegExp(`^removing container ${ids.stuck} failed: .*unable to remove filesystem`),
      );
      expect(report.removedFolders).toContain(staleSlot);
      expect(existsSync(staleSlot)).toBe(false);
      const exists = (id: string) =>
        execFileSync("docker", ["ps", "-aq", "--no-trunc", "--filter", `id=${id}`], {
          encoding: "utf8",
        }).trim() !== "";
      expect([exists(ids.before), exists(ids.stuck), exists(ids.after)]).toEqual([false, true, false]);

      // The daemon's sweeper says which container and why, and goes on.
      const db = openDatabase(fx.config.dbPath);
      const logs: string[] = [];
      const sweeper = new SandboxSweeper({
        config: fx.config,
        backend: fx.backend,
        audit: new AuditLog({ db, signer: RuntimeKey.load(fx.config.keysDir) }),
        isLive: () => false,
        expired: () => {},
        released: async () => {},
        log: (m) => logs.push(m),
      });
      await sweeper.sweep();
      // Tried again with each sweep, and said once while the engine gives the same answer.
      await sweeper.sweep();
      db.close();
      expect(logs).toEqual([
        expect.stringMatching(
          /^removing container \S+ \((orphan|stopped)\) failed \(tried again with each sweep, logged once\): removing container /,
        ),
      ]);
    } finally {
      release();
    }
    const again = await fx.backend.gc({ isGoalLive: () => false });
    expect(again.failedContainers).toEqual([]);
    expect(again.removedContainers).toEqual([
      expect.objectContaining({ goalId: "gc-stuck", containerId: ids.stuck }),
    ]);
  });

  it("goes on past an egress relay it cannot remove: reported, its network kept for the next sweep", async () => {
    const share = join(fx.config.home, "egress", "gc-relay-stuck");
    mkdirSync(share, { recursive: true });
    const { network } = await fx.backend.egress("gc-relay-stuck", share);
    const relay = execFileSync(
      "docker",
      ["ps", "-aq", "--no-trunc", "--filter", "label=aido.relay=gc-relay-stuck"],
      {
        encoding: "utf8",
      },
    ).trim();
    const staleSlot = join(fx.config.home, "sandbox-pool", "staleslot2");
    mkdirSync(join(staleSlot, "workspace"), { recursive: true });
    const networkExists = () =>
      execFileSync("docker", ["network", "ls", "-q", "--filter", `name=^${network}$`], {
        encoding: "utf8",
      }).trim() !== "";
    const release = freezeFolder(engineFolderOf(relay));
    try {
      const report = await fx.backend.gc({ isGoalLive: () => false });
      expect(report.failedContainers).toEqual([
        expect.objectContaining({ goalId: "gc-relay-stuck", containerId: relay, reason: "orphan" }),
      ]);
      expect(report.removedEgress).toEqual([]);
      expect(networkExists()).toBe(true);
      expect(report.removedFolders).toContain(staleSlot);
    } finally {
      release();
    }
    const again = await fx.backend.gc({ isGoalLive: () => false });
    expect(again.failedContainers).toEqual([]);
    expect(again.removedEgress).toEqual(["gc-relay-stuck"]);
    expect(networkExists()).toBe(false);
  });

  it("still ends the goal whose container reached its TTL when the engine will not remove it", async () => {
    // Otherwise the goal went on: at the next sweep the container the engine had killed was
    // only "stopped", removed as such, and the goal's next call got a fresh container.
    const short = makeSandboxFixture((c) => {
      c.sandbox.ttlSeconds = 1;
    });
    try {
      const sb = await short.backend.acquire("gc-expired-stuck");
      const release = freezeFolder(engineFolderOf(sb.containerId));
      const ended: string[] = [];
      const logs: string[] = [];
      const db = openDatabase(short.config.dbPath);
      try {
        await new Promise((r) => setTimeout(r, 2_100)); // past its aido.expires label
        await new SandboxSweeper({
          config: short.config,
          backend: short.backend,
          audit: new AuditLog({ db, signer: RuntimeKey.load(short.config.keysDir) }),
          isLive: () => true,
          expired: (goalId, reason) => ended.push(`${goalId}: ${reason}`),
          released: async () => {},
          log: (m) => logs.push(m),
        }).sweep();
      } finally {
        db.close();
        release();
      }
      expect(logs).toEqual([expect.stringMatching(/^removing container \S+ \(expired\) failed /)]);
      expect(ended).toEqual(["gc-expired-stuck: the goal's sandbox reached sandbox.ttl_seconds (1 s)"]);
    } finally {
      await short.cleanup();
    }
  });
});
