// bench/cluster.ts — what cluster mode buys on one machine (issue 15). The same burst of
// GOALS goals, each an agent making TURNS_PER_GOAL scripted model calls that answer after
// TURN_MS (test/support/provider-server.ts), runs three ways, side by side in one run:
// a lone daemon (no cluster), one cluster node, three cluster nodes. Each cluster mode gets
// a redis-server of its own in a temp folder (test/cluster/fixture.ts); nodes have separate
// homes and default limits. Every goal is submitted through the first node's socket at once
// and waited for there (goal.wait); submit-to-end is measured per goal. The runtime's CPU
// per agent turn is each daemon's utime+stime from /proc over the burst, divided by the
// model calls it made (its provider requests carry its API key). With BENCH_CLUSTER_PROF set,
// a fourth run (one cluster node under --cpu-prof, not measured) lists where the daemon's
// self time goes during the burst, grouped by package.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AidoClient } from "../src/client/client.js";
import { socketAnswers } from "../src/daemon/socket.js";
import { type RedisServer, startRedis, stopAll } from "../test/cluster/fixture.js";
import { makeTempHome, type TempHome } from "../test/support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../test/support/provider-server.js";
import { type BenchSection, type Metric, percentile, round } from "./report.js";

/** 200 is the issue's full run; BENCH_CLUSTER_GOALS runs fewer while developing. */
const GOALS = Number(process.env.BENCH_CLUSTER_GOALS ?? 200);
const WARMUP = 6;
const TURN_MS = 200;
/** A memory_store turn, then the answer. */
const TURNS_PER_GOAL = 2;
const TICK_MS = 10; // USER_HZ is 100 on Linux
const ROOT = join(import.meta.dirname, "..");
const MAIN = join(ROOT, "src", "daemon", "main.ts");

interface Daemon {
  key: string;
  home: TempHome;
  child: ChildProcess;
  profDir?: string;
}

