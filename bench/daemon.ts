// bench/daemon.ts — agentd under a burst: 50 goals submitted at once through the socket to
// a daemon running as its own process (so its memory is its own), the scripted provider
// answering every bootstrap turn with text (no tools, so no containers). Reports: that all
// goals finish, that a subscriber saw every goal end (no event lost), the time the burst
// took, per-goal submit-to-end latency, and the daemon's RSS at idle and at peak
// (sampled from /proc every 20 ms, and the kernel's high-water mark).

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { AidoClient } from "../src/client/client.js";
import type { WireEvent } from "../src/client/types.js";
import { socketAnswers } from "../src/daemon/socket.js";
import { makeTempHome } from "../test/support/home.js";
import { startProviderServer, turn } from "../test/support/provider-server.js";
import type { BenchSection } from "./report.js";
import { percentile, round } from "./report.js";

const GOALS = 50;
const MAIN = join(import.meta.dirname, "..", "src", "daemon", "main.ts");

function rssMb(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`bench daemon: ${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function benchDaemon(): Promise<BenchSection> {
  const provider = await startProviderServer();
  provider.script(
    'manifest "bootstrap"',
    [turn.text("done", { delayMs: 20, usage: { input_tokens: 100, output_tokens: 5 } })],
    {
      repeatLast: true,
    },
  );
  const home = makeTempHome();
  let child: ChildProcess | undefined;
  try {
    child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), MAIN, "--foreground"], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AIDO_HOME: home.dir,
        ANTHROPIC_API_KEY: "sk-ant-bench",
        ANTHROPIC_BASE_URL: provider.url,
        AIDO_MODEL: "anthropic/claude-bench",
      },
      cwd: home.dir,
      stdio: ["ignore", "ignore", "pipe"],
    });
    const pid = child.pid as number;
    await until(
      async () => existsSync(home.config.socketPath) && (await socketAnswers(home.config.socketPath)),
      60_000,
      "startup",
    );
    const client = await AidoClient.connect(home.config.socketPath);
    await client.call("goal.list", {});
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rssMb(pid);

    const ends = new Map<string, number>();
    const sub = await AidoClient.subscribe(home.config.socketPath, undefined, (ev: WireEvent) => {
      if (ev.type === "goal.finished" && ev.goal_id) ends.set(ev.goal_id, Date.now());
    });
    let peak = idle;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(pid));
    }, 20);
    const t0 = Date.now();
    const submitted = await Promise.all(
      Array.from({ length: GOALS }, async (_, i) => {
        const at = Date.now();
        const { goal_id } = await client.call("goal.submit", { goal: `bench goal ${i}: answer briefly` });
        return { goal_id, at };
      }),
    );
    const waits = await Promise.all(
      submitted.map((s) =>
        client.call("goal.wait", { goal_id: s.goal_id, timeout_ms: 300_000 }, { timeoutMs: 310_000 }),
      ),
    );
    const elapsed = Date.now() - t0;
    await until(() => ends.size >= GOALS, 5000, "the last goal-end event").catch(() => {});
    clearInterval(sampler);
    const hwm = rssMb(pid, "VmHWM");
    await new Promise((r) => setTimeout(r, 1000));
    const after = rssMb(pid);
    sub.close();
    client.close();

    const succeeded = waits.filter((w) => w.state === "succeeded").length;
    const latencies = submitted
      .map((s) => (ends.get(s.goal_id) ?? Number.NaN) - s.at)
      .filter(Number.isFinite);
    return {
      name: "daemon",
      metrics: [
        { name: "goals succeeded", value: succeeded, unit: "goals", target: { op: ">=", value: GOALS } },
        {
          name: "goal-end events received by a subscriber",
          value: submitted.filter((s) => ends.has(s.goal_id)).length,
          unit: "events",
          target: { op: ">=", value: GOALS },
        },
        { name: `${GOALS} goals, submit to all finished`, value: elapsed, unit: "ms" },
        { name: "goals per second", value: round((GOALS * 1000) / elapsed, 2), unit: "goals/s" },
        { name: "submit-to-end latency p50", value: percentile(latencies, 50), unit: "ms" },
        { name: "submit-to-end latency p95", value: percentile(latencies, 95), unit: "ms" },
        { name: "daemon RSS at idle", value: round(idle, 1), unit: "MB" },
        {
          name: "daemon RSS at peak (sampled)",
          value: round(peak, 1),
          unit: "MB",
          baseline: { name: "idle", value: round(idle, 1) },
        },
        { name: "daemon RSS high-water mark", value: round(hwm, 1), unit: "MB" },
        { name: "daemon RSS idle after the burst", value: round(after, 1), unit: "MB" },
      ],
      notes: [
        `the daemon runs as its own process (node + tsx loader) on a temp AIDO_HOME; limits.max_concurrent_goals ${home.config.limits.maxConcurrentGoals}; each goal is the bundled bootstrap manifest answering with one scripted 20 ms text turn over the real Anthropic SDK`,
        "RSS includes the tsx transpiler; a built daemon (dist/) would sit lower",
      ],
    };
  } finally {
    if (child && child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => child?.once("exit", r));
    }
    await provider.close();
    home.cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  benchDaemon().then(
    (s) => console.log(JSON.stringify(s, null, 2)),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
