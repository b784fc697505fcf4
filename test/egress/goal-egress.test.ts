// Issue 13's Done-when for goal containers, through the path a model takes: a goal
// submitted over the daemon's socket, its agents driven by the real SDK against the
// scripted provider, every command run by exec in the goal's real container on its egress
// network, through the relay and the real proxy. The "internet" is a Docker network the
// test makes on 203.0.113.0/28 (TEST-NET-3, not an inward address; small, since the engine
// routes the whole subnet into the network) holding one upstream: plain HTTP on 8080 and HTTPS on 8443 with a
// certificate made here; `egress.hosts` names it.
// The root agent A holds network grants for plain.test:8080, secure.test:8443 and
// private.test:8080 (which egress.hosts points at 10.9.9.9); its child B holds only
// secure.test:8443, so A's plain.test:8080 is not B's to reach. Attacks: an ungranted
// host, an IP literal, a name resolving to a private address, an ungranted port, a
// mismatched SNI, a direct connection past the proxy, and B using A's credentials (read
// from a file A wrote) on A's port and on its own.

import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { type DaemonFixture, manifest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { type DockerUpstream, startDockerUpstream, UPSTREAM_NETS } from "./docker-upstream.js";
import { resultBefore, startGoalDaemon } from "./goal-daemon.js";

const UPSTREAM_IP = UPSTREAM_NETS.goalEgress.ip;

/** Run by A: the proxy variables as python's urllib reads them, a forged SNI, a direct connect. */
const CHECKS = `
import os, socket, ssl, base64, urllib.request
ctx = ssl.create_default_context(cafile='/workspace/ca.pem')
print('urllib', urllib.request.urlopen('https://secure.test:8443/u', context=ctx, timeout=10).read().decode())
p = urllib.request.getproxies()['https']
u = urllib.parse.urlsplit(p)
auth = base64.b64encode(f'{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password)}'.encode()).decode()
s = socket.create_connection((u.hostname, u.port), timeout=10)
s.sendall(f'CONNECT secure.test:8443 HTTP/1.1\\r\\nHost: secure.test:8443\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode())
print('connect', s.recv(200).decode().split('\\r\\n')[0])
try:
    t = ssl.create_default_context(cafile='/workspace/ca.pem')
    t.check_hostname = False
    t.wrap_socket(s, server_hostname='other.test').sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')
    print('sni passed')
except (OSError, ssl.SSLError) as e:
    print('sni refused', type(e).__name__)
try:
    socket.create_connection(('${UPSTREAM_IP}', 8080), timeout=5)
    print('direct passed')
except OSError as e:
    print('direct errno', e.errno)
`;

/** Run by B: A's credentials (the file A wrote) on A's port, then on B's own; B's own on A's host. */
const STEAL = `
import os, socket, base64, urllib.parse
a = urllib.parse.urlsplit(open('/workspace/a-proxy').read().strip())
b = urllib.parse.urlsplit(os.environ['HTTP_PROXY'])
def get(port, user, password, host):
    auth = base64.b64encode(f'{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}'.encode()).decode()
    s = socket.create_connection((b.hostname, port), timeout=10)
    s.sendall(f'GET http://{host}/ HTTP/1.1\\r\\nHost: {host}\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode())
    return s.recv(200).decode().split('\\r\\n')[0]
try:
    print('a-port', get(a.port, a.username, a.password, 'plain.test:8080'))
except OSError as e:
    print('a-port errno', e.errno)
print('a-creds', get(b.port, a.username, a.password, 'plain.test:8080'))
print('own', get(b.port, b.username, b.password, 'plain.test:8080'))
`;

const CURLS = [
  "curl -sS --max-time 10 http://plain.test:8080/p; echo",
  "curl -sS --max-time 10 --cacert /workspace/ca.pem https://secure.test:8443/s; echo",
  "curl -s -o /dev/null -w 'other=%{http_code}\\n' http://other.test:8080/",
  `curl -s -o /dev/null -w 'ip=%{http_code}\\n' http://${UPSTREAM_IP}:8080/`,
  "curl -s -o /dev/null -w 'private=%{http_code}\\n' http://private.test:8080/",
  "curl -s -o /dev/null --max-time 10 https://secure.test:443/; echo port443=$?",
].join("; ");

let server: ProviderServer;
let fx: DaemonFixture;
let c: AidoClient;
let upstream: DockerUpstream;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  fx = await startGoalDaemon(server, (cfg) => {
    cfg.egress = {
      ...cfg.egress,
      hosts: {
        "plain.test": UPSTREAM_IP,
        "secure.test": UPSTREAM_IP,
        "other.test": UPSTREAM_IP,
        "private.test": "10.9.9.9",
      },
    };
  });
  upstream = await startDockerUpstream(UPSTREAM_NETS.goalEgress, fx.home.config.sandbox.image);
  c = await fx.client();
}, 120_000);

afterAll(async () => {
  await fx?.close();
  await server?.close();
  upstream?.close();
});

