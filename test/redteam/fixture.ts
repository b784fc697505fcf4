// test/redteam/fixture.ts — the attacker's bench: a real Runtime (real Docker engine,
// real SQLite, the scripted provider server behind the real SDK clients) and helpers to
// act as a malicious model: spawn an agent holding chosen grants, call tools through the
// gate exactly as a model's tool_use would, and check that a refusal was audited.

import { expect } from "vitest";
import type { Env } from "../../src/config.js";
import { AidoError } from "../../src/errors.js";
import type { ToolResult } from "../../src/gate/types.js";
import { Runtime } from "../../src/kernel/runtime.js";
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
  /** Call a tool as the agent; resolves with the result or the AidoError it was refused with. */
  call(agentId: string, tool: string, input: unknown): Promise<ToolResult | AidoError>;
  close(): Promise<void>;
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
    async call(agentId, tool, input) {
      try {
        return await rt.invokeTool(agentId, tool, input);
      } catch (e) {
        if (e instanceof AidoError) return e;
        throw e;
      }
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
