// tool.invoke against the real sandbox (Docker): a socket client acting for an agent goes
// through the same gate as the agent's own calls — grants, policy, approval — and the
// tool runs in the agent's container. Denied calls have no side effect.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { requireDocker } from "../support/docker.js";
import { type DaemonFixture, manifest, rpcError, useDaemonPerTest } from "./fixture.js";

const goals: string[] = [];

beforeAll(() => requireDocker());
const suite = useDaemonPerTest({
  beforeClose: async (fx) => {
    for (const g of goals.splice(0)) await fx?.daemon.runtime.backend.remove(g).catch(() => {});
  },
});

const worker = (extra: Record<string, unknown> = {}) =>
  manifest("worker", {
    capabilities: [
      "tool: file_write",
      "tool: file_read",
      "tool: exec",
      "file_write: /workspace/**",
      "file_read: /workspace/**",
      "exec: ls *",
      "exec: echo *",
      "exec: sh *",
    ],
    ...extra,
  });

async function spawnWorker(c: AidoClient, extra: Record<string, unknown> = {}) {
  const a = await c.call("agent.spawn", { manifest: worker(extra) });
  goals.push(a.goal_id);
  return a;
}

const hostPath = (f: DaemonFixture, goalId: string, dir: string, file: string) =>
  join(f.home.config.goalsDir, goalId, dir, file);

describe("tool.invoke in the sandbox", () => {
  it("writes, reads and runs commands in the agent's container", async () => {
    const fx = await suite.start({ runtime: { backend: undefined, builtinTools: daemonBuiltinTools } });
    const c = await fx.client();
    const a = await spawnWorker(c);
    const w = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "file_write",
      input: { path: "/workspace/note.txt", content: "from the socket\n" },
    });
    expect(w.is_error).toBe(false);
    expect(readFileSync(hostPath(fx, a.goal_id, "workspace", "note.txt"), "utf8")).toBe("from the socket\n");
    const r = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "file_read",
      input: { path: "/workspace/note.txt" },
    });
    expect(r.output).toContain("from the socket");
    const ls = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "exec",
      input: { command: "ls /workspace" },
    });
    expect(ls.output).toContain("note.txt");
  });

  it("refuses a write outside the agent's grants with -32001 and creates nothing", async () => {
    const fx = await suite.start({ runtime: { backend: undefined, builtinTools: daemonBuiltinTools } });
    const c = await fx.client();
    const a = await spawnWorker(c);
    const e = await rpcError(
      c.call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "file_write",
        input: { path: "/output/x.md", content: "no" },
      }),
    );
    expect(e.rpcCode).toBe(-32001);
    expect(existsSync(hostPath(fx, a.goal_id, "output", "x.md"))).toBe(false);
    const traversal = await rpcError(
      c.call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "file_write",
        input: { path: "/workspace/../output/y.md", content: "no" },
      }),
    );
    expect(traversal.rpcCode).toBe(-32001);
    expect(existsSync(hostPath(fx, a.goal_id, "output", "y.md"))).toBe(false);
  });

  it("refuses a granted command the policy forbids with -32004", async () => {
    const fx = await suite.start({ runtime: { backend: undefined, builtinTools: daemonBuiltinTools } });
    const c = await fx.client();
    const a = await spawnWorker(c);
    const e = await rpcError(
      c.call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "exec",
        input: { command: "echo 'touch /workspace/p' | sh" },
      }),
    );
    expect(e.rpcCode).toBe(-32004);
    expect(e.code).toBe("policy_denied");
    expect(existsSync(hostPath(fx, a.goal_id, "workspace", "p"))).toBe(false);
  });

  it("holds a write that needs approval, writes nothing until a second client allows it", async () => {
    const fx = await suite.start({ runtime: { backend: undefined, builtinTools: daemonBuiltinTools } });
    const caller = await fx.client();
    const human = await fx.client();
    const a = await spawnWorker(caller, { approval_required: ["file_write"] });
    const target = hostPath(fx, a.goal_id, "workspace", "approved.txt");
    const call = caller.call(
      "tool.invoke",
      {
        agent_id: a.agent_id,
        tool: "file_write",
        input: { path: "/workspace/approved.txt", content: "yes" },
      },
      { timeoutMs: 60_000 },
    );
    let pending = (await human.call("approval.list", {})).approvals;
    for (let i = 0; pending.length === 0 && i < 500; i++) {
      await new Promise((r) => setTimeout(r, 20));
      pending = (await human.call("approval.list", {})).approvals;
    }
    expect(pending[0]).toMatchObject({ tool: "file_write", agent_id: a.agent_id });
    expect(existsSync(target)).toBe(false);
    await human.call("approval.respond", { id: pending[0]!.id, decision: "allow_once" });
    expect((await call).is_error).toBe(false);
    expect(readFileSync(target, "utf8")).toBe("yes");
  });
});
