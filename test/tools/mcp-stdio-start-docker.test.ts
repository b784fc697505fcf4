// A stdio MCP server with network entries, started for a goal its node's fence froze
// (tools/mcp/stdio-start.ts, as kernel/assemble.ts wires it). Its egress network and relay were
// made before the start waited for the thaw: the frozen goal's start made them during the fence,
// and a start cancelled meanwhile left them (and the daemon's listener and shared folder) until
// the goal ended. Now they are made after the thaw: a start cancelled while the goal is frozen
// leaves no network, relay container, listener or folder; and a start that goes on once the goal
// is thawed makes them then. A start that does not end with a running server (cancelled or
// failed in its connect or listing, its container refused by the engine) removes its network and
// relay before it reports: before, they stayed until the next start or the goal's end. A network
// the fence fell on while it was being made is not the one a start that goes on uses: it is made
// again after the thaw. Real Docker, the real DockerBackend and EgressPlumbing (a stand-in proxy:
// no connection is made through it), the real SDK client (McpConnection).

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { McpServerConfig, NetworkGrant } from "../../src/config.js";
import { mcpEgressId } from "../../src/egress/mcp-callers.js";
import { EgressPlumbing } from "../../src/egress/plumbing.js";
import { isAidoError } from "../../src/errors.js";
import { parseGrant } from "../../src/security/grants.js";
import { McpConnection } from "../../src/tools/mcp/connection.js";
import { startStdioServer } from "../../src/tools/mcp/stdio-start.js";
import { makeSandboxFixture, type SandboxFixture } from "../sandbox/fixture.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";

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
/** The goal's MCP server containers. */
const serversOf = (goalId: string) =>
  docker("ps", "-aq", "--filter", `label=aido.goal=${goalId}`, "--filter", "label=aido.mcp_server");
/** When the engine made a network or container (ms since the epoch). */
const createdAt = (kind: "network" | "container", name: string) =>
  Date.parse(docker(kind, "inspect", "-f", "{{.Created}}", name));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** A server that answers initialize, then nothing (its tools/list waits for good). */
const SILENT_LISTING = `
const rl = require("readline").createInterface({ input: process.stdin });
rl.on("line", (l) => {
  const m = JSON.parse(l);
  if (m.method === "initialize")
    process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "silent", version: "1" } } }) + "\\n");
});`;

/** A server that answers initialize and lists no tools. */
const NO_TOOLS = `${SILENT_LISTING.replace(/\}\);$/, "")}
  if (m.method === "tools/list")
    process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { tools: [] } }) + "\\n");
});`;

