// Attacks on the egress proxy from a caller's side of the relay (raw bytes on its port, as a
// command in a goal container writes them). Each must be refused and audited, and the audit
// must say what really happened.

import { createServer, connect as netConnect, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockedReason } from "../../src/tools/net-address.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import {
  type EgressBench,
  openEgressBench,
  startUpstreams,
  UPSTREAM_ADDRESS,
  type Upstreams,
} from "./fixture.js";

/**
 * An address of this host's own interfaces: one no range marks inward if it has one (a
 * public address, a bridge on a public-looking subnet), else any of its own.
 */
const own = Object.values(networkInterfaces())
  .flat()
  .filter((i) => i !== undefined && !i.internal && i.family === "IPv4")
  .map((i) => i?.address as string);
const SELF = own.find((a) => blockedReason(a) === null) ?? own[0] ?? "127.0.0.1";
/** A service of this host bound to every interface (what a firewall hides from outside only). */
let selfServer: Server;
let selfPort = 0;
let selfHits = 0;

let server: ProviderServer;
let up: Upstreams;
let bench: EgressBench;
let agent: { id: string; goalId: string };
let port = 0;
/** A TCP upstream that keeps every byte it gets and answers each connection with one response. */
let rawUp: Server;
let rawPort = 0;
const rawBytes: string[] = [];

beforeAll(async () => {
  server = await startProviderServer();
  up = await startUpstreams();
  bench = await openEgressBench(
    server,
    (c) => {
      c.egress.hosts = {
        "granted.test": UPSTREAM_ADDRESS,
        "evil.test": UPSTREAM_ADDRESS,
        "raw.test": UPSTREAM_ADDRESS,
        "self.test": SELF,
        "self6.test": `::ffff:${SELF}`,
      };
      c.egress.connectTimeoutMs = 2000;
    },
    { headerTimeoutMs: 400 },
  );
  rawUp = createServer((s) => {
    let got = "";
    s.on("data", (c) => {
      got += c.toString("latin1");
      if (got.includes("\r\n\r\n")) s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
    s.on("close", () => rawBytes.push(got));
    s.on("error", () => {});
  });
  rawPort = await new Promise<number>((r) =>
    rawUp.listen(0, UPSTREAM_ADDRESS, () => r((rawUp.address() as { port: number }).port)),
  );
  selfServer = createServer((s) => {
    selfHits++;
    s.end("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nself");
  });
  selfPort = await new Promise<number>((r) =>
    selfServer.listen(0, "0.0.0.0", () => r((selfServer.address() as { port: number }).port)),
  );
  agent = bench.agent("attacker", [
    "network: raw.test:*",
    "network: self.test:*",
    "network: self6.test:*",
    `network: granted.test:${up.httpPort}`,
    `network: granted.test:${up.httpsPort}`,
    `network: ${UPSTREAM_ADDRESS}:*`,
  ]);
  port = await bench.listen({ goalId: agent.goalId, agentId: agent.id });
}, 60_000);

afterAll(async () => {
  await bench?.close();
  await up?.close();
  rawUp?.close();
  selfServer?.close();
  await server?.close();
});

const auth = () =>
  `Proxy-Authorization: Basic ${Buffer.from(`${agent.id}:secret-${agent.id}`).toString("base64")}\r\n`;

/** Raw bytes to the proxy, and everything it answers until it closes. */
function raw(text: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect(port, "127.0.0.1");
    let out = "";
    s.on("data", (c) => {
      out += c.toString("latin1");
    });
    s.on("error", () => {});
    s.on("close", () => resolve(out));
    s.write(text);
    setTimeout(() => s.destroy(), 3000);
  });
}

const payloads = (kind: string) =>
  bench.audit(kind, agent.id).map((e) => e.payload as Record<string, unknown>);

