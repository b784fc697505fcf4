// The egress proxy served over real sockets on this host, judged by a real runtime's
// EgressGate: curl, python's urllib and Node's tls client through it to stand-in upstreams
// on 127.0.0.2, and an attacker's requests, each refused and audited.

import { connect as netConnect, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import {
  type EgressBench,
  openEgressBench,
  run,
  startUpstreams,
  UPSTREAM_ADDRESS,
  type Upstreams,
} from "./fixture.js";

let server: ProviderServer;
let up: Upstreams;
let bench: EgressBench;
let agent: { id: string; goalId: string };
let port = 0;

beforeAll(async () => {
  server = await startProviderServer();
  up = await startUpstreams();
  bench = await openEgressBench(
    server,
    (c) => {
      c.egress.hosts = {
        "granted.test": UPSTREAM_ADDRESS,
        "evil.test": UPSTREAM_ADDRESS,
        "inward.test": "10.20.30.40",
      };
      c.egress.connectTimeoutMs = 2000;
    },
    { headerTimeoutMs: 400 },
  );
  agent = bench.agent("fetcher", [
    `network: granted.test:${up.httpsPort}`,
    `network: granted.test:${up.httpPort}`,
    `network: ${UPSTREAM_ADDRESS}:*`,
    "network: inward.test:*",
  ]);
  port = await bench.listen({ goalId: agent.goalId, agentId: agent.id });
}, 60_000);

afterAll(async () => {
  await bench?.close();
  await up?.close();
  await server?.close();
});

const denials = (agentId = agent.id) =>
  bench.audit("egress.denied", agentId).map((e) => e.payload as Record<string, unknown>);
const lastDenial = (agentId = agent.id) => denials(agentId).at(-1);

/** Raw bytes to the proxy, and everything it answers until it closes. */
function raw(text: string | Buffer, opts: { wait?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect(port, "127.0.0.1");
    let out = "";
    s.on("data", (c) => {
      out += c.toString("latin1");
    });
    s.on("error", () => {});
    s.on("close", () => resolve(out));
    s.write(text);
    if (opts.wait) setTimeout(() => s.destroy(), opts.wait);
  });
}

const auth = (agentId = agent.id) =>
  `Proxy-Authorization: Basic ${Buffer.from(`${agentId}:secret-${agentId}`).toString("base64")}\r\n`;

/** A tunnel through the proxy (CONNECT answered 200), as a socket. */
function tunnel(target: string): Promise<{ socket: Socket; status: string }> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, "127.0.0.1");
    s.once("error", reject);
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth()}\r\n`);
    let buf = "";
    const onData = (c: Buffer) => {
      buf += c.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      s.off("data", onData);
      resolve({ socket: s, status: buf.slice(0, buf.indexOf("\r\n")) });
    };
    s.on("data", onData);
  });
}

describe("a granted host is reachable", () => {
  it("with curl over HTTPS (CONNECT), audited open and close with bytes each way", async () => {
    const r = await run(
      "curl",
      ["-sS", "--max-time", "10", "--cacert", up.caFile, `https://granted.test:${up.httpsPort}/hello`],
      {
        HTTPS_PROXY: bench.proxyUrl(port, agent.id),
      },
    );
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout).path).toBe("/hello");
    const open = bench.audit("egress.open", agent.id).at(-1)?.payload;
    expect(open).toMatchObject({
      host: "granted.test",
      port: up.httpsPort,
      method: "CONNECT",
      address: UPSTREAM_ADDRESS,
    });
    await until(() => bench.audit("egress.close", agent.id).length > 0);
    const close = bench.audit("egress.close", agent.id).at(-1)?.payload as Record<string, number>;
    expect(close.bytes_up).toBeGreaterThan(300);
    expect(close.bytes_down).toBeGreaterThan(300);
    expect(close.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it("with python's urllib over plain HTTP, hop-by-hop and Proxy-* headers stripped", async () => {
    const script = `import urllib.request, sys
r = urllib.request.urlopen(urllib.request.Request("http://granted.test:${up.httpPort}/plain?x=1", headers={"Proxy-Secret": "s", "Keep-Alive": "1"}), timeout=10)
sys.stdout.write(r.read().decode())`;
    const r = await run("python3", ["-c", script], {
      HTTP_PROXY: bench.proxyUrl(port, agent.id),
      http_proxy: bench.proxyUrl(port, agent.id),
    });
    expect(r.stderr).toBe("");
    const body = JSON.parse(r.stdout);
    expect(body.path).toBe("/plain?x=1");
    expect(body.host).toBe(`granted.test:${up.httpPort}`);
    expect(Object.keys(body.headers).filter((h) => h.startsWith("proxy-") || h === "keep-alive")).toEqual([]);
    expect(body.headers.connection).toBe("close");
  });

  it("with python's urllib over HTTPS (CONNECT) from HTTPS_PROXY", async () => {
    const script = `import urllib.request, ssl, sys
ctx = ssl.create_default_context(cafile=${JSON.stringify(up.caFile)})
r = urllib.request.urlopen("https://granted.test:${up.httpsPort}/py", context=ctx, timeout=10)
sys.stdout.write(r.read().decode())`;
    const r = await run("python3", ["-c", script], {
      HTTPS_PROXY: bench.proxyUrl(port, agent.id),
      https_proxy: bench.proxyUrl(port, agent.id),
    });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout).path).toBe("/py");
  });
});

