// `aido mcp serve --http`, the real CLI in a child process, attacked and used over real
// HTTP: the SDK's StreamableHTTPClientTransport with the bearer token works end to end
// (a write lands in the project folder; DELETE ends the session and its container);
// no token or a wrong one is 401; a rebinding Host header and a foreign Origin are 403;
// the token file is 0600 and reused; a non-loopback host needs --allow-remote.

import { spawnSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { beforeAll, describe, expect, it } from "vitest";
import { requireDocker } from "../support/docker.js";
import { CLI, textOf, until, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

const INIT = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
});

/** A raw POST with exactly these headers (Host included), as an attacker sends it. */
function post(
  url: string,
  headers: Record<string, string>,
  body = INIT,
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...headers,
        },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const tokenOf = () => readFileSync(join(suite.fx.home.config.home, "mcp-token"), "utf8").trim();

describe("mcp serve --http", () => {
  it("serves the SDK client with the bearer token; DELETE ends the session and its container", async () => {
    const fx = await suite.start();
    const { url } = await suite.serveHttp();
    expect(new URL(url).hostname).toBe("127.0.0.1");
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { Authorization: `Bearer ${tokenOf()}` } },
    });
    const client = new Client({ name: "http-test", version: "1" });
    await client.connect(transport);
    expect(transport.sessionId).toBeTruthy();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain("file_write");
    const w = await client.callTool({
      name: "file_write",
      arguments: { path: "/workspace/via-http.txt", content: "http" },
    });
    expect(textOf(w)).not.toContain("denied");
    expect(readFileSync(join(suite.project, "via-http.txt"), "utf8")).toBe("http");
    expect(suite.containers()).toHaveLength(1);

    await transport.terminateSession();
    await until(() => suite.containers().length === 0);
    const c = await fx.client();
    await until(async () => (await c.call("audit.query", { kind: "session.closed" })).entries.length === 1);
    await client.close();
  });

  it("asks for approval through elicitation over HTTP too", async () => {
    await suite.start();
    const { url } = await suite.serveHttp();
    const client = new Client(
      { name: "http-elicit", version: "1" },
      { capabilities: { elicitation: { form: {} } } },
    );
    let asked = "";
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked = (req.params as { message: string }).message;
      return { action: "accept", content: { decision: "allow_once" } };
    });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { Authorization: `Bearer ${tokenOf()}` } },
      }),
    );
    const r = await client.callTool({ name: "exec", arguments: { command: "ls /workspace" } });
    expect(asked).toContain("Allow Session:");
    expect(textOf(r)).toContain("README.md");
    await client.close();
  });

  it("refuses a session over daemon.mcp_max_http_sessions with a JSON-RPC error naming the key, and logs it", async () => {
    const fx = await suite.start();
    writeFileSync(join(fx.home.config.home, "config.yaml"), "daemon:\n  mcp_max_http_sessions: 2\n");
    const { url } = await suite.serveHttp();
    const auth = { authorization: `Bearer ${tokenOf()}` };
    // A flood of initializes at once: two sessions open, every other one is refused at once.
    const all = await Promise.all(Array.from({ length: 12 }, () => post(url, auth)));
    const opened = all.filter((r) => r.status === 200);
    const refused = all.filter((r) => r.status === 503);
    expect(opened).toHaveLength(2);
    expect(refused).toHaveLength(10);
    expect(JSON.parse(refused[0]?.body ?? "{}")).toMatchObject({
      jsonrpc: "2.0",
      id: null,
      error: { code: -32000, message: expect.stringContaining("daemon.mcp_max_http_sessions is 2") },
    });
    expect(suite.stderr()).toContain("refused an MCP session: 2 MCP sessions are open");
    const c = await fx.client();
    expect((await c.call("audit.query", { kind: "session.opened" })).entries).toHaveLength(2);
  });

  it("closes the session of an initialize the transport refuses (a wrong Accept), so none is left open uncounted", async () => {
    const fx = await suite.start();
    writeFileSync(join(fx.home.config.home, "config.yaml"), "daemon:\n  mcp_max_http_sessions: 2\n");
    const { url } = await suite.serveHttp();
    const auth = { authorization: `Bearer ${tokenOf()}` };
    // The SDK refuses these (406) before the session is initialized: the daemon session the
    // server opened for each was never in its table, never counted, and never closed.
    for (let i = 0; i < 4; i++) {
      const r = await post(url, { ...auth, accept: "application/json" });
      expect(r.status).toBe(406);
    }
    const c = await fx.client();
    const count = async (kind: string) => (await c.call("audit.query", { kind })).entries.length;
    await until(async () => (await count("session.closed")) === (await count("session.opened")), 15_000);
    expect(await count("session.opened")).toBe(4);
    // The cap still serves two real sessions.
    expect((await post(url, auth)).status).toBe(200);
    expect((await post(url, auth)).status).toBe(200);
    expect((await post(url, auth)).status).toBe(503);
  }, 60_000);

  it("refuses a request without the token or with a wrong one (401), a rebinding Host and a foreign Origin (403)", async () => {
    const fx = await suite.start();
    const { url } = await suite.serveHttp();
    const port = new URL(url).port;
    const token = tokenOf();
    expect(statSync(join(fx.home.config.home, "mcp-token")).mode & 0o777).toBe(0o600);

    const none = await post(url, {});
    expect(none.status).toBe(401);
    expect((await post(url, { authorization: `Bearer ${token.slice(0, -1)}x` })).status).toBe(401);
    expect((await post(url, { authorization: token })).status).toBe(401);

    const rebound = await post(url, { host: `evil.example:${port}`, authorization: `Bearer ${token}` });
    expect(rebound.status).toBe(403);
    expect(rebound.body).toContain("evil.example");
    const wrongPort = await post(url, { host: "127.0.0.1:1", authorization: `Bearer ${token}` });
    expect(wrongPort.status).toBe(403);
    const foreign = await post(url, { origin: "http://evil.example", authorization: `Bearer ${token}` });
    expect(foreign.status).toBe(403);
    expect(foreign.body).toContain("evil.example");

    // Nothing of the refused requests opened a session.
    const c = await fx.client();
    expect((await c.call("audit.query", { kind: "session.opened" })).entries).toHaveLength(0);
    const ok = await post(url, { authorization: `Bearer ${token}`, origin: `http://localhost:${port}` });
    expect(ok.status).toBe(200);
  });

  it("speaks each protocol revision current clients ask for", async () => {
    await suite.start();
    const { url } = await suite.serveHttp();
    const token = tokenOf();
    for (const version of ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]) {
      const body = JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: version, capabilities: {}, clientInfo: { name: "old", version: "1" } },
      });
      const r = await post(url, { authorization: `Bearer ${token}` }, body);
      expect(r.status, version).toBe(200);
      const data = /data: (.*)/.exec(r.body)?.[1] ?? r.body;
      expect(JSON.parse(data).result.protocolVersion, version).toBe(version);
    }
  });

  it("ends a session whose client left without DELETE after --idle-timeout", async () => {
    const fx = await suite.start();
    const { url } = await suite.serveHttp(["--idle-timeout", "1"]);
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { Authorization: `Bearer ${tokenOf()}` } },
    });
    const client = new Client({ name: "vanishing", version: "1" });
    await client.connect(transport);
    await client.callTool({ name: "file_write", arguments: { path: "/workspace/idle.txt", content: "x" } });
    expect(suite.containers()).toHaveLength(1);
    // The client goes away without DELETE (its connections close, its session id stays valid).
    await client.close();
    await until(() => suite.containers().length === 0);
    const c = await fx.client();
    await until(async () => (await c.call("audit.query", { kind: "session.closed" })).entries.length === 1);
  });

  it("keeps the token across restarts", async () => {
    await suite.start();
    const first = await suite.serveHttp();
    const token = tokenOf();
    first.child.kill("SIGTERM");
    await new Promise((r) => first.child.once("exit", r));
    await suite.serveHttp();
    expect(tokenOf()).toBe(token);
  });

  it("refuses a non-loopback host without --allow-remote", async () => {
    const fx = await suite.start();
    const env = { ...process.env, ...fx.home.env } as NodeJS.ProcessEnv;
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", CLI, "mcp", "serve", "--http", "--host", "0.0.0.0"],
      {
        env,
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--allow-remote");
  });
});
