// Issue 10: a command wrote forged frames and a header announcing 2 GiB into the executor's
// stdout; the daemon accepted the forgeries as other agents' answers and spent ~20 s of CPU
// on quadratic buffering while every client waited. Now, through the daemon socket with
// `sandbox.landlock: off` (no Landlock domain in the way): the abusive command cannot even
// open the executor's fd 1 (the executor is non-dumpable); and when root on the host writes
// the flood in anyway, only that goal's executor session dies, its pending call fails
// clearly, another client's calls keep being answered promptly, and the goal's next call
// gets a fresh executor.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import type { DockerBackend } from "../../src/sandbox/docker.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { hostPidOfExecutor, requireDocker, writeIntoStdout } from "../support/docker.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { type DaemonFixture, manifest, rpcError, startFixture } from "./fixture.js";

let server: ProviderServer;
let fx: DaemonFixture;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  fx = await startFixture(server, {
    runtime: { backend: undefined, builtinTools: daemonBuiltinTools },
    config: (c) => {
      c.sandbox.landlock = "off";
    },
  });
}, 180_000);
afterAll(async () => {
  await fx?.close();
  await server?.close();
});

const agent = (name: string) =>
  manifest(name, {
    capabilities: ["tool: exec", "file_read: /workspace/**", "exec: python3 *", "exec: echo *"],
  });

async function spawn(c: AidoClient, name: string): Promise<{ agent_id: string; goal_id: string }> {
  return c.call("agent.spawn", { manifest: agent(name) });
}

const exec = (c: AidoClient, agentId: string, command: string) =>
  c.call("tool.invoke", { agent_id: agentId, tool: "exec", input: { command } });

describe("an executor stream flooded with forged frames", () => {
  it("kills only that session while another client's calls keep being answered", async () => {
    const attacker = await fx.client();
    const bystander = await fx.client();
    const x = await spawn(attacker, "flooded");
    const y = await spawn(bystander, "bystander");
    expect((await exec(bystander, y.agent_id, "echo warm")).output).toContain("warm");
    await exec(attacker, x.agent_id, "echo warm");

    const backend = fx.daemon.runtime.backend as DockerBackend;
    const sandbox = (await backend.acquire(x.goal_id)) as DockerSandbox;
    const pid = sandbox.executorPid;
    // The model's own attempt, with no Landlock domain at all: the fd does not open.
    const own = await exec(
      attacker,
      x.agent_id,
      `python3 -c "open('/proc/${pid}/fd/1', 'wb').write(b'\\x80\\x00\\x00\\x00' + bytes(1 << 20))"`,
    );
    expect(own.output).toMatch(/PermissionError: \[Errno 13\] Permission denied: '\/proc\/\d+\/fd\/1'/);

    // Root on the host writes what the command could not: a forged frame, then 2 GiB announced.
    const pending = rpcError(exec(attacker, x.agent_id, `python3 -c "import time; time.sleep(20)"`));
    await new Promise((r) => setTimeout(r, 300));
    const forged = Buffer.from('{"id":2,"ok":true,"result":{"exitCode":0,"stdout":"forged"}}');
    const head = Buffer.alloc(4);
    head.writeUInt32BE(32 + forged.length, 0);
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(2 ** 31, 0);
    const flood = writeIntoStdout(
      hostPidOfExecutor(backend.containerName(x.goal_id)),
      Buffer.concat([head, Buffer.alloc(32, 1), forged, huge, Buffer.alloc(64 << 20)]),
    );
    // Meanwhile the other client is answered promptly, over and over.
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const r = await exec(bystander, y.agent_id, `echo ping-${i}`);
      latencies.push(performance.now() - t0);
      expect(r.output).toContain(`ping-${i}`);
      await bystander.call("agent.list", {});
    }
    await flood;
    expect(Math.max(...latencies)).toBeLessThan(2000);

    const e = await pending;
    expect(e.message).toMatch(
      /unauthenticated frame: a frame without the session secret; the session was killed/,
    );
    // The goal's next call gets a fresh executor; the forged answer was never a result.
    const next = await exec(attacker, x.agent_id, "echo fresh");
    expect(next.output).toContain("fresh");
    expect(sandbox.executorPid).not.toBe(pid);
    const failed = fx.daemon.runtime.audit.query({ agent_id: x.agent_id, kind: "tool.failed" });
    expect(failed.some((f) => /session was killed/.test((f.payload as { error: string }).error))).toBe(true);
  }, 120_000);

  it("records at start-up that Landlock is off", () => {
    const off = fx.daemon.runtime.audit.query({ kind: "sandbox.landlock_off" });
    expect(off.length).toBeGreaterThan(0);
    expect((off[0]!.payload as { reason: string }).reason).toMatch(/file grants do not bind/);
  });
});