describe("names are compared as grants spell them", () => {
  it("a CONNECT host in capitals with a trailing dot is the same host its SNI names", async () => {
    const { socket, status } = await tunnel(`GRANTED.Test.:${up.httpsPort}`);
    expect(status).toMatch(/200/);
    const tls = tlsConnect({ socket, servername: "granted.test", ca: up.ca });
    await new Promise((r) => tls.once("secureConnect", r));
    tls.destroy();
    expect(bench.audit("egress.open", agent.id).at(-1)?.payload).toMatchObject({ host: "granted.test" });
  });
});

describe("the ClientHello check", () => {
  it("reads a hello that arrives in 10-byte pieces across many TCP writes", async () => {
    const { socket, status } = await tunnel(`granted.test:${up.httpsPort}`);
    expect(status).toMatch(/200/);
    // The TLS client's bytes go out in small pieces, each its own write, a few ms apart.
    const dribble = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, done) {
        let off = 0;
        const next = () => {
          if (off >= chunk.length) return done();
          socket.write(chunk.subarray(off, off + 10));
          off += 10;
          setTimeout(next, 1);
        };
        next();
      },
    });
    socket.on("data", (c) => dribble.push(c));
    socket.on("close", () => dribble.push(null));
    const tls = tlsConnect({ socket: dribble, servername: "granted.test", ca: up.ca });
    await new Promise((r) => tls.once("secureConnect", r));
    tls.destroy();
  });

  it("closes a tunnel whose hello stops half-way, after the deadline", async () => {
    const { socket } = await tunnel(`granted.test:${up.httpsPort}`);
    socket.write(Buffer.from([0x16, 3, 1, 0x02, 0x00, 1, 0, 1]));
    const started = Date.now();
    await new Promise((r) => socket.once("close", r));
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(lastDenial()).toMatchObject({ stage: "tls", reason: "no complete ClientHello within 400 ms" });
  });
});

