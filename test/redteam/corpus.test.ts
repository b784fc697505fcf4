// Red team: the adversarial exec corpus (corpus/*.ts), run against the real executor in the
// real image, through the gate of a real Runtime (real SQLite audit, real tokens, the
// operator's rules: deny `path: /workspace/vault/**`, confirm `git push *`). All agents
// share one container. For every entry:
//   - refused: the gate refused at the expected stage with the expected reason, audited
//     tool.denied with that stage, and (at the end) no canary exists: nothing ran;
//   - allowed: the verdict (the programs the analysis the policy judged lists) is the one
//     expected, and the command ran under `strace -f -e trace=execve`: every program that
//     successfully execve'd (after the executor's own /bin/sh) is among those programs.
//     It runs in the caller's Landlock domain like any exec (strace inside it, tracing
//     its own children), so the trace goes to the caller's private tmp folder.
// The exec tool runs unchanged; only the goal's sandbox handle is wrapped so that its
// exec() starts the command under strace (the image carries strace for this suite).

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import type { ToolDef } from "../../src/gate/types.js";
import { Runtime } from "../../src/kernel/runtime.js";
import type { SandboxBackend } from "../../src/sandbox/backend.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import type { ExecRequest, SandboxHandle } from "../../src/sandbox/types.js";
import { basename, type CommandAnalysis } from "../../src/security/shell.js";
import { builtinTools } from "../../src/tools/registry.js";
import { providerEnv } from "../agent/harness.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { type Case, FILES, PROFILES, type Profile, SETUP } from "./corpus/case.js";
import { PROGRAM_CASES } from "./corpus/cases-programs.js";
import { SHELL_CASES } from "./corpus/cases-shell.js";

const CASES: Case[] = [...SHELL_CASES, ...PROGRAM_CASES];
const SHARED_GOAL = "corpus";

let server: ProviderServer;
let home: TempHome;
let rt: Runtime;
let inner: SandboxHandle;
const agents = new Map<Profile, string>();
/** The analysis the policy judged, by the command string of the call. */
const judged = new Map<string, CommandAnalysis>();
let traces = 0;
let lastTrace: string | undefined;

/** Every goal's sandbox is the one shared container, with exec() run under strace. */
function tracingBackend(docker: DockerBackend): SandboxBackend {
  const traced = (h: SandboxHandle): SandboxHandle =>
    new Proxy(h, {
      get(target, prop, receiver) {
        if (prop !== "exec") return Reflect.get(target, prop, receiver);
        return (req: ExecRequest) => {
          if (req.command === undefined) return target.exec(req);
          // Inside the caller's Landlock domain only its private tmp is writable.
          const tmp = typeof req.confinement === "object" ? req.confinement.tmp : "/tmp";
          lastTrace = `${tmp}/.corpus-trace-${++traces}`;
          const { command, ...rest } = req;
          const argv = ["strace", "-f", "-qq", "-s", "256", "-e", "trace=execve", "-e", "signal=none"];
          return target.exec({ ...rest, argv: [...argv, "-o", lastTrace, "/bin/sh", "-c", command] });
        };
      },
    });
  return {
    acquire: async (_goalId, opts) => traced(await docker.acquire(SHARED_GOAL, opts)),
    stop: async () => {},
    remove: async () => {},
    pause: async () => "unsupported",
    unpause: async () => {},
    startMcpServer: (spec) => docker.startMcpServer(spec),
    reattach: () => docker.reattach(),
    // The shared goal is no goal of the runtime's: the sweep (one a minute) took it for an
    // orphan and removed its container when the corpus ran longer than that.
    gc: (opts) => docker.gc({ ...opts, isGoalLive: (g) => g === SHARED_GOAL || opts.isGoalLive(g) }),
    close: () => docker.close(),
  };
}

/** The exec tool as it is, remembering the analysis it hands the policy. */
function spyingTools(deps: Parameters<typeof builtinTools>[0]): ToolDef<unknown>[] {
  return builtinTools(deps).map((t) => {
    if (t.name !== "exec" || !t.policyCommand) return t;
    const policyCommand = t.policyCommand.bind(t);
    return {
      ...t,
      policyCommand: (input: unknown) => {
        const a = policyCommand(input);
        if (a) judged.set((input as { command: string }).command, a);
        return a;
      },
    };
  });
}

/** The programs a verdict lists: every command's name, the wrappers it runs through, the helpers. */
function programsOf(a: CommandAnalysis): Set<string> {
  const out = new Set(a.helpers);
  for (const c of a.commands) {
    for (const w of c.wrappers) out.add(w);
    if (!c.dynamic) out.add(basename(c.argv[0]!));
  }
  return out;
}

/** Programs that successfully execve'd, by name, after the first (the executor's /bin/sh). */
function tracedPrograms(trace: string): string[] {
  const ran: string[] = [];
  const pending = new Map<string, string>();
  for (const line of trace.split("\n")) {
    const m = /^(\d+)\s+execve\("([^"]*)"/.exec(line);
    const pid = /^(\d+)/.exec(line)?.[1];
    if (m) {
      if (/ = 0$/.test(line)) ran.push(m[2]!);
      else if (line.includes("<unfinished")) pending.set(m[1]!, m[2]!);
    } else if (pid && line.includes("<... execve resumed>") && / = 0$/.test(line)) {
      const path = pending.get(pid);
      if (path) ran.push(path);
    }
  }
  return ran.slice(1).map((p) => basename(p));
}

