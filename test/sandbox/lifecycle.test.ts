// A goal's sandbox over time: the executor and the container dying and coming back,
// a new backend re-attaching after a restart, GC of expired and orphaned containers
// (never following a symlinked goal folder), the warm pool, and limits that only tighten.

import { execFileSync } from "node:child_process";
import {
  existsSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/database.js";
import { mcpEgressId } from "../../src/egress/mcp-callers.js";
import { isAidoError } from "../../src/errors.js";
import { SandboxSweeper } from "../../src/kernel/sandbox-sweeper.js";
import { defaultLimits, tightenLimits } from "../../src/sandbox/container-spec.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import { LABEL } from "../../src/sandbox/docker-containers.js";
import { AuditLog } from "../../src/security/audit.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { canMakeUndeletable, makeUndeletable } from "../support/undeletable.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
beforeAll(() => {
  fx = makeSandboxFixture();
});
afterAll(async () => {
  await fx?.cleanup();
});

describe("recovery", () => {
  it("restarts the executor after it is killed, in the same container; no command can kill it", async () => {
    const sb = await fx.backend.acquire("restart-goal");
    await sb.writeFile("/tmp/marker", "same container");
    const before = sb.containerId;
    const pid = sb.executorPid;
    // Commands, unconfined ones included, are signal-scoped (Landlock ABI >= 6).
    const tried = await sb.exec({ confinement: "unconfined", command: `kill -KILL ${pid}; echo status=$?` });
    expect(tried.stdout).toBe("status=1\n");
    expect(sb.executorPid).toBe(pid);
    // Killed from outside (as a crash or the kernel would) while a call runs.
    const running = sb.exec({ confinement: "unconfined", command: "sleep 1" }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 200));
    execFileSync("docker", ["exec", before, "kill", "-KILL", String(pid)]);
    const killed = await running;
    expect(isAidoError(killed, "sandbox_failed")).toBe(true);
    expect(killed.message).toMatch(/executor .* stopped .* restarted on the next call/);
    expect((await sb.readFile("/tmp/marker")).content).toBe("same container");
    expect(sb.containerId).toBe(before);
    expect(sb.executorPid).not.toBe(pid);
  });

  it("fails clearly when the container dies, then gives the next call a fresh one over the same workspace", async () => {
    const sb = await fx.backend.acquire("dies-goal");
    await sb.writeFile("/workspace/kept.txt", "kept");
    await sb.writeFile("/tmp/lost", "tmpfs goes with the container");
    const old = sb.containerId;
    await fx.backend.docker.getContainer(old).kill();
    const err = await sb.exec({ confinement: "unconfined", argv: ["true"] }).catch((e) => e);
    expect(isAidoError(err, "sandbox_failed")).toBe(true);
    expect(err.message).toMatch(/container of goal dies-goal .*next call starts a fresh container/);
    expect((await sb.readFile("/workspace/kept.txt")).content).toBe("kept");
    expect(await sb.stat("/tmp/lost")).toBeNull();
    expect(sb.containerId).not.toBe(old);
  });

  it("re-attaches to live containers from a new backend instance", async () => {
    const sb = await fx.backend.acquire("reattach-goal");
    await sb.writeFile("/tmp/state", "alive");
    const again = new DockerBackend(fx.config, { labels: { "aido.test": "sandbox" } });
    expect(await again.reattach()).toContain("reattach-goal");
    const sb2 = await again.acquire("reattach-goal");
    expect(sb2.containerId).toBe(sb.containerId);
    expect((await sb2.readFile("/tmp/state")).content).toBe("alive");
    await again.close();
  });

  it("stops a goal's container but keeps its folders for the next acquire", async () => {
    const sb = await fx.backend.acquire("stop-goal");
    await sb.writeFile("/workspace/stays.txt", "stays");
    await fx.backend.stop("stop-goal");
    const state = (await fx.backend.docker.getContainer(sb.containerId).inspect()).State;
    expect(state.Running).toBe(false);
    await expect(sb.stat("/workspace")).rejects.toThrow(/released/);
    const next = await fx.backend.acquire("stop-goal");
    expect(next.containerId).not.toBe(sb.containerId);
    expect((await next.readFile("/workspace/stays.txt")).content).toBe("stays");
    await fx.backend.remove("stop-goal", { deleteFolders: true });
    expect(existsSync(join(fx.config.goalsDir, "stop-goal"))).toBe(false);
  });

  it("shares the goal folder with the host both ways", async () => {
    const sb = await fx.backend.acquire("share-goal");
    writeFileSync(join(fx.config.goalsDir, "share-goal", "workspace", "from-host.txt"), "hi");
    expect((await sb.readFile("/workspace/from-host.txt")).content).toBe("hi");
    await sb.writeFile("/output/result.md", "# done");
    expect(readFileSync(join(fx.config.goalsDir, "share-goal", "output", "result.md"), "utf8")).toBe(
      "# done",
    );
  });
});

