// Tracing off costs nothing: agentd as its own process (src/daemon/main.ts --foreground,
// as `aido daemon start` runs it), with a module hook listing every module it loaded, runs
// a goal with a tool call and is stopped with SIGTERM. Without an OTLP endpoint none of
// the OpenTelemetry SDK (sdk-trace, resources, the exporter) is ever loaded; only the API
// package, which the Anthropic SDK imports on its own. With one (the control), the modules load, and the
// spans of the goal reach the collector because SIGTERM's shutdown flushes them.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import { socketAnswers } from "../../src/daemon/socket.js";
import { manifest } from "../daemon/fixture.js";
import { daemonEnv, MAIN, until } from "../daemon/process.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type OtlpReceiver, startOtlpReceiver } from "../support/otlp-receiver.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";

const ROOT = join(import.meta.dirname, "..", "..");
const OTEL_MODULE = /\/node_modules\/@opentelemetry\//;
/** "sdk-trace" for .../node_modules/@opentelemetry/sdk-trace/dist/index.mjs */
const packageOf = (url: string) => url.split("/node_modules/@opentelemetry/").at(-1)?.split("/")[0];

let server: ProviderServer;
let receiver: OtlpReceiver;
let logs: string;
const homes: TempHome[] = [];
beforeAll(async () => {
  server = await startProviderServer();
  receiver = await startOtlpReceiver();
  logs = mkdtempSync(join(tmpdir(), "aido-otel-modules-"));
});
afterEach(() => {
  for (const h of homes.splice(0)) h.cleanup();
  server.reset();
  receiver.reset();
});
afterAll(async () => {
  await server?.close();
  await receiver?.close();
  rmSync(logs, { recursive: true, force: true });
});

/** Run one goal in a daemon process and stop it with SIGTERM; the modules it loaded. */
async function goalInDaemonProcess(extraEnv: Record<string, string>): Promise<string[]> {
  server.script('manifest "solo"', [
    turn.toolUse("memory_store", { content: "a fact", category: "fact" }),
    turn.text("done"),
  ]);
  const h = makeTempHome();
  homes.push(h);
  const log = join(logs, `modules-${homes.length}-${Date.now()}.log`);
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--import", "./test/support/module-log.mjs", MAIN, "--foreground"],
    {
      cwd: ROOT,
      env: { ...daemonEnv(h, server), AIDO_TEST_MODULE_LOG: log, ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`agentd exited early:\n${out}`);
      return existsSync(h.config.socketPath) && (await socketAnswers(h.config.socketPath)) ? true : undefined;
    });
    const c = await AidoClient.connect(h.config.socketPath);
    try {
      const solo = manifest("solo", { capabilities: ["tool: memory_store"] });
      const { goal_id } = await c.call(
        "goal.submit",
        { goal: "remember", manifest: solo },
        { timeoutMs: 60_000 },
      );
      const s = await c.call("goal.wait", { goal_id, timeout_ms: 60_000 }, { timeoutMs: 70_000 });
      expect(s.state).toBe("succeeded");
    } finally {
      c.close();
    }
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  return readFileSync(log, "utf8").split("\n").filter(Boolean);
}

describe("tracing off", () => {
  it("loads none of the OpenTelemetry SDK in a daemon that ran a goal", async () => {
    const modules = await goalInDaemonProcess({});
    expect(modules.some((m) => m.includes("/src/kernel/"))).toBe(true); // the hook saw the daemon load
    // The Anthropic SDK imports @opentelemetry/api itself (a dependency of its own, a no-op
    // until something registers a provider); nothing else of OpenTelemetry loads, and none
    // of Aido's tracing beyond the seam.
    expect(new Set(modules.filter((m) => OTEL_MODULE.test(m)).map(packageOf))).toEqual(new Set(["api"]));
    expect(modules.filter((m) => m.includes("/src/telemetry/otel.ts"))).toEqual([]);
    expect(receiver.spans).toEqual([]);
  }, 120_000);

  it("(control) with an endpoint they load, and SIGTERM flushes the goal's spans to the collector", async () => {
    const modules = await goalInDaemonProcess({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
    const loaded = new Set(modules.filter((m) => OTEL_MODULE.test(m)).map(packageOf));
    for (const p of ["sdk-trace", "exporter-trace-otlp-proto", "resources"]) expect(loaded).toContain(p);
    expect(receiver.spans.map((s) => s.name).sort()).toEqual([
      "chat claude-test",
      "chat claude-test",
      "execute_tool memory_store",
      "invoke_agent solo",
    ]);
  }, 120_000);
});