const canaryOf = (c: Case, n: number) => c.canary ?? `/workspace/pwn-${n}`;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  home = makeTempHome(providerEnv(server));
  home.config.policy.deny.push("path: /workspace/vault/**");
  home.config.policy.confirm.push("git push *");
  home.config.policy.snapshotBeforeMutation = false;
  home.config.approvals.timeoutMs = 1_000;
  const docker = new DockerBackend(home.config);
  rt = await Runtime.open(home.config, { backend: tracingBackend(docker), builtinTools: spyingTools });
  for (const [profile, grants] of Object.entries(PROFILES) as [Profile, readonly string[]][]) {
    const s = rt.spawnAgent({
      name: `corpus-${profile}`,
      system_prompt: `corpus agent ${profile}`,
      capabilities: [...grants],
      budget: { max_tokens: 100_000 },
    });
    agents.set(profile, s.agent_id);
  }
  inner = await docker.acquire(SHARED_GOAL);
  for (const [path, content] of Object.entries(FILES)) {
    await inner.exec({
      argv: ["mkdir", "-p", path.slice(0, path.lastIndexOf("/"))],
      confinement: "unconfined",
    });
    await inner.writeFile(path, content);
  }
  const setup = await inner.exec({ argv: ["sh", "-c", SETUP], confinement: "unconfined" });
  expect(setup.exitCode, setup.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await rt?.close();
  await server?.close();
  home?.cleanup();
});

/** Run one entry; returns what went wrong, or undefined. */
async function run(c: Case, n: number): Promise<string | undefined> {
  const command = c.command.replaceAll("PWN", canaryOf(c, n));
  const agentId = agents.get(c.as)!;
  const label = `#${n} [${c.technique}] as ${c.as}: ${JSON.stringify(command.slice(0, 120))}`;
  lastTrace = undefined;
  let result: unknown;
  try {
    result = await rt.invokeTool(agentId, "exec", {
      command,
      timeout_ms: 20_000,
      ...(c.cwd ? { cwd: c.cwd } : {}),
    });
  } catch (e) {
    if (!(e instanceof AidoError)) throw e;
    result = e;
  }
  if ("refuse" in c.expect) {
    if (!(result instanceof AidoError))
      return `${label}: expected a refusal, it ran: ${JSON.stringify(result).slice(0, 300)}`;
    const stage = result.details.stage;
    if (stage !== c.expect.refuse)
      return `${label}: refused at stage ${stage}, expected ${c.expect.refuse}: ${result.message}`;
    if (!c.expect.why.test(result.message))
      return `${label}: refused for "${result.message}", expected ${c.expect.why}`;
    const denied = rt.audit.query({ agent_id: agentId, kind: "tool.denied", limit: 1 })[0];
    const payload = denied?.payload as { stage?: string; reason?: string } | undefined;
    if (payload?.stage !== c.expect.refuse || payload.reason !== result.message) {
      return `${label}: the refusal was not audited as tool.denied at stage ${c.expect.refuse}`;
    }
    if (lastTrace !== undefined) return `${label}: refused, but the sandbox ran a command`;
    return undefined;
  }
  if (result instanceof AidoError) return `${label}: expected to run, refused: ${result.message}`;
  const analysis = judged.get(command);
  if (!analysis) return `${label}: no analysis was judged for it`;
  const verdict = programsOf(analysis);
  const expected = new Set(c.expect.allow);
  if ([...verdict].sort().join(",") !== [...expected].sort().join(",")) {
    return `${label}: the verdict lists [${[...verdict].join(", ")}], the corpus expects [${[...expected].join(", ")}]`;
  }
  if (!lastTrace) return `${label}: ran without a trace`;
  const trace = await inner.readFile(lastTrace, { maxBytes: 1 << 20 });
  const stray = tracedPrograms(trace.content).filter((p) => !verdict.has(p));
  if (stray.length > 0)
    return `${label}: ran programs the verdict did not list: ${stray.join(", ")}\n${trace.content}`;
  return undefined;
}

describe("the adversarial exec corpus", () => {
  it("holds at least 150 entries, grouped by technique, each with its verdict", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(150);
    expect(new Set(CASES.map((c) => c.technique)).size).toBeGreaterThanOrEqual(16);
    expect(CASES.filter((c) => "allow" in c.expect).length).toBeGreaterThanOrEqual(40);
  });

  const techniques = [...new Set(CASES.map((c) => c.technique))];
  for (const technique of techniques) {
    it(`${technique}: refused before running, or runs only what the verdict lists`, async () => {
      const failures: string[] = [];
      for (const [n, c] of CASES.entries()) {
        if (c.technique !== technique) continue;
        const failure = await run(c, n);
        if (failure) failures.push(failure);
      }
      expect(failures).toEqual([]);
    }, 180_000);
  }

  it("left no canary, and the secret and the vault as they were", () => {
    const workspace = join(home.config.goalsDir, SHARED_GOAL, "workspace");
    const canaries = readdirSync(workspace).filter((f) => /^pwn-|^f$/.test(f));
    expect(canaries).toEqual([]);
    expect(readdirSync(join(workspace, "secret")).sort()).toEqual(["k.txt", "pub"]);
    expect(readFileSync(join(workspace, "secret", "k.txt"), "utf8")).toBe(FILES["/workspace/secret/k.txt"]);
    expect(readdirSync(join(workspace, "vault"))).toEqual(["x.txt"]);
    expect(rt.audit.verify().ok).toBe(true);
  });
});
