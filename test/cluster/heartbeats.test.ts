// Cluster mode, the node's heartbeat over a slow link to Redis: the node runs in this process
// (a real Runtime over a temp home, a real redis-server) and reaches Redis through a TCP link
// of the test's own whose answers can be held, as a slow or congested Redis holds them. A
// pause is the process itself stopped (Atomics.wait blocks its event loop, as a long GC pause
// does). Heartbeats must not overlap, and a look begun before a pause must not make the node
// sure of its goals after that pause.

import { writeFileSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import { ClusterNode } from "../../src/cluster/node.js";
import { RedisKeys } from "../../src/cluster/redis-keys.js";
import { loadConfig } from "../../src/config.js";
import { Runtime } from "../../src/kernel/runtime.js";
import { until } from "../daemon/process.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { startRedis, stopAll } from "./fixture.js";

const LEASE = 1_000;
const BEAT = 400;

/**
 * A TCP link to Redis: what the node sends is recorded; Redis's answers are held while `held`,
 * and, while `heldExcept` is set, on every connection that has not sent that text (all but one
 * connection of the node answered, as when a firewall forgot the others).
 */
class SlowLink {
  held = false;
  heldExcept: string | undefined;
  /** How long each of Redis's answers takes to come back (a far or congested Redis). */
  delayMs = 0;
  sent = "";
  private readonly pending: (() => void)[] = [];
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;

  async open(redisPort: number): Promise<number> {
    this.server = createServer((client) => {
      const up = new Socket();
      up.connect(redisPort, "127.0.0.1");
      for (const s of [client, up]) {
        this.sockets.add(s);
        s.on("error", () => {});
        s.on("close", () => {
          client.destroy();
          up.destroy();
        });
      }
      let mine = "";
      client.on("data", (d) => {
        this.sent += d.toString("latin1");
        mine += d.toString("latin1");
        up.write(d);
      });
      up.on("data", (d) => {
        const except = this.heldExcept;
        if (this.held || (except !== undefined && !mine.includes(except)))
          this.pending.push(() => client.write(d));
        else if (this.delayMs > 0) setTimeout(() => client.write(d), this.delayMs);
        else client.write(d);
      });
    });
    const server = this.server;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return (server.address() as { port: number }).port;
  }

  release(): void {
    this.held = false;
    this.heldExcept = undefined;
    for (const send of this.pending.splice(0)) send();
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server?.close();
  }
}

/** The whole process stopped for `ms` (no timer, no I/O), as a long GC pause or a frozen VM. */
function pauseProcess(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

let cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  cleanup = [];
  await stopAll();
}, 60_000);

/** A node of this process, id `id`, joined to Redis through a SlowLink as `url`'s user. */
async function nodeThrough(id: string, url: (port: number) => string, redisPort: number, delayMs = 0) {
  const link = new SlowLink();
  link.delayMs = delayMs;
  const port = await link.open(redisPort);
  cleanup.push(async () => link.close());
  const home: TempHome = makeTempHome();
  cleanup.push(async () => home.cleanup());
  writeFileSync(
    join(home.dir, "config.yaml"),
    [
      "cluster:",
      `  redis_url: ${url(port)}`,
      `  node_id: ${id}`,
      `  lease_ms: ${LEASE}`,
      `  heartbeat_ms: ${BEAT}`,
      "",
    ].join("\n"),
  );
  const config = loadConfig({ env: home.env, projectDir: home.dir });
  const rt = await Runtime.open(config);
  cleanup.push(() => rt.close());
  const logs: string[] = [];
  const node = await ClusterNode.start(config, rt, (m) => logs.push(m));
  cleanup.push(() => node.stop());
  const raw = new Redis(`redis://127.0.0.1:${redisPort}`);
  cleanup.push(async () => raw.disconnect());
  await until(async () => ((await raw.exists(`aido:node:${id}:alive`)) === 1 ? true : undefined), 10_000);
  return { link, node, raw, logs };
}

/** Whether the node would let a model call go on within `ms` (it is sure of its goals). */
async function sureWithin(node: ClusterNode, ms: number): Promise<boolean> {
  try {
    const release = await node.inferenceSlot("p", AbortSignal.timeout(ms));
    release();
    return true;
  } catch {
    return false;
  }
}

