// bench/tracing.ts — what OpenTelemetry tracing costs a swarm goal. The same goal (a lead
// that spawns CHILDREN children with spawn_agents, each making two memory_store calls and
// answering: fixed turns, no containers) runs GOALS times in a daemon process with tracing
// off, then in one exporting to a local OTLP/HTTP receiver (test/support/otlp-receiver.ts,
// in this process, so its decoding is not charged to the daemon). Reported side by side:
// goal wall time p50/p95, the daemon's CPU per agent turn (utime + stime from /proc, over
// all goals), RSS after the goals, and the @opentelemetry modules each daemon loaded (a
// module hook lists them). "Zero cost when off" is measured as: none of the SDK loaded,
// and each hook a null check (timed here per call, against an empty loop).

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AidoClient } from "../src/client/client.js";
import { socketAnswers } from "../src/daemon/socket.js";
import type { Tracer } from "../src/telemetry/tracer.js";
import { makeTempHome } from "../test/support/home.js";
import { type OtlpReceiver, startOtlpReceiver } from "../test/support/otlp-receiver.js";
import { type ProviderServer, startProviderServer, turn } from "../test/support/provider-server.js";
import { type BenchSection, type Metric, percentile, round } from "./report.js";

const GOALS = Number(process.env.BENCH_TRACING_GOALS ?? 20);
const WARMUP = 2;
const CHILDREN = 3; // limits.spawn_batch_cap's default
/** Model calls per goal: the lead's two, and three per child (two tool turns and the answer). */
const TURNS_PER_GOAL = 2 + 3 * CHILDREN;
/** Spans per goal: the lead's run, its two chats and its spawn; per child its run, three chats, two tools. */
const SPANS_PER_GOAL = 4 + 6 * CHILDREN;
const ROOT = join(import.meta.dirname, "..");
const MAIN = join(ROOT, "src", "daemon", "main.ts");
const TICK_MS = 10; // USER_HZ is 100 on Linux

interface ModeResult {
  wallMs: number[];
  cpuMsPerTurn: number;
  rssMb: number;
  otelModules: string[];
  spans: number;
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) ".
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) / 1024;
}

