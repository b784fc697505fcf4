// Red team: a model hides a secret in an OBJECT KEY of an external MCP tool's input, the tool
// gated by default (an operator's remote server, not marked read-only). Keys are blanked as
// values are (gate/call-secrets.ts blankedJson), but only values were attacked through the
// product: here the daemon's API key and the server's own bearer token are keys of the input,
// through the socket as a model's call reaches the gate. The human reads the request blanked
// and is told which secrets it carries; nothing they, the event stream or the audit see holds
// either; allowed, the tool still gets the call as written.

import { afterEach, describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import type { RuntimeEventParams } from "../../src/client/types.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { type RemoteMcpServer, startRemoteMcpServer } from "../support/mcp-remote-server.js";

const TOKEN = "s3cr3t-remote-bearer-token";
const suite = useDaemonPerTest();
let remote: RemoteMcpServer | undefined;
let sub: { close(): void } | undefined;
afterEach(async () => {
  sub?.close();
  sub = undefined;
  await remote?.close();
  remote = undefined;
});

interface Listed {
  id: string;
  input: unknown;
  summary: string;
  target: string;
  carries_secrets: string[];
}

describe("a secret in an object key of an external MCP tool's input", () => {
  it("is blanked in what the human is asked, named by kind, and reaches the tool as written once allowed", async () => {
    remote = await startRemoteMcpServer([
      {
        def: { name: "store", description: "Store settings.", inputSchema: { type: "object" } },
        run: () => ({ content: [{ type: "text", text: "stored" }] }),
      },
    ]);
    const url = remote.url;
    const fx = await suite.start({
      config: (cfg) => {
        cfg.mcp.servers.remote = {
          name: "remote",
          transport: "http",
          url,
          headers: { Authorization: "REMOTE_TOKEN" },
          readOnlyTools: [],
          timeoutMs: 5_000,
        };
        cfg.mcp.headerValue = (v) => (v === "REMOTE_TOKEN" ? TOKEN : undefined);
        cfg.grantCeilings = [["tool: *", "mcp: remote/*"]];
      },
    });
    const apiKey = fx.home.config.providers.anthropic.apiKey as string;
    const c = await fx.client();
    const events: RuntimeEventParams[] = [];
    sub = await AidoClient.subscribe(fx.home.config.socketPath, undefined, (ev) => events.push(ev));
    expect((await c.call("mcp.approve", { server: "remote" })).state).toBe("approved");
    const a = await c.call("agent.spawn", {
      manifest: manifest("settings", {
        lifecycle: "persistent",
        capabilities: ["mcp: remote/*"],
        mcp_servers: ["remote"],
      }),
    });
    // The secrets as keys: at the top, and nested under a key that is itself a secret.
    const input = { [apiKey]: "use me", settings: { [`Bearer ${TOKEN}`]: { [apiKey]: 1 } } };
    const call = c.call("tool.invoke", { agent_id: a.agent_id, tool: "mcp__remote__store", input });
    call.catch(() => {});
    let req: Listed | undefined;
    for (let i = 0; i < 300 && !req; i++) {
      req = ((await c.call("approval.list", {})).approvals as unknown as Listed[])[0];
      if (!req) await new Promise((r) => setTimeout(r, 50));
    }
    if (!req) throw new Error("no approval request appeared");

    expect(req.input).toEqual({ "***": "use me", settings: { "Bearer ***": { "***": 1 } } });
    expect(req.summary).toContain('{"***":"use me","settings":{"Bearer ***":{"***":1}}}');
    expect(req.carries_secrets).toEqual([
      "the API key of provider anthropic",
      "the Authorization header value of MCP server remote (from REMOTE_TOKEN)",
    ]);
    await c.call("approval.respond", { id: req.id, decision: "allow_once" });
    expect((await call).is_error).toBe(false);
    // The tool ran with the call as the model wrote it.
    expect(remote.calls.find((x) => x.name === "store")?.args).toEqual(input);

    const requested = events.filter((e) => e.type === "approval.requested");
    expect(requested.map((e) => e.carries_secrets)).toEqual([req.carries_secrets]);
    const audit = (await c.call("audit.query", { agent_id: a.agent_id, limit: 1000 })).entries;
    const asked = audit.find((e) => e.kind === "approval.requested");
    expect((asked?.payload as { carries_secrets?: string[] } | undefined)?.carries_secrets).toEqual(
      req.carries_secrets,
    );
    const listed = (await c.call("approval.list", { status: "all" })).approvals;
    const all = JSON.stringify([listed, requested, audit]);
    expect(all).not.toContain(apiKey);
    expect(all).not.toContain(TOKEN);
    await c.call("agent.stop", { agent_id: a.agent_id });
  });
});
