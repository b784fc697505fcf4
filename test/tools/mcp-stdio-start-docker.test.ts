// A stdio MCP server with network entries, started for a goal its node's fence froze
// (tools/mcp/stdio-start.ts, as kernel/assemble.ts wires it). Its egress network and relay were
// made before the start waited for the thaw: the frozen goal's start made them during the fence,
// and a start cancelled meanwhile left them (and the daemon's listener and shared folder) until
// the goal ended. Now they are made after the thaw: a start cancelled while the goal is frozen
// leaves no network, relay container, listener or folder; and a start that goes on once the goal
// is thawed makes them then. Real Docker, the real DockerBackend and EgressPlumbing (a stand-in
// proxy: no connection is made here).

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { McpServerConfig, NetworkGrant } from "../../src/config.js";
import { mcpEgressId } from "../../src/egress/mcp-callers.js";
import { EgressPlumbing } from "../../src/egress/plumbing.js";
import { isAidoError } from "../../src/errors.js";
import { parseGrant } from "../../src/security/grants.js";
import { startStdioServer } from "../../src/tools/mcp/stdio-start.js";
import { makeSandboxFixture, type SandboxFixture } from "../sandbox/fixture.js";

let fx: SandboxFixture;
let plumbing: EgressPlumbing;
beforeAll(() => {
  fx = makeSandboxFixture();
  plumbing = new EgressPlumbing({
    home: fx.config.home,
    backend: fx.backend,
    proxy: () => ({ handle: (stream) => stream.destroy(), close: async () => {} }),
    unheldPort: () => {},
    log: () => {},
  });
});
afterAll(async () => {
  await plumbing?.closeAll();
  await fx?.cleanup();
});

const docker = (...args: string[]) => execFileSync("docker", args, { encoding: "utf8" }).trim();
/** The networks and containers (the relay) labelled with the server's egress id. */
const egressOf = (egressId: string) => ({
  networks: docker("network", "ls", "-q", "--filter", `label=aido.relay=${egressId}`),
  containers: docker("ps", "-aq", "--filter", `label=aido.relay=${egressId}`),
});

/** A stdio server with a network entry that answers nothing (it is never spoken to here). */
const web: McpServerConfig = {
  name: "web",
  transport: "stdio",
  command: ["sleep", "600"],
  env: {},
  workspace: "none",
  mounts: [],
  readOnlyTools: [],
  timeoutMs: 10_000,
  network: [parseGrant("network: example.org") as NetworkGrant],
};
const stdio = web as Extract<McpServerConfig, { transport: "stdio" }>;

const deps = () => ({ backend: fx.backend, egress: plumbing, probing: () => false, log: () => {} });

describe("a stdio MCP server with network entries started for a frozen goal", () => {
  it("makes no egress network while the goal is frozen, and a cancelled start leaves none behind", async () => {
    const goalId = "stdio-start-frozen";
    const egressId = mcpEgressId(goalId, "web");
    await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    try {
      const start = new AbortController();
      const starting = startStdioServer(deps(), goalId, stdio, start.signal).catch((e: unknown) => e);
      // Long enough for a relay to be made and be ready (the old order made it here).
      await new Promise((r) => setTimeout(r, 3_000));
      expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
      start.abort(new Error("every call waiting for the server was cancelled"));
      const settled = await starting;
      expect(isAidoError(settled, "cancelled")).toBe(true);
      expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
      expect(existsSync(plumbing.shareOf(egressId))).toBe(false);
      expect(plumbing.callers.callerOfPort(egressId, 3128)).toBeUndefined();
    } finally {
      await fx.backend.unpause(goalId);
      await plumbing.close(goalId);
      await fx.backend.remove(goalId);
    }
    expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
  }, 120_000);

  it("removes the network and relay made before a fence that fell again, when the start is then cancelled", async () => {
    const goalId = "stdio-start-refrozen";
    const egressId = mcpEgressId(goalId, "web");
    await fx.backend.acquire(goalId);
    const start = new AbortController();
    const starting = startStdioServer(deps(), goalId, stdio, start.signal).catch((e: unknown) => e);
    try {
      // Thawed as the start looks: the network is being made; the fence falls meanwhile.
      await new Promise((r) => setTimeout(r, 0));
      await fx.backend.pause(goalId);
      for (let i = 0; i < 300 && egressOf(egressId).containers === ""; i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(egressOf(egressId).networks).not.toBe("");
      await new Promise((r) => setTimeout(r, 2_000)); // the start waits for the thaw
      start.abort(new Error("every call waiting for the server was cancelled"));
      expect(isAidoError(await starting, "cancelled")).toBe(true);
      expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
      expect(existsSync(plumbing.shareOf(egressId))).toBe(false);
    } finally {
      start.abort();
      await fx.backend.unpause(goalId);
      await plumbing.close(goalId);
      await fx.backend.remove(goalId);
    }
  }, 120_000);
});
