// run-aido.sh in a real terminal: tmux panes of a fixed size run `./run-aido.sh "goal"`,
// `./run-aido.sh watch ID` and `./run-aido.sh approvals` against the daemon in its
// container (set up the way run-aido.test.ts does: temp AIDO_HOME, the scripted provider
// behind the real Anthropic SDK). The watch inside the container must draw the same agent
// tree as `aido watch` on the host, and the approval must be answered by keystrokes.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { requireTmux, shq } from "../support/tmux.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SCRIPT = join(ROOT, "run-aido.sh");

/** The tests' own tmux server, its socket in the temp working folder (removed with it). */
let socket = "";
const tmux = (...args: string[]): string =>
  execFileSync("tmux", ["-S", socket, ...args], { encoding: "utf8" });
const screen = (win: string): string => tmux("capture-pane", "-p", "-t", `tty:${win}`);

/** A window of 120x40 running `command` (then holding its exit code on screen). */
function open(win: string, command: string, env: NodeJS.ProcessEnv): void {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${shq(String(v))}`);
  const line = `cd ${shq(ROOT)} && env -i ${vars.join(" ")} TERM=xterm-256color ${command}; echo EXIT=$?; sleep 600`;
  if (win === "main") tmux("new-session", "-d", "-s", "tty", "-n", win, "-x", "120", "-y", "40", line);
  else tmux("new-window", "-d", "-t", "tty", "-n", win, line);
}

async function until<T>(
  what: string,
  win: string,
  probe: (text: string) => T | undefined,
  ms = 300_000,
): Promise<T> {
  const end = Date.now() + ms;
  let text = "";
  while (Date.now() < end) {
    text = screen(win);
    const got = probe(text);
    if (got !== undefined) return got;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${what}: not on window ${win} within ${ms} ms; it shows:\n${text}`);
}

/** The agent tree of a drawn frame: the lines between "agents" and "inference". */
function tree(text: string): string[] | undefined {
  const lines = text.split("\n");
  const from = lines.indexOf("agents");
  const to = lines.findIndex((l) => l.startsWith("inference"));
  return from >= 0 && to > from ? lines.slice(from + 1, to).filter((l) => l.trim() !== "") : undefined;
}

describe("run-aido.sh in a terminal", () => {
  let server: ProviderServer;
  let home: string;
  let work: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    requireDocker();
    requireTmux();
    server = await startProviderServer({ apiKeys: { anthropic: "sk-ant-tty-dummy" } });
    home = mkdtempSync(join(tmpdir(), "aido-tty-home-"));
    work = mkdtempSync(join(tmpdir(), "aido-tty-work-"));
    socket = join(work, "tmux.sock");
    env = {
      AIDO_HOME: home,
      AIDO_DAEMON_CONTAINER: `watch-tty-agentd-${process.pid}`,
      ANTHROPIC_API_KEY: "sk-ant-tty-dummy",
      ANTHROPIC_BASE_URL: server.url,
      AIDO_MODEL: "anthropic/claude-test",
    };
    for (const k of [
      "PATH",
      "HOME",
      "USER",
      "LANG",
      "TMPDIR",
      "DOCKER_HOST",
      "AIDO_DAEMON_IMAGE",
      "AIDO_OFFLINE",
    ])
      if (process.env[k] !== undefined) env[k] = process.env[k];
  });

  afterAll(async () => {
    spawnSync("tmux", ["-S", socket, "kill-server"]);
    spawnSync("bash", [SCRIPT, "stop"], { env, cwd: work, timeout: 120_000 });
    await server.close();
    rmSync(home, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("draws the live agent tree as on the host, and answers an approval by keystrokes", async () => {
    server.script('manifest "asker"', [
      turn.toolUse("file_write", { path: "/output/tty.md", content: "approved\n" }),
      turn.text("Wrote /output/tty.md."),
    ]);
    const manifest = join(work, "asks.yaml");
    writeFileSync(
      manifest,
      JSON.stringify({
        name: "asker",
        model: "anthropic/claude-test",
        system_prompt: "You write one file, with a human's approval.",
        capabilities: ["tool: file_write", "file_write: /output/**"],
        approval_required: ["file_write"],
      }),
    );
    // The goal, from set-up to its end, followed in the terminal it was started from.
    open("main", `bash ${shq(SCRIPT)} ${shq("TTY GOAL: write tty.md")} --manifest ${shq(manifest)}`, env);
    const goalId = await until(
      "the goal's id",
      "main",
      (t) => /goal (g_\S+) submitted/.exec(t)?.[1],
      1_200_000,
    );
    await until("the live view of the submitted goal", "main", (t) =>
      t.includes(`aido watch — goal ${goalId}`) && t.includes("approvals waiting (1)") ? true : undefined,
    );

    // The same goal watched through run-aido.sh (in the container) and on the host.
    open("inside", `bash ${shq(SCRIPT)} watch ${goalId}`, env);
    open("host", `node ${shq(join(ROOT, "dist/cli/main.js"))} watch ${goalId}`, env);
    // Both are seeded from goal.status and agent.list, so they draw the tree the same way.
    const drawn = (t: string) => (t.includes("● asker") ? tree(t) : undefined);
    const inside = await until("the agent tree in the container's watch", "inside", drawn, 60_000);
    const host = await until("the agent tree in the host's watch", "host", drawn, 60_000);
    expect(inside).toEqual(host);
    expect(inside[0]).toMatch(/^ {2}● asker {2}a_\S+ {2}running {2}tokens/);
    expect(screen("inside")).toContain(`aido watch — goal ${goalId}  running`);

    // The approval, answered at its prompt inside the container.
    open("approvals", `bash ${shq(SCRIPT)} approvals`, env);
    await until(
      "the approval prompt",
      "approvals",
      (t) => (t.includes("Allow [o]nce") ? true : undefined),
      60_000,
    );
    expect(screen("approvals")).toContain("file_write");
    tmux("send-keys", "-t", "tty:approvals", "o", "Enter");
    await until("the answered prompt", "approvals", (t) => (t.includes("EXIT=0") ? true : undefined), 60_000);

    // The goal went on: every view ends with its success.
    for (const win of ["main", "inside", "host"]) {
      const end = await until(`the goal's end on ${win}`, win, (t) => /EXIT=(\d+)/.exec(t)?.[1], 120_000);
      expect(end, screen(win)).toBe("0");
      expect(screen(win)).toContain(`goal ${goalId} succeeded`);
    }
    expect(screen("inside")).toMatch(/✓ asker {2}a_\S+ {2}stopped/);
  }, 1_500_000);
});
