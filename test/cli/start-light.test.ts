// `aido --help`, `aido status`, `aido goals` and `aido approvals` answer at once because
// they load only the command table, the socket client and the output formatting: the
// kernel, the model SDKs, sqlite and Docker's client load only for the commands that use
// them (cli/commands/index.ts). Each command runs as a user runs it, as its own node
// process (src/cli/main.ts through tsx), against a real agentd on its socket, with a
// module hook listing every module the process loaded. Times are in the bench
// (`npm run bench -- cli-start`), not here.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { commands } from "../../src/cli/commands/index.js";
import { runCli } from "../../src/cli/main.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { captureIo } from "./io.js";

const suite = useDaemonPerTest();
const ROOT = join(import.meta.dirname, "..", "..");
const logs = mkdtempSync(join(tmpdir(), "aido-cli-fast-modules-"));
afterAll(() => rmSync(logs, { recursive: true, force: true }));

/** What a light command must never load, by the URL fragment that gives it away. */
const HEAVY: Record<string, RegExp> = {
  "better-sqlite3": /\/node_modules\/better-sqlite3\//,
  dockerode: /\/node_modules\/dockerode\//,
  "@anthropic-ai/sdk": /\/node_modules\/@anthropic-ai\/sdk\//,
  openai: /\/node_modules\/openai\//,
  "the kernel": /\/src\/kernel\//,
  "the daemon": /\/src\/daemon\//,
  "the config's parsers (yaml, zod)": /\/node_modules\/(yaml|zod)\//,
};

let runs = 0;
/** Run `aido ARGS` as its own process; the modules it loaded and its exit code. */
function aido(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number; modules: string[] }> {
  const log = join(logs, `run-${++runs}.log`);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--import", "./test/support/module-log.mjs", "src/cli/main.ts", ...args],
      {
        cwd: ROOT,
        env: { ...process.env, ...env, AIDO_TEST_MODULE_LOG: log },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const modules = readFileSync(log, "utf8").split("\n").filter(Boolean);
      if (code === null) reject(new Error(`aido ${args.join(" ")} was killed: ${stderr}`));
      else resolve({ code, modules });
    });
  });
}

function heavyIn(modules: string[]): string[] {
  return Object.entries(HEAVY)
    .filter(([, re]) => modules.some((m) => re.test(m)))
    .map(([name]) => name);
}

describe("a light command's start-up", () => {
  it("aido --help, status, goals and approvals load none of the kernel, SDKs, sqlite, Docker or config parsers", async () => {
    const fx = await suite.start();
    suite.server.script('manifest "quick"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "say done", manifest: manifest("quick") });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
    for (const args of [["--help"], ["status", goal_id], ["goals"], ["approvals"]]) {
      const r = await aido(args, fx.home.env);
      expect({ args, code: r.code }).toEqual({ args, code: 0 });
      // The run did go through the command's module and the socket client.
      if (args[0] !== "--help") expect(r.modules.some((m) => m.endsWith("/src/client/client.ts"))).toBe(true);
      expect({ args, heavy: heavyIn(r.modules) }).toEqual({ args, heavy: [] });
    }
  }, 60_000);

  it("the module log does see the heavy world when a command needs it (aido daemon status)", async () => {
    const fx = await suite.start();
    const r = await aido(["daemon", "status"], fx.home.env);
    expect(r.code).toBe(0);
    expect(heavyIn(r.modules)).toEqual(expect.arrayContaining(["the kernel", "the daemon"]));
  }, 60_000);
});

describe("a daemon client and config.yaml", () => {
  it("exits 2 naming a broken config when no daemon answers, and asks a running daemon without reading it", async () => {
    const fx = await suite.start();
    writeFileSync(join(fx.home.dir, "config.yaml"), 'policy:\n  confirm: ["tool: file_wirte"]\n');
    const up = captureIo();
    expect(await runCli(["goals"], up.io, fx.home.env)).toBe(0);
    expect(up.text()).toBe("(no goals)");
    await fx.daemon.close();
    const down = captureIo();
    expect(await runCli(["goals"], down.io, fx.home.env)).toBe(2);
    expect(down.err.join("\n")).toContain('policy.confirm.0: unknown tool "file_wirte"');
  });
});

describe("the command table", () => {
  it("aido --help lists every command, and each command's module carries the table's texts", async () => {
    const c = captureIo();
    expect(await runCli(["--help"], c.io, {})).toBe(0);
    for (const entry of commands) {
      expect(c.text()).toContain(`  ${entry.name} `);
      const cmd = await entry.load();
      expect({ name: cmd.name, summary: cmd.summary, usage: cmd.usage, example: cmd.example }).toEqual({
        name: entry.name,
        summary: entry.summary,
        usage: entry.usage,
        example: entry.example,
      });
      const h = captureIo();
      expect(await runCli([...entry.name.split(" "), "--help"], h.io, {})).toBe(0);
      expect(h.text()).toBe(`${entry.summary}\n\nusage: ${entry.usage}\n\nexample:\n  ${entry.example}`);
    }
    expect(new Set(commands.map((e) => e.name)).size).toBe(commands.length);
  });
});
