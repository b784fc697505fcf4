// Issue 13's Done-when for the human sandbox: `permissions.network` as a host list, through
// the CLI against the real engine. `aido sandbox up` puts the sandbox on an internal network
// of its own with a relay; `aido run` serves the egress proxy in its own process for the
// run, with the list as its only policy. The "internet" is a Docker network this test makes
// on a /28 of its own (UPSTREAM_NETS; small: the engine routes all of it into the network, so a
// wider one could shadow real hosts of the range) holding
// one upstream: plain HTTP on 8080 and HTTPS on 8443 with a certificate made here; the
// operator's config.yaml (`egress.hosts`) names it, and points private.test at 10.9.9.9.
// The script attacks as an AI-written script would: an unlisted host, an IP literal, a name
// resolving to a private address, an unlisted port, a forged SNI, a direct connection past
// the proxy; each fails and is in the run's network log with its reason.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listRecords } from "../../src/humansandbox/state.js";
import { sandboxUp } from "../../src/humansandbox/up.js";
import { type DockerUpstream, startDockerUpstream, UPSTREAM_NETS } from "../egress/docker-upstream.js";
import { makeProject, type Project, startRun } from "./fixture.js";

const UPSTREAM_IP = UPSTREAM_NETS.humanSandbox.ip;

const CHECKS = `
import os, socket, ssl, base64, urllib.request, urllib.parse
ctx = ssl.create_default_context(cafile='/inputs/ca.pem')
print('urllib', urllib.request.urlopen('https://secure.test:8443/u', context=ctx, timeout=10).read().decode())
print('urllib-plain', urllib.request.urlopen('http://plain.test:8080/q', timeout=10).read().decode())
u = urllib.parse.urlsplit(urllib.request.getproxies()['https'])
auth = base64.b64encode(f'{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password)}'.encode()).decode()
s = socket.create_connection((u.hostname, u.port), timeout=10)
s.sendall(f'CONNECT secure.test:8443 HTTP/1.1\\r\\nHost: secure.test:8443\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode())
print('connect', s.recv(200).decode().split('\\r\\n')[0])
try:
    t = ssl.create_default_context(cafile='/inputs/ca.pem')
    t.check_hostname = False
    t.wrap_socket(s, server_hostname='other.test').sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')
    print('sni passed')
except (OSError, ssl.SSLError) as e:
    print('sni refused', type(e).__name__)
for port in (8080, 8443):
    try:
        socket.create_connection(('${UPSTREAM_IP}', port), timeout=5)
        print('direct passed')
    except OSError as e:
        print('direct errno', e.errno)
try:
    socket.create_connection((u.hostname, u.port + 1), timeout=5)
    print('other relay port passed')
except OSError as e:
    print('other relay port errno', e.errno)
k = socket.create_connection((u.hostname, u.port), timeout=10)
k.sendall(f'CONNECT secure.test:8443 HTTP/1.1\\r\\nHost: secure.test:8443\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode())
k.recv(200)
kt = ctx.wrap_socket(k, server_hostname='secure.test')
print('left open', kt.version() is not None, flush=True)
os._exit(0)
`;

const SCRIPT = [
  'echo "proxy=$HTTPS_PROXY"',
  // Encoded on one line by a tool: the password's base64 and hex spellings.
  'echo "b64=$(printf %s "$HTTPS_PROXY" | base64 -w0)"; echo "hex=$(printf %s "$HTTPS_PROXY" | od -An -tx1 | tr -d " \\n")"',
  "curl -sS --max-time 10 http://plain.test:8080/p; echo",
  // curl -v prints the credentials as it sends them: base64 of user:password.
  "curl -v -s -o /dev/null --max-time 10 http://plain.test:8080/v 2>&1 | grep -i '^> proxy-authorization'",
  "curl -sS --max-time 10 --cacert /inputs/ca.pem https://secure.test:8443/s; echo",
  "curl -s -o /dev/null -w 'other=%{http_code}\\n' http://other.test:8080/",
  `curl -s -o /dev/null -w 'ip=%{http_code}\\n' http://${UPSTREAM_IP}:8080/`,
  "curl -s -o /dev/null -w 'private=%{http_code}\\n' http://private.test:8080/",
  "curl -s -o /dev/null --max-time 10 https://secure.test:443/; echo port443=$?",
  "python3 /inputs/checks.py",
].join("\n");

