// Issue 13, "no network unless granted", for external stdio MCP servers, through the path
// a model takes: tools called with tool.invoke over the daemon's socket, the server's
// container (real Docker) on an egress network of its own, its relay and the real proxy.
// The test server (.mjs written here, mounted read-only) has a tool `fetch` that runs curl
// with the proxy variables it was given, and `tcp` that connects directly. The "internet"
// is one upstream on a Docker network of its own (UPSTREAM_NETS, small: the engine routes
// all of it into the network), named by egress.hosts. Server "web" may reach
// plain.test:8080 (and confirm.test / denied.test:8080, which policy rules then refuse);
// "web-off", the same code without network entries, reaches nothing. The goal's own
// container (its agent holds a network grant, so it has a network and relay too) and the
// server cannot reach each other.

import { existsSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { McpServerConfig } from "../../src/config.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { containersOfHome } from "../support/home.js";
import { type DockerUpstream, startDockerUpstream, UPSTREAM_NETS } from "./docker-upstream.js";
import { docker, removeRuntimeNetworks, serverCodeDir } from "./mcp-server-code.js";

const UPSTREAM_IP = UPSTREAM_NETS.mcpServerEgress.ip;

const SERVER = String.raw`
import { createInterface } from "node:readline";
import { execFile } from "node:child_process";
import net from "node:net";

const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");
const curl = (url) =>
  new Promise((resolve) =>
    execFile("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "8", url], (e, out) =>
      resolve("status=" + out + (e ? " exit=" + e.code : "")),
    ),
  );
const tcp = (host, port) =>
  new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(3000, () => {
      s.destroy();
      resolve("failed: ETIMEDOUT");
    });
    s.on("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.on("error", (e) => resolve("failed: " + e.code));
  });
const tools = [
  { name: "fetch", inputSchema: { type: "object", properties: { url: { type: "string" } } } },
  {
    name: "tcp",
    inputSchema: { type: "object", properties: { host: { type: "string" }, port: { type: "number" } } },
  },
];
const rl = createInterface({ input: process.stdin });
rl.on("close", () => process.exit(0));
rl.on("line", async (line) => {
  const msg = JSON.parse(line);
  if (msg.id === undefined) return;
  const reply = (result) => send({ jsonrpc: "2.0", id: msg.id, result });
  if (msg.method === "initialize")
    return reply({
      protocolVersion: msg.params.protocolVersion,
      capabilities: { tools: {} },
      serverInfo: { name: "net", version: "1" },
    });
  if (msg.method === "tools/list") return reply({ tools });
  if (msg.method === "tools/call") {
    const a = msg.params.arguments;
    const text = msg.params.name === "fetch" ? await curl(a.url) : await tcp(a.host, a.port);
    return reply({ content: [{ type: "text", text }] });
  }
  send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "no" } });
});
`;

let codeDir: string;
let upstream: DockerUpstream | undefined;

beforeAll(() => {
  requireDocker();
  codeDir = serverCodeDir("mcpnet-code-", "net.mjs", SERVER);
});
afterAll(() => {
  upstream?.close();
  rmSync(codeDir, { recursive: true, force: true });
});
let home: string | undefined;
// A failed test leaves its server's network behind (the fixture removes containers only).
const suite = useDaemonPerTest({
  afterEach: () => {
    if (home) removeRuntimeNetworks(home);
    home = undefined;
  },
});

function server(name: string, network: string[]): McpServerConfig {
  return {
    name,
    transport: "stdio",
    command: ["node", "/opt/net/net.mjs"],
    env: {},
    workspace: "none",
    mounts: [{ source: realpathSync(codeDir), target: "/opt/net" }],
    network: network.map((n) => {
      const [host, port] = n.split(":");
      return { kind: "network" as const, host: host as string, port: Number(port) };
    }),
    readOnlyTools: ["*"],
    timeoutMs: 60_000,
  };
}

/** The address of a container on its one network. */
function addressOf(container: string): string {
  return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container);
}

