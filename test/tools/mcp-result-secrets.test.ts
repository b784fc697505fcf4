// A remote MCP server's header values are cut out of its tool results, not only of errors:
// a server echoing the token it was sent (a "whoami", a debug tool) showed it to the model.
// One shorter than 8 characters (a version header) is left in results: blanking "2" would
// corrupt every result holding the character. Through the daemon socket, as a model calls it.

import { afterEach, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { type RemoteMcpServer, startRemoteMcpServer } from "../support/mcp-remote-server.js";

const TOKEN = "Bearer s3cr3t-remote-token";
const suite = useDaemonPerTest();
let remote: RemoteMcpServer | undefined;
afterEach(async () => {
  await remote?.close();
  remote = undefined;
});

it("a tool result has the server's secret header value blanked, and its short values kept", async () => {
  remote = await startRemoteMcpServer([
    {
      def: { name: "whoami", inputSchema: { type: "object" } },
      run: () => ({ content: [{ type: "text", text: `you sent ${TOKEN}, API 2, 2 items` }] }),
    },
  ]);
  const url = remote.url;
  const fx = await suite.start({
    config: (cfg) => {
      cfg.mcp.servers.remote = {
        name: "remote",
        transport: "http",
        url,
        headers: { Authorization: "REMOTE_TOKEN", "X-Api-Version": "REMOTE_VERSION" },
        readOnlyTools: ["*"],
        timeoutMs: 5_000,
      };
      cfg.mcp.headerValue = (v) => ({ REMOTE_TOKEN: TOKEN, REMOTE_VERSION: "2" })[v];
      cfg.grantCeilings = [["tool: *", "mcp: remote/*"]];
    },
  });
  const c = await fx.client();
  expect((await c.call("mcp.approve", { server: "remote" })).state).toBe("approved");
  const a = await c.call("agent.spawn", {
    manifest: manifest("whoami-user", {
      lifecycle: "persistent",
      capabilities: ["mcp: remote/*"],
      mcp_servers: ["remote"],
    }),
  });
  const r = await c.call("tool.invoke", { agent_id: a.agent_id, tool: "mcp__remote__whoami", input: {} });
  expect(r.output).toBe("you sent [redacted], API 2, 2 items");
});
