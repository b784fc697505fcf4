// A remote MCP server's header values are cut out of its tool results, not only of errors:
// a server echoing the token it was sent (a "whoami", a debug tool) showed it to the model.
// One shorter than 4 characters (a version header) is no secret and is left in results:
// blanking "2" would corrupt every result holding it. A value inside another (a key and the
// "Bearer <key>" header holding it) leaves nothing of the longer one. Through the daemon
// socket, as a model calls it.

import { afterEach, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { type RemoteMcpServer, startRemoteMcpServer } from "../support/mcp-remote-server.js";

const KEY = "s3cr3t-remote-token";
const TOKEN = `Bearer ${KEY}`;
const suite = useDaemonPerTest();
let remote: RemoteMcpServer | undefined;
afterEach(async () => {
  await remote?.close();
  remote = undefined;
});

/** What the model gets from tool `whoami` (its text `said`) of a server sent `headers` (header -> [variable, value]). */
async function resultOf(said: string, headers: Record<string, [string, string]>): Promise<unknown> {
  remote = await startRemoteMcpServer([
    {
      def: { name: "whoami", inputSchema: { type: "object" } },
      run: () => ({ content: [{ type: "text", text: said }] }),
    },
  ]);
  const url = remote.url;
  const values = Object.fromEntries(Object.values(headers));
  const fx = await suite.start({
    config: (cfg) => {
      cfg.mcp.servers.remote = {
        name: "remote",
        transport: "http",
        url,
        headers: Object.fromEntries(Object.entries(headers).map(([h, [v]]) => [h, v])),
        readOnlyTools: ["*"],
        timeoutMs: 5_000,
      };
      cfg.mcp.headerValue = (v) => values[v];
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
  return r.output;
}

it("a tool result has the server's secret header value blanked, and its short values kept", async () => {
  const output = await resultOf(`you sent ${TOKEN}, API 2, 2 items`, {
    Authorization: ["REMOTE_TOKEN", TOKEN],
    "X-Api-Version": ["REMOTE_VERSION", "2"],
  });
  expect(output).toBe("you sent [redacted], API 2, 2 items");
});

it("a key inside another header's value leaves nothing of the longer one", async () => {
  // The key listed first: before, it was cut first and "Bearer " stayed beside its mark.
  const output = await resultOf(`you sent ${TOKEN} and ${KEY}`, {
    "X-Key": ["REMOTE_KEY", KEY],
    Authorization: ["REMOTE_TOKEN", TOKEN],
  });
  expect(output).toBe("you sent [redacted] and [redacted]");
});
