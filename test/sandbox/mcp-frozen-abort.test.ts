// A call to a stdio MCP server that timed out is followed by a ping (tools/mcp/connection.ts),
// and the ping too is timed in the server's own time (request-time.ts): it does not run while
// the goal is frozen (its node's fence). The call's caller (the agent stopped, the goal
// cancelled) could not end it meanwhile: its signal did not reach the ping, and the call waited
// for the goal's thaw, however long the fence held. The server here blocks its own loop a few
// seconds on a call (no answer to the ping), the goal is frozen as the ping waits, and the
// caller cancels: the call ends at once, and the connection is kept (the ping proved nothing).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { McpServerSpec } from "../../src/sandbox/mcp-container.js";
import { McpConnection } from "../../src/tools/mcp/connection.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
beforeAll(() => {
  fx = makeSandboxFixture(() => {});
});
afterAll(async () => {
  await fx?.cleanup();
});

/** A stdio MCP server whose `stall` blocks its loop 4 s and never answers. */
const stallServer = (goalId: string): McpServerSpec => ({
  goalId,
  server: "stall",
  command: [
    "node",
    "-e",
    `let b = "";
process.stdin.on("data", (d) => {
  b += d;
  let i;
  while ((i = b.indexOf("\\n")) >= 0) {
    const m = JSON.parse(b.slice(0, i)); b = b.slice(i + 1);
    const send = (result) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }) + "\\n");
    if (m.method === "initialize") send({ protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "stall", version: "1" } });
    else if (m.method === "tools/list") send({ tools: [{ name: "stall", inputSchema: { type: "object" } }] });
    else if (m.method === "tools/call") { const end = Date.now() + 4000; while (Date.now() < end); }
    else if (m.id !== undefined) send({});
  }
});`,
  ],
  workspace: "none",
  mounts: [],
});

describe("a timed-out MCP call whose ping waits on its frozen goal", () => {
  it("ends when its caller cancels it, the connection kept", async () => {
    const goalId = "mcp-frozen-abort";
    await fx.backend.acquire(goalId);
    const config = {
      name: "stall",
      transport: "stdio" as const,
      command: [],
      env: {},
      workspace: "none" as const,
      mounts: [],
      readOnlyTools: [],
      timeoutMs: 1_000,
    };
    const conn = await McpConnection.open(config, {
      headerValue: () => undefined,
      startStdio: () => fx.backend.startMcpServer(stallServer(goalId)),
    });
    try {
      const caller = new AbortController();
      let settled = false;
      const calling = conn.call("stall", {}, caller.signal).then(
        () => "answered",
        (e: Error) => e.message,
      );
      void calling.finally(() => {
        settled = true;
      });
      // The call times out at 1 s; its ping is then sent to a server still busy: freeze it then.
      await new Promise((r) => setTimeout(r, 1_500));
      expect(settled).toBe(false);
      await fx.backend.pause(goalId);
      caller.abort();
      await new Promise((r) => setTimeout(r, 1_000));
      expect(settled).toBe(true);
      expect(await calling).toMatch(/did not finish the call of stall|failed the call of stall/);
      expect(await calling).not.toMatch(/connection ended/);
    } finally {
      await fx.backend.unpause(goalId);
      await conn.close();
      await fx.backend.remove(goalId);
    }
  }, 120_000);
});
