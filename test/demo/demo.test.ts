// `aido demo` as a newcomer runs it: the CLI as a process, from an empty folder, with no
// provider configured, against the real Docker engine. It replays demo/recording through
// the real runtime, so this suite is what keeps the recording replayable: a change to the
// runtime that breaks it fails here with the divergence message. The recording itself
// must be what scripts/record-demo.ts produces today (recorded again and compared).

import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoScripts } from "../../scripts/demo-turns.js";
import { normaliseRecording, recordDemo } from "../../scripts/record-demo.js";
import { requireDocker } from "../support/docker.js";
import { removeContainersOfHome } from "../support/home.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";

const ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(ROOT, "src", "cli", "main.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function aido(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), MAIN, ...args], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), 120_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** A user's shell: no provider variables at all (what `aido demo` must work with). */
function shellEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { AIDO_HOME: home, ...extra };
  for (const k of ["PATH", "HOME", "LANG", "TMPDIR", "DOCKER_HOST", "AIDO_SANDBOX_IMAGE"])
    if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

interface LogEvent {
  type: string;
  time: string;
  agent_id?: string;
  manifest?: string;
}

const EXPECTED_TABLE = [
  "| Region | Units | Revenue | Best-selling product (revenue) |",
  "|---|---:|---:|---|",
  "| south | 420 | $33,975 | desk ($17,100) |",
  "| west | 685 | $26,100 | lamp ($15,000) |",
  "| north | 488 | $24,190 | desk ($10,440) |",
].join("\n");

describe("aido demo", () => {
  let work: string;
  let home: string;
  let trap: ProviderServer;

  beforeAll(async () => {
    requireDocker();
    work = mkdtempSync(join(tmpdir(), "aido-demo-work-"));
    home = join(work, "home");
    // A provider that would answer if anything called it: the demo must not.
    trap = await startProviderServer();
  });

  afterAll(async () => {
    await trap.close();
    removeContainersOfHome(join(home, "demo"));
    rmSync(work, { recursive: true, force: true });
  });

  it("runs the bundled swarm with no key: parallel children, a denial, an approval, ./output/report.md", async () => {
    const cwd = mkdtempSync(join(work, "user-"));
    // Even with a key and an endpoint in the user's shell, the demo calls no provider.
    const run = await aido(
      ["demo", "--yes"],
      cwd,
      shellEnv(home, { ANTHROPIC_API_KEY: "sk-user-key", ANTHROPIC_BASE_URL: trap.url }),
    );
    const log = `${run.stdout}\n${run.stderr}`;
    expect(run.code, log).toBe(0);
    expect(trap.requests).toHaveLength(0);

    const report = readFileSync(join(cwd, "output", "report.md"), "utf8");
    expect(report).toContain(EXPECTED_TABLE);
    expect(report).toContain("**south** leads with $33,975 of $84,265 in total (40.3%).");

    // The live view showed the denial with its stage and reason, and the approval.
    expect(log).toMatch(/coder ✗ exec DENIED \(capability: no capability grants exec of "curl /);
    expect(log).toContain("approval needed: file_write");
    expect(log).toMatch(/--yes: answered Allow Once to apr_\S+ \(file_write on \/output\/report\.md\)/);
    // The tour says what was denied and approved, and where the audit is.
    expect(run.stdout).toMatch(
      /denied: +exec by coder \(a_\S+\) at the capability stage: no capability grants exec of "curl/,
    );
    expect(run.stdout).toContain("approved:  file_write (path:/output/report.md): allow_once");
    const demoHome = join(home, "demo");
    expect(run.stdout).toContain(`AIDO_HOME=${demoHome} aido audit verify`);

    // The audit, read back through the CLI against the demo's home, holds both and verifies.
    const denied = await aido(["audit", "query", "--kind", "tool.denied", "--json"], cwd, shellEnv(demoHome));
    expect(JSON.parse(denied.stdout)).toEqual([
      expect.objectContaining({
        kind: "tool.denied",
        payload: expect.objectContaining({ tool: "exec", stage: "capability" }),
      }),
    ]);
    const decided = await aido(
      ["audit", "query", "--kind", "approval.decided", "--json"],
      cwd,
      shellEnv(demoHome),
    );
    expect(JSON.parse(decided.stdout)).toEqual([
      expect.objectContaining({
        payload: expect.objectContaining({ decision: "allow_once", tool: "file_write" }),
      }),
    ]);
    const verify = await aido(["audit", "verify"], cwd, shellEnv(demoHome));
    expect(verify.code, verify.stderr).toBe(0);

    // The three children ran at once: each one's life overlaps every other's.
    const events = readFileSync(join(demoHome, "agentd.log"), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as LogEvent);
    const coders = events.filter((e) => e.type === "agent.spawned" && e.manifest === "coder");
    expect(coders).toHaveLength(3);
    const span = (id: string) => {
      const mine = events.filter((e) => e.agent_id === id);
      return { from: Date.parse(mine[0]!.time), to: Date.parse(mine.at(-1)!.time) };
    };
    const spans = coders.map((c) => span(c.agent_id!));
    for (const a of spans) for (const b of spans) expect(a.from).toBeLessThan(b.to);
    // ...and each called a tool before any of them had finished.
    const firstStop = Math.min(...spans.map((s) => s.to));
    for (const c of coders) {
      const called = events.find((e) => e.type === "tool.called" && e.agent_id === c.agent_id);
      expect(Date.parse(called!.time)).toBeLessThan(firstStop);
    }
  }, 180_000);

  it("fails naming the agent and call when the runtime no longer matches the recording, and says how to re-record", async () => {
    const bundle = join(work, "bundle");
    cpSync(join(ROOT, "demo"), bundle, { recursive: true });
    // As if the runtime had offered the south child one more tool when it was recorded.
    const file = join(bundle, "recording", "coder#2", "0002.json");
    const ex = JSON.parse(readFileSync(file, "utf8"));
    ex.request.tools = [...ex.request.tools, "web_fetch"].sort();
    writeFileSync(file, JSON.stringify(ex));
    const cwd = mkdtempSync(join(work, "user-"));
    const run = await aido(["demo", "--yes", "--bundle", bundle], cwd, shellEnv(home));
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toContain(
      'replay: agent "coder#2" call 2 was recorded with tools [exec, file_write, web_fetch] but now offers [exec, file_write]',
    );
    expect(run.stdout).toContain("npx tsx scripts/record-demo.ts");
    expect(existsSync(join(cwd, "output", "report.md"))).toBe(false);
  }, 180_000);

  it("fails when the runtime now uses fewer recorded answers than the recording holds", async () => {
    const bundle = join(work, "bundle-longer");
    cpSync(join(ROOT, "demo"), bundle, { recursive: true });
    // As if the north child had made a fourth call when it was recorded.
    const last = JSON.parse(readFileSync(join(bundle, "recording", "coder", "0003.json"), "utf8"));
    writeFileSync(join(bundle, "recording", "coder", "0004.json"), JSON.stringify({ ...last, call: 4 }));
    const cwd = mkdtempSync(join(work, "user-"));
    const run = await aido(["demo", "--yes", "--bundle", bundle], cwd, shellEnv(home));
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toContain("the run made 14 model call(s) but the recording holds 15");
    expect(run.stdout).toContain("npx tsx scripts/record-demo.ts");
    expect(existsSync(join(cwd, "output"))).toBe(false);
  }, 180_000);

  it("without a terminal or --yes, says how to answer the approval and goes on once it is answered", async () => {
    const cwd = mkdtempSync(join(work, "user-"));
    const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), MAIN, "demo"], {
      cwd,
      env: shellEnv(home),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((done) => child.on("close", done));
    const deadline = Date.now() + 60_000;
    let id: string | undefined;
    while (!id && Date.now() < deadline) {
      id = /approval (apr_\S+) waits for you/.exec(out)?.[1];
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(id, out).toBeDefined();
    const demoHome = join(home, "demo");
    expect(out).toContain(`AIDO_HOME=${demoHome} aido approvals`);
    const respond = await aido(["approvals", "respond", id!, "allow_once"], cwd, shellEnv(demoHome));
    expect(respond.code, respond.stderr).toBe(0);
    expect(await exited, out).toBe(0);
    expect(readFileSync(join(cwd, "output", "report.md"), "utf8")).toContain(EXPECTED_TABLE);
  }, 180_000);

  it("on Ctrl-C cancels the goal and stops its daemon", async () => {
    const cwd = mkdtempSync(join(work, "user-"));
    const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), MAIN, "demo"], {
      cwd,
      env: shellEnv(home),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    for (const s of [child.stdout, child.stderr])
      s.on("data", (d) => {
        out += d;
      });
    const exited = new Promise<number | null>((done) => child.on("close", done));
    const deadline = Date.now() + 60_000;
    while (!out.includes("waits for you") && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    const pid = Number(readFileSync(join(home, "demo", "agentd.pid"), "utf8"));
    child.kill("SIGINT");
    expect(await exited, out).toBe(1);
    expect(out).toMatch(/== what happened \(goal g_\S+ cancelled\)/);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(existsSync(join(home, "demo", "agentd.sock"))).toBe(false);
  }, 180_000);

  it("stops a daemon an earlier run left in the demo home before emptying it", async () => {
    const demoHome = join(home, "demo"); // a demo home since the first test
    const cwd = mkdtempSync(join(work, "user-"));
    const left = await aido(["daemon", "start"], cwd, shellEnv(demoHome));
    expect(left.code, left.stderr).toBe(0);
    const pid = Number(readFileSync(join(demoHome, "agentd.pid"), "utf8"));
    const run = await aido(["demo", "--yes"], cwd, shellEnv(home));
    expect(run.code, run.stderr).toBe(0);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(readFileSync(join(cwd, "output", "report.md"), "utf8")).toContain(EXPECTED_TABLE);
  }, 180_000);

  it("scripts/record-demo.ts records exactly the committed demo/recording", async () => {
    const out = join(work, "recorded");
    const count = await recordDemo({ out, real: false, env: shellEnv(join(work, "unused")) });
    const committed = normaliseRecording(join(ROOT, "demo", "recording"));
    expect(count).toBe(committed.size);
    for (const [name, text] of normaliseRecording(out)) expect(text, name).toBe(committed.get(name));
    // Committed files are normalised already: recording again changes no byte.
    for (const [name, text] of committed)
      expect(readFileSync(join(ROOT, "demo", "recording", name), "utf8"), name).toBe(text);
  }, 180_000);

  it("scripts/record-demo.ts --real records from the provider whose key is set, and refuses without one", async () => {
    // A stand-in for a real provider: the same server, accepting only this key.
    const real = await startProviderServer({ apiKeys: { anthropic: "sk-ant-standin-key" } });
    try {
      for (const s of demoScripts()) real.script(s.match, s.turns);
      const out = join(work, "real");
      const env = shellEnv(join(work, "unused"), {
        ANTHROPIC_API_KEY: "sk-ant-standin-key",
        ANTHROPIC_BASE_URL: real.url,
        AIDO_MODEL: "anthropic/claude-standin",
      });
      expect(await recordDemo({ out, real: true, env })).toBe(
        normaliseRecording(join(ROOT, "demo", "recording")).size,
      );
      expect(real.requests.length).toBe(14);
      const first = JSON.parse(readFileSync(join(out, "bootstrap", "0001.json"), "utf8"));
      expect(first).toMatchObject({ provider: "anthropic", model: "claude-standin" });
      for (const text of normaliseRecording(out).values()) expect(text).not.toContain("sk-ant-standin-key");
      await expect(recordDemo({ out, real: true, env: shellEnv(join(work, "unused")) })).rejects.toThrow(
        /--real needs a provider key/,
      );
    } finally {
      await real.close();
    }
  }, 180_000);
});
