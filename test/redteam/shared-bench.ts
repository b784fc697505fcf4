// test/redteam/shared-bench.ts — a red-team bench whose agents all work in one container,
// like the corpus (corpus.test.ts): a real Runtime over a real DockerBackend, the real gate,
// tokens and SQLite audit, each exec run in its caller's Landlock domain. Every goal's
// sandbox is the one shared container, so fixtures (files, git repositories, a folder full of
// option-named files) are set up once by unconfined commands (uid 1000), and each attack is
// checked by a canary file it must not have made.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { AidoError } from "../../src/errors.js";
import type { ToolResult } from "../../src/gate/types.js";
import { Runtime } from "../../src/kernel/runtime.js";
import type { SandboxBackend } from "../../src/sandbox/backend.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import type { SandboxHandle } from "../../src/sandbox/types.js";
import { providerEnv } from "../agent/harness.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";

const SHARED_GOAL = "redteam-shared";

export interface SharedBench {
  rt: Runtime;
  home: TempHome;
  /** The shared container, unconfined: for fixtures and for looking at what an attack left. */
  inner: SandboxHandle;
  /** Agent ids by profile name. */
  agents: Map<string, string>;
  /** Call exec as the agent of `profile`; the result, or the AidoError it was refused with. */
  exec(profile: string, command: string): Promise<ToolResult | AidoError>;
  /** A file or folder in the shared /workspace exists (seen from the host). */
  exists(path: string): boolean;
  close(): Promise<void>;
}

function sharedBackend(docker: DockerBackend): SandboxBackend {
  return {
    acquire: (_goalId, opts) => docker.acquire(SHARED_GOAL, opts),
    stop: async () => {},
    remove: async () => {},
    pause: async () => "unsupported",
    unpause: async () => {},
    startMcpServer: (spec) => docker.startMcpServer(spec),
    reattach: () => docker.reattach(),
    // The shared goal is no goal of the runtime's: without this a sweep (one a minute) took it
    // for an orphan and removed its container under a test file that ran longer than that.
    gc: (opts) => docker.gc({ ...opts, isGoalLive: (g) => g === SHARED_GOAL || opts.isGoalLive(g) }),
    close: () => docker.close(),
  };
}

export async function openSharedBench(opts: {
  profiles: Record<string, readonly string[]>;
  files: Record<string, string>;
  /** sh code run unconfined after the files are written. */
  setup: string;
  deny?: string[];
  confirm?: string[];
  /** How long a confirm waits for a human (default 1 s: nobody answers). */
  approvalTimeoutMs?: number;
  /** The operator's `sandbox.landlock` (default on). */
  landlock?: "on" | "off";
}): Promise<SharedBench> {
  requireDocker();
  const server: ProviderServer = await startProviderServer();
  const home = makeTempHome(providerEnv(server));
  home.config.policy.deny.push(...(opts.deny ?? []));
  home.config.policy.confirm.push(...(opts.confirm ?? []));
  home.config.policy.snapshotBeforeMutation = false;
  if (opts.landlock) home.config.sandbox.landlock = opts.landlock;
  // Unless a test answers, nobody does: the call is refused at the approval stage after a second.
  home.config.approvals.timeoutMs = opts.approvalTimeoutMs ?? 1_000;
  const docker = new DockerBackend(home.config);
  const rt = await Runtime.open(home.config, { backend: sharedBackend(docker) });
  const agents = new Map<string, string>();
  for (const [name, grants] of Object.entries(opts.profiles)) {
    const s = rt.spawnAgent({
      name: `rt-${name}`,
      system_prompt: `red team agent ${name}`,
      capabilities: [...grants],
      budget: { max_tokens: 100_000 },
    });
    agents.set(name, s.agent_id);
  }
  const inner = await docker.acquire(SHARED_GOAL);
  for (const [path, content] of Object.entries(opts.files)) {
    await inner.exec({
      argv: ["mkdir", "-p", path.slice(0, path.lastIndexOf("/"))],
      confinement: "unconfined",
    });
    await inner.writeFile(path, content);
  }
  const setup = await inner.exec({ argv: ["sh", "-c", opts.setup], confinement: "unconfined" });
  expect(setup.exitCode, setup.stderr).toBe(0);
  const workspace = join(home.config.goalsDir, SHARED_GOAL, "workspace");
  return {
    rt,
    home,
    inner,
    agents,
    async exec(profile, command) {
      try {
        return await rt.invokeTool(agents.get(profile)!, "exec", { command, timeout_ms: 20_000 });
      } catch (e) {
        if (e instanceof AidoError) return e;
        throw e;
      }
    },
    exists: (path) => existsSync(join(workspace, path.replace(/^\/workspace\/?/, ""))),
    async close() {
      await rt.close();
      await server.close();
      home.cleanup();
    },
  };
}

/** The call was refused before anything ran (at `stage`, for a reason matching `why`), and audited so. */
export function expectRefused(
  b: SharedBench,
  profile: string,
  r: ToolResult | AidoError,
  stage: string,
  why: RegExp,
): void {
  expect(r, `expected a refusal, it ran: ${JSON.stringify(r).slice(0, 400)}`).toBeInstanceOf(AidoError);
  const e = r as AidoError;
  expect(e.details.stage, e.message).toBe(stage);
  expect(e.message).toMatch(why);
  const denied = b.rt.audit.query({ agent_id: b.agents.get(profile)!, kind: "tool.denied", limit: 1 })[0];
  expect((denied?.payload as { reason?: string } | undefined)?.reason).toBe(e.message);
}

/** `s` as a regular expression matching it literally. */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The call was refused at the capability stage for writing `file` (a dir-writes attack's verdict). */
export function expectWriteRefused(
  b: SharedBench,
  profile: string,
  r: ToolResult | AidoError,
  file: string,
): void {
  expectRefused(b, profile, r, "capability", new RegExp(`file_write on ${escapeRegExp(file)} \\(`));
}

/**
 * The private-tmp files' agent: it may read /workspace/** and write /workspace/out/** only, and
 * run `programs` (bare or with arguments); its private folder, /tmp/agent-<id>, needs no grant.
 */
export function readAllWriteOut(programs: readonly string[]): string[] {
  return [
    "tool: exec",
    "file_read: /workspace/**",
    "file_write: /workspace/out/**",
    ...programs.flatMap((p) => [`exec: ${p}`, `exec: ${p} *`]),
  ];
}

/**
 * The dir-writes files' agent: it may read /workspace/pub/** and write /workspace/pub/out/**
 * only, and run `programs` (an attack writes into pub, or reads past it, from a form the
 * gate could judge as a read).
 */
export function readPubWriteOut(programs: readonly string[]): Record<"worker", string[]> {
  return {
    worker: [
      "tool: exec",
      "file_read: /workspace",
      "file_read: /workspace/pub/**",
      "file_write: /workspace/pub/out/**",
      ...programs.map((p) => `exec: ${p} *`),
    ],
  };
}
