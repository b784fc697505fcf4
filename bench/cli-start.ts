// bench/cli-start.ts — how long `aido` takes to answer: wall time (p50 of RUNS) and max RSS
// of the built bin (dist/cli/main.js, rebuilt first) for `--help`, and for `status`,
// `goals` and `approvals` against a running daemon on a temp AIDO_HOME (one finished goal
// in it), side by side with `node -e ''` on the same machine. Targets: 0.1 s and 60 MB.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AidoClient } from "../src/client/client.js";
import { socketAnswers } from "../src/daemon/socket.js";
import { makeTempHome } from "../test/support/home.js";
import { startProviderServer, turn } from "../test/support/provider-server.js";
import { type BenchSection, type Metric, percentile } from "./report.js";

const RUNS = 15;
const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "dist", "cli", "main.js");

function wallSeconds(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve((performance.now() - t0) / 1000)
        : reject(new Error(`${args.join(" ")} exited ${code}`)),
    );
  });
}

/** Max RSS in MB, from GNU time (the kernel's rusage of the child). */
function maxRssMb(args: string[], env: NodeJS.ProcessEnv): number {
  const r = spawnSync("/usr/bin/time", ["-f", "%M", process.execPath, ...args], { env, encoding: "utf8" });
  const kb = Number(r.stderr.trim().split("\n").at(-1));
  if (r.status !== 0 || !Number.isFinite(kb)) throw new Error(`${args.join(" ")}: ${r.stderr}`);
  return kb / 1024;
}

async function measure(args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number; mb: number }> {
  await wallSeconds(args, env); // warm the file cache
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await wallSeconds(args, env));
  const rss: number[] = [];
  for (let i = 0; i < 3; i++) rss.push(maxRssMb(args, env));
  return { seconds: percentile(times, 50), mb: Math.max(...rss) };
}

export async function benchCliStart(): Promise<BenchSection> {
  const build = spawnSync("npm", ["run", "build"], { cwd: ROOT, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stderr}`);
  const provider = await startProviderServer();
  provider.script('manifest "bootstrap"', [turn.text("done")], { repeatLast: true });
  const home = makeTempHome();
  let daemon: ChildProcess | undefined;
  try {
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AIDO_HOME: home.dir,
      ANTHROPIC_API_KEY: "sk-ant-bench",
      ANTHROPIC_BASE_URL: provider.url,
      AIDO_MODEL: "anthropic/claude-bench",
    };
    daemon = spawn(process.execPath, [BIN, "daemon", "start", "--foreground"], {
      env,
      cwd: home.dir,
      stdio: "ignore",
    });
    const deadline = Date.now() + 60_000;
    while (!(existsSync(home.config.socketPath) && (await socketAnswers(home.config.socketPath)))) {
      if (Date.now() > deadline) throw new Error("bench cli-start: the daemon did not start within 60 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    const client = await AidoClient.connect(home.config.socketPath);
    const { goal_id } = await client.call("goal.submit", { goal: "say done" });
    await client.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    client.close();

    const base = await measure(["-e", ""], env);
    const runs: [string, string[]][] = [
      ["aido --help", ["--help"]],
      ["aido status", ["status", goal_id]],
      ["aido goals", ["goals"]],
      ["aido approvals", ["approvals"]],
    ];
    const metrics: Metric[] = [
      { name: "node -e '' wall (p50)", value: base.seconds, unit: "s" },
      { name: "node -e '' max RSS", value: base.mb, unit: "MB" },
    ];
    for (const [name, args] of runs) {
      const m = await measure([BIN, ...args], { ...env });
      metrics.push(
        {
          name: `${name} wall (p50)`,
          value: m.seconds,
          unit: "s",
          baseline: { name: "node -e ''", value: base.seconds },
          target: { op: "<=", value: 0.1 },
        },
        {
          name: `${name} max RSS`,
          value: m.mb,
          unit: "MB",
          baseline: { name: "node -e ''", value: base.mb },
          target: { op: "<=", value: 60 },
        },
      );
    }
    return {
      name: "cli-start",
      metrics,
      notes: [
        `the built bin (node dist/cli/main.js), ${RUNS} runs each after one warm-up; max RSS is the largest of 3 runs under GNU time; status/goals/approvals ask a daemon (its own process) on a temp AIDO_HOME holding one finished goal`,
      ],
    };
  } finally {
    if (daemon?.exitCode === null) {
      const exited = new Promise((r) => daemon?.once("exit", r));
      daemon.kill("SIGTERM");
      await exited;
    }
    home.cleanup();
    await provider.close();
  }
}
