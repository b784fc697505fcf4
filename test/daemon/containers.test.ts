// No goal container outlives its goal, on a real Docker engine: a goal that succeeded,
// failed or was cancelled has no container when its end is reported; a container past
// sandbox.ttl_seconds is swept while the daemon runs (its goal ends failed, a standalone
// agent gets a fresh one); after kill -9 and a restart the dead goal's container is gone
// while a persistent agent's is re-attached; and a SIGTERM while a call waits for an
// approval exits within seconds leaving no container. Containers are found the way an
// operator would: `docker ps` filtered by the runtime's label.

import Database from "better-sqlite3";
import { beforeAll, describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { RESTART_REASON } from "../../src/kernel/goals.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import { requireDocker } from "../support/docker.js";
import { containersOfHome, makeTempHome, type TempHome } from "../support/home.js";
import { turn } from "../support/provider-server.js";
import { manifest, useDaemonPerTest } from "./fixture.js";
import { killChildren, startDaemonChild, until } from "./process.js";

let home: TempHome | undefined;

beforeAll(() => requireDocker());
const suite = useDaemonPerTest({
  beforeClose: () => killChildren(),
  afterEach: () => {
    home?.cleanup();
    home = undefined;
  },
});

const containersOf = (h: TempHome): string[] => containersOfHome(h.config.home);

const containerOf = (h: TempHome, goalId: string) =>
  containersOf(h).find((n) => n.endsWith(`_goal_${goalId}`));

const writer = (name: string, extra: Record<string, unknown> = {}) =>
  manifest(name, {
    capabilities: [
      "tool: file_write",
      "tool: exec",
      "file_write: /workspace/**",
      "file_read: /workspace/**",
      "exec: ls *",
    ],
    ...extra,
  });

const firstWrite = turn.toolUse("file_write", { path: "/workspace/started.txt", content: "container up" });

const withDocker = (config?: (c: TempHome["config"]) => void) =>
  suite.start({
    runtime: { backend: undefined, builtinTools: daemonBuiltinTools },
    ...(config ? { config } : {}),
  });

describe("a goal's container ends with the goal", () => {
  it("is gone when the goal's end is reported: succeeded, failed, cancelled", async () => {
    const fx = await withDocker();
    const c = await fx.client();
    suite.server.script('manifest "done"', [firstWrite, turn.text("finished")]);
    suite.server.script('manifest "broken"', [firstWrite, turn.error(400, { message: "bad request" })]);
    suite.server.script('manifest "stuck"', [firstWrite, turn.hang()]);
    const ids: Record<string, string> = {};
    for (const name of ["done", "broken", "stuck"]) {
      ids[name] = (await c.call("goal.submit", { goal: name, manifest: writer(name) })).goal_id;
    }
    const stuck = ids.stuck as string;
    await until(() => (suite.server.requestsMatching('manifest "stuck"').length === 2 ? true : undefined));
    expect(containerOf(fx.home, stuck)).toBeDefined();
    await c.call("goal.cancel", { goal_id: stuck });
    const ends: Record<string, string> = {};
    for (const [name, id] of Object.entries(ids)) {
      const s = await c.call("goal.wait", { goal_id: id, timeout_ms: 60_000 }, { timeoutMs: 70_000 });
      ends[name] = s.state;
      // Reported ended: the container is already gone, not merely stopping.
      expect(containerOf(fx.home, id), `${name}'s container`).toBeUndefined();
    }
    expect(ends).toEqual({ done: "succeeded", broken: "failed", stuck: "cancelled" });
  }, 120_000);

  it("ends a stopped goal whose tool call does not return within seconds, and removes its container", async () => {
    const sleeperGrants = ["tool: exec", "exec: sleep *", "file_read: /workspace/**"];
    const fx = await withDocker((cfg) => {
      cfg.grantCeilings = [sleeperGrants];
    });
    const c = await fx.client();
    suite.server.script('manifest "sleeper"', [
      turn.toolUse("exec", { command: "sleep 60" }),
      turn.text("woke"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "sleep",
      manifest: manifest("sleeper", { capabilities: sleeperGrants }),
    });
    await until(() => (containerOf(suite.fx.home, goal_id) ? true : undefined));
    await new Promise((r) => setTimeout(r, 500)); // the command is running
    const started = Date.now();
    await c.call("goal.cancel", { goal_id });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 }, { timeoutMs: 40_000 });
    expect(end.state).toBe("cancelled");
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(containerOf(fx.home, goal_id)).toBeUndefined();
  }, 120_000);

  it("sweeps a container past sandbox.ttl_seconds: its goal fails with the reason, a standalone agent gets a new one", async () => {
    // Long enough that a container is never swept while it still starts on a loaded machine (a
    // CI run saw the standalone agent's start killed at 3 s: "exited with code 137 during start").
    const fx = await withDocker((cfg) => {
      cfg.sandbox.ttlSeconds = 8;
    });
    const c = await fx.client();
    suite.server.script('manifest "long"', [firstWrite, turn.text("too late", { delayMs: 60_000 })]);
    const { goal_id } = await c.call("goal.submit", { goal: "long", manifest: writer("long") });
    const agent = await c.call("agent.spawn", { manifest: writer("standalone") });
    const write = (content: string) =>
      c.call("tool.invoke", {
        agent_id: agent.agent_id,
        tool: "file_write",
        input: { path: "/workspace/s.txt", content },
      });
    await write("first container");
    const first = containerOf(fx.home, agent.goal_id);
    expect(first).toBeDefined();
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 }, { timeoutMs: 40_000 });
    expect(end.state).toBe("failed");
    expect(end.error).toMatch(/sandbox\.ttl_seconds \(8 s\)/);
    expect(containerOf(fx.home, goal_id)).toBeUndefined();
    await until(() => (containerOf(suite.fx.home, agent.goal_id) === undefined ? true : undefined), 10_000);
    // The standalone agent carries on in a fresh container over the same folders.
    expect((await write("second container")).is_error).toBe(false);
    expect(containerOf(fx.home, agent.goal_id)).toBeDefined();
    const destroyed = await c.call("audit.query", { kind: "sandbox.destroyed" });
    expect(destroyed.entries.map((e) => e.goal_id)).toEqual(expect.arrayContaining([goal_id, agent.goal_id]));
  }, 120_000);

  it("at start-up removes containers of goals that are not running and re-attaches a persistent agent's", async () => {
    const fx = await withDocker();
    const c = await fx.client();
    const keeper = await c.call("agent.spawn", { manifest: writer("keeper", { lifecycle: "persistent" }) });
    await c.call("tool.invoke", {
      agent_id: keeper.agent_id,
      tool: "file_write",
      input: { path: "/workspace/k.txt", content: "kept" },
    });
    const kept = containerOf(fx.home, keeper.goal_id);
    // A container of a goal this home does not run (left by a crashed process, say).
    const stray = new DockerBackend(fx.home.config);
    await stray.acquire("g_ghost");
    await stray.close();
    expect(containerOf(fx.home, "g_ghost")).toBeDefined();

    await fx.restart();
    expect(containerOf(fx.home, "g_ghost")).toBeUndefined();
    expect(containerOf(fx.home, keeper.goal_id)).toBe(kept);
    const c2 = await fx.client();
    const ls = await c2.call("tool.invoke", {
      agent_id: keeper.agent_id,
      tool: "exec",
      input: { command: "ls /workspace" },
    });
    expect(ls.output).toContain("k.txt");
    expect(containerOf(fx.home, keeper.goal_id)).toBe(kept);
  }, 120_000);
});