describe("a goal whose agents hold network grants", () => {
  it("reaches granted hosts with curl and python, refuses everything else, per agent, all audited", async () => {
    const a = server.script('manifest "net-a"', [
      turn.toolUse("file_write", {
        path: "/workspace/ca.pem",
        content: upstream.ca,
      }),
      turn.toolUse("file_write", { path: "/workspace/checks.py", content: CHECKS }),
      turn.toolUse("file_write", { path: "/workspace/steal.py", content: STEAL }),
      turn.toolUse("exec", { command: 'echo "$HTTP_PROXY" > /workspace/a-proxy; echo "proxy=$HTTPS_PROXY"' }),
      turn.toolUse("exec", { command: CURLS }),
      turn.toolUse("exec", { command: "python3 /workspace/checks.py" }),
      turn.toolUse("spawn_agent", {
        manifest: {
          name: "net-b",
          system_prompt: "You are net-b, under test.",
          capabilities: [
            "tool: exec",
            "exec: python3 *",
            "file_read: /workspace/**",
            "network: secure.test:8443",
          ],
        },
        message: "Try the network.",
      }),
      turn.text("done"),
    ]);
    const b = server.script('manifest "net-b"', [
      turn.toolUse("exec", { command: "python3 /workspace/steal.py" }),
      turn.text("tried"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "reach out",
      manifest: manifest("net-a", {
        capabilities: [
          "tool: file_write",
          "tool: exec",
          "tool: spawn_agent",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "exec: *",
          "network: plain.test:8080",
          "network: secure.test:8443",
          "network: private.test:8080",
          "spawn_child: [net-b]",
        ],
      }),
    });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 120_000 });
    expect(end.state).toBe("succeeded");
    // The goal's end took its relay and network with its container.
    const left = (...what: string[]) =>
      execFileSync("docker", [...what, "-q", "--filter", `label=aido.relay=${goal_id}`], {
        encoding: "utf8",
      }).trim();
    expect({
      relay: left("ps", "-a"),
      network: left("network", "ls"),
      logs: fx.logs.filter((l) => !l.startsWith("listening on")),
    }).toEqual({
      relay: "",
      network: "",
      logs: [],
    });

    // The proxy variables name the relay with A's credentials; the model sees no password.
    const env = resultBefore(a.requests, 4);
    expect(env).toMatch(/proxy=http:\/\/[^:]+:\[hidden\]@[0-9.]+:31[0-9]{2}/);

    const curls = resultBefore(a.requests, 5);
    expect(curls).toContain("plain-ok /p");
    expect(curls).toContain("secure-ok /s");
    expect(curls).toContain("other=403");
    expect(curls).toContain("ip=403");
    expect(curls).toContain("private=403");
    expect(curls).toMatch(/port443=56/); // CONNECT refused: curl's "tunnel failed"

    const py = resultBefore(a.requests, 6);
    expect(py).toContain("urllib secure-ok /u");
    expect(py).toContain("connect HTTP/1.1 200");
    expect(py).toMatch(/sni refused/);
    expect(py).toContain("direct errno 13");

    const stolen = resultBefore(b.requests, 1);
    expect(stolen).toContain("a-port errno 13");
    expect(stolen).toMatch(/a-creds HTTP\/1\.1 407/);
    expect(stolen).toMatch(/own HTTP\/1\.1 403/);

    const denied = (await c.call("audit.query", { goal_id, kind: "egress.denied", limit: 100 })).entries;
    const why = denied.map((e) => {
      const p = e.payload as { host: string; port: number; stage: string };
      return `${p.stage} ${p.host}:${p.port}`;
    });
    expect(why).toEqual(
      expect.arrayContaining([
        "capability other.test:8080",
        `capability ${UPSTREAM_IP}:8080`,
        "address private.test:8080",
        "capability secure.test:443",
        "tls secure.test:8443",
        "auth plain.test:8080",
        "capability plain.test:8080",
      ]),
    );
    const opened = (await c.call("audit.query", { goal_id, kind: "egress.open", limit: 100 })).entries;
    expect(opened.map((e) => (e.payload as { host: string }).host)).toEqual(
      expect.arrayContaining(["plain.test", "secure.test"]),
    );
    // No password anywhere in the audit.
    const all = JSON.stringify((await c.call("audit.query", { goal_id, limit: 1000 })).entries);
    expect(all).not.toMatch(/@[0-9.]+:31[0-9]{2}/);
  }, 180_000);

  it("gives a goal without network grants no network at all", async () => {
    server.script('manifest "no-net"', [
      turn.toolUse("exec", { command: "cat /proc/net/route | wc -l; env | grep -ci proxy" }),
      turn.text("done"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "stay in",
      manifest: manifest("no-net", {
        capabilities: ["tool: exec", "exec: *", "file_read: /workspace/**"],
      }),
    });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 60_000 });
    expect(end.state).toBe("succeeded");
    const r = server.requestsMatching('manifest "no-net"');
    expect(resultBefore(r as never, 1)).toMatch(/stdout ---\n1\n0\n/);
  }, 60_000);
});