describe("a plain request's body", () => {
  it("a chunked body on a GET reaches the upstream chunked, never as a second request for a Host nobody judged", async () => {
    const host = `raw.test:${rawPort}`;
    const smuggled = "GET /smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n";
    const body = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
    const before = rawBytes.length;
    const out = await raw(
      `GET http://${host}/first HTTP/1.1\r\nHost: ${host}\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n${body}`,
    );
    expect(out).toMatch(/^HTTP\/1.1 200/);
    await until(() => rawBytes.length > before);
    const got = rawBytes.at(-1) ?? "";
    // One request head, its body framed: the smuggled text sits inside a chunk.
    const [head, rest] = [got.slice(0, got.indexOf("\r\n\r\n")), got.slice(got.indexOf("\r\n\r\n") + 4)];
    expect(head).toMatch(/^GET \/first HTTP\/1.1\r\n/);
    expect(head.toLowerCase()).toContain("transfer-encoding: chunked");
    expect(rest).toBe(body);
  });

  it("a Transfer-Encoding other than chunked is refused (400) and audited", async () => {
    const host = `raw.test:${rawPort}`;
    const before = rawBytes.length;
    const out = await raw(
      `POST http://${host}/x HTTP/1.1\r\nHost: ${host}\r\n${auth()}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    );
    expect(out).toMatch(/^HTTP\/1.1 400[\s\S]*only chunked/);
    expect(payloads("egress.denied").at(-1)).toMatchObject({ stage: "request", method: "POST" });
    expect(rawBytes.length).toBe(before);
  });
});

describe("host spellings", () => {
  it("an IPv6 literal with a zone id is a malformed request (400, stage request), not an upstream failure", async () => {
    for (const zoned of ["[fe80::1%25eth0]", "[fe80::1%eth0]"]) {
      const out = await raw(`CONNECT ${zoned}:443 HTTP/1.1\r\n${auth()}\r\n`);
      expect(out).toMatch(/^HTTP\/1.1 400[\s\S]*not an IPv6 address \(without a zone id\)/);
      expect(payloads("egress.denied").at(-1)).toMatchObject({ stage: "request", method: "CONNECT" });
    }
  });
});

describe("a tunnel's ClientHello", () => {
  /** A minimal ClientHello naming `name`, with the extensions given after server_name. */
  const hello = (name: string, ...more: Buffer[]) => {
    const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
    const entry = Buffer.concat([Buffer.from([0]), u16(name.length), Buffer.from(name)]);
    const list = Buffer.concat([u16(entry.length), entry]);
    const exts = Buffer.concat([u16(0), u16(list.length), list, ...more]);
    const body = Buffer.concat([
      Buffer.from([3, 3]),
      Buffer.alloc(32),
      Buffer.from([0]),
      u16(2),
      Buffer.from([0x13, 0x01]),
      Buffer.from([1, 0]),
      u16(exts.length),
      exts,
    ]);
    const hs = Buffer.concat([Buffer.from([1, 0]), u16(body.length), body]);
    return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs]);
  };
  /** An extension of `type` carrying `len` opaque bytes (what an ECH or ESNI payload looks like). */
  const ext = (type: number, len: number) =>
    Buffer.concat([Buffer.from([type >> 8, type & 255, len >> 8, len & 255]), Buffer.alloc(len, 7)]);

  it("an encrypted ClientHello (ECH, ESNI) behind the granted outer name closes the tunnel before a byte goes upstream", async () => {
    for (const type of [0xfe0d, 0xffce]) {
      const before = rawBytes.length;
      const out = await raw(
        Buffer.concat([
          Buffer.from(`CONNECT raw.test:${rawPort} HTTP/1.1\r\n${auth()}\r\n`),
          hello("raw.test", ext(type, 40)),
        ]),
      );
      expect(out).toMatch(/^HTTP\/1.1 200/);
      await until(() => rawBytes.length > before);
      expect(rawBytes.at(-1)).toBe(""); // the upstream saw a TCP handshake and no byte
      expect(payloads("egress.denied").at(-1)).toMatchObject({ host: "raw.test", stage: "tls" });
      expect(String(payloads("egress.denied").at(-1)?.reason)).toMatch(/encrypted ClientHello \(ECH\)/);
    }
  });

  it("the same hello without ECH passes (the check is the extension, not the test's hello)", async () => {
    const before = rawBytes.length;
    const h = hello("raw.test");
    await raw(Buffer.concat([Buffer.from(`CONNECT raw.test:${rawPort} HTTP/1.1\r\n${auth()}\r\n`), h]));
    await until(() => rawBytes.length > before);
    expect(rawBytes.at(-1)).toBe(h.toString("latin1"));
  });
});

describe("a granted name that leads to the proxy's own host", () => {
  it("is an inward address (403, stage address): the host's own services stay out of reach", async () => {
    for (const name of ["self.test", "self6.test"]) {
      const out = await raw(
        `GET http://${name}:${selfPort}/ HTTP/1.1\r\nHost: ${name}:${selfPort}\r\n${auth()}\r\n`,
      );
      expect(out).toMatch(/^HTTP\/1.1 403/);
      expect(payloads("egress.denied").at(-1)).toMatchObject({ host: name, stage: "address" });
      if (blockedReason(SELF) === null)
        expect(String(payloads("egress.denied").at(-1)?.reason)).toMatch(/an address of this host/);
    }
    expect(selfHits).toBe(0);
  });
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  for (let waited = 0; waited < ms; waited += 20) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("condition not met in time");
}
