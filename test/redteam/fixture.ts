// test/redteam/fixture.ts — the attacker's bench: a real Runtime (real Docker engine,
// real SQLite, the scripted provider server behind the real SDK clients) and helpers to
// act as a malicious model: spawn an agent (or a child of one) holding chosen grants,
// lay out its /workspace as the container's user would, call tools through the gate
// exactly as a model's tool_use would, and check that a refusal was audited. useBench()
// opens one bench for a test file.

import { chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import type { Env } from "../../src/config.js";
import { AidoError } from "../../src/errors.js";
import type { ToolResult } from "../../src/gate/types.js";
import { Runtime } from "../../src/kernel/runtime.js";
import { parseManifestValue } from "../../src/manifest/load.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import type { ApprovalRecord } from "../../src/security/approvals.js";
import { providerEnv } from "../agent/harness.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";

export interface Bench {
  server: ProviderServer;
  home: TempHome;
  rt: Runtime;
  /** A standalone agent (its own pseudo-goal and container) holding `capabilities`. */
  agent(
    name: string,
    capabilities: string[],
    extra?: Record<string, unknown>,
  ): { id: string; goalId: string };
  /** A child of `parent` in its goal, narrowed to `capabilities` (as spawn_agent would make it). */
  child(
    parent: { id: string; goalId: string },
    name: string,
    capabilities: string[],
  ): { id: string; goalId: string };
  /** Call a tool as the agent; resolves with the result or the AidoError it was refused with. */
  call(agentId: string, tool: string, input: unknown): Promise<ToolResult | AidoError>;
  /**
   * The goal's container, started and ready, and its /workspace on the host with `dirs`
   * made in it, owned by the container's user as if the agents had made them.
   */
  workspace(goalId: string, dirs?: string[]): Promise<BenchWorkspace>;
  close(): Promise<void>;
}

export interface BenchWorkspace {
  /** The host folder of the goal's /workspace. */
  ws: string;
  sandbox: DockerSandbox;
  /** Write a file under /workspace, owned by the container's user; returns its host path. */
  plant(rel: string, content: string, mode?: number): string;
}

/** Most suites attack exec and file tools, not snapshots: they turn snapshots before mutation off. */
export function noSnapshots(c: TempHome["config"]): void {
  c.policy.snapshotBeforeMutation = false;
}

/**
 * One bench for the test file: opened before its first test (a suite's own beforeAll,
 * registered after this, can set up agents on it), closed after its last. The object
 * returned answers once the bench is open.
 */
export function useBench(tune?: (c: TempHome["config"]) => void, env: Env = {}): Bench {
  let bench: Bench | undefined;
  beforeAll(async () => {
    bench = await openBench(env, tune);
  }, 180_000);
  afterAll(async () => {
    await bench?.close();
  });
  const open = (): Bench => {
    if (!bench) throw new Error("the bench opens before the suite's first test");
    return bench;
  };
  return {
    get server() {
      return open().server;
    },
    get home() {
      return open().home;
    },
    get rt() {
      return open().rt;
    },
    agent: (name, capabilities, extra) => open().agent(name, capabilities, extra),
    child: (parent, name, capabilities) => open().child(parent, name, capabilities),
    call: (agentId, tool, input) => open().call(agentId, tool, input),
    workspace: (goalId, dirs) => open().workspace(goalId, dirs),
    close: () => open().close(),
  };
}

export async function openBench(env: Env = {}, tune?: (c: TempHome["config"]) => void): Promise<Bench> {
  requireDocker();
  const server = await startProviderServer();
  const home = makeTempHome(providerEnv(server, env));
  tune?.(home.config);
  const rt = await Runtime.open(home.config);
  return {
    server,
    home,
    rt,
    agent(name, capabilities, extra = {}) {
      const s = rt.spawnAgent({
        name,
        system_prompt: `red team agent ${name}`,
        capabilities,
        budget: { max_tokens: 100_000 },
        ...extra,
      });
      return { id: s.agent_id, goalId: rt.registry.require(s.agent_id).goalId };
    },
    child(parent, name, capabilities) {
      const c = rt.spawner.spawn({
        goalId: parent.goalId,
        manifest: parseManifestValue({ name, system_prompt: "x", capabilities }, "test"),
        parent: rt.registry.require(parent.id),
      });
      return { id: c.id, goalId: c.goalId };
    },
    async call(agentId, tool, input) {
      try {
        return await rt.invokeTool(agentId, tool, input);
      } catch (e) {
        if (e instanceof AidoError) return e;
        throw e;
      }
    },
    async workspace(goalId, dirs = []) {
      const sandbox = (await rt.backend.acquire(goalId)) as DockerSandbox;
      await sandbox.ready();
      const ws = join(home.config.goalsDir, goalId, "workspace");
      const { uid, gid } = statSync(ws);
      for (const d of dirs) {
        mkdirSync(join(ws, d));
        chownSync(join(ws, d), uid, gid);
      }
      const plant = (rel: string, content: string, mode?: number): string => {
        const path = join(ws, rel);
        writeFileSync(path, content, mode === undefined ? {} : { mode });
        chownSync(path, uid, gid);
        return path;
      };
      return { ws, sandbox, plant };
    },
    async close() {
      await rt.close();
      await server.close();
      home.cleanup();
    },
  };
}

/** The call was refused with `code`, and a tool.denied entry for it is in the audit log. */
export function expectDenied(
  b: Bench,
  r: ToolResult | AidoError,
  code: string,
  agentId: string,
  tool: string,
): AidoError {
  expect(r, `expected a refusal, got ${JSON.stringify(r)}`).toBeInstanceOf(AidoError);
  const e = r as AidoError;
  expect(e.code).toBe(code);
  const denied = b.rt.audit.query({ agent_id: agentId, kind: "tool.denied" });
  expect(denied.some((d) => (d.payload as { tool: string }).tool === tool)).toBe(true);
  return e;
}

export function expectOk(r: ToolResult | AidoError): ToolResult {
  if (r instanceof AidoError) throw new Error(`expected success, got ${r.code}: ${r.message}`);
  return r;
}

export type Decision = "allow_once" | "allow_session" | "allow_always" | "deny";

/**
 * The human at the prompt: answers the next request pending on `rt` within `timeoutMs`
 * and returns it; undefined when none appeared.
 */
export async function answerNext(
  rt: Runtime,
  decision: Decision,
  timeoutMs = 7_500,
): Promise<ApprovalRecord | undefined> {
  for (let waited = 0; waited < timeoutMs; waited += 25) {
    const [p] = rt.approvals.list({ status: "pending" });
    if (p) {
      rt.approvals.respond(p.id, decision, "red team human");
      return p;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return undefined;
}