describe("cluster mode: the node's heartbeat over a slow Redis", () => {
  it("runs one heartbeat at a time: while Redis holds one's answer, the timer starts no other", async () => {
    const redis = await startRedis();
    const redisPort = Number(new URL(redis.url).port);
    const { link } = await nodeThrough("beats-one", (p) => `redis://127.0.0.1:${p}`, redisPort);
    link.sent = "";
    link.held = true;
    await new Promise((r) => setTimeout(r, 5 * BEAT));
    const whileHeld = link.sent.split("aido:node:beats-one:alive").length - 1;
    link.release();
    // At most the one heartbeat that began as Redis started to hold its answers.
    expect(whileHeld).toBeLessThanOrEqual(1);
    // And the heartbeats go on once Redis answers.
    link.sent = "";
    await new Promise((r) => setTimeout(r, 3 * BEAT));
    expect(link.sent.split("aido:node:beats-one:alive").length - 1).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it("fences itself while its renewal is sent and not answered, and lifts the fence once one is", async () => {
    const redis = await startRedis();
    const redisPort = Number(new URL(redis.url).port);
    const { link, node, logs } = await nodeThrough(
      "beats-fenced",
      (p) => `redis://127.0.0.1:${p}`,
      redisPort,
    );
    expect(await sureWithin(node, 1_000)).toBe(true);
    // Redis takes the renewals and holds its answers: the connection stays up.
    link.held = true;
    await new Promise((r) => setTimeout(r, LEASE - LEASE / 4 + BEAT / 2));
    expect(node.fenceStatus()).toMatchObject({ on_redis_loss: "hold", fenced: true });
    expect(await sureWithin(node, 100)).toBe(false);
    expect(logs.some((l) => l.startsWith("cluster: fenced: no lease renewal answered"))).toBe(true);
    // The held answers come late (the renewal they answer was sent a lease ago), then new
    // renewals are answered: the node looks and goes on.
    await new Promise((r) => setTimeout(r, LEASE));
    link.release();
    expect(await sureWithin(node, 10 * BEAT)).toBe(true);
    expect(node.fenceStatus()).toMatchObject({ fenced: false });
    expect(logs.some((l) => l.startsWith("cluster: unfenced after"))).toBe(true);
  }, 60_000);

  it("takes no jump of the wall clock for a pause or a lapsed lease", async () => {
    const redis = await startRedis();
    const redisPort = Number(new URL(redis.url).port);
    const { node, logs } = await nodeThrough("beats-clock", (p) => `redis://127.0.0.1:${p}`, redisPort);
    expect(await sureWithin(node, 1_000)).toBe(true);
    const realNow = Date.now;
    cleanup.push(async () => {
      Date.now = realNow;
    });
    // An NTP step of an hour forward, then back again.
    Date.now = () => realNow() + 3_600_000;
    await new Promise((r) => setTimeout(r, 2 * BEAT));
    expect(await sureWithin(node, 50)).toBe(true);
    Date.now = () => realNow() - 3_600_000;
    await new Promise((r) => setTimeout(r, LEASE));
    expect(await sureWithin(node, 50)).toBe(true);
    Date.now = realNow;
    expect(logs.filter((l) => l.includes("past the lease") || l.includes("fenced"))).toEqual([]);
  }, 60_000);

  it("is not sure of its goals after a second pause that began while it looked after the first", async () => {
    const redis = await startRedis();
    const redisPort = Number(new URL(redis.url).port);
    const id = "beats-paused";
    const admin = new Redis(redis.url);
    cleanup.push(async () => admin.disconnect());
    await admin.call("ACL", "SETUSER", id, "on", ">pw", "~*", "&*", "+@all");
    const { link, node } = await nodeThrough(id, (p) => `redis://${id}:pw@127.0.0.1:${p}`, redisPort);
    expect(await sureWithin(node, 1_000)).toBe(true);
    // Just after a heartbeat was sent (it is over in a few ms; the next is a beat away), Redis
    // turns slow: the look after the first pause is sent, its answer held.
    link.sent = "";
    await until(() => (link.sent.includes(`aido:node:${id}:alive`) ? true : undefined), 5_000);
    await new Promise((r) => setTimeout(r, BEAT / 4));
    link.held = true;
    pauseProcess(LEASE + 300);
    await new Promise((r) => setTimeout(r, 2 * BEAT));
    // Its heartbeats are refused from now (aido:node*), so no look made after the second
    // pause can succeed: only the one begun before it could make the node sure.
    await admin.call("ACL", "SETUSER", id, "resetkeys", "%R~*", "~bull:*", "~aido:[^n]*");
    pauseProcess(LEASE + 300);
    await new Promise((r) => setTimeout(r, BEAT));
    link.release();
    expect(await sureWithin(node, 4 * BEAT)).toBe(false);
    // Once a heartbeat begun after the second pause looks, it is sure again.
    await admin.call("ACL", "SETUSER", id, "resetkeys", "~*");
    expect(await sureWithin(node, 10 * BEAT)).toBe(true);
  }, 60_000);

  it("renews its lease while a heartbeat waits for an answer on another connection", async () => {
    const redis = await startRedis();
    const redisPort = Number(new URL(redis.url).port);
    const id = "beats-sweep";
    const { link, raw, logs } = await nodeThrough(id, (p) => `redis://127.0.0.1:${p}`, redisPort);
    // Only the connection that carries the heartbeats answers: the failed-job sweep, which
    // reads the failed jobs on the queue's connection, gets no answer from its next read on.
    link.heldExcept = `aido:node:${id}:alive`;
    link.sent = "";
    try {
      await until(() => (link.sent.includes(RedisKeys.sweepLease) ? true : undefined), 5_000);
      await new Promise((r) => setTimeout(r, BEAT));
      const lapsed: number[] = [];
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, LEASE / 4));
        if ((await raw.exists(`aido:node:${id}:alive`)) !== 1) lapsed.push(i);
      }
      expect(lapsed).toEqual([]);
      expect(logs.filter((l) => l.includes("heartbeat failed"))).toEqual([]);
    } finally {
      link.release();
    }
  }, 60_000);

  it("renews its lease while a heartbeat's work outlasts it (a far Redis, ends to write)", async () => {
    const redis = await startRedis();
    const redisPort = Number(new URL(redis.url).port);
    const id = "beats-far";
    // Goals an earlier process of the node left running: its first heartbeat writes their
    // ends (several round trips each), a few seconds' work over a link with 150 ms answers.
    const admin = new Redis(redis.url);
    cleanup.push(async () => admin.disconnect());
    const mirror = new GoalMirror(admin);
    for (let i = 0; i < 10; i++) {
      const goalId = `g_beatsfar${i}`;
      await mirror.create({ goalId, goal: "left running", via: id, now: Date.now() });
      expect((await mirror.claim(goalId, id)).kind).toBe("claimed");
    }
    const { raw } = await nodeThrough(id, (p) => `redis://127.0.0.1:${p}`, redisPort, 150);
    const lapsed: number[] = [];
    for (let i = 0; i < 15; i++) {
      await new Promise((r) => setTimeout(r, LEASE / 5));
      if ((await raw.exists(`aido:node:${id}:alive`)) !== 1) lapsed.push(i);
    }
    expect(lapsed).toEqual([]);
    // The work was done all the same: the goals ended.
    await until(async () => ((await mirror.runningOn(id)).length === 0 ? true : undefined), 20_000);
  }, 60_000);

  it("looks after a pause while the failed-job sweep waits for an answer", async () => {
    const redis = await startRedis();
    const redisPort = Number(new URL(redis.url).port);
    const id = "beats-sweep-look";
    const { link, node } = await nodeThrough(id, (p) => `redis://127.0.0.1:${p}`, redisPort);
    link.heldExcept = `aido:node:${id}:alive`;
    link.sent = "";
    try {
      await until(() => (link.sent.includes(RedisKeys.sweepLease) ? true : undefined), 5_000);
      await new Promise((r) => setTimeout(r, BEAT));
      await new Promise((r) => setTimeout(r, 2 * BEAT));
      pauseProcess(LEASE + 300);
      // The heartbeats that follow look which goals are still its own: the sweep's lost answer
      // is not theirs to wait for.
      expect(await sureWithin(node, 6 * BEAT)).toBe(true);
    } finally {
      link.release();
    }
  }, 60_000);
});