describe("retiring a goal", () => {
  it("removes a container still being made when the goal ended, and starts none after", async () => {
    const making = fx.backend.acquire("retire-goal");
    await fx.backend.remove("retire-goal");
    const e = await making.catch((x) => x);
    expect(isAidoError(e, "sandbox_failed")).toBe(true);
    expect(e.message).toMatch(/removed when the goal ended; no new container/);
    const left = await fx.backend.docker.listContainers({
      all: true,
      filters: { name: [fx.backend.containerName("retire-goal")] },
    });
    expect(left).toEqual([]);
    await expect(fx.backend.acquire("retire-goal")).rejects.toThrow(/removed when the goal ended/);
  });

  it("asks the engine nothing for a goal that never had a container, and still starts none after", async () => {
    const calls: string[] = [];
    const modem = fx.backend.docker.modem as { dial(o: { path?: string }, cb: unknown): unknown };
    const dial = modem.dial.bind(modem);
    modem.dial = (o, cb) => {
      calls.push(String(o.path));
      return dial(o, cb);
    };
    try {
      await fx.backend.remove("thinking-goal", { deleteFolders: true });
      expect(calls).toEqual([]);
    } finally {
      modem.dial = dial;
    }
    await expect(fx.backend.acquire("thinking-goal")).rejects.toThrow(/removed when the goal ended/);
  });

  it("removes, from a new backend, the container of a goal an earlier process made", async () => {
    const sb = await fx.backend.acquire("earlier-goal");
    const again = new DockerBackend(fx.config, { labels: { "aido.test": "sandbox" } });
    try {
      expect(await again.reattach()).toContain("earlier-goal");
      await again.remove("earlier-goal");
      const left = await fx.backend.docker.listContainers({ all: true, filters: { id: [sb.containerId] } });
      expect(left).toEqual([]);
    } finally {
      await again.close();
    }
  });
});

describe("retiring a goal that lived through a restart", () => {
  it("removes, at the goal's end, an MCP server's network that the start-up sweep kept for the live goal", async () => {
    // A persistent agent's pseudo-goal is live again after a restart; its MCP servers'
    // containers went with the dead process, their networks stay while the goal lives. Its
    // own container was not running, so nothing else tells the new backend about the goal.
    const goal = "restarted-goal";
    const again = new DockerBackend(fx.config, { labels: { "aido.test": "sandbox" } });
    const server = mcpEgressId(goal, "files");
    const name = `aido_${again.runtimeId}_egress_${server}`;
    await again.docker.createNetwork({
      Name: name,
      Internal: true,
      Labels: { [LABEL.runtime]: again.runtimeId, [LABEL.relay]: server, "aido.test": "sandbox" },
    });
    const exists = async () => (await again.docker.listNetworks({ filters: { name: [name] } })).length > 0;
    try {
      await again.reattach();
      await again.gc({ isGoalLive: (g) => g === goal });
      expect(await exists()).toBe(true);
      await again.remove(goal);
      expect(await exists()).toBe(false);
    } finally {
      if (await exists()) await again.docker.getNetwork(name).remove();
      await again.close();
    }
  });
});

