// Attacks on a goal's egress from inside its container, through the path a model takes: a
// goal submitted over the daemon's socket, its agents driven by the real SDK against the
// scripted provider, every command run by exec in the goal's real container on its egress
// network. The root agent A holds network grants for granted.test:8080 and other.test:8080;
// its child B holds only other.test:8080 and reads A's proxy URL (credentials and relay
// port) from a file A wrote. B's plain connect to A's port is refused by its Landlock TCP
// rule; these are the connects the rule did not see: a TCP Fast Open send (sendto with
// MSG_FASTOPEN connects without connect(2)) and a Multipath TCP socket (which falls back to
// TCP with the relay). And with `sandbox.landlock: off` the rule was dropped with the file
// rules. Each let B speak on A's port with A's credentials: A's grant served B and the
// audit named A for B's connection. Last, a process in the container outside every agent's
// Landlock domain (docker exec) floods a relay port no caller holds: each connection is
// closed unread and on record, once per second with a count.

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { type DaemonFixture, manifest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { resultBefore, startGoalDaemon } from "./goal-daemon.js";

/** Run by B: A's credentials on A's port, by a plain connect, an MPTCP socket and Fast Open. */
const RIDE = `
import socket, base64, urllib.parse
a = urllib.parse.urlsplit(open('/workspace/a-proxy').read().strip())
cred = f'{urllib.parse.unquote(a.username)}:{urllib.parse.unquote(a.password)}'
auth = base64.b64encode(cred.encode()).decode()
req = f'GET http://granted.test:8080/ HTTP/1.1\\r\\nHost: granted.test:8080\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode()
def plain():
    s = socket.create_connection((a.hostname, a.port), timeout=10); s.sendall(req); return s
def mptcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262); s.settimeout(10)
    s.connect((a.hostname, a.port)); s.sendall(req); return s
def fastopen():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.sendto(req, socket.MSG_FASTOPEN, (a.hostname, a.port)); return s
for name, open_ in (('plain', plain), ('mptcp', mptcp), ('fastopen', fastopen)):
    try:
        s = open_(); s.settimeout(10)
        print(name, 'answered', s.recv(200).decode().split('\\r\\n')[0])
    except OSError as e:
        print(name, 'errno', e.errno)
`;

let server: ProviderServer;
let fx: DaemonFixture;
let c: AidoClient;

async function startDaemon(landlock: "on" | "off"): Promise<void> {
  fx = await startGoalDaemon(server, (cfg) => {
    cfg.sandbox.landlock = landlock;
    // Nothing answers there: a connection the proxy let through ends in 502 (upstream).
    cfg.egress = { ...cfg.egress, hosts: { "granted.test": "198.51.100.77" }, connectTimeoutMs: 1000 };
  });
  c = await fx.client();
}

async function stopDaemon(): Promise<void> {
  await fx?.close();
}

/** A runs first (its proxy URL to a file, the script), then spawns B, who runs RIDE. */
async function ride(): Promise<{ goal_id: string; out: string }> {
  server.script('manifest "ride-a"', [
    turn.toolUse("exec", { command: 'echo "$HTTP_PROXY" > /workspace/a-proxy' }),
    turn.toolUse("file_write", { path: "/workspace/ride.py", content: RIDE }),
    turn.toolUse("spawn_agent", {
      manifest: {
        name: "ride-b",
        system_prompt: "You are ride-b, under test.",
        capabilities: [
          "tool: exec",
          "exec: python3 *",
          "file_read: /workspace/**",
          "network: other.test:8080",
        ],
      },
      message: "Ride A's port.",
    }),
    turn.text("done"),
  ]);
  const b = server.script('manifest "ride-b"', [
    turn.toolUse("exec", { command: "python3 /workspace/ride.py" }),
    turn.text("tried"),
  ]);
  const { goal_id } = await c.call("goal.submit", {
    goal: "ride another agent's port",
    manifest: manifest("ride-a", {
      capabilities: [
        "tool: file_write",
        "tool: exec",
        "tool: spawn_agent",
        "file_read: /workspace/**",
        "file_write: /workspace/**",
        "exec: *",
        "network: granted.test:8080",
        "network: other.test:8080",
        "spawn_child: [ride-b]",
      ],
    }),
  });
  const end = await c.call("goal.wait", { goal_id, timeout_ms: 120_000 });
  expect(end.state).toBe("succeeded");
  return { goal_id, out: resultBefore(b.requests, 1) };
}

/** Nothing on record speaks for A, who never connected (no connection of B's under A's name). */
async function nothingAsA(goal_id: string): Promise<void> {
  for (const kind of ["egress.open", "egress.denied"]) {
    const entries = (await c.call("audit.query", { goal_id, kind, limit: 100 })).entries;
    expect(entries).toEqual([]);
  }
}

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
});

afterAll(async () => {
  await server?.close();
});

describe("an agent riding another agent's relay port past its Landlock TCP rule", () => {
  beforeAll(() => startDaemon("on"), 120_000);
  afterAll(stopDaemon);

  it("cannot connect there by TCP Fast Open or Multipath TCP, and A's grant never serves B", async () => {
    const { goal_id, out } = await ride();
    expect(out).toContain("plain errno 13"); // EACCES: the Landlock TCP rule
    expect(out).toContain("mptcp errno 93"); // EPROTONOSUPPORT: no MPTCP socket is made
    expect(out).toContain("fastopen errno 95"); // EOPNOTSUPP: no Fast Open send
    expect(out).not.toContain("answered");
    await nothingAsA(goal_id);
  }, 180_000);
});