describe("a stdio MCP server with network entries", () => {
  it("reaches its granted hosts through the proxy only, audited as mcp:<server>; nothing else, and goes with the goal", async () => {
    const fx = await suite.start({
      runtime: { backend: undefined },
      config: (cfg) => {
        cfg.mcp.servers = {
          web: server("web", ["plain.test:8080", "confirm.test:8080", "denied.test:8080"]),
          "web-off": server("web-off", []),
        };
        cfg.grantCeilings = [
          ["tool: *", "exec: *", "file_read: /workspace/**", "network: *:*", "mcp: web/*", "mcp: web-off/*"],
        ];
        cfg.policy.deny = [...cfg.policy.deny, "network: denied.test:8080"];
        cfg.policy.confirm = [...cfg.policy.confirm, "network: confirm.test:8080"];
        cfg.egress = {
          ...cfg.egress,
          hosts: {
            "plain.test": UPSTREAM_IP,
            "other.test": UPSTREAM_IP,
            "confirm.test": UPSTREAM_IP,
            "denied.test": UPSTREAM_IP,
          },
        };
      },
    });
    home = fx.home.config.home;
    upstream ??= await startDockerUpstream(UPSTREAM_NETS.mcpServerEgress, fx.home.config.sandbox.image);
    const c = await fx.client();
    for (const name of ["web", "web-off"])
      expect((await c.call("mcp.approve", { server: name })).state).toBe("approved");
    const a = await c.call("agent.spawn", {
      manifest: manifest("mcpnet-user", {
        lifecycle: "persistent",
        capabilities: [
          "tool: exec",
          "exec: *",
          "file_read: /workspace/**",
          "network: plain.test:8080",
          "mcp: web/*",
          "mcp: web-off/*",
        ],
        mcp_servers: ["web", "web-off"],
      }),
    });
    const goalId = a.goal_id as string;
    const call = async (tool: string, input: Record<string, unknown>) =>
      String((await c.call("tool.invoke", { agent_id: a.agent_id, tool, input })).output);

    // Granted: the upstream answers through relay and proxy.
    expect(await call("mcp__web__fetch", { url: "http://plain.test:8080/granted" })).toBe("status=200");
    // Not granted, or refused by the operator's rules (a confirm rule asks nobody for a server): 403.
    expect(await call("mcp__web__fetch", { url: "http://other.test:8080/" })).toBe("status=403");
    expect(await call("mcp__web__fetch", { url: "http://plain.test:9090/" })).toBe("status=403");
    expect(await call("mcp__web__fetch", { url: `http://${UPSTREAM_IP}:8080/` })).toBe("status=403");
    expect(await call("mcp__web__fetch", { url: "http://denied.test:8080/" })).toBe("status=403");
    expect(await call("mcp__web__fetch", { url: "http://confirm.test:8080/" })).toBe("status=403");
    // Past the proxy: no route out of its network.
    expect(await call("mcp__web__tcp", { host: UPSTREAM_IP, port: 8080 })).toMatch(/^failed: /);
    // The same code without network entries: no proxy, no network at all.
    expect(await call("mcp__web-off__fetch", { url: "http://plain.test:8080/" })).toMatch(
      /^status=000 exit=/,
    );
    expect(await call("mcp__web-off__tcp", { host: UPSTREAM_IP, port: 8080 })).toMatch(/^failed: /);

    // The goal's container and relay, and the server's container and relay: strangers.
    await c.call("tool.invoke", { agent_id: a.agent_id, tool: "exec", input: { command: "true" } });
    const rt = fx.home.config.home;
    const names = containersOfHome(rt);
    const serverContainer = names.find((n) => n === `aido-mcp-${goalId}-web`) as string;
    const serverRelay = names.find((n) => n.endsWith(`_relay_mcpnet.web.${goalId}`)) as string;
    const goalRelay = names.find((n) => n.endsWith(`_relay_${goalId}`)) as string;
    const goalContainer = names.find((n) => n.endsWith(`_goal_${goalId}`));
    expect({ serverContainer, serverRelay, goalRelay, goalContainer: !!goalContainer }).toEqual({
      serverContainer: `aido-mcp-${goalId}-web`,
      serverRelay: expect.any(String),
      goalRelay: expect.any(String),
      goalContainer: true,
    });
    expect(names.some((n) => n.includes("web-off") && n.includes("relay"))).toBe(false);
    // web sits on its own network with the proxy variables; web-off on none, with none of them.
    const inspect = (name: string): [string, string[]] => {
      const [info] = JSON.parse(docker("inspect", name)) as {
        HostConfig: { NetworkMode: string };
        Config: { Env: string[] };
      }[];
      return [info?.HostConfig.NetworkMode ?? "", info?.Config.Env ?? []];
    };
    const [webNet, webEnv] = inspect(serverContainer);
    const [offNet, offEnv] = inspect(`aido-mcp-${goalId}-web-off`);
    expect(webNet).toMatch(new RegExp(`_egress_mcpnet\\.web\\.${goalId}$`));
    expect(offNet).toBe("none");
    expect(offEnv.filter((e) => /proxy/i.test(e))).toEqual([]);
    const proxyUrl = webEnv.find((e) => e.startsWith("HTTPS_PROXY="))?.slice("HTTPS_PROXY=".length) ?? "";
    expect(proxyUrl).toMatch(
      new RegExp(
        `^http://mcp\\.web:[A-Za-z0-9_-]{32}@${addressOf(serverRelay).replaceAll(".", "\\.")}:3128$`,
      ),
    );
    const password = new URL(proxyUrl).password;
    const server2goal = [
      await call("mcp__web__tcp", { host: addressOf(goalRelay), port: 3128 }),
      await call("mcp__web__tcp", { host: addressOf(goalContainer as string), port: 22 }),
    ];
    expect(server2goal.every((r) => r.startsWith("failed: "))).toBe(true);
    const probe = (host: string, port: number) =>
      `node -e "const s=require('net').connect(${port},'${host}');s.setTimeout(3000,()=>{console.log('failed');process.exit()});s.on('connect',()=>{console.log('connected');process.exit()});s.on('error',e=>{console.log('failed',e.code);process.exit()})"`;
    const goal2server = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "exec",
      input: {
        command: `${probe(addressOf(serverRelay), 3128)}; ${probe(addressOf(serverContainer), 80)}`,
      },
    });
    expect(String(goal2server.output).match(/failed/g)?.length).toBe(2);

    // Audited under the real goal, as mcp:web; refusals with their stage.
    const entries = (kind: string) =>
      c.call("audit.query", { goal_id: goalId, kind, limit: 100 }).then((r) => r.entries);
    const denied = (await entries("egress.denied")).map((e) => {
      const p = e.payload as { host: string; port: number; stage: string };
      return `${e.agent_id} ${p.stage} ${p.host}:${p.port}`;
    });
    expect(denied.sort()).toEqual(
      [
        "mcp:web approval confirm.test:8080",
        `mcp:web capability ${UPSTREAM_IP}:8080`,
        "mcp:web capability other.test:8080",
        "mcp:web capability plain.test:9090",
        "mcp:web policy denied.test:8080",
      ].sort(),
    );
    const opened = await entries("egress.open");
    expect(opened.map((e) => `${e.agent_id} ${(e.payload as { host: string }).host}`)).toEqual([
      "mcp:web plain.test",
    ]);
    // Its password is nowhere in the audit.
    expect(JSON.stringify(await c.call("audit.query", { goal_id: goalId, limit: 1000 }))).not.toContain(
      password,
    );

    // The goal's end takes the server's container, relay, network and listener folder.
    await c.call("agent.stop", { agent_id: a.agent_id });
    const share = join(rt, "egress", `mcpnet.web.${goalId}`);
    const left = () => ({
      containers: containersOfHome(rt).filter((n) => n.includes(goalId)),
      networks: docker("network", "ls", "-q", "--filter", `label=aido.relay=mcpnet.web.${goalId}`),
      share: existsSync(share),
    });
    const none = { containers: [], networks: "", share: false };
    for (let i = 0; i < 100 && JSON.stringify(left()) !== JSON.stringify(none); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(left()).toEqual(none);
  }, 240_000);
});