describe("gc", () => {
  it("removes expired and orphaned containers and keeps live ones", async () => {
    const live = await fx.backend.acquire("gc-live");
    await fx.backend.acquire("gc-orphan");
    const report = await fx.backend.gc({ isGoalLive: (g) => g !== "gc-orphan" });
    const removed = report.removedContainers.map((c) => `${c.name.split("_goal_")[1]}:${c.reason}`);
    expect(removed).toContain("gc-orphan:orphan");
    expect(removed).not.toContain("gc-live:orphan");
    expect((await live.exec({ confinement: "unconfined", argv: ["echo", "ok"] })).stdout).toBe("ok\n");
    const later = Math.floor(Date.now() / 1000) + fx.config.sandbox.ttlSeconds + 60;
    const expired = await fx.backend.gc({ isGoalLive: () => true, nowSeconds: later });
    expect(expired.removedContainers.map((c) => c.reason)).toContain("expired");
    expect(await fx.backend.reattach()).not.toContain("gc-live");
  });

  it("never follows a symlinked goal folder or a link inside one", async () => {
    const outside = mkdtempSync(join(tmpdir(), "aido-outside-"));
    writeFileSync(join(outside, "precious.txt"), "keep me");
    mkdirSync(fx.config.goalsDir, { recursive: true });
    symlinkSync(outside, join(fx.config.goalsDir, "linked-goal"));
    const inner = join(fx.config.goalsDir, "inner-goal", "workspace");
    mkdirSync(inner, { recursive: true });
    symlinkSync(outside, join(inner, "escape"));
    const old = new Date(Date.now() - 2 * fx.config.sandbox.ttlSeconds * 1000);
    for (const p of [join(fx.config.goalsDir, "inner-goal"), inner]) utimesSync(p, old, old);
    lutimesSync(join(fx.config.goalsDir, "linked-goal"), old, old);
    const report = await fx.backend.gc({ isGoalLive: () => false, removeExpiredFolders: true });
    expect(report.removedFolders.map((p) => p.split("/").pop())).toEqual(
      expect.arrayContaining(["linked-goal", "inner-goal"]),
    );
    expect(readFileSync(join(outside, "precious.txt"), "utf8")).toBe("keep me");
    expect(readFileSync(join(outside, "precious.txt"), "utf8")).toBe("keep me");
    expect(existsSync(join(fx.config.goalsDir, "inner-goal"))).toBe(false);
    expect(existsSync(join(fx.config.goalsDir, "linked-goal"))).toBe(false);
    expect(existsSync(outside)).toBe(true);
    rmSync(outside, { recursive: true, force: true });
  });
});