describe("with sandbox.landlock: off (no file rules)", () => {
  beforeAll(() => startDaemon("off"), 120_000);
  afterAll(stopDaemon);

  it("the TCP rule still keeps B off A's port", async () => {
    const { goal_id, out } = await ride();
    expect(out).toContain("plain errno 13");
    expect(out).toContain("mptcp errno 93");
    expect(out).toContain("fastopen errno 95");
    expect(out).not.toContain("answered");
    await nothingAsA(goal_id);
  }, 180_000);
});

const run = promisify(execFile);

/** Run in the goal's container, outside any agent's Landlock domain: N connects on `port`. */
const FLOOD = `
import socket, sys, urllib.parse
relay = urllib.parse.urlsplit(open('/workspace/a-proxy').read().strip()).hostname
for _ in range(int(sys.argv[2])):
    s = socket.create_connection((relay, int(sys.argv[1])), timeout=5)
    s.sendall(b'CONNECT granted.test:8080 HTTP/1.1\\r\\n\\r\\n')
    if s.recv(100): print('answered')
    s.close()
print('flooded')
`;

/** Connects once on each of `count` relay ports from `first` (argv 1, 2): a flood spread wide. */
const FLOOD_WIDE = `
import socket, sys, urllib.parse
relay = urllib.parse.urlsplit(open('/workspace/a-proxy').read().strip()).hostname
first, count = int(sys.argv[1]), int(sys.argv[2])
for port in range(first, first + count):
    s = socket.create_connection((relay, port), timeout=5)
    s.sendall(b'CONNECT granted.test:8080 HTTP/1.1\\r\\n\\r\\n')
    if s.recv(100): print('answered')
    s.close()
print('flooded')
`;

/** Submit a goal whose agent writes its proxy URL where FLOOD reads it, then stays up 6 s. */
async function goalHoldingOnePort(name: string): Promise<{ goal_id: string; container: string }> {
  server.script(`manifest "${name}"`, [
    turn.toolUse("exec", { command: 'echo "$HTTP_PROXY" > /workspace/a-proxy' }),
    // The goal (and its relay's listener) stays up while the test connects.
    turn.text("done", { delayMs: 6000 }),
  ]);
  const { goal_id } = await c.call("goal.submit", {
    goal: "hold a relay port",
    manifest: manifest(name, {
      capabilities: [
        "tool: exec",
        "exec: *",
        "file_read: /workspace/**",
        "file_write: /workspace/**",
        "network: granted.test:8080",
      ],
    }),
  });
  const proxyFile = join(fx.home.config.goalsDir, goal_id, "workspace", "a-proxy");
  for (let i = 0; i < 300 && !existsSync(proxyFile); i++) await new Promise((ok) => setTimeout(ok, 100));
  const ps = await run("docker", ["ps", "--filter", `name=_goal_${goal_id}$`, "--format", "{{.Names}}"]);
  return { goal_id, container: ps.stdout.trim() };
}

describe("a process in the goal's container outside every agent's Landlock rule", () => {
  beforeAll(() => startDaemon("on"), 120_000);
  afterAll(stopDaemon);

  it("is refused on a relay port no caller holds, audited to the goal once a second with a count", async () => {
    const { goal_id, container } = await goalHoldingOnePort("unheld-a");
    const port = 3128 + 100;
    // Not execFileSync: the daemon runs in this process, and must answer meanwhile.
    const { stdout: out } = await run("docker", [
      "exec",
      container,
      "python3",
      "-c",
      FLOOD,
      String(port),
      "30",
    ]);
    expect(out.trim()).toBe("flooded");
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");
    const denied = (await c.call("audit.query", { goal_id, kind: "egress.denied", limit: 100 })).entries;
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.length).toBeLessThan(6);
    const payloads = denied.map((e) => e.payload as { reason: string; connections: number });
    for (const e of denied) {
      expect(e).toMatchObject({ goal_id, agent_id: null, payload: { stage: "relay", relay_port: port } });
    }
    for (const p of payloads)
      expect(p.reason).toContain(`port ${port} of goal ${goal_id}'s egress relay is held by no caller`);
    expect(payloads.reduce((n, p) => n + p.connections, 0)).toBe(30);
    // Nothing was let through for anyone.
    expect((await c.call("audit.query", { goal_id, kind: "egress.open", limit: 100 })).entries).toEqual([]);
  }, 180_000);

  it("spreading its flood over the relay's ports still costs one entry a second, every port named", async () => {
    const { goal_id, container } = await goalHoldingOnePort("unheld-wide");
    const first = 3128 + 100;
    const count = 120;
    const { stdout: out } = await run("docker", [
      "exec",
      container,
      "python3",
      "-c",
      FLOOD_WIDE,
      String(first),
      String(count),
    ]);
    expect(out.trim()).toBe("flooded");
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");
    const denied = (await c.call("audit.query", { goal_id, kind: "egress.denied", limit: 1000 })).entries;
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.length).toBeLessThan(6);
    const payloads = denied.map(
      (e) => e.payload as { reason: string; connections: number; relay_port: number; relay_ports?: number[] },
    );
    expect(payloads.reduce((n, p) => n + p.connections, 0)).toBe(count);
    const named = payloads.flatMap((p) => p.relay_ports ?? [p.relay_port]).sort((a, b) => a - b);
    expect(named).toEqual(Array.from({ length: count }, (_, i) => first + i));
    const wide = payloads.find((p) => (p.relay_ports?.length ?? 0) > 1);
    expect(wide?.reason).toMatch(
      new RegExp(`^\\d+ ports \\(\\d+ to \\d+\\) of goal ${goal_id}'s egress relay are held by no caller`),
    );
    expect((await c.call("audit.query", { goal_id, kind: "egress.open", limit: 100 })).entries).toEqual([]);
  }, 180_000);
});
