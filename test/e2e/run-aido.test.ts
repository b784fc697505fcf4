// run-aido.sh end to end, as a user runs it: a temp working folder and a temp AIDO_HOME,
// the real Docker engine, the daemon in its container (built offline when no registry
// answers), a goal container beside it, and the scripted provider behind the real
// Anthropic SDK. The daemon container runs with --network host (run-aido.sh's default),
// so the provider server on this host's 127.0.0.1 is reachable from inside it.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireDocker } from "../support/docker.js";
import {
  type ProviderServer,
  type RecordedRequest,
  startProviderServer,
  turn,
} from "../support/provider-server.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SCRIPT = join(ROOT, "run-aido.sh");
const MODEL = "anthropic/claude-test";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs run-aido.sh without blocking this process (the provider server lives here). */
function runAido(args: string[], env: NodeJS.ProcessEnv, cwd: string, timeoutMs = 1_200_000): Promise<Run> {
  return new Promise((done) => {
    const child = spawn("bash", [SCRIPT, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** Only what a user's shell would have: no provider variables leak in from this process. */
function baseEnv(home: string): NodeJS.ProcessEnv {
  // AIDO_DAEMON_IMAGE: a tag of its own, so runs from several checkouts do not share one.
  const keep = [
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "TMPDIR",
    "DOCKER_HOST",
    "npm_config_cache",
    "AIDO_DAEMON_IMAGE",
  ];
  const env: NodeJS.ProcessEnv = { AIDO_HOME: home };
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

const asks = (text: string) => (req: RecordedRequest) =>
  req.system.includes('manifest "bootstrap"') && JSON.stringify(req.body.messages).includes(text);

describe("run-aido.sh", () => {
  let server: ProviderServer;
  let home: string;
  let work: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    requireDocker();
    // The server refuses any other key: a goal that succeeds proves the key reached the daemon.
    server = await startProviderServer({ apiKeys: { anthropic: "sk-ant-e2e-dummy" } });
    home = mkdtempSync(join(tmpdir(), "aido-e2e-home-"));
    work = mkdtempSync(join(tmpdir(), "aido-e2e-work-"));
    env = {
      ...baseEnv(home),
      ANTHROPIC_API_KEY: "sk-ant-e2e-dummy",
      ANTHROPIC_BASE_URL: server.url,
      AIDO_MODEL: MODEL,
    };
  });

  afterAll(async () => {
    await runAido(["stop"], env, work, 120_000);
    await server.close();
    rmSync(home, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("stops before doing anything when no provider is configured, listing the ways to set one", async () => {
    const bare = mkdtempSync(join(tmpdir(), "aido-e2e-bare-"));
    try {
      const r = await runAido(["write something"], baseEnv(join(bare, "home")), bare, 60_000);
      expect(r.code).toBe(2);
      for (const way of ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DEEPSEEK_API_KEY", "OLLAMA_HOST"])
        expect(r.stderr).toContain(way);
      expect(r.stderr).toContain("AIDO_OPENAI_COMPAT_BASE_URL");
      expect(r.stderr).toContain("AIDO_REPLAY=DIR");
      expect(existsSync(join(bare, "home"))).toBe(false);
      expect(existsSync(join(bare, "output"))).toBe(false);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });

  it("sets up, runs a goal in containers, copies its deliverables to ./output, and keeps the daemon for more", async () => {
    server.script(asks("FIRST GOAL"), [
      turn.toolUse("file_write", {
        path: "/output/result.md",
        content: "# Result\n\nwritten by the swarm\n",
      }),
      turn.text("Delivered /output/result.md."),
    ]);
    server.script(asks("SECOND GOAL"), [turn.text("Nothing to write for this one.")]);

    const first = await runAido(["FIRST GOAL: write the result file"], env, work);
    const log = `${first.stdout}\n${first.stderr}`;
    expect(first.code, log).toBe(0);
    expect(readFileSync(join(work, "output", "result.md"), "utf8")).toBe(
      "# Result\n\nwritten by the swarm\n",
    );
    // Every long step said what it was doing, and the live view showed the goal.
    expect(first.stderr).toContain("== sandbox image");
    expect(first.stderr).toContain("== daemon image");
    expect(log).toContain("bootstrap → file_write");
    expect(log).toContain("goal succeeded");
    // The key went to the daemon by name only: it is on no command line and in no file.
    expect(log).not.toContain("sk-ant-e2e-dummy");

    const second = await runAido(["submit", "SECOND GOAL: just answer"], env, work);
    expect(second.code, `${second.stdout}\n${second.stderr}`).toBe(0);
    expect(second.stderr).toMatch(/goal \S+ succeeded/);

    // The dashboard: the URL printed in the daemon's container works from this host.
    const ui = await runAido(["ui"], env, work, 120_000);
    expect(ui.code, ui.stderr).toBe(0);
    const url = new URL(ui.stdout.split("\n")[0] as string);
    expect(url.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const visit = await fetch(url, { redirect: "manual" });
    expect(visit.status).toBe(200);
    const cookie = (visit.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const key = /<meta name="aido-page-key" content="([A-Za-z0-9_-]+)">/.exec(await visit.text())?.[1] ?? "";
    const goals = await fetch(new URL("/api/rpc", url), {
      method: "POST",
      headers: { Cookie: cookie, "X-Aido-Key": key, Origin: url.origin, "Content-Type": "application/json" },
      body: JSON.stringify({ method: "goal.list", params: {} }),
    });
    expect(((await goals.json()) as { result: { goals: unknown[] } }).result.goals).toHaveLength(2);
    const elsewhere = await runAido(["ui"], { ...env, AIDO_DAEMON_NETWORK: "bridge" }, work, 120_000);
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain("needs the daemon on the host's network");

    const status = await runAido(["status"], env, work, 120_000);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain("agentd running");
    expect(status.stdout).toContain("FIRST GOAL");
    expect(status.stdout).toContain("SECOND GOAL");
    expect(status.stdout.match(/succeeded/g)?.length).toBe(2);

    const stop = await runAido(["stop"], env, work, 120_000);
    expect(stop.code).toBe(0);
    expect(stop.stderr).toContain("daemon stopped");
    const after = await runAido(["status"], env, work, 60_000);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain("the Aido daemon is not running");
  }, 2_400_000);
});