describe("gc of folders a goal left", () => {
  it.skipIf(!canMakeUndeletable)(
    "goes on past a folder it cannot remove, says which and why, and removes it at the next sweep",
    async () => {
      // One goal folder (or pool folder) whose removal failed threw out of gc(): every other
      // folder stayed, the containers removed before it went unreported, and so on every sweep.
      const old = new Date(Date.now() - 2 * fx.config.sandbox.ttlSeconds * 1000);
      const goal = (id: string) => {
        const ws = join(fx.config.goalsDir, id, "workspace");
        mkdirSync(ws, { recursive: true });
        writeFileSync(join(ws, "left"), "x");
        for (const p of [ws, join(fx.config.goalsDir, id)]) utimesSync(p, old, old);
        return join(fx.config.goalsDir, id);
      };
      const slot = (id: string) => {
        const p = join(fx.config.home, "sandbox-pool", id, "workspace");
        mkdirSync(p, { recursive: true });
        return join(fx.config.home, "sandbox-pool", id);
      };
      const stuckGoal = goal("stuck-goal");
      const otherGoals = [goal("after-goal"), goal("before-goal")];
      const stuckSlot = slot("stuckslot");
      const otherSlot = slot("otherslot");
      const release = [
        makeUndeletable(join(stuckGoal, "workspace", "immutable")),
        makeUndeletable(join(stuckSlot, "workspace", "immutable")),
      ];
      utimesSync(join(stuckGoal, "workspace"), old, old);
      try {
        const report = await fx.backend.gc({ isGoalLive: () => false, removeExpiredFolders: true });
        expect(report.failedFolders.map((f) => f.path).sort()).toEqual([stuckGoal, stuckSlot].sort());
        for (const f of report.failedFolders)
          expect(f.error).toMatch(new RegExp(`^cannot remove ${f.path}: `));
        expect(report.removedFolders).toEqual(expect.arrayContaining([...otherGoals, otherSlot]));
        for (const p of [...otherGoals, otherSlot]) expect(existsSync(p)).toBe(false);

        // The daemon's sweeper says so in its log, and goes on.
        const db = openDatabase(fx.config.dbPath);
        const logs: string[] = [];
        const sweeper = new SandboxSweeper({
          config: fx.config,
          backend: fx.backend,
          audit: new AuditLog({ db, signer: RuntimeKey.load(fx.config.keysDir) }),
          isLive: () => true,
          expired: () => {},
          released: async () => {},
          log: (m) => logs.push(m),
        });
        await sweeper.sweep();
        db.close();
        expect(logs).toEqual([
          expect.stringMatching(
            new RegExp(`^removing ${stuckSlot} failed \\(tried again at the next sweep\\): cannot remove`),
          ),
        ]);
      } finally {
        for (const r of release) r();
      }
      const again = await fx.backend.gc({ isGoalLive: () => false, removeExpiredFolders: true });
      expect(again.failedFolders).toEqual([]);
      expect(again.removedFolders).toEqual(expect.arrayContaining([stuckGoal, stuckSlot]));
      expect(existsSync(stuckGoal) || existsSync(stuckSlot)).toBe(false);
    },
  );
});