/** Open a connection to `s` for the goal, its stdio server started as assemble.ts does. */
const open = (goalId: string, s: McpServerConfig, signal?: AbortSignal) =>
  McpConnection.open(
    s,
    {
      headerValue: () => undefined,
      startStdio: (server, sig) => startStdioServer(deps(), goalId, server, sig),
    },
    signal,
  );

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

  for (const [phase, command] of [
    ["connect", ["sleep", "600"]],
    ["listing", ["node", "-e", SILENT_LISTING]],
  ] as const) {
    it(`removes the network, relay and server of a start cancelled in its ${phase}, before it reports`, async () => {
      const goalId = `stdio-start-${phase}`;
      const egressId = mcpEgressId(goalId, "web");
      await fx.backend.acquire(goalId);
      const opening = new AbortController();
      const s = { ...web, command: [...command] } as McpServerConfig;
      const opened = open(goalId, s, opening.signal).catch((e: unknown) => e);
      try {
        // The server runs, its relay and network up; its connect (or listing) gets no answer.
        for (let i = 0; i < 300 && serversOf(goalId) === ""; i++) await sleep(100);
        expect(serversOf(goalId)).not.toBe("");
        expect(egressOf(egressId).networks).not.toBe("");
        await sleep(1_500);
        opening.abort(new Error("every call waiting for the server was cancelled"));
        expect(await opened).toBeInstanceOf(Error);
        expect(serversOf(goalId)).toBe("");
        expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
        expect(existsSync(plumbing.shareOf(egressId))).toBe(false);
      } finally {
        opening.abort();
        await plumbing.close(goalId);
        await fx.backend.remove(goalId);
      }
    }, 120_000);
  }

  it("removes the network and relay of a start whose connect timed out, and of one the engine refused", async () => {
    const goalId = "stdio-start-failed";
    const egressId = mcpEgressId(goalId, "web");
    await fx.backend.acquire(goalId);
    try {
      const silent = { ...web, timeoutMs: 2_000 } as McpServerConfig;
      expect(isAidoError(await open(goalId, silent).catch((e: unknown) => e))).toBe(true);
      expect(serversOf(goalId)).toBe("");
      expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
      // An image the engine does not have: its container is never made.
      const noImage = { ...stdio, image: "aido-test-no-such-image:none" };
      const failed = await startStdioServer(deps(), goalId, noImage).catch((e: unknown) => e);
      expect(isAidoError(failed)).toBe(true);
      expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
      expect(existsSync(plumbing.shareOf(egressId))).toBe(false);
    } finally {
      await plumbing.close(goalId);
      await fx.backend.remove(goalId);
    }
  }, 120_000);

  it("leaves the first start's network, relay and listener to it when a second start of the same server is refused", async () => {
    const goalId = "stdio-start-twice";
    const egressId = mcpEgressId(goalId, "web");
    await fx.backend.acquire(goalId);
    const first = await startStdioServer(deps(), goalId, stdio);
    try {
      const made = egressOf(egressId);
      expect(made.networks).not.toBe("");
      expect(made.containers).not.toBe("");
      // The same server again for the same goal: refused (it runs already).
      const second = await startStdioServer(deps(), goalId, stdio).catch((e: unknown) => e);
      expect(isAidoError(second, "invalid_input")).toBe(true);
      expect(String((second as Error).message)).toMatch(/running already/);
      // The first's network, relay, listener and folder are still there, its server running.
      expect(egressOf(egressId)).toEqual(made);
      expect(existsSync(plumbing.shareOf(egressId))).toBe(true);
      expect(plumbing.callers.callerOfPort(egressId, 3128)).toBeDefined();
      expect(serversOf(goalId)).not.toBe("");
      // They go with the first's server.
      await first.stop();
      expect(serversOf(goalId)).toBe("");
      expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
      expect(existsSync(plumbing.shareOf(egressId))).toBe(false);
    } finally {
      await first.stop().catch(() => {});
      await plumbing.close(goalId);
      await fx.backend.remove(goalId);
    }
  }, 120_000);

  it("makes the network again after the thaw when the fence fell as it was made, and removes it with its server", async () => {
    const goalId = "stdio-start-fence-mid";
    const egressId = mcpEgressId(goalId, "web");
    const relay = `aido_${fx.backend.runtimeId}_relay_${egressId}`;
    const network = `aido_${fx.backend.runtimeId}_egress_${egressId}`;
    await fx.backend.acquire(goalId);
    const starting = startStdioServer(deps(), goalId, stdio);
    let unpausedAt = 0;
    try {
      await sleep(0);
      await fx.backend.pause(goalId); // the network is being made
      for (let i = 0; i < 300 && egressOf(egressId).containers === ""; i++) await sleep(100);
      await sleep(2_000);
      expect(serversOf(goalId)).toBe("");
      unpausedAt = Date.now();
      await fx.backend.unpause(goalId);
      const server = await starting;
      // What the start goes on with was made after the thaw.
      expect(createdAt("network", network)).toBeGreaterThanOrEqual(unpausedAt - 1_000);
      expect(createdAt("container", relay)).toBeGreaterThanOrEqual(unpausedAt - 1_000);
      expect(serversOf(goalId)).not.toBe("");
      await server.stop();
      expect(serversOf(goalId)).toBe("");
      expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
    } finally {
      if (unpausedAt === 0) await fx.backend.unpause(goalId);
      await starting.then((c) => c.stop()).catch(() => {});
      await plumbing.close(goalId);
      await fx.backend.remove(goalId);
    }
  }, 120_000);

  it("is removed once with its goal: the server's stop and the goal's removal do not race on its network", async () => {
    const goalId = "stdio-start-goal-end";
    const egressId = mcpEgressId(goalId, "web");
    await fx.backend.acquire(goalId);
    try {
      const conn = await open(goalId, { ...web, command: ["node", "-e", NO_TOOLS] } as McpServerConfig);
      expect(conn.tools.size).toBe(0);
      expect(egressOf(egressId).networks).not.toBe("");
      // The goal's removal stops the server; its connection's end stops it (and its network) too.
      await fx.backend.remove(goalId);
      await conn.close();
      expect(serversOf(goalId)).toBe("");
      expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
    } finally {
      await plumbing.close(goalId);
      await fx.backend.remove(goalId);
    }
  }, 120_000);
});

describe("a stdio MCP server's failed start whose network the engine will not remove", () => {
  let refuseRemoval = false;
  let engine: EngineProxy;
  let fx2: SandboxFixture;
  let plumbing2: EgressPlumbing;
  const lines: string[] = [];
  beforeAll(async () => {
    engine = await engineProxy((line) =>
      refuseRemoval && /^DELETE \S*\/networks\//.test(line) ? "refuse" : undefined,
    );
    fx2 = makeSandboxFixture(() => {}, { docker: engine.docker });
    plumbing2 = new EgressPlumbing({
      home: fx2.config.home,
      backend: fx2.backend,
      proxy: () => ({ handle: (stream) => stream.destroy(), close: async () => {} }),
      unheldPort: () => {},
      log: () => {},
    });
  });
  afterAll(async () => {
    refuseRemoval = false;
    await plumbing2?.closeAll();
    await fx2?.cleanup();
    await engine?.close();
  });

  it("reports the start's own failure, logs the removal's, and leaves the network to the goal's removal", async () => {
    const goalId = "stdio-start-unremovable";
    const egressId = mcpEgressId(goalId, "web");
    await fx2.backend.acquire(goalId);
    try {
      refuseRemoval = true;
      const noImage = { ...stdio, image: "aido-test-no-such-image:none" };
      const d = {
        backend: fx2.backend,
        egress: plumbing2,
        probing: () => false,
        log: (l: string) => lines.push(l),
      };
      const failed = await startStdioServer(d, goalId, noImage).catch((e: unknown) => e);
      expect(isAidoError(failed)).toBe(true);
      expect(String((failed as Error).message)).not.toMatch(/removing/);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /removing the egress network of MCP server web of goal stdio-start-unremovable \(its start failed\): .*injected refusal.*the sweep removes it/,
      );
      // The daemon's side went all the same; the network stays (its relay is gone) until the goal's removal.
      expect(existsSync(plumbing2.shareOf(egressId))).toBe(false);
      expect(plumbing2.callers.callerOfPort(egressId, 3128)).toBeUndefined();
      expect(egressOf(egressId).networks).not.toBe("");
      refuseRemoval = false;
      await fx2.backend.remove(goalId);
      expect(egressOf(egressId)).toEqual({ networks: "", containers: "" });
    } finally {
      refuseRemoval = false;
      await plumbing2.close(goalId);
      await fx2.backend.remove(goalId);
    }
  }, 120_000);
});