async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`bench tracing: ${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function scriptSwarm(provider: ProviderServer): void {
  const child = (i: number) => ({
    manifest: {
      name: "writer",
      system_prompt: `Child ${i}.`,
      capabilities: ["tool: memory_store"],
      budget: { max_tokens: 40_000 },
    },
    message: `Remember fact ${i}.`,
  });
  const usage = { input_tokens: 200, output_tokens: 20 };
  provider.fallback((req) => {
    const n = req.body.messages.length as number;
    if (req.system.includes('manifest "lead"')) {
      return n === 1
        ? turn.toolUse(
            "spawn_agents",
            { children: Array.from({ length: CHILDREN }, (_, i) => child(i)) },
            { usage },
          )
        : turn.text("all done", { usage });
    }
    if (n < 5)
      return turn.toolUse("memory_store", { content: `fact ${req.seq}`, category: "fact" }, { usage });
    return turn.text("remembered", { usage });
  });
}

async function runMode(
  provider: ProviderServer,
  otelEnv: Record<string, string>,
  logs: string,
): Promise<ModeResult> {
  const home = makeTempHome();
  const moduleLog = join(logs, `${Object.keys(otelEnv).length > 0 ? "on" : "off"}.log`);
  let child: ChildProcess | undefined;
  try {
    child = spawn(
      process.execPath,
      ["--import", "tsx", "--import", "./test/support/module-log.mjs", MAIN, "--foreground"],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          AIDO_HOME: home.dir,
          ANTHROPIC_API_KEY: "sk-ant-bench",
          ANTHROPIC_BASE_URL: provider.url,
          AIDO_MODEL: "anthropic/claude-bench",
          AIDO_TEST_MODULE_LOG: moduleLog,
          ...otelEnv,
        },
        stdio: ["ignore", "ignore", "ignore"],
      },
    );
    const pid = child.pid as number;
    await until(
      async () => existsSync(home.config.socketPath) && (await socketAnswers(home.config.socketPath)),
      60_000,
      "startup",
    );
    const c = await AidoClient.connect(home.config.socketPath);
    const lead = {
      name: "lead",
      model: "anthropic/claude-bench",
      system_prompt: "You lead.",
      capabilities: ["tool: spawn_agents", "spawn_child: [writer]", "tool: memory_store"],
    };
    const goal = async (): Promise<number> => {
      const t0 = performance.now();
      const { goal_id } = await c.call("goal.submit", { goal: "remember facts", manifest: lead });
      const s = await c.call("goal.wait", { goal_id, timeout_ms: 60_000 }, { timeoutMs: 70_000 });
      if (s.state !== "succeeded") throw new Error(`bench tracing: goal ${goal_id} ${s.state}: ${s.error}`);
      return performance.now() - t0;
    };
    for (let i = 0; i < WARMUP; i++) await goal();
    const cpu0 = cpuMs(pid);
    const wallMs: number[] = [];
    for (let i = 0; i < GOALS; i++) wallMs.push(await goal());
    const cpu = cpuMs(pid) - cpu0;
    const rss = rssMb(pid);
    c.close();
    const exited = new Promise((r) => child?.once("exit", r));
    child.kill("SIGTERM");
    await exited;
    const otelModules = readFileSync(moduleLog, "utf8")
      .split("\n")
      .filter((m) => m.includes("/node_modules/@opentelemetry/"));
    return { wallMs, cpuMsPerTurn: cpu / (GOALS * TURNS_PER_GOAL), rssMb: rss, otelModules, spans: 0 };
  } finally {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    home.cleanup();
  }
}

/** ns per `tracer?.startTool(...)` with tracing off, against the same loop without the hook. */
function nullCheckNs(): { hook: number; empty: number } {
  const tracer: Tracer | undefined = process.env.BENCH_NEVER_SET ? ({} as Tracer) : undefined;
  const n = 20_000_000;
  let sink = 0;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) sink += i & 1;
  const empty = ((performance.now() - t0) * 1e6) / n;
  t0 = performance.now();
  for (let i = 0; i < n; i++) {
    tracer?.startTool(undefined, "exec", { "gen_ai.tool.name": "exec" });
    sink += i & 1;
  }
  const hook = ((performance.now() - t0) * 1e6) / n;
  if (sink < 0) console.log(sink);
  return { hook, empty };
}

export async function benchTracing(): Promise<BenchSection> {
  const provider = await startProviderServer();
  const receiver: OtlpReceiver = await startOtlpReceiver();
  const logs = mkdtempSync(join(tmpdir(), "aido-bench-tracing-"));
  try {
    scriptSwarm(provider);
    const off = await runMode(provider, {}, logs);
    const on = await runMode(provider, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, logs);
    on.spans = receiver.spans.length;
    const spansPerGoal = on.spans / (GOALS + WARMUP);
    if (spansPerGoal !== SPANS_PER_GOAL) {
      throw new Error(`bench tracing: ${spansPerGoal} spans per goal exported, expected ${SPANS_PER_GOAL}`);
    }
    const hooks = nullCheckNs();
    const side = (name: string, unit: string, onV: number, offV: number): Metric => ({
      name: `${name} (tracing on)`,
      value: onV,
      unit,
      baseline: { name: "tracing off", value: offV },
    });
    const sdkOff = new Set(off.otelModules.map((m) => m.split("/@opentelemetry/")[1]?.split("/")[0]));
    return {
      name: "tracing",
      metrics: [
        side("goal wall time p50", "ms", percentile(on.wallMs, 50), percentile(off.wallMs, 50)),
        side("goal wall time p95", "ms", percentile(on.wallMs, 95), percentile(off.wallMs, 95)),
        side("daemon CPU per agent turn", "ms", on.cpuMsPerTurn, off.cpuMsPerTurn),
        side("daemon RSS after the goals", "MB", on.rssMb, off.rssMb),
        side("@opentelemetry modules loaded", "modules", on.otelModules.length, off.otelModules.length),
        { name: "spans exported per goal", value: round(spansPerGoal, 1), unit: "spans" },
        {
          name: "a tracing hook with tracing off",
          value: hooks.hook,
          unit: "ns",
          baseline: { name: "the same loop without it", value: hooks.empty },
        },
      ],
      notes: [
        `${GOALS} goals per mode after ${WARMUP} warm-up goals, run one after the other in a fresh daemon process per mode; each goal: a lead, spawn_agents of ${CHILDREN} children, two memory_store calls per child (${TURNS_PER_GOAL} model calls), the scripted provider answering at once.`,
        `with tracing off the daemon loaded these @opentelemetry packages: ${[...sdkOff].join(", ") || "none"} (the Anthropic SDK imports @opentelemetry/api itself); none of the SDK, resources or exporter.`,
        "CPU is the daemon process's utime+stime over the measured goals (10 ms ticks), divided by the model calls made.",
      ],
    };
  } finally {
    await provider.close();
    await receiver.close();
    rmSync(logs, { recursive: true, force: true });
  }
}