interface NetLine {
  phase: string;
  connection?: number;
  host: string;
  port: number;
  method: string;
  allowed: boolean;
  address?: string;
  stage?: string;
  reason?: string;
  bytes_up?: number;
  bytes_down?: number;
  duration_ms?: number;
}

let p: Project;
let upstream: DockerUpstream;

const byLabel = (what: "ps" | "network", id: string) =>
  execFileSync(
    "docker",
    [...(what === "ps" ? ["ps", "-a"] : ["network", "ls"]), "-q", "--filter", `label=aido.sandbox=${id}`],
    { encoding: "utf8" },
  ).trim();

beforeAll(async () => {
  p = await makeProject();
  writeFileSync(
    join(p.home.dir, "config.yaml"),
    [
      "egress:",
      "  hosts:",
      `    plain.test: ${UPSTREAM_IP}`,
      `    secure.test: ${UPSTREAM_IP}`,
      `    other.test: ${UPSTREAM_IP}`,
      "    private.test: 10.9.9.9",
    ].join("\n"),
  );
  upstream = await startDockerUpstream(UPSTREAM_NETS.humanSandbox, p.home.config.sandbox.image);
  p.write("ca.pem", upstream.ca);
  p.write("checks.py", CHECKS);
  p.write("check.sh", SCRIPT);
}, 120_000);

afterAll(async () => {
  await p?.cleanup();
  upstream?.close();
});