describe("an attacker's requests are refused and audited", () => {
  it("an ungranted host (403 naming it)", async () => {
    const r = await run("curl", ["-sS", "--max-time", "5", `https://other.test:${up.httpsPort}/`], {
      HTTPS_PROXY: bench.proxyUrl(port, agent.id),
    });
    expect(r.stderr).toMatch(/403/);
    expect(lastDenial()).toMatchObject({ host: "other.test", stage: "capability" });
    expect(String(lastDenial()?.reason)).toMatch(/no capability grants network access to other.test/);
  });

  it("an IP literal no grant names", async () => {
    const out = await raw(`CONNECT 127.0.0.3:${up.httpsPort} HTTP/1.1\r\n${auth()}\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 403/);
    expect(out).toMatch(/grant naming it exactly/);
    expect(lastDenial()).toMatchObject({ host: "127.0.0.3", stage: "capability" });
  });

  it("a numeric spelling of an address", async () => {
    const out = await raw(`CONNECT 2130706433:443 HTTP/1.1\r\n${auth()}\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 400.*\r\n[\s\S]*numeric form/);
    expect(lastDenial()).toMatchObject({ stage: "request" });
  });

  it("an IPv6 literal no grant names", async () => {
    const out = await raw(`CONNECT [0:0::1]:443 HTTP/1.1\r\n${auth()}\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 403/);
    expect(lastDenial()).toMatchObject({ host: "[::1]", stage: "capability" });
  });

  it("a granted name the system resolver leads to loopback", async () => {
    const local = bench.agent("local", ["network: localhost:*"]);
    const localPort = await bench.listen({ goalId: local.goalId, agentId: local.id });
    const r = await run("curl", ["-sS", "--max-time", "5", `http://localhost:${up.httpPort}/`], {
      http_proxy: bench.proxyUrl(localPort, local.id),
    });
    expect(r.stdout).toMatch(/resolves to (127\.0\.0\.1|::1) \(loopback\)/);
    expect(lastDenial(local.id)).toMatchObject({ host: "localhost", stage: "address" });
  });

  it("a granted name that resolves to a private address", async () => {
    const out = await raw(`CONNECT inward.test:443 HTTP/1.1\r\n${auth()}\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 403/);
    expect(lastDenial()).toMatchObject({ host: "inward.test", stage: "address" });
    expect(String(lastDenial()?.reason)).toMatch(/10\.20\.30\.40 \(private\)/);
  });

  it("a CONNECT to a port the grant does not name", async () => {
    const out = await raw(`CONNECT granted.test:22 HTTP/1.1\r\n${auth()}\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 403[\s\S]*granted.test port 22/);
    expect(lastDenial()).toMatchObject({ host: "granted.test", port: 22, stage: "capability" });
  });

  it("a ClientHello naming another server than the CONNECT: nothing reaches upstream", async () => {
    const served = up.seen.length;
    let secure = 0;
    const onSecure = () => secure++;
    up.https.on("secureConnection", onSecure);
    const { socket, status } = await tunnel(`granted.test:${up.httpsPort}`);
    expect(status).toMatch(/200/);
    const tls = tlsConnect({ socket, servername: "evil.test", ca: up.ca });
    const err = await new Promise<Error>((resolve) => tls.once("error", resolve));
    expect(err.message).toMatch(/socket disconnected|ECONNRESET|closed/i);
    up.https.off("secureConnection", onSecure);
    expect(secure).toBe(0);
    expect(up.seen.length).toBe(served);
    expect(lastDenial()).toMatchObject({ host: "granted.test", stage: "tls" });
    expect(String(lastDenial()?.reason)).toMatch(/names evil.test, not granted.test/);
  });

  it("a tunnel that does not speak TLS", async () => {
    const { socket } = await tunnel(`granted.test:${up.httpsPort}`);
    socket.write(`GET / HTTP/1.1\r\nHost: granted.test\r\n\r\n`);
    await new Promise((r) => socket.once("close", r));
    expect(lastDenial()).toMatchObject({ stage: "tls" });
    expect(String(lastDenial()?.reason)).toMatch(/not TLS/);
  });

  it("a second request pipelined on one plain connection is never forwarded", async () => {
    const served = up.seen.length;
    const req = (path: string) =>
      `GET http://granted.test:${up.httpPort}${path} HTTP/1.1\r\nHost: granted.test:${up.httpPort}\r\n${auth()}\r\n`;
    const out = await raw(req("/first") + req("/second"));
    expect(out).toMatch(/^HTTP\/1.1 200/);
    expect(out).not.toMatch(/second/);
    expect(up.seen.slice(served)).toEqual([`GET granted.test:${up.httpPort} /first`]);
    await until(() => denials().some((d) => String(d.reason).includes("second request")));
  });

  it("a CONNECT pipelined behind a plain request is never served", async () => {
    const get = `GET http://granted.test:${up.httpPort}/one HTTP/1.1\r\nHost: granted.test:${up.httpPort}\r\n${auth()}\r\n`;
    const out = await raw(`${get}CONNECT granted.test:${up.httpsPort} HTTP/1.1\r\n${auth()}\r\n`);
    expect(out).not.toMatch(/Connection established/);
    await until(() =>
      denials().some((d) => d.method === "CONNECT" && String(d.reason).includes("second request")),
    );
  });

  it("an absolute URI whose Host header names another host", async () => {
    const out = await raw(
      `GET http://granted.test:${up.httpPort}/ HTTP/1.1\r\nHost: other.test\r\n${auth()}\r\n`,
    );
    expect(out).toMatch(/^HTTP\/1.1 400[\s\S]*Host header "other.test"/);
    expect(lastDenial()).toMatchObject({ stage: "request" });
  });

  it("credentials in the URI", async () => {
    const out = await raw(`GET http://u:p@granted.test:${up.httpPort}/ HTTP/1.1\r\n${auth()}\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 400[\s\S]*credentials in the URL/);
    expect(lastDenial()).toMatchObject({ stage: "request" });
  });

  it("an origin-form request (not a proxy request)", async () => {
    const out = await raw(`GET /x HTTP/1.1\r\nHost: granted.test\r\n${auth()}\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 400[\s\S]*absolute http:\/\/ URI/);
  });

  it("oversized headers", async () => {
    const out = await raw(`GET http://granted.test/ HTTP/1.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 431/);
    expect(lastDenial()).toMatchObject({ stage: "request" });
    expect(lastDenial()).not.toHaveProperty("host");
  });

  it("a slowloris client that never finishes its headers", async () => {
    const started = Date.now();
    const out = await new Promise<string>((resolve) => {
      const s = netConnect(port, "127.0.0.1");
      let got = "";
      s.on("data", (c) => {
        got += c.toString();
      });
      s.on("error", () => {});
      const drip = setInterval(() => s.write("X-A: b\r\n"), 50);
      s.write("GET http://granted.test/ HTTP/1.1\r\n");
      s.on("close", () => {
        clearInterval(drip);
        resolve(got);
      });
    });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(out).toMatch(/^HTTP\/1.1 400[\s\S]*no complete request within 400 ms/);
    expect(lastDenial()).toMatchObject({ stage: "request" });
  });

  it("no credentials (407 with a Basic challenge), and another agent's credentials", async () => {
    const none = await raw(`CONNECT granted.test:${up.httpsPort} HTTP/1.1\r\n\r\n`);
    expect(none).toMatch(/^HTTP\/1.1 407[\s\S]*Proxy-Authenticate: Basic/);
    expect(lastDenial()).toMatchObject({ stage: "auth" });
    const other = bench.agent("other", [`network: granted.test:${up.httpsPort}`]);
    const r = await run(
      "curl",
      ["-sS", "--max-time", "5", "--cacert", up.caFile, `https://granted.test:${up.httpsPort}/`],
      {
        HTTPS_PROXY: bench.proxyUrl(port, other.id),
      },
    );
    expect(r.stderr).toMatch(/407/);
    expect(lastDenial()).toMatchObject({
      stage: "auth",
      reason: "these proxy credentials are not the caller's",
    });
  });

  it("an agent of another goal speaking from this goal's network", async () => {
    const stranger = bench.agent("stranger", [
      `network: granted.test:${up.httpsPort}`,
      `network: ${UPSTREAM_ADDRESS}:*`,
    ]);
    const strangerPort = await bench.listen({ goalId: agent.goalId, agentId: stranger.id });
    const r = await run(
      "curl",
      ["-sS", "--max-time", "5", "--cacert", up.caFile, `https://granted.test:${up.httpsPort}/`],
      {
        HTTPS_PROXY: bench.proxyUrl(strangerPort, stranger.id),
      },
    );
    expect(r.stderr).toMatch(/403/);
    expect(lastDenial(stranger.id)).toMatchObject({ stage: "capability" });
    expect(String(lastDenial(stranger.id)?.reason)).toMatch(/is not an agent of/);
  });
});

describe("close()", () => {
  it("ends the open tunnels (their close recorded) and refuses new streams", async () => {
    const { socket, status } = await tunnel(`granted.test:${up.httpsPort}`);
    expect(status).toMatch(/200/);
    const tls = tlsConnect({ socket, servername: "granted.test", ca: up.ca });
    await new Promise((r) => tls.once("secureConnect", r));
    const closes = bench.audit("egress.close", agent.id).length;
    const ended = new Promise((r) => tls.once("close", r));
    await bench.proxy.close();
    await ended;
    await until(() => bench.audit("egress.close", agent.id).length > closes);
    const after = await raw(`CONNECT granted.test:${up.httpsPort} HTTP/1.1\r\n${auth()}\r\n`);
    expect(after).toBe("");
  });
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  for (let waited = 0; waited < ms; waited += 20) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("condition not met in time");
}
