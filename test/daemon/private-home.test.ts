// AIDO_HOME is private to the daemon's user whatever the umask it was started under: a
// real agentd process (detached, as `aido daemon start` runs it) under umask 000 and 022
// runs a goal in a real container, and every folder of the layout is 0700 and every state
// file 0600 — while the container user still writes /workspace and /output through the
// 0700 goal folder. A home left loose by an older Aido is tightened at the next start.

import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { manifest } from "./fixture.js";
import { killChildren, startDaemonChild, until } from "./process.js";

let server: ProviderServer;
let home: TempHome | undefined;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
});
afterEach(async () => {
  if (home) await stopByPidFile(home);
  killChildren();
  home?.cleanup();
  home = undefined;
  server.reset();
});
afterAll(async () => {
  await server?.close();
});

const modeOf = (p: string) => (lstatSync(p).mode & 0o7777).toString(8).padStart(4, "0");

/** SIGTERM the daemon named by the pid file and wait until its socket is gone. */
async function stopByPidFile(h: TempHome): Promise<void> {
  if (!existsSync(h.config.pidPath)) return;
  const pid = Number(readFileSync(h.config.pidPath, "utf8").trim());
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  await until(() => (existsSync(h.config.socketPath) ? undefined : true), 30_000);
}

const worker = manifest("perm", {
  capabilities: [
    "tool: file_write",
    "tool: exec",
    "file_write: /workspace/**",
    "file_write: /output/**",
    "file_read: /workspace/**",
    "exec: mkdir *",
  ],
});

function scriptWorker(): void {
  server.script('manifest "perm"', [
    turn.toolUse("file_write", { path: "/workspace/w.txt", content: "in the workspace" }),
    turn.toolUse("file_write", { path: "/output/o.txt", content: "delivered" }),
    turn.toolUse("exec", { command: "mkdir /workspace/by-exec /output/by-exec" }),
    turn.text("done"),
  ]);
}

/** Every part of the layout that exists, with the mode it must have. */
function expectPrivate(h: TempHome, goalId: string): void {
  const c = h.config;
  const want: Record<string, string> = {
    [c.home]: "0700",
    [c.goalsDir]: "0700",
    [join(c.goalsDir, goalId)]: "0700",
    [c.keysDir]: "0700",
    [join(c.keysDir, "runtime.ed25519.pem")]: "0600",
    [c.dbPath]: "0600",
    [`${c.dbPath}-wal`]: "0600",
    [`${c.dbPath}-shm`]: "0600",
    [c.auditHeadPath]: "0600",
    [c.pidPath]: "0600",
    [c.socketPath]: "0600",
    [join(c.home, "agentd.log")]: "0600",
  };
  const got = Object.fromEntries(Object.keys(want).map((p) => [p, modeOf(p)]));
  expect(got).toEqual(want);
}

describe("AIDO_HOME permissions", () => {
  for (const umask of ["000", "022"]) {
    it(`are 0700/0600 under umask ${umask}, and the container still writes /workspace and /output`, async () => {
      home = makeTempHome();
      scriptWorker();
      await startDaemonChild(home, server, { umask, detached: true });
      const c = await AidoClient.connect(home.config.socketPath);
      const { goal_id } = await c.call("goal.submit", { goal: "write files", manifest: worker });
      const end = await c.call("goal.wait", { goal_id, timeout_ms: 90_000 }, { timeoutMs: 100_000 });
      c.close();
      expect(end.error).toBeUndefined();
      expect(end.state).toBe("succeeded");
      const root = join(home.config.goalsDir, goal_id);
      expect(readFileSync(join(root, "workspace", "w.txt"), "utf8")).toBe("in the workspace");
      expect(readFileSync(join(root, "output", "o.txt"), "utf8")).toBe("delivered");
      expect(readdirSync(join(root, "workspace")).sort()).toEqual(["by-exec", "w.txt"]);
      expect(existsSync(join(root, "output", "by-exec"))).toBe(true);
      expectPrivate(home, goal_id);
    }, 150_000);
  }

  it("tightens a home an older Aido left readable by others, at the next start", async () => {
    home = makeTempHome();
    const first = await startDaemonChild(home, server);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    // What an older Aido under umask 022 made: 0755 folders, 0644 files, a stale pid file.
    const c = home.config;
    const oldGoal = join(c.goalsDir, "g_older");
    mkdirSync(join(oldGoal, "workspace"), { recursive: true, mode: 0o755 });
    for (const d of [c.home, c.goalsDir, oldGoal, c.keysDir]) chmodSync(d, 0o755);
    new Database(c.dbPath).close();
    chmodSync(c.dbPath, 0o644);
    chmodSync(c.auditHeadPath, 0o644);
    writeFileSync(join(c.home, "agentd.log"), "old log\n", { mode: 0o644 });
    writeFileSync(c.pidPath, "999999\n", { mode: 0o644 });

    await startDaemonChild(home, server);
    expectPrivate(home, "g_older");
  }, 60_000);
});
