// Issue 10's file-grant attacks through the daemon socket: a client acting for an agent
// with `tool.invoke` goes through the same gate and runs in the same Landlock domain as the
// agent's own calls (test/redteam/landlock.test.ts runs them through the agent loop).

import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import {
  type Attack,
  BROAD_ATTACKS,
  BROAD_GRANTS,
  DENY_RULE,
  leaked,
  plantWorkspace,
  SPY_FILE_ATTACKS,
  SPY_GRANTS,
  spyExecAttacks,
} from "../redteam/landlock-attacks.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { type DaemonFixture, manifest, rpcError, startFixture } from "./fixture.js";

let server: ProviderServer;
let fx: DaemonFixture;
let c: AidoClient;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  fx = await startFixture(server, {
    runtime: { backend: undefined, builtinTools: daemonBuiltinTools },
    config: (cfg) => {
      cfg.policy.deny.push(DENY_RULE);
    },
  });
  c = await fx.client();
}, 180_000);
afterAll(async () => {
  await fx?.close();
  await server?.close();
});

/** An agent spawned over the socket, its workspace planted, its executor started. */
async function prepared(name: string, grants: string[]): Promise<{ agent_id: string; pid: number }> {
  const a: { agent_id: string; goal_id: string } = await c.call("agent.spawn", {
    manifest: manifest(name, { capabilities: grants }),
  });
  const sandbox = (await fx.daemon.runtime.backend.acquire(a.goal_id)) as DockerSandbox;
  await sandbox.ready();
  plantWorkspace(join(fx.home.config.goalsDir, a.goal_id, "workspace"));
  return { agent_id: a.agent_id, pid: sandbox.executorPid };
}

async function invokeAll(agentId: string, attacks: Attack[]): Promise<void> {
  for (const a of attacks) {
    const r: { output: string } = await c.call("tool.invoke", {
      agent_id: agentId,
      tool: a.tool,
      input: a.input,
    });
    expect(r.output, a.what).toMatch(a.shows);
    expect(leaked(a, r.output), a.what).toBeUndefined();
  }
}

describe("tool.invoke in the agent's Landlock domain", () => {
  it("stops the narrow agent's interpreters, links, /proc, ptrace, signals and grep", async () => {
    const spy = await prepared("spy", SPY_GRANTS);
    await invokeAll(spy.agent_id, [...spyExecAttacks(spy.pid), ...SPY_FILE_ATTACKS]);
    const e = await rpcError(
      c.call("tool.invoke", {
        agent_id: spy.agent_id,
        tool: "file_read_many",
        input: { paths: ["/workspace/public/p.txt", "/workspace/secret/k.txt"] },
      }),
    );
    expect(e.rpcCode).toBe(-32001);
  });

  it("holds the operator's deny rule against python3, grep, file_list and file_read_many", async () => {
    const broad = await prepared("broad", BROAD_GRANTS);
    await invokeAll(broad.agent_id, BROAD_ATTACKS);
    const e = await rpcError(
      c.call("tool.invoke", {
        agent_id: broad.agent_id,
        tool: "file_read_many",
        input: { paths: ["/workspace/public/p.txt", "/workspace/secrets/s.txt"] },
      }),
    );
    expect(e.rpcCode).toBe(-32004);
    expect(e.message).toContain(DENY_RULE);
  });
});