describe("a daemon that dies or is stopped", () => {
  it("after kill -9 and a restart, nothing of the dead goal is left running", async () => {
    home = makeTempHome();
    suite.server.script('manifest "victim"', [firstWrite, turn.text("never", { delayMs: 120_000 })]);
    const first = await startDaemonChild(home, suite.server);
    const c = await AidoClient.connect(home.config.socketPath);
    const { goal_id } = await c.call("goal.submit", { goal: "victim", manifest: writer("victim") });
    await until(() => (suite.server.requestsMatching('manifest "victim"').length === 2 ? true : undefined));
    expect(containerOf(home, goal_id)).toBeDefined();
    first.child.kill("SIGKILL");
    await first.exited;
    c.close();
    expect(containerOf(home, goal_id)).toBeDefined(); // the dead process could not remove it

    await startDaemonChild(home, suite.server);
    await until(() => (containerOf(home!, goal_id) === undefined ? true : undefined), 15_000);
    const c2 = await AidoClient.connect(home.config.socketPath);
    const s = await c2.call("goal.status", { goal_id });
    expect(s).toMatchObject({ state: "failed", error: RESTART_REASON });
    const destroyed = await c2.call("audit.query", { goal_id, kind: "sandbox.destroyed" });
    expect(destroyed.entries[0]?.payload).toMatchObject({ reason: expect.stringMatching(/^orphan/) });
    c2.close();
  }, 120_000);

  it("on SIGTERM while a call waits for an approval, exits within seconds and leaves no container", async () => {
    home = makeTempHome();
    suite.server.script('manifest "asker"', [
      firstWrite,
      turn.toolUse("exec", { command: "ls /workspace" }),
      turn.text("never"),
    ]);
    const d = await startDaemonChild(home, suite.server);
    const c = await AidoClient.connect(home.config.socketPath);
    const asker = writer("asker", { approval_required: ["exec"] });
    const { goal_id } = await c.call("goal.submit", { goal: "ask", manifest: asker });
    await until(async () => ((await c.call("approval.list", {})).approvals.length > 0 ? true : undefined));
    expect(containerOf(home, goal_id)).toBeDefined();
    c.close();
    const started = Date.now();
    d.child.kill("SIGTERM");
    expect(await d.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(containersOf(home)).toEqual([]);
    const db = new Database(home.config.dbPath, { readonly: true });
    const row = db.prepare("SELECT state, error FROM goals WHERE id = ?").get(goal_id) as {
      state: string;
      error: string;
    };
    db.close();
    expect(row.state).toBe("failed");
    expect(row.error).toMatch(/runtime closing/);
  }, 120_000);
});
