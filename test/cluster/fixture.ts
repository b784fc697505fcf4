// test/cluster/fixture.ts — a cluster on one machine: a real redis-server (Debian's, made
// present by scripts/ensure-redis.sh) on a free port in a temp folder of its own, and agentd
// nodes as real child processes (test/daemon/process.ts), each in a home of its own whose
// config.yaml joins that Redis with a short lease. Everything started here is stopped by
// stopAll() (afterAll), homes and their containers included, and so are the test's own
// connections to Redis made with connectRedis() and a node whose start threw after its
// process was spawned (test: fixture-cleanup.test.ts).

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis, type RedisOptions } from "ioredis";
import { AidoClient } from "../../src/client/client.js";
import { providerEnv } from "../agent/harness.js";
import {
  type ChildOptions,
  type DaemonChild,
  killChildren,
  startDaemonChild,
  until,
} from "../daemon/process.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import type { ProviderServer, RecordedRequest } from "../support/provider-server.js";

export const LEASE_MS = 3_000;
export const HEARTBEAT_MS = 500;

const ROOT = join(import.meta.dirname, "..", "..");

export interface RedisServer {
  url: string;
  /** Stop it (SIGTERM: a clean shutdown that writes its append-only file). */
  stop(): Promise<void>;
  /** Start it again on the same port and folder (its data comes back from the file). */
  start(): Promise<void>;
}

export interface Node {
  id: string;
  home: TempHome;
  child: DaemonChild;
  client(): Promise<AidoClient>;
  /** kill -9. */
  kill(): Promise<void>;
  /** Start the node again on the same home (after kill()). */
  restart(): Promise<void>;
}

const redisProcs: { proc?: ChildProcess; dir: string }[] = [];
const connections: Redis[] = [];
const nodes: Node[] = [];
/** Homes startNode made for a node whose daemon never answered (its process: killChildren). */
const strayHomes: TempHome[] = [];
const clients: AidoClient[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.setTimeout(500);
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
    s.connect(port, "127.0.0.1", () => s.write("PING\r\n"));
    s.once("data", (d) => {
      s.destroy();
      resolve(String(d).startsWith("+PONG"));
    });
  });
}

/** A redis-server of the test's own: persistence by append-only file in its temp folder, no RDB. */
export async function startRedis(): Promise<RedisServer> {
  execFileSync("bash", [join(ROOT, "scripts", "ensure-redis.sh")], { stdio: "inherit" });
  const dir = mkdtempSync(join(tmpdir(), "aido-cluster-redis-"));
  const port = await freePort();
  const entry: { proc?: ChildProcess; dir: string } = { dir };
  redisProcs.push(entry);
  const start = async () => {
    const proc = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
      ],
      { stdio: "ignore" },
    );
    entry.proc = proc;
    await until(async () => ((await pings(port)) ? true : undefined), 10_000);
  };
  const stop = async () => {
    const proc = entry.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, start, stop };
}

/** A node: agentd in a home of its own, joining `redisUrl` as `id`. */
export async function startNode(
  server: ProviderServer,
  redisUrl: string,
  id: string,
  opts: {
    capacity?: number;
    inference?: number;
    clusterInference?: number;
    /** A home that already ran as a lone daemon (stopped), which now joins the cluster. */
    home?: TempHome;
    /** A test's module the daemon loads first (test/daemon/process.ts ChildOptions). */
    preload?: ChildOptions["preload"];
    /** cluster.on_redis_loss (default: the config's default, hold). */
    onRedisLoss?: "hold" | "finish";
  } = {},
): Promise<Node> {
  const home = opts.home ?? makeTempHome(providerEnv(server));
  writeFileSync(
    join(home.dir, "config.yaml"),
    [
      "cluster:",
      `  redis_url: ${redisUrl}`,
      `  node_id: ${id}`,
      `  lease_ms: ${LEASE_MS}`,
      `  heartbeat_ms: ${HEARTBEAT_MS}`,
      ...(opts.onRedisLoss ? [`  on_redis_loss: ${opts.onRedisLoss}`] : []),
      "limits:",
      `  max_concurrent_goals: ${opts.capacity ?? 2}`,
      ...(opts.inference || opts.clusterInference ? ["inference:"] : []),
      ...(opts.inference ? [`  max_concurrent: ${opts.inference}`] : []),
      ...(opts.clusterInference ? [`  cluster_max_concurrent: ${opts.clusterInference}`] : []),
      "",
    ].join("\n"),
  );
  const childOptions: ChildOptions = opts.preload ? { preload: opts.preload } : {};
  let child: DaemonChild;
  try {
    child = await startDaemonChild(home, server, childOptions);
  } catch (e) {
    // Spawned, in no node: stopAll still kills its process and removes the home made here.
    if (!opts.home) strayHomes.push(home);
    throw e;
  }
  const node: Node = {
    id,
    home,
    get child() {
      return child;
    },
    async client() {
      const c = await AidoClient.connect(home.config.socketPath);
      clients.push(c);
      return c;
    },
    async kill() {
      child.child.kill("SIGKILL");
      await child.exited;
    },
    async restart() {
      child = await startDaemonChild(home, server, childOptions);
    },
  };
  nodes.push(node);
  return node;
}

