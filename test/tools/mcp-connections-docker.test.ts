// A stdio MCP server in its container, through the gate over the daemon socket: a call the
// gate refuses starts no container; and when the server's process dies mid-goal, the call
// in flight fails with how it ended (exit code, stderr made inert), the end is audited as
// mcp.disconnected, the next call reconnects, and a server that keeps dying is not
// restarted in a loop.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { MAX_RECONNECTS } from "../../src/tools/mcp/goal-connections.js";
import { manifest, rpcError, useDaemonPerTest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { containersOfHome } from "../support/home.js";

/**
 * A minimal stdio MCP server (newline-delimited JSON-RPC, no SDK): `echo` answers, `crash`
 * writes an escape-laden complaint to stderr and exits with code 3.
 */
const DYING_SERVER = `
const tools = ["echo", "crash"].map((name) => ({
  name, description: name, inputSchema: { type: "object", properties: { text: { type: "string" } } },
}));
const send = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
let buf = "";
process.stdin.on("data", (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf("\\n")) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    if (!line.trim()) continue;
    const m = JSON.parse(line);
    if (m.method === "initialize")
      send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion,
        capabilities: { tools: {} }, serverInfo: { name: "dying", version: "1" } } });
    else if (m.method === "tools/list") send({ jsonrpc: "2.0", id: m.id, result: { tools } });
    else if (m.method === "tools/call" && m.params.name === "crash") {
      process.stderr.write("fatal: heap out of memory \\u001b[2J\\u001b]0;owned\\u0007\\n");
      process.exit(3);
    } else if (m.method === "tools/call")
      send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: String(m.params.arguments.text) }] } });
    else if (m.id !== undefined) send({ jsonrpc: "2.0", id: m.id, result: {} });
  }
});
`;

let dir: string;
beforeAll(() => {
  requireDocker();
  dir = mkdtempSync(join(tmpdir(), "mcp-fix-dying-"));
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "server.js"), DYING_SERVER, { mode: 0o644 });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
const suite = useDaemonPerTest();

/** A daemon declaring the dying server (its tools read-only) under the ceiling `mcp: dying/*`. */
const startDying = () =>
  suite.start({
    runtime: { backend: undefined },
    config: (cfg: Config) => {
      cfg.mcp.servers.dying = {
        name: "dying",
        transport: "stdio",
        command: ["node", "/opt/dying/server.js"],
        env: {},
        workspace: "none",
        mounts: [{ source: dir, target: "/opt/dying" }],
        readOnlyTools: ["*"],
        timeoutMs: 30_000,
      };
      cfg.grantCeilings = [["mcp: dying/*"]];
    },
  });

describe("a stdio MCP server and a call the gate refuses", () => {
  it("has no container started for it", async () => {
    const fx = await startDying();
    const c = await fx.client();
    await c.call("mcp.approve", { server: "dying" });
    const home = fx.home.config.home;
    expect(containersOfHome(home).filter((n) => n.startsWith("aido-mcp-"))).toEqual([]);
    const a = await c.call("agent.spawn", {
      manifest: manifest("narrow", {
        lifecycle: "persistent",
        capabilities: ["mcp: dying/crash"],
        mcp_servers: ["dying"],
      }),
    });
    const e = await rpcError(
      c.call("tool.invoke", { agent_id: a.agent_id, tool: "mcp__dying__echo", input: { text: "x" } }),
    );
    expect(e.code).toBe("capability_denied");
    expect(containersOfHome(home).filter((n) => n.startsWith("aido-mcp-"))).toEqual([]);
    await c.call("agent.stop", { agent_id: a.agent_id });
  }, 60_000);
});

describe("a stdio MCP server that dies mid-goal", () => {
  it("fails the call in flight with how it ended, is audited, reconnects on the next call, and is not restarted in a loop", async () => {
    const fx = await startDying();
    const c = await fx.client();
    await c.call("mcp.approve", { server: "dying" });
    const a = await c.call("agent.spawn", {
      manifest: manifest("unlucky", {
        lifecycle: "persistent",
        capabilities: ["mcp: dying/*"],
        mcp_servers: ["dying"],
      }),
    });
    const call = (tool: string) =>
      c.call("tool.invoke", { agent_id: a.agent_id, tool: `mcp__dying__${tool}`, input: { text: tool } });

    const died = await rpcError(call("crash"));
    expect(died.code).toBe("tool_failed");
    expect(died.message).toContain("MCP server dying failed the call of crash: the connection ended");
    expect(died.message).toContain("it exited with code 3");
    expect(died.message).toContain("fatal: heap out of memory");
    expect(died.message).not.toContain("\u001b");

    const { entries } = await c.call("audit.query", { goal_id: a.goal_id, kind: "mcp.disconnected" });
    expect(entries).toHaveLength(1);
    const payload = entries[0]?.payload as { server: string; reason: string; reconnects_left: number };
    expect(payload).toMatchObject({ server: "dying", reconnects_left: MAX_RECONNECTS });
    expect(payload.reason).toContain("it exited with code 3");
    expect(payload.reason).not.toContain("\u001b");

    // Not "Not connected" for the rest of the goal: the next call connects again.
    expect(await call("echo")).toMatchObject({ output: "echo" });

    for (let i = 0; i < MAX_RECONNECTS; i++) await rpcError(call("crash"));
    const home = fx.home.config.home;
    for (let i = 0; i < 100 && containersOfHome(home).some((n) => n.startsWith("aido-mcp-")); i++)
      await new Promise((res) => setTimeout(res, 100));
    const refused = await rpcError(call("echo"));
    expect(refused.message).toContain(
      `MCP server dying's connection ended ${MAX_RECONNECTS + 1} times in this goal; it is not connected again`,
    );
    // Refused without a container started for it.
    expect(containersOfHome(home).filter((n) => n.startsWith("aido-mcp-"))).toEqual([]);
    const ends = await c.call("audit.query", { goal_id: a.goal_id, kind: "mcp.disconnected" });
    expect(ends.entries).toHaveLength(MAX_RECONNECTS + 1);
    await c.call("agent.stop", { agent_id: a.agent_id });
  }, 120_000);
});
