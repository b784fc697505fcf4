// agentd as a real process: kill -9 in the middle of a goal and start again (the goal ends
// failed with the reason, never "running"; queued goals survive and run; the audit chain
// verifies), SIGTERM (a clean shutdown removes the socket and the pid file), and the
// detached mode of `aido daemon start`.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import { daemonMain } from "../../src/daemon/main.js";
import { RESTART_REASON } from "../../src/kernel/goals.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { manifest } from "./fixture.js";
import { daemonEnv, killChildren, startDaemonChild, until } from "./process.js";

let server: ProviderServer;
let home: TempHome | undefined;

beforeAll(async () => {
  server = await startProviderServer();
});
afterEach(async () => {
  killChildren();
  home?.cleanup();
  home = undefined;
  server.reset();
});
afterAll(async () => {
  await server.close();
});

const env = (h: TempHome) => daemonEnv(h, server);
const startChild = (h: TempHome) => startDaemonChild(h, server);

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
    // Its events went to stdout as JSON lines, from the first: the goal recovery failed and
    // the queued ones it started while the runtime was still opening are there too.
    const finishedOnStdout = () =>
      new Set(
        second
          .output()
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as { type: string; goal_id: string })
          .filter((e) => e.type === "goal.finished")
          .map((e) => e.goal_id),
      );
    await until(() => (finishedOnStdout().size >= 3 ? true : undefined));
    expect([...finishedOnStdout()].sort()).toEqual([slow.goal_id, q1.goal_id, q2.goal_id].sort());
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
      // V8's memory reducer is off in the daemon (it left every turn after it slower).
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toContain("--no-memory-reducer");
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
