// agentd as a real process: kill -9 in the middle of a goal and start again (the goal ends
// failed with the reason, never "running"; queued goals survive and run; the audit chain
// verifies), SIGTERM (a clean shutdown removes the socket and the pid file), and the
// detached mode of `aido daemon start`.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import { daemonMain } from "../../src/daemon/main.js";
import { socketAnswers } from "../../src/daemon/socket.js";
import { RESTART_REASON } from "../../src/kernel/goals.js";
import { providerEnv } from "../agent/harness.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { manifest } from "./fixture.js";

const MAIN = join(import.meta.dirname, "..", "..", "src", "daemon", "main.ts");

let server: ProviderServer;
let home: TempHome | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await startProviderServer();
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  home?.cleanup();
  home = undefined;
  server.reset();
});
afterAll(async () => {
  await server.close();
});

function env(h: TempHome): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...providerEnv(server), AIDO_HOME: h.dir };
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `agentd --foreground` as a child process; resolves once its socket answers. */
async function startChild(
  h: TempHome,
): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), MAIN, "--foreground"], {
    env: env(h),
    cwd: h.dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`agentd exited early:\n${out}`);
    return existsSync(h.config.socketPath) && (await socketAnswers(h.config.socketPath)) ? true : undefined;
  });
  return { child, output: () => out, exited };
}

describe("agentd as a process", () => {
  it("after kill -9 mid-goal and a restart: the running goal is failed with the reason, queued goals run, the audit verifies", async () => {
    home = makeTempHome();
    writeFileSync(join(home.dir, "config.yaml"), "limits:\n  max_concurrent_goals: 1\n");
    server.script('manifest "slow"', [turn.text("too late", { delayMs: 120_000 })]);
    server.script('manifest "quick"', [turn.text("queued and done")], { repeatLast: true });
    const first = await startChild(home);
    const c = await AidoClient.connect(home.config.socketPath);
    const slow = await c.call("goal.submit", { goal: "slow one", manifest: manifest("slow") });
    const q1 = await c.call("goal.submit", { goal: "queued one", manifest: manifest("quick") });
    const q2 = await c.call("goal.submit", { goal: "queued two", manifest: manifest("quick") });
    // Mid-flight: the slow goal's model call is open at the provider.
    await until(() => (server.inFlight > 0 ? true : undefined));
    expect((await c.call("goal.status", { goal_id: slow.goal_id })).state).toBe("running");
    expect((await c.call("goal.status", { goal_id: q1.goal_id })).state).toBe("queued");
    first.child.kill("SIGKILL");
    await first.exited;
    c.close();
    // The socket file is left behind by the dead process: the next daemon clears it.
    expect(existsSync(home.config.socketPath)).toBe(true);

    const second = await startChild(home);
    const c2 = await AidoClient.connect(home.config.socketPath);
    const dead = await c2.call("goal.status", { goal_id: slow.goal_id });
    expect(dead.state).toBe("failed");
    expect(dead.error).toBe(RESTART_REASON);
    for (const q of [q1, q2]) {
      const s = await c2.call("goal.wait", { goal_id: q.goal_id, timeout_ms: 30_000 }, { timeoutMs: 40_000 });
      expect(s).toMatchObject({ state: "succeeded", result: "queued and done" });
    }
    const v = await c2.call("audit.verify", {});
    expect(v.ok).toBe(true);
    const finished = await c2.call("audit.query", { goal_id: slow.goal_id, kind: "goal.finished" });
    expect(finished.entries[0]?.payload).toMatchObject({ state: "failed", error: RESTART_REASON });
    // Its events went to stdout as JSON lines.
    const lines = second
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"));
    expect(lines.some((l) => (JSON.parse(l) as { type: string }).type === "goal.finished")).toBe(true);
    c2.close();

    // SIGTERM: a clean shutdown, socket and pid file removed.
    expect(readFileSync(home.config.pidPath, "utf8").trim()).toBe(String(second.child.pid));
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    expect(existsSync(home.config.socketPath)).toBe(false);
    expect(existsSync(home.config.pidPath)).toBe(false);
  });

  it("on SIGTERM ends a running goal as failed with the reason and keeps queued goals queued", async () => {
    home = makeTempHome();
    writeFileSync(join(home.dir, "config.yaml"), "limits:\n  max_concurrent_goals: 1\n");
    server.script('manifest "slow"', [turn.text("too late", { delayMs: 120_000 })]);
    const d = await startChild(home);
    const c = await AidoClient.connect(home.config.socketPath);
    const running = await c.call("goal.submit", { goal: "slow", manifest: manifest("slow") });
    const queued = await c.call("goal.submit", { goal: "later", manifest: manifest("slow") });
    await until(() => (server.inFlight > 0 ? true : undefined));
    d.child.kill("SIGTERM");
    expect(await d.exited).toBe(0);
    c.close();
    const db = new Database(home.config.dbPath, { readonly: true });
    const state = (id: string) =>
      db.prepare("SELECT state, error FROM goals WHERE id = ?").get(id) as { state: string; error: string };
    expect(state(running.goal_id).state).toBe("failed");
    expect(state(running.goal_id).error).toMatch(/stop|clos/);
    expect(state(queued.goal_id).state).toBe("queued");
    db.close();
  });

  it("starts detached, prints the pid, and answers on the socket", async () => {
    home = makeTempHome();
    const out: string[] = [];
    const code = await daemonMain([], env(home), { out: (l) => out.push(l), err: (l) => out.push(l) });
    expect(code, out.join("\n")).toBe(0);
    const pid = Number(/pid (\d+)/.exec(out[0] ?? "")?.[1]);
    expect(pid).toBeGreaterThan(0);
    try {
      const c = await AidoClient.connect(home.config.socketPath);
      expect(await c.call("goal.list", {})).toEqual({ goals: [] });
      c.close();
      // A second start is refused while this one answers (exit 2: usage).
      const again = await daemonMain([], env(home), { out: () => {}, err: (l) => out.push(l) });
      expect(again).toBe(2);
      expect(out.at(-1)).toContain("already running");
    } finally {
      process.kill(pid, "SIGTERM");
      await until(() => (existsSync(home!.config.socketPath) ? undefined : true));
    }
    expect(readFileSync(join(home.dir, "agentd.log"), "utf8")).toContain("listening on");
  });
});
