// A stdio MCP server with network entries holds its proxy credentials in its environment
// (the caller mcp:<server>): what it prints of them reaches neither the model nor the audit.
// Through the path a model takes: tools called with tool.invoke over the daemon's socket, the
// server in its container (real Docker) on its egress network. The test server (.mjs written
// here, mounted read-only) has `env`, which prints its proxy URL and the Basic value curl -v
// shows, as a shell server's tool would, and `crash`, which writes its proxy URL to stderr and
// exits: the end's reason quotes that stderr to the caller and in `mcp.disconnected`.

import { realpathSync, rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { McpServerConfig } from "../../src/config.js";
import { manifest, rpcError, useDaemonPerTest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { docker, removeRuntimeNetworks, serverCodeDir } from "./mcp-server-code.js";

const SERVER = String.raw`
import { createInterface } from "node:readline";

const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");
// Started without network (and so without proxy) to be approved: read when called.
const proxy = () => process.env.HTTPS_PROXY ?? "";
const basic = () => {
  const u = new URL(proxy());
  return Buffer.from(decodeURIComponent(u.username) + ":" + decodeURIComponent(u.password)).toString("base64");
};
const tools = [
  { name: "env", inputSchema: { type: "object" } },
  { name: "crash", inputSchema: { type: "object" } },
];
const rl = createInterface({ input: process.stdin });
rl.on("close", () => process.exit(0));
rl.on("line", (line) => {
  const msg = JSON.parse(line);
  if (msg.id === undefined) return;
  const reply = (result) => send({ jsonrpc: "2.0", id: msg.id, result });
  if (msg.method === "initialize")
    return reply({
      protocolVersion: msg.params.protocolVersion,
      capabilities: { tools: {} },
      serverInfo: { name: "leaky", version: "1" },
    });
  if (msg.method === "tools/list") return reply({ tools });
  if (msg.params?.name === "env")
    return reply({
      content: [{ type: "text", text: "HTTPS_PROXY=" + proxy() + "\nProxy-Authorization: Basic " + basic() }],
      structuredContent: { proxy: proxy() },
    });
  if (msg.params?.name === "crash") {
    process.stderr.write("fatal: cannot reach " + proxy() + "\n", () => process.exit(3));
    return;
  }
  send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "no" } });
});
`;

let codeDir: string;
let home: string | undefined;

beforeAll(() => {
  requireDocker();
  codeDir = serverCodeDir("mcpsecret-code-", "leaky.mjs", SERVER);
});
afterAll(() => rmSync(codeDir, { recursive: true, force: true }));

// A failed test leaves its server's network behind (the fixture removes containers only).
const suite = useDaemonPerTest({
  afterEach: () => {
    if (home) removeRuntimeNetworks(home);
    home = undefined;
  },
});

const leaky: McpServerConfig = {
  name: "leaky",
  transport: "stdio",
  command: ["node", "/opt/leaky/leaky.mjs"],
  env: {},
  workspace: "none",
  mounts: [],
  network: [{ kind: "network", host: "plain.test", port: 8080 }],
  readOnlyTools: ["*"],
  timeoutMs: 60_000,
};

describe("a stdio MCP server's proxy credentials", () => {
  it("are blanked in its tool results, in the error of its end and in mcp.disconnected", async () => {
    const fx = await suite.start({
      runtime: { backend: undefined },
      config: (cfg) => {
        cfg.mcp.servers = {
          leaky: { ...leaky, mounts: [{ source: realpathSync(codeDir), target: "/opt/leaky" }] },
        };
        cfg.grantCeilings = [["tool: *", "mcp: leaky/*"]];
      },
    });
    home = fx.home.config.home;
    const c = await fx.client();
    expect((await c.call("mcp.approve", { server: "leaky" })).state).toBe("approved");
    const a = await c.call("agent.spawn", {
      manifest: manifest("leaky-user", {
        lifecycle: "persistent",
        capabilities: ["mcp: leaky/*"],
        mcp_servers: ["leaky"],
      }),
    });
    const goalId = a.goal_id as string;
    const invoke = (tool: string) => c.call("tool.invoke", { agent_id: a.agent_id, tool, input: {} });

    const shown = String((await invoke("mcp__leaky__env")).output);
    const [info] = JSON.parse(docker("inspect", `aido-mcp-${goalId}-leaky`)) as {
      Config: { Env: string[] };
    }[];
    const proxyUrl = info?.Config.Env.find((e) => e.startsWith("HTTPS_PROXY="))?.slice(12) ?? "";
    const password = new URL(proxyUrl).password;
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const basic = Buffer.from(`mcp.leaky:${password}`).toString("base64");
    expect(shown).toMatch(
      /^HTTPS_PROXY=http:\/\/mcp\.leaky:\[redacted\]@[\d.]+:3128\nProxy-Authorization: Basic \[redacted\]$/,
    );

    const crash = await rpcError(invoke("mcp__leaky__crash"));
    expect(crash.message).toContain("fatal: cannot reach http://mcp.leaky:[redacted]@");
    const audit = JSON.stringify(await c.call("audit.query", { goal_id: goalId, limit: 1000 }));
    expect(audit).toContain("fatal: cannot reach http://mcp.leaky:[redacted]@");
    for (const text of [shown, crash.message, audit]) {
      expect(text).not.toContain(password);
      expect(text).not.toContain(basic);
    }
    await c.call("agent.stop", { agent_id: a.agent_id });
  }, 180_000);
});