describe("gc of a goal folder it could not remove", () => {
  it.skipIf(!canMakeUndeletable)("tries it again at the next sweep, not a TTL later", async () => {
    // The failed removal emptied part of the folder, which made it look touched just now:
    // the next sweeps judged it young and left it for another whole TTL.
    const old = new Date(Date.now() - 2 * fx.config.sandbox.ttlSeconds * 1000);
    const root = join(fx.config.goalsDir, "half-removed");
    const ws = join(root, "workspace");
    mkdirSync(ws, { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(ws, `f${i}`), "x");
    mkdirSync(join(root, "output"));
    writeFileSync(join(root, "output", "o"), "x");
    const release = makeUndeletable(join(ws, "immutable"));
    for (const p of [ws, join(root, "output"), root]) utimesSync(p, old, old);
    try {
      const first = await fx.backend.gc({ isGoalLive: () => false, removeExpiredFolders: true });
      expect(first.failedFolders.map((f) => f.path)).toEqual([root]);
    } finally {
      release();
    }
    const again = await fx.backend.gc({ isGoalLive: () => false, removeExpiredFolders: true });
    expect(again.removedFolders).toContain(root);
    expect(existsSync(root)).toBe(false);
  });
});

describe("gc of a goal folder that goes meanwhile", () => {
  it("goes on with the others", async () => {
    // Whether a goal is live is asked of the daemon (async): a folder removed meanwhile (the
    // goal's own removal, another sweep) made the lstat of it throw out of gc().
    const old = new Date(Date.now() - 2 * fx.config.sandbox.ttlSeconds * 1000);
    const goal = (id: string) => {
      const root = join(fx.config.goalsDir, id);
      mkdirSync(join(root, "workspace"), { recursive: true });
      for (const p of [join(root, "workspace"), root]) utimesSync(p, old, old);
      return root;
    };
    const gone = goal("gone-meanwhile");
    const others = [goal("a-goal"), goal("z-goal")];
    const report = await fx.backend.gc({
      isGoalLive: async (g) => {
        if (g === "gone-meanwhile") rmSync(gone, { recursive: true });
        return false;
      },
      removeExpiredFolders: true,
    });
    expect(report.removedFolders).toEqual(expect.arrayContaining(others));
    expect(report.failedFolders).toEqual([]);
    for (const p of others) expect(existsSync(p)).toBe(false);
  });
});

describe("gc of a stale pool slot", () => {
  it.skipIf(!canMakeUndeletable)(
    "tries a slot folder it cannot remove once a sweep, and reports it once",
    async () => {
      // A dead process's pool container was removed with its folder, and the pool-folder
      // sweep of the same gc() tried that folder again: one that would not go cost every
      // sweep two removals and was reported (and logged by the daemon) twice.
      const slot = "staleslot";
      const dir = join(fx.config.home, "sandbox-pool", slot);
      mkdirSync(join(dir, "workspace"), { recursive: true });
      const release = makeUndeletable(join(dir, "workspace", "immutable"));
      const c = await fx.backend.docker.createContainer({
        name: `aido-test-stale-pool-${process.pid}`,
        Image: fx.config.sandbox.image,
        Cmd: ["true"],
        Labels: { [LABEL.runtime]: fx.backend.runtimeId, [LABEL.pool]: slot, "aido.test": "sandbox" },
      });
      try {
        const report = await fx.backend.gc({ isGoalLive: () => false });
        expect(report.removedContainers).toEqual([
          expect.objectContaining({ containerId: c.id, reason: "stale-pool" }),
        ]);
        expect(report.failedFolders.map((f) => f.path)).toEqual([dir]);
      } finally {
        release();
        await c.remove({ force: true }).catch(() => {});
      }
      const again = await fx.backend.gc({ isGoalLive: () => false });
      expect(again.removedFolders).toEqual([dir]);
      expect(again.failedFolders).toEqual([]);
    },
  );
});

describe("warm pool", () => {
  it("hands out a pre-started container whose folders become the goal's", async () => {
    const pooled = makeSandboxFixture((c) => {
      c.sandbox.warmPool = 1;
    });
    try {
      await pooled.backend.start();
      await pooled.backend.start(); // a refill of a full pool must not stop later refills
      expect(pooled.backend.warmSlots).toBe(1);
      const started = performance.now();
      const sb = await pooled.backend.acquire("pooled-goal");
      const acquireMs = performance.now() - started;
      expect(acquireMs).toBeLessThan(5000);
      await sb.writeFile("/workspace/w.txt", "landed");
      expect(readFileSync(join(pooled.config.goalsDir, "pooled-goal", "workspace", "w.txt"), "utf8")).toBe(
        "landed",
      );
      expect(await pooled.backend.reattach()).toEqual(["pooled-goal"]);
      await pooled.backend.start();
      expect(pooled.backend.warmSlots).toBe(1);
      const again = await pooled.backend.acquire("second-goal");
      const info = await pooled.backend.docker.getContainer(again.containerId).inspect();
      expect(info.Config.Labels["aido.pool"]).toBeDefined();
      expect((await again.exec({ confinement: "unconfined", command: "ls -A /workspace" })).stdout).toBe("");
    } finally {
      await pooled.cleanup();
    }
  });
});

describe("limits and names", () => {
  it("lets a caller tighten limits but never widen them", () => {
    const base = defaultLimits(fx.config);
    const t = tightenLimits(base, { memoryMb: 64, pids: 10_000, tmpNoexec: true });
    expect(t).toMatchObject({ memoryMb: 64, pids: base.pids, tmpNoexec: true });
    expect(() => tightenLimits(base, { cpus: -1 })).toThrow(/cpus/);
  });

  it("applies the locked-down host config to the container", async () => {
    const sb = await fx.backend.acquire("spec-goal", { limits: { memoryMb: 128, pids: 50 } });
    const info = await fx.backend.docker.getContainer(sb.containerId).inspect();
    expect(info.HostConfig).toMatchObject({
      NetworkMode: "none",
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      ReadonlyRootfs: true,
      PidsLimit: 50,
      Memory: 128 * 1024 * 1024,
      MemorySwap: 128 * 1024 * 1024,
      Init: true,
    });
    expect(info.Config.User).toBe("1000:1000");
  });

  it("refuses goal ids that could escape the goals folder", async () => {
    for (const bad of ["../x", "a/b", "", ".hidden", "a..b"]) {
      await expect(fx.backend.acquire(bad)).rejects.toThrow(/goal id/);
    }
  });
});
