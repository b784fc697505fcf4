// bench/sandbox.ts — issue "sandbox" numbers, side by side in one run: one call through
// the in-container executor vs `docker exec` vs spawning a process on the host; container
// cold start; time to a ready workspace from the warm pool; and what Landlock adds to an
// exec (bench/exec-latency.ts). (Snapshots: bench/snapshots.ts.)

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { loadConfig } from "../src/config.js";
import { DockerBackend } from "../src/sandbox/docker.js";
import { makeTempHome } from "../test/support/home.js";
import { benchExecLatency } from "./exec-latency.js";
import { type BenchSection, percentile } from "./report.js";

const run = promisify(execFile);

async function samples(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

export async function benchSandbox(): Promise<BenchSection[]> {
  const home = makeTempHome();
  const config = loadConfig({ env: home.env, projectDir: home.dir });
  config.sandbox.warmPool = 2;
  const backend = new DockerBackend(config);
  try {
    await backend.start(); // image present (or built) and the pool filled
    const sb = await backend.acquire("bench-exec");
    await sb.exec({ argv: ["true"], confinement: "unconfined" });
    const N = 40;
    const executorStat = await samples(N, () => sb.stat("/workspace"));
    const executorExec = await samples(N, () => sb.exec({ argv: ["true"], confinement: "unconfined" }));
    const name = (await backend.docker.listContainers({ all: false }))
      .flatMap((c) => c.Names)
      .find((n) => n.includes("bench-exec"))
      ?.replace(/^\//, "");
    if (!name) throw new Error("bench: container not found");
    const dockerExec = await samples(15, () => run("docker", ["exec", name, "true"]));
    const hostSpawn = await samples(N, () => run("true"));
    const landlock = await benchExecLatency(sb);

    // Cold start: a fresh container for a new goal, ready for its first call (pool bypassed).
    config.sandbox.warmPool = 0;
    const coldBackend = new DockerBackend(config);
    const cold = await samples(5, async () => {
      const id = `bench-cold-${Math.random().toString(36).slice(2, 8)}`;
      const s = await coldBackend.acquire(id);
      await s.exec({ argv: ["true"], confinement: "unconfined" });
    });
    await coldBackend.removeAll();
    // Warm pool: acquire hands over a pre-started container; refill between samples.
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) {
      await backend.start();
      const id = `bench-warm-${i}`;
      const t0 = performance.now();
      const s = await backend.acquire(id);
      await s.stat("/workspace");
      warm.push(performance.now() - t0);
    }
    const p50 = (xs: number[]) => percentile(xs, 50);
    const hostBase = { name: "host process spawn p50", value: p50(hostSpawn) };
    const main: BenchSection = {
      name: "Sandbox (Docker, executor, warm pool)",
      metrics: [
        {
          name: "executor call p50 (stat)",
          value: p50(executorStat),
          unit: "ms",
          baseline: { name: "docker exec p50", value: p50(dockerExec) },
          target: { op: "<=", value: 10 },
        },
        { name: "executor exec of `true` p50", value: p50(executorExec), unit: "ms", baseline: hostBase },
        { name: "docker exec of `true` p50", value: p50(dockerExec), unit: "ms", baseline: hostBase },
        { name: "container cold start to first exec p50", value: p50(cold), unit: "ms" },
        {
          name: "ready workspace from the warm pool p50",
          value: p50(warm),
          unit: "ms",
          baseline: { name: "cold start p50", value: p50(cold) },
          target: { op: "<=", value: 100 },
        },
      ],
    };
    return [main, landlock];
  } finally {
    await backend.removeAll().catch(() => {});
    home.cleanup();
  }
}