interface ModeResult {
  label: string;
  throughput: number;
  submitToEndMs: number[];
  /** Per daemon: CPU ms per model call it made, and the calls. */
  cpu: { key: string; msPerTurn: number; turns: number }[];
  cpuMsPerTurnAll: number;
  byNode: Record<string, number>;
  /** The profile's summary lines (first daemon under --cpu-prof, burst window only). */
  profile?: string[];
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`bench cluster: ${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function script(provider: ProviderServer): void {
  const usage = { input_tokens: 200, output_tokens: 20 };
  provider.fallback((req) =>
    req.body.messages.length === 1
      ? turn.toolUse(
          "memory_store",
          { content: `fact ${req.seq}`, category: "fact" },
          { usage, delayMs: TURN_MS },
        )
      : turn.text("stored", { usage, delayMs: TURN_MS }),
  );
}

async function startDaemon(
  provider: ProviderServer,
  key: string,
  cluster: { redisUrl: string; nodeId: string } | undefined,
  prof: boolean,
): Promise<Daemon> {
  const home = makeTempHome();
  if (cluster) {
    writeFileSync(
      join(home.dir, "config.yaml"),
      `cluster:\n  redis_url: ${cluster.redisUrl}\n  node_id: ${cluster.nodeId}\n`,
    );
  }
  const profDir = prof ? mkdtempSync(join(tmpdir(), "aido-bench-cluster-prof-")) : undefined;
  const child = spawn(
    process.execPath,
    [...(profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : []), "--import", "tsx", MAIN, "--foreground"],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AIDO_HOME: home.dir,
        ANTHROPIC_API_KEY: key,
        ANTHROPIC_BASE_URL: provider.url,
        AIDO_MODEL: "anthropic/claude-bench",
      },
      stdio: ["ignore", "ignore", "ignore"],
    },
  );
  await until(
    async () => existsSync(home.config.socketPath) && (await socketAnswers(home.config.socketPath)),
    60_000,
    `daemon ${key} startup`,
  );
  return { key, home, child, profDir };
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (d.child.exitCode === null && d.child.signalCode === null) {
    const exited = new Promise((r) => d.child.once("exit", r));
    d.child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (d.child.exitCode === null) d.child.kill("SIGKILL");
  }
  d.home.cleanup();
}

const turnsOf = (provider: ProviderServer, key: string): number =>
  provider.requests.filter(
    (r) => r.headers["x-api-key"] === key || r.headers.authorization === `Bearer ${key}`,
  ).length;

async function burst(c: AidoClient, n: number, tag: string): Promise<{ ms: number[]; nodes: string[] }> {
  const manifest = {
    name: "clu-bench",
    model: "anthropic/claude-bench",
    system_prompt: "You store one fact.",
    capabilities: ["tool: memory_store"],
  };
  const one = async (i: number): Promise<{ ms: number; node: string }> => {
    const t0 = performance.now();
    const { goal_id } = await c.call("goal.submit", { goal: `store fact ${tag}-${i}`, manifest });
    const s = await c.call("goal.wait", { goal_id, timeout_ms: 600_000 }, { timeoutMs: 610_000 });
    if (s.state !== "succeeded") throw new Error(`bench cluster: goal ${goal_id} ${s.state}: ${s.error}`);
    return { ms: performance.now() - t0, node: (s as { node?: string }).node ?? "lone" };
  };
  const r = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  return { ms: r.map((x) => x.ms), nodes: r.map((x) => x.node) };
}

async function runMode(
  provider: ProviderServer,
  nodes: number,
  label: string,
  prof: boolean,
): Promise<ModeResult> {
  let redis: RedisServer | undefined;
  const daemons: Daemon[] = [];
  let window: [number, number] = [0, 0];
  let result: ModeResult | undefined;
  try {
    if (nodes > 0) redis = await startRedis();
    for (let i = 0; i < Math.max(1, nodes); i++) {
      const key = `sk-ant-bench-${label}-${i}`;
      const cluster = redis ? { redisUrl: redis.url, nodeId: `bench-${label}-${i}` } : undefined;
      daemons.push(await startDaemon(provider, key, cluster, prof && i === 0));
    }
    const first = daemons[0] as Daemon;
    const c = await AidoClient.connect(first.home.config.socketPath);
    try {
      await burst(c, WARMUP * daemons.length, `${label}-warm`);
      const turns0 = daemons.map((d) => turnsOf(provider, d.key));
      const cpu0 = daemons.map((d) => cpuMs(d.child.pid as number));
      const t0 = performance.now();
      const us0 = process.hrtime.bigint() / 1000n;
      const r = await burst(c, GOALS, label);
      const wallS = (performance.now() - t0) / 1000;
      window = [Number(us0), Number(process.hrtime.bigint() / 1000n)];
      const cpu = daemons.map((d, i) => {
        const turns = turnsOf(provider, d.key) - (turns0[i] as number);
        const ms = cpuMs(d.child.pid as number) - (cpu0[i] as number);
        return { key: d.key, msPerTurn: turns > 0 ? ms / turns : Number.NaN, turns, ms };
      });
      const total = cpu.reduce((a, x) => a + x.turns, 0);
      if (total !== GOALS * TURNS_PER_GOAL)
        throw new Error(
          `bench cluster: ${total} model calls for ${GOALS} goals, expected ${GOALS * TURNS_PER_GOAL}`,
        );
      const byNode: Record<string, number> = {};
      for (const n of r.nodes) byNode[n] = (byNode[n] ?? 0) + 1;
      result = {
        label,
        throughput: GOALS / wallS,
        submitToEndMs: r.ms,
        cpu,
        cpuMsPerTurnAll: cpu.reduce((a, x) => a + x.ms, 0) / total,
        byNode,
      };
    } finally {
      c.close();
    }
  } finally {
    for (const d of daemons) await stopDaemon(d);
    if (redis) await stopAll();
  }
  if (!result) throw new Error(`bench cluster: mode ${label} ended without a result`);
  const profDir = daemons[0]?.profDir;
  if (profDir) {
    try {
      const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
      result.profile = file
        ? summariseProfile(join(profDir, file), window)
        : ["profile: the daemon wrote no .cpuprofile"];
    } finally {
      rmSync(profDir, { recursive: true, force: true });
    }
  }
  return result;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: a package under node_modules, ours (src/), node itself, or V8. */
function owner(url: string, fn: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.includes("/src/")) return "aido (src/)";
  if (url.startsWith("node:")) return "node built-ins";
  if (url === "") return fn.startsWith("(") ? fn : "native (V8/C++ bindings)";
  return "other";
}

/** Self time in the burst window, grouped by owner, and the top functions by self time. */
function summariseProfile(file: string, [from, to]: [number, number]): string[] {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const byOwner = new Map<string, number>();
  const byFn = new Map<string, number>();
  let t = p.startTime;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < from || t > to) continue;
    const f = byId.get(p.samples[i] as number);
    if (!f || f.functionName === "(idle)") continue;
    const o = owner(f.url, f.functionName);
    byOwner.set(o, (byOwner.get(o) ?? 0) + dt);
    const fn = `${f.functionName || "(anonymous)"} ${o === "aido (src/)" ? f.url.split("/src/")[1] : o}:${f.lineNumber + 1}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + dt);
    total += dt;
  }
  if (total === 0) return ["profile: no samples in the burst window"];
  const pct = (v: number) => `${round((100 * v) / total, 1)}%`;
  const top = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${k} ${pct(v)}`)
      .join("; ");
  return [
    `profile (an extra 1-node run under --cpu-prof, burst only, ${round(total / 1000, 0)} ms of non-idle samples), self time by owner: ${top(byOwner, 12)}.`,
    `top functions by self time: ${top(byFn, 12)}.`,
  ];
}

export async function benchCluster(): Promise<BenchSection> {
  const provider = await startProviderServer();
  const profiling = Boolean(process.env.BENCH_CLUSTER_PROF);
  try {
    script(provider);
    const lone = await runMode(provider, 0, "lone", false);
    const one = await runMode(provider, 1, "one", false);
    const three = await runMode(provider, 3, "three", false);
    // Profiled apart: --cpu-prof costs CPU of its own, so it stays out of the measured runs.
    const profiled = profiling ? await runMode(provider, 1, "prof", true) : undefined;
    const vs = (name: string, unit: string, v: number, base: number, baseName: string): Metric => ({
      name,
      value: round(v, 2),
      unit,
      baseline: { name: baseName, value: round(base, 2) },
    });
    const metrics: Metric[] = [
      vs("throughput, 3 nodes", "goals/s", three.throughput, one.throughput, "1 node"),
      vs("throughput, 1 node", "goals/s", one.throughput, lone.throughput, "lone daemon (no cluster)"),
      vs(
        "submit-to-end p50, 3 nodes",
        "ms",
        percentile(three.submitToEndMs, 50),
        percentile(one.submitToEndMs, 50),
        "1 node",
      ),
      vs(
        "submit-to-end p95, 3 nodes",
        "ms",
        percentile(three.submitToEndMs, 95),
        percentile(one.submitToEndMs, 95),
        "1 node",
      ),
      vs(
        "submit-to-end p50, 1 node",
        "ms",
        percentile(one.submitToEndMs, 50),
        percentile(lone.submitToEndMs, 50),
        "lone daemon",
      ),
      vs(
        "submit-to-end p95, 1 node",
        "ms",
        percentile(one.submitToEndMs, 95),
        percentile(lone.submitToEndMs, 95),
        "lone daemon",
      ),
      {
        name: "daemon CPU per agent turn, lone daemon",
        value: round(lone.cpuMsPerTurnAll, 2),
        unit: "ms",
        target: { op: "<=", value: 1 },
      },
      {
        name: "daemon CPU per agent turn, 1 node",
        value: round(one.cpuMsPerTurnAll, 2),
        unit: "ms",
        target: { op: "<=", value: 1 },
      },
      {
        name: "daemon CPU per agent turn, 3 nodes (all)",
        value: round(three.cpuMsPerTurnAll, 2),
        unit: "ms",
        target: { op: "<=", value: 1 },
      },
      ...three.cpu.map((x, i) => ({
        name: `daemon CPU per agent turn, 3 nodes, node ${i}${i === 0 ? " (takes the submissions)" : ""}`,
        value: round(x.msPerTurn, 2),
        unit: "ms",
        note: `${x.turns} model calls`,
      })),
    ];
    const notes = [
      `${GOALS} goals per mode (BENCH_CLUSTER_GOALS; 200 is the issue's run), after ${WARMUP} warm-up goals per node; each goal is one agent: a memory_store turn and an answer (${TURNS_PER_GOAL} model calls), the scripted provider answering each after ${TURN_MS} ms. No containers.`,
      "All goals submitted at once through node 0's socket (not round-robin) and waited for there with goal.wait; in cluster mode goal.wait wakes when the owner announces the goal's end on the goal-ends stream (one reader per node).",
      "Default limits on every daemon: limits.max_concurrent_goals 4, inference.max_concurrent 3 model calls in flight; one machine (one CPU set, one Redis) for all nodes.",
      `goals per node, 3 nodes: ${Object.entries(three.byNode)
        .map(([n, k]) => `${n} ${k}`)
        .join(", ")}.`,
      "CPU is each daemon process's utime+stime (/proc, 10 ms ticks) over the measured burst, divided by the model calls it made; the submitting node's also carries the goal.wait calls of all goals and the reader that wakes them.",
    ];
    if (profiled?.profile) notes.push(...profiled.profile);
    return { name: "cluster", metrics, notes };
  } finally {
    await provider.close();
  }
}
