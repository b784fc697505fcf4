// test/daemon/plans-fixture.ts — what the plan suites share: a daemon per test on the real
// Docker sandbox, an agent whose containers are removed after each test, and the readers
// the tests judge by (a host folder's tree with content digests, the agent's audit entries).

import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { requireDocker } from "../support/docker.js";
import { type DaemonFixture, type DaemonPerTest, manifest, useDaemonPerTest } from "./fixture.js";

/** A daemon whose goals run in real containers. */
export const docker = { runtime: { backend: undefined, builtinTools: daemonBuiltinTools } };

/** The agent the plans run as: files in /workspace, a few commands. */
export const planner = (extra: Record<string, unknown> = {}) =>
  manifest("planner", {
    capabilities: [
      "tool: file_write",
      "tool: file_read",
      "tool: file_list",
      "tool: exec",
      "file_write: /workspace/**",
      "file_read: /workspace/**",
      "exec: echo *",
      "exec: sh *",
      "exec: cat *",
      "exec: ls *",
    ],
    ...extra,
  });

/** A daemon per test (Docker required), and spawn(), whose agents' containers go after each test. */
export function usePlansDaemon(): {
  suite: DaemonPerTest;
  spawn(c: AidoClient, m?: Record<string, unknown>): Promise<{ agent_id: string; goal_id: string }>;
} {
  const goals: string[] = [];
  beforeAll(() => requireDocker());
  const suite = useDaemonPerTest({
    beforeClose: async (fx) => {
      for (const g of goals.splice(0)) await fx?.daemon.runtime.backend.remove(g).catch(() => {});
    },
  });
  return {
    suite,
    async spawn(c, m = planner()) {
      const a = await c.call("agent.spawn", { manifest: m });
      goals.push(a.goal_id);
      return a;
    },
  };
}

/**
 * A daemon whose goals' snapshot stores hold 2 MiB (sandbox.snapshots_max_mb), a client, and
 * a planner agent with `grants` besides its own: what the tests of the store's cap open with.
 */
export async function cappedStore(plans: ReturnType<typeof usePlansDaemon>, grants: string[]) {
  const fx = await plans.suite.start({
    ...docker,
    config: (c) => {
      c.sandbox.snapshotsMaxMb = 2;
    },
  });
  const c = await fx.client();
  const a = await plans.spawn(
    c,
    planner({ capabilities: [...(planner().capabilities as string[]), ...grants] }),
  );
  return { fx, c, a };
}

/** An exec step of 700 KiB of random bytes into /workspace/`name` (needs "exec: head *"): two fill most of 2 MiB. */
export const blob = (name: string) => ({
  tool: "exec",
  input: { command: `head -c ${700 * 1024} /dev/urandom > /workspace/${name}` },
});

/** Apparent bytes under a folder (what the snapshot store's cap counts). */
export function du(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const st = lstatSync(join(dir, name));
    total += st.size;
    if (st.isDirectory()) total += du(join(dir, name));
  }
  return total;
}

export const workspaceOf = (fx: DaemonFixture, goalId: string) =>
  join(fx.home.config.goalsDir, goalId, "workspace");

/** Every path under a folder with its type and content digest: what "byte-identical" compares. */
export function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = statSync(join(dir, r));
      if (st.isDirectory()) {
        out[r] = `dir ${st.mode}`;
        walk(r);
      } else
        out[r] = createHash("sha256")
          .update(readFileSync(join(dir, r)))
          .digest("hex");
    }
  };
  walk("");
  return out;
}

/** A file_write through tool.invoke (the set-up of a test, audited like any call). */
export async function write(c: AidoClient, agentId: string, path: string, content: string) {
  const r = await c.call("tool.invoke", { agent_id: agentId, tool: "file_write", input: { path, content } });
  expect(r.is_error).toBe(false);
}

/** The agent's audit entries of one kind. */
export const kinds = async (c: AidoClient, agentId: string, kind: string) =>
  (await c.call("audit.query", { agent_id: agentId, kind, limit: 1000 })).entries;
