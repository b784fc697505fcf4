// The demo as a newcomer without a key starts it: `./run-aido.sh --demo` (the daemon image,
// no network at all, the recording mounted read-only) from an empty folder, answered with
// --yes or by keystrokes in a real terminal (tmux), and `aido demo` on the host in a
// terminal, where the approvals prompt stops the live view and asks.

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireDocker } from "../support/docker.js";
import { removeContainersOfHome } from "../support/home.js";
import { requireTmux, shq } from "../support/tmux.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SCRIPT = join(ROOT, "run-aido.sh");
const REPORT_ROW = "| south | 420 | $33,975 | desk ($17,100) |";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), 1_200_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** A shell with no provider variables; image tags and offline mode pass through. */
function shellEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { AIDO_HOME: home };
  const keep = ["PATH", "HOME", "USER", "LANG", "TMPDIR", "DOCKER_HOST", "AIDO_DAEMON_IMAGE", "AIDO_OFFLINE"];
  for (const k of [...keep, "AIDO_SANDBOX_IMAGE", "npm_config_cache"])
    if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

describe("./run-aido.sh --demo", () => {
  let work: string;
  let socket: string;
  const homes: string[] = [];
  const tmux = (...args: string[]) => execFileSync("tmux", ["-S", socket, ...args], { encoding: "utf8" });
  const screen = (win: string) => tmux("capture-pane", "-p", "-J", "-t", `demo:${win}`);

  /** A fresh user: an empty working folder and an AIDO_HOME of their own. */
  function user(name: string): { cwd: string; home: string } {
    const cwd = join(work, name);
    mkdirSync(cwd);
    const home = join(work, `${name}-home`);
    homes.push(home);
    return { cwd, home };
  }

  async function until(win: string, what: RegExp, ms = 1_200_000): Promise<string> {
    const end = Date.now() + ms;
    let text = "";
    while (Date.now() < end) {
      text = screen(win);
      const m = what.exec(text);
      if (m) return m[1] ?? m[0];
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error(`${what} not on window ${win} within ${ms} ms; it shows:\n${text}`);
  }

  beforeAll(() => {
    requireDocker();
    requireTmux();
    work = mkdtempSync(join(tmpdir(), "aido-demo-e2e-"));
    socket = join(work, "tmux.sock");
  });

  afterAll(() => {
    spawnSync("tmux", ["-S", socket, "kill-server"]);
    for (const h of homes) removeContainersOfHome(join(h, "demo"));
    rmSync(work, { recursive: true, force: true });
  });

  it("says to pass --yes when there is no terminal to ask in, before setting anything up", async () => {
    const u = user("no-tty");
    const r = await run("bash", [SCRIPT, "--demo"], u.cwd, shellEnv(u.home));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("./run-aido.sh --demo --yes");
    expect(existsSync(u.home)).toBe(false);
  });

  it("replays the demo in the daemon image with no key and no network, and ./output/report.md arrives", async () => {
    const u = user("yes");
    const r = await run("bash", [SCRIPT, "--demo", "--yes"], u.cwd, shellEnv(u.home));
    const log = `${r.stdout}\n${r.stderr}`;
    expect(r.code, log).toBe(0);
    expect(readFileSync(join(u.cwd, "output", "report.md"), "utf8")).toContain(REPORT_ROW);
    expect(log).toMatch(/coder ✗ exec DENIED \(capability: no capability grants exec of "curl /);
    expect(log).toMatch(/--yes: answered Allow Once to apr_\S+ \(file_write on \/output\/report\.md\)/);
    expect(log).toContain("delivered: 1 file(s) in ./output");
    // The demo's container went with its run; its state stays in the demo home.
    expect(execFileSync("docker", ["ps", "-aq", "--filter", "name=aido-demo-"], { encoding: "utf8" })).toBe(
      "",
    );
    expect(existsSync(join(u.home, "demo", "aido.db"))).toBe(true);
  }, 1_500_000);

  it("stops at the approval and asks in the terminal: ./run-aido.sh --demo and aido demo on the host", async () => {
    const inDocker = user("tty-docker");
    const onHost = user("tty-host");
    const line = (u: { cwd: string; home: string }, command: string) => {
      const vars = Object.entries(shellEnv(u.home)).map(([k, v]) => `${k}=${shq(String(v))}`);
      return `cd ${shq(u.cwd)} && env -i ${vars.join(" ")} TERM=xterm-256color ${command}; echo EXIT=$?; sleep 600`;
    };
    tmux(
      "new-session",
      "-d",
      "-s",
      "demo",
      "-n",
      "docker",
      "-x",
      "120",
      "-y",
      "50",
      line(inDocker, `bash ${shq(SCRIPT)} --demo`),
    );
    const tsx = import.meta.resolve("tsx");
    const main = join(ROOT, "src", "cli", "main.ts");
    tmux(
      "new-window",
      "-d",
      "-t",
      "demo",
      "-n",
      "host",
      line(onHost, `node --import ${shq(tsx)} ${shq(main)} demo`),
    );
    for (const win of ["docker", "host"]) {
      await until(win, /Allow \[o\]nce \/ Allow \[s\]ession/);
      // The live tree was drawn before the prompt: three coders under the bootstrap, one denial.
      const text = screen(win);
      expect(text).toMatch(/└─ ✓ coder {2}a_\S+ {2}stopped .*denied 1/);
      expect(text).toContain("file_write on /output/report.md");
      tmux("send-keys", "-t", `demo:${win}`, "o", "Enter");
      expect(await until(win, /EXIT=(\d+)/), screen(win)).toBe("0");
      expect(screen(win)).toContain("approved:  file_write (path:/output/report.md): allow_once");
    }
    for (const u of [inDocker, onHost])
      expect(readFileSync(join(u.cwd, "output", "report.md"), "utf8")).toContain(REPORT_ROW);
  }, 1_500_000);
});