describe("permissions.network as a host list", () => {
  it("reaches listed hosts with curl and python, refuses the rest, and records every connection", async () => {
    p.write(
      "sandbox.yaml",
      [
        "name: net",
        "inputs: [ca.pem, checks.py]",
        "env: { API_TOKEN: tok-s3cret-value }",
        "permissions:",
        "  network: [plain.test:8080, 'Secure.test:8443', private.test:8080]",
      ].join("\n"),
    );
    const id = await upId();
    const folder = join(p.dir, ".aido", "sandboxes", id);
    const record = JSON.parse(readFileSync(join(folder, "sandbox.json"), "utf8"));
    expect(record.permissions.network).toEqual(["plain.test:8080", "secure.test:8443", "private.test:8080"]);
    expect(record.egress).toMatchObject({ network: `aido_sbx_egress_${id}`, relay: `aido_sbx_relay_${id}` });
    expect(statSync(join(folder, "egress")).mode & 0o777).toBe(0o700);
    // The sandbox's container is on its internal network only.
    const nets = JSON.parse(
      execFileSync("docker", ["inspect", "-f", "{{json .NetworkSettings.Networks}}", record.container], {
        encoding: "utf8",
      }),
    );
    expect(Object.keys(nets)).toEqual([record.egress.network]);

    const run = await p.aido("run", "check.sh");
    const out = run.out.join("\n");
    expect(run.code, `${out}\n${run.err.join("\n")}`).toBe(0);
    // The proxy variables carry this run's credentials, never shown.
    expect(out).toMatch(/proxy=http:\/\/sandbox:\[hidden\]@[0-9.]+:3128$/m);
    expect(out).toMatch(/^> Proxy-Authorization: Basic \[hidden\]$/m);
    expect(out).toMatch(/^b64=aHR0cDovL3NhbmRib3g6[A-Za-z0-9+/]{0,4}\[hidden\][A-Za-z0-9+/=]+$/m);
    expect(out).toMatch(
      /^hex=687474703a2f2f73616e64626f783a[0-9a-f]{0,4}\[hidden\][0-9a-f]{0,4}40[0-9a-f]+$/m,
    );
    expect(out).toContain("plain-ok /p");
    expect(out).toContain("secure-ok /s");
    expect(out).toContain("other=403");
    expect(out).toContain("ip=403");
    expect(out).toContain("private=403");
    expect(out).toMatch(/port443=56/); // CONNECT refused: curl's "tunnel failed"
    expect(out).toContain("urllib secure-ok /u");
    expect(out).toContain("urllib-plain plain-ok /q");
    expect(out).toContain("connect HTTP/1.1 200");
    expect(out).toMatch(/sni refused/);
    // Past the proxy: Landlock refuses every TCP connect but the relay's port (EACCES).
    expect(out.match(/direct errno 13/g)).toHaveLength(2);
    expect(out).toContain("other relay port errno 13");

    // The run's network log: every connection, allowed or denied with its stage and reason.
    const logs = await p.aido("logs", "--json");
    const lines = logs.json<{ network: NetLine[] }>().network;
    const denied = lines.filter((l) => l.phase === "denied").map((l) => `${l.stage} ${l.host}:${l.port}`);
    expect(denied).toEqual(
      expect.arrayContaining([
        "capability other.test:8080",
        `capability ${UPSTREAM_IP}:8080`,
        "address private.test:8080",
        "capability secure.test:443",
        "tls secure.test:8443",
      ]),
    );
    expect(lines.find((l) => l.host === "other.test")?.reason).toMatch(/not in the sandbox's host list/);
    expect(lines.find((l) => l.host === UPSTREAM_IP)?.reason).toMatch(/must be listed as itself/);
    expect(lines.find((l) => l.host === "private.test")?.reason).toMatch(/resolves to 10\.9\.9\.9/);
    const closed = lines.filter((l) => l.phase === "close");
    expect(closed.map((l) => `${l.method} ${l.host}:${l.port}`)).toEqual(
      expect.arrayContaining(["GET plain.test:8080", "CONNECT secure.test:8443"]),
    );
    expect(out).toContain("left open True");
    // Every connection opened is closed on record, the one the script left open included.
    const opened = lines.filter((l) => l.phase === "open").map((l) => l.connection);
    expect(closed.map((l) => l.connection).sort()).toEqual(opened.sort());
    expect(closed.filter((l) => l.method === "CONNECT" && l.host === "secure.test")).toHaveLength(3);
    for (const c of closed) {
      expect(c).toMatchObject({ allowed: true, address: UPSTREAM_IP });
      expect(c.bytes_up).toBeGreaterThan(0);
      expect(c.bytes_down).toBeGreaterThan(0);
      expect(typeof c.duration_ms).toBe("number");
    }
    const text = await p.aido("logs", "--network");
    expect(text.out.join("\n")).toMatch(/GET plain\.test:8080 {2}allowed 203\.0\.113\.58 {2}up \d+ B/);
    expect(text.out.join("\n")).toMatch(/CONNECT secure\.test:443 {2}denied \(capability\)/);

    // summary.json counts them; events.log has a line per connection.
    const summary = JSON.parse(readFileSync(join(folder, "summary.json"), "utf8"));
    expect(summary.network).toMatchObject({
      hosts: ["plain.test:8080", "secure.test:8443", "private.test:8080"],
      log: "runs/run-001/network.log",
      allowed: closed.length,
      denied: denied.length,
    });
    expect(summary.network.connections).toBe(closed.length + denied.length);
    const events = readFileSync(join(folder, "events.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events.filter((e) => e.event === "network")).toHaveLength(summary.network.connections);

    // No credential in any evidence file.
    for (const f of p.evidenceFiles()) {
      expect(f.text, f.path).not.toMatch(/sandbox:(?!\[hidden\])[A-Za-z0-9_-]{20,}@/);
      expect(f.text, f.path).not.toContain("tok-s3cret-value");
    }

    // Destroy takes the relay, the network and the share folder; the evidence stays.
    const destroy = await p.aido("sandbox", "destroy", id);
    expect(destroy.code, destroy.err.join("\n")).toBe(0);
    expect({ containers: byLabel("ps", id), networks: byLabel("network", id) }).toEqual({
      containers: "",
      networks: "",
    });
    expect(existsSync(join(folder, "egress"))).toBe(false);
    expect(existsSync(join(folder, "runs", "run-001", "network.log"))).toBe(true);
  }, 240_000);

  it("bounds the network log under a flood of refusals and still counts every one, and of what kind", async () => {
    p.write("sandbox.yaml", "name: flood\ninputs: [flood.py]\npermissions: { network: [plain.test:8080] }\n");
    p.write(
      "flood.py",
      `import socket, base64, time, urllib.parse, urllib.request
u = urllib.parse.urlsplit(urllib.request.getproxies()['http'])
auth = base64.b64encode(f'{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password)}'.encode()).decode()
def connect(target):
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    s.sendall(f'CONNECT {target} HTTP/1.1\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode())
    head = s.recv(200).decode()
    s.close()
    return head.split(' ')[1]
codes = [connect(f'h{i}.example:{8000 + i % 7}') for i in range(150)]
codes += [connect('same.example:9') for _ in range(30)]
print('refused', codes.count('403'), flush=True)
time.sleep(4)
`,
    );
    const id = await upId();
    const folder = join(p.dir, ".aido", "sandboxes", id);
    const running = p.aido("run", "python3", "/inputs/flood.py");
    // Meanwhile, connections on a relay port no caller holds, as the relay hands them on (a
    // process outside the task's Landlock rule would make them on a kernel without one).
    const socket = join(folder, "egress", "proxy.sock");
    for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 5; i++)
      await new Promise<void>((resolve) => {
        const c = netConnect(socket, () => c.write(`AIDO-EGRESS ${3300 + i}\n`));
        c.on("error", () => resolve());
        c.on("close", () => resolve());
      });
    const run = await running;
    expect(run.code, run.err.join("\n")).toBe(0);
    expect(run.out).toContain("refused 180");

    type Line = NetLine & { repeats?: number; connections?: number; refusals?: number; distinct?: number };
    const lines = (await p.aido("logs", "--json")).json<{ network: Line[] }>().network;
    // 180 refusals and 5 unheld connections, in a few dozen lines: 20 distinct ones a second,
    // one more line a second counting the rest.
    expect(lines.length).toBeLessThan(60);
    const floods = lines.filter((l) => l.stage === "flood");
    expect(floods.length).toBeGreaterThanOrEqual(1);
    const text = (await p.aido("logs", "--network")).out.join("\n");
    expect(text).toMatch(/denied \(flood\): \d+ refusals \(\d+ distinct; \d+ capability\) within a second/);
    const relay = lines.filter((l) => l.stage === "relay");
    expect(relay.reduce((n, l) => n + (l.connections ?? 0), 0)).toBe(5);
    const capability = lines
      .filter((l) => l.stage !== "relay")
      .reduce((n, l) => n + (l.refusals ?? 1 + (l.repeats ?? 0)), 0);
    expect(capability).toBe(180);
    const summary = JSON.parse(readFileSync(join(folder, "summary.json"), "utf8"));
    expect(summary.network).toMatchObject({
      connections: 185,
      allowed: 0,
      denied: 185,
      denied_by_stage: { capability: 180, relay: 5 },
    });
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("writes the refusals it had counted when `aido run` is stopped by a signal mid-second", async () => {
    p.write(
      "sandbox.yaml",
      "name: stopped\ninputs: [stopped.py]\npermissions: { network: [plain.test:8080] }\n",
    );
    p.write(
      "stopped.py",
      `import socket, base64, time, urllib.parse, urllib.request
u = urllib.parse.urlsplit(urllib.request.getproxies()['http'])
auth = base64.b64encode(f'{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password)}'.encode()).decode()
for i in range(30):
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    s.sendall(f'CONNECT s{i}.example:443 HTTP/1.1\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode())
    s.recv(200)
    s.close()
print('flooded', flush=True)
time.sleep(60)
`,
    );
    const id = await upId();
    // `aido run` as its own process, as a person runs it, stopped (Ctrl-C, a supervisor)
    // within the second its last refusals were counted in: still stopped by the signal.
    expect(await stopRun(p, ["python3", "/inputs/stopped.py"], "flooded", "SIGTERM")).toBe("SIGTERM");
    const runDir = join(p.dir, ".aido", "sandboxes", id, "runs", "run-001");
    // Its summary says so, with every refusal counted.
    expect(JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8"))).toMatchObject({
      stopped_by: "signal",
      stop_signal: "SIGTERM",
      exit_code: null,
      network: { connections: 30, allowed: 0, denied: 30, denied_by_stage: { capability: 30 } },
    });
    type Line = NetLine & { refusals?: number; repeats?: number };
    const lines = readFileSync(join(runDir, "network.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Line);
    // 20 written at once, the other 10 in the flood line written as the process stopped.
    expect(lines.reduce((n, l) => n + (l.refusals ?? 1 + (l.repeats ?? 0)), 0)).toBe(30);
    expect(lines.filter((l) => l.stage === "flood")).toHaveLength(1);
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("leaves a summary.json that says the run was stopped, and the output so far as its logs, when `aido run` gets Ctrl-C", async () => {
    p.write("sandbox.yaml", "name: interrupted\ninputs: [wait.py]\n");
    // A last stderr line without its newline, written before the stdout line the stop waits for.
    p.write(
      "wait.py",
      "import sys, time\nsys.stderr.write('step 1 of 2: half done');sys.stderr.flush()\nprint('waiting', flush=True)\ntime.sleep(60)\n",
    );
    const id = await upId();
    expect(await stopRun(p, ["python3", "/inputs/wait.py"], "waiting", "SIGINT")).toBe("SIGINT");
    const root = join(p.dir, ".aido", "sandboxes", id);
    const summary = JSON.parse(readFileSync(join(root, "summary.json"), "utf8"));
    expect(summary).toMatchObject({
      run_id: "run-001",
      stopped_by: "signal",
      stop_signal: "SIGINT",
      exit_code: null,
      signal: null,
      task: { argv: ["python3", "/inputs/wait.py"] },
      stdout_bytes: "waiting\n".length,
      outputs: { collected: [], skipped: [] },
    });
    expect(summary.error).toMatch(/stopped by SIGINT before the task ended/);
    expect(summary.network).toBeUndefined();
    // Written whole: no temporary file left beside it.
    expect(readdirSync(join(root, "runs", "run-001")).filter((f) => f.includes("tmp"))).toEqual([]);
    const events = readFileSync(join(root, "events.log"), "utf8");
    expect(events).toMatch(/"event":"run_stopped","run_id":"run-001","signal":"SIGINT"/);
    // The output printed before the stop is the run's evidence, where `aido logs` reads it,
    // the stderr line cut by the stop included; the raw stream files are gone.
    const logs = await p.aido("logs", "--run", "run-001", "--json");
    expect(logs.code, logs.err.join("\n")).toBe(0);
    expect(logs.json<{ stdout: string; stderr: string }>()).toMatchObject({
      stdout: "waiting\n",
      stderr: "step 1 of 2: half done\n",
    });
    expect(readdirSync(join(root, "stream"))).toEqual([]);
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("ends at Ctrl-C within seconds while a task floods its output faster than it is read", async () => {
    p.write("sandbox.yaml", "name: flood\n");
    const id = await upId();
    const root = join(p.dir, ".aido", "sandboxes", id);
    // 40 MB of two-byte lines, written in a blink: each line is scrubbed, written and shown
    // on its own (about 1 MiB/s), so reading it all takes the better part of a minute.
    const flood = 40_000_000;
    const run = await floodRun(root, ["sh", "-c", `echo start; yes | head -c ${flood}; sleep 60`], 6 + flood);
    expect(await interrupt(run)).toBe("SIGINT");
    // What was read is the evidence; the rest is counted, and the logs say they were cut.
    const summary = JSON.parse(readFileSync(join(root, "runs", "run-001", "summary.json"), "utf8"));
    expect(summary).toMatchObject({
      stopped_by: "signal",
      stop_signal: "SIGINT",
      stdout_bytes: 6 + flood,
      logs_truncated: true,
    });
    expect(statSync(join(root, "runs", "run-001", "stdout.log")).size).toBeLessThan(flood);
    expect(readdirSync(join(root, "stream"))).toEqual([]);
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("ends at Ctrl-C within seconds while it catches up with a flood the task wrote before it ended", async () => {
    p.write("sandbox.yaml", "name: flood-then-end\n");
    const id = await upId();
    const root = join(p.dir, ".aido", "sandboxes", id);
    // The task ends at once; `aido run` has the better part of a minute of reading left.
    const flood = 40_000_000;
    const run = await floodRun(root, ["sh", "-c", `yes | head -c ${flood}`], flood);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await interrupt(run)).toBe("SIGINT");
    const summary = JSON.parse(readFileSync(join(root, "runs", "run-001", "summary.json"), "utf8"));
    expect(summary).toMatchObject({
      stopped_by: "signal",
      exit_code: 0,
      stdout_bytes: flood,
      logs_truncated: true,
    });
    expect(summary.error).toMatch(/stopped by SIGINT after the task ended/);
    expect(readdirSync(join(root, "stream"))).toEqual([]);
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("leaves a summary.json too when Ctrl-C comes while `aido run` is still setting the run up", async () => {
    p.write("sandbox.yaml", "name: early\n");
    const id = await upId();
    // A large folder at the run's stdout name, as a task can leave one (the stream folder is
    // its to write; made here, from the host, for speed): `aido run` removes it after
    // run.json is written and before the task starts.
    const root = join(p.dir, ".aido", "sandboxes", id);
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(root, "stream", "run-001.out", String(d)), { recursive: true });
      for (let f = 0; f < 100; f++)
        writeFileSync(join(root, "stream", "run-001.out", String(d), String(f)), "");
    }
    const runDir = join(root, "runs", "run-001");
    // Ctrl-C as soon as run.json is there: within those steps.
    const run = startRun(p, ["echo", "never"]);
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        if (existsSync(join(runDir, "run.json"))) {
          clearInterval(poll);
          resolve();
        }
      }, 2);
      run.child.once("exit", () => {
        clearInterval(poll);
        reject(new Error("aido run ended before it wrote run.json"));
      });
    });
    run.child.kill("SIGINT");
    expect(await run.exited).toBe("SIGINT");
    expect(JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8"))).toMatchObject({
      run_id: "run-001",
      stopped_by: "signal",
      stop_signal: "SIGINT",
      exit_code: null,
    });
    expect(readdirSync(join(root, "stream"))).toEqual([]);
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("gives a sandbox without network no network, no proxy and no network log", async () => {
    p.write("sandbox.yaml", "name: offline\n");
    const id = await upId();
    const run = await p.aido(
      "run",
      "--sandbox",
      id,
      "sh",
      "-c",
      "cat /proc/net/route | wc -l; env | grep -ci proxy",
    );
    expect(run.out).toEqual(["1", "0"]);
    const logs = await p.aido("logs", "--sandbox", id, "--json");
    expect(logs.json<{ network: unknown[]; summary: { network?: unknown } }>()).toMatchObject({
      network: [],
    });
    expect(logs.json<{ summary: { network?: unknown } }>().summary.network).toBeUndefined();
    expect(byLabel("network", id)).toBe("");
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("serves one run at a time, and TTL expiry takes relay, network and share folder", async () => {
    p.write("sandbox.yaml", "name: brief\nttl: 8s\npermissions: { network: [plain.test:8080] }\n");
    const id = await upId();
    const first = p.aido(
      "run",
      "--sandbox",
      id,
      "sh",
      "-c",
      "sleep 2; curl -sS http://plain.test:8080/first",
    );
    await new Promise((r) => setTimeout(r, 1000));
    const second = await p.aido("run", "--sandbox", id, "true");
    expect(second.code).toBe(1);
    expect(second.err.join("\n")).toMatch(
      /another `aido run` in sandbox [0-9a-f]{12} is serving its egress proxy/,
    );
    const done = await first;
    expect(done.out, done.err.join("\n")).toEqual(["plain-ok /first"]);

    const folder = join(p.dir, ".aido", "sandboxes", id);
    const expires = Date.parse(JSON.parse(readFileSync(join(folder, "sandbox.json"), "utf8")).expires_at);
    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now() + 200)));
    const list = await p.aido("sandbox", "list", "--json");
    expect(list.err.join("\n")).toContain(`sandbox ${id} expired and was destroyed`);
    expect({ containers: byLabel("ps", id), networks: byLabel("network", id) }).toEqual({
      containers: "",
      networks: "",
    });
    expect(existsSync(join(folder, "egress"))).toBe(false);
  }, 60_000);

  it("refuses a host list in a project folder too deep for the proxy's socket path, leaving nothing", async () => {
    const deep = join(p.dir, "d".repeat(60));
    mkdirSync(deep);
    writeFileSync(join(deep, "sandbox.yaml"), "permissions: { network: [pypi.org] }\n");
    await expect(sandboxUp({ cwd: deep, config: p.home.config })).rejects.toThrow(
      /longer than the 107 bytes a socket path may have/,
    );
    const [r] = listRecords(deep);
    expect(r).toMatchObject({ state: "destroyed" });
    expect(byLabel("ps", r?.id as string)).toBe("");
    expect(byLabel("network", r?.id as string)).toBe("");
  });

  it("refuses a bad entry naming the file, the line and the entry, before anything is made", async () => {
    p.write("bad.yaml", "name: bad\npermissions:\n  network:\n    - pypi.org\n    - 'pypi.org:http'\n");
    const up = await p.aido("sandbox", "up", "-f", "bad.yaml");
    expect(up.code).toBe(2);
    expect(up.err.join("\n")).toMatch(
      /bad\.yaml:5: permissions\.network\.1: "pypi\.org:http": invalid capability "network: pypi\.org:http": port "http" must be a number/,
    );
  });
});

/** `aido sandbox up --json` in the project (its sandbox.yaml); the new sandbox's id. */
async function upId(): Promise<string> {
  const up = await p.aido("sandbox", "up", "--json");
  expect(up.code, up.err.join("\n")).toBe(0);
  return up.json<{ id: string }>().id;
}

/**
 * `aido run <argv>` as its own process, its output read as fast as it comes, once the first
 * run's stdout stream (in the sandbox folder `root`) holds `bytes`: the task's flood written.
 */
async function floodRun(root: string, argv: string[], bytes: number) {
  const run = startRun(p, argv);
  run.child.stdout.resume();
  run.child.stderr.resume();
  const stream = join(root, "stream", "run-001.out");
  for (let i = 0; i < 500 && (statSync(stream, { throwIfNoEntry: false })?.size ?? 0) < bytes; i++)
    await new Promise((r) => setTimeout(r, 20));
  expect(statSync(stream).size).toBe(bytes);
  return run;
}

/** Ctrl-C to `aido run`: the signal it ended by, or a note that it ran on 15 s (then killed). */
async function interrupt(run: ReturnType<typeof startRun>): Promise<NodeJS.Signals | null | string> {
  run.child.kill("SIGINT");
  const ended = await Promise.race([
    run.exited,
    new Promise<string>((r) => setTimeout(() => r("still running 15 s after SIGINT"), 15_000)),
  ]);
  if (ended !== "SIGINT") run.child.kill("SIGKILL");
  return ended;
}

/**
 * `aido run <argv>` as its own process, as a person runs it, sent `signal` once its task
 * printed `marker`; what signal it ended by.
 */
async function stopRun(
  p: Project,
  argv: string[],
  marker: string,
  signal: NodeJS.Signals,
): Promise<NodeJS.Signals | null> {
  const { child, exited } = startRun(p, argv);
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += String(d);
      if (out.includes(marker)) resolve();
    });
    child.once("exit", () => reject(new Error(`aido run ended before its task printed ${marker}: ${out}`)));
  });
  child.kill(signal);
  return exited;
}