/** A connection of the test's own to `url` (a user's URL included), closed by stopAll(). */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  const c = new Redis(url, options);
  connections.push(c);
  return c;
}

/**
 * A TCP proxy in front of a Redis, for one node: cut() closes every connection through it and
 * refuses new ones (that node alone loses Redis, a partition), restore() lets them through again.
 */
export interface RedisProxy {
  url: string;
  cut(): void;
  restore(): void;
}

const proxies: ReturnType<typeof createServer>[] = [];

export async function startRedisProxy(redisUrl: string): Promise<RedisProxy> {
  const target = Number(new URL(redisUrl).port);
  const open = new Set<Socket>();
  let cut = false;
  const srv = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = new Socket();
    open.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    upstream.connect(target, "127.0.0.1", () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  proxies.push(srv);
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const s of [...open]) s.destroy();
      open.clear();
    },
    restore() {
      cut = false;
    },
  };
}

/**
 * Stop every node (SIGKILL: their homes go next), every daemon child whose start failed, and
 * Redis; remove their folders.
 */
export async function stopAll(): Promise<void> {
  for (const c of clients.splice(0)) c.close();
  for (const c of connections.splice(0)) c.disconnect();
  for (const p of proxies.splice(0)) p.close();
  for (const n of nodes.splice(0)) {
    if (n.child.child.exitCode === null && n.child.child.signalCode === null) {
      n.child.child.kill("SIGTERM");
      await Promise.race([n.child.exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (n.child.child.exitCode === null) n.child.child.kill("SIGKILL");
    }
    n.home.cleanup();
  }
  // A daemon whose start (or restart) threw is in no node: its process, then its home.
  killChildren();
  for (const h of strayHomes.splice(0)) h.cleanup();
  for (const r of redisProcs.splice(0)) {
    if (r.proc && r.proc.exitCode === null) {
      const exited = new Promise((res) => r.proc?.once("exit", res));
      r.proc.kill("SIGTERM");
      // A clean shutdown writes its files first; one that takes too long is killed.
      if (
        (await Promise.race([
          exited.then(() => true),
          new Promise((res) => setTimeout(res, 10_000, false)),
        ])) === false
      ) {
        r.proc.kill("SIGKILL");
        await exited;
      }
    }
    rmSync(r.dir, { recursive: true, force: true });
  }
}

/** The goal's requests to the provider (its marker is in the goal text, hence in the messages). */
export const forGoal =
  (marker: string) =>
  (r: RecordedRequest): boolean =>
    JSON.stringify(r.body?.messages ?? []).includes(marker);

/** How many times the goal's bootstrap conversation started (a first request: one message). */
export function conversationsStarted(server: ProviderServer, marker: string): number {
  return server.requests.filter((r) => forGoal(marker)(r) && (r.body?.messages ?? []).length === 1).length;
}

/** A manifest whose agent answers from the scripts; `approve` puts file_write behind a human. */
export function manifest(opts: { approve?: boolean } = {}): string {
  return [
    "name: clu-worker",
    "model: anthropic/claude-test",
    'system_prompt: "You are a cluster test agent."',
    ...(opts.approve
      ? [
          "capabilities:",
          '  - "tool: file_write"',
          '  - "file_write: /output/**"',
          "approval_required: [file_write]",
        ]
      : []),
    "",
  ].join("\n");
}
