// The ClientHello parser on real first flights (Node's tls client, curl, python's ssl),
// captured by a loopback listener, and on malformed and truncated ones.

import { createServer } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLIENT_HELLO_MAX_BYTES, parseClientHello } from "../../src/egress/sni.js";
import { run } from "./fixture.js";

let port = 0;
const captured: Buffer[] = [];
const srv = createServer((s) => {
  let buf = Buffer.alloc(0);
  s.on("data", (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    if (parseClientHello(buf).state !== "need_more" || buf.length > 70_000) {
      captured.push(buf);
      s.destroy();
    }
  });
  s.on("error", () => {});
});

beforeAll(async () => {
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  port = (srv.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => srv.close(() => r())));

/** The first flight of a client run by `start`, as the listener captured it. */
async function capture(start: () => unknown): Promise<Buffer> {
  const before = captured.length;
  await start();
  for (let i = 0; i < 200 && captured.length === before; i++) await new Promise((r) => setTimeout(r, 25));
  const hello = captured[before];
  if (!hello) throw new Error("no ClientHello captured");
  return hello;
}

const nodeHello = (servername?: string) =>
  capture(() => {
    const s = tlsConnect({
      host: "127.0.0.1",
      port,
      ...(servername ? { servername } : {}),
      rejectUnauthorized: false,
    });
    s.on("error", () => {});
  });

describe("parseClientHello on real clients", () => {
  it("reads the SNI of Node's tls client", async () => {
    const p = parseClientHello(await nodeHello("Granted.Test"));
    expect(p).toMatchObject({ state: "done", serverName: "granted.test" });
  });

  it("reads no SNI when Node connects to an address", async () => {
    expect(parseClientHello(await nodeHello())).toMatchObject({ state: "done", serverName: null });
  });

  it("reads curl's SNI, and none when curl is given an address", async () => {
    const named = await capture(() =>
      run("curl", [
        "-sk",
        "--max-time",
        "3",
        "--resolve",
        `pypi.test:${port}:127.0.0.1`,
        `https://pypi.test:${port}/`,
      ]),
    );
    expect(parseClientHello(named)).toMatchObject({ state: "done", serverName: "pypi.test" });
    const bare = await capture(() => run("curl", ["-sk", "--max-time", "3", `https://127.0.0.1:${port}/`]));
    expect(parseClientHello(bare)).toMatchObject({ state: "done", serverName: null });
  });

  it("reads python's SNI", async () => {
    const script = `import socket, ssl
c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
s = socket.create_connection(("127.0.0.1", ${port}))
try: c.wrap_socket(s, server_hostname="files.example.test")
except Exception: pass`;
    const hello = await capture(() => run("python3", ["-c", script]));
    expect(parseClientHello(hello)).toMatchObject({ state: "done", serverName: "files.example.test" });
  });

  it("needs more at every cut of a real hello, and never reads a name from part of one", async () => {
    const hello = await nodeHello("granted.test");
    for (let cut = 0; cut < hello.length; cut += 7) {
      expect(parseClientHello(hello.subarray(0, cut)).state).toBe("need_more");
    }
  });

  it("reads a hello split across two handshake records", async () => {
    const hello = await nodeHello("split.test");
    const body = hello.subarray(5);
    const rec = (b: Buffer) => Buffer.concat([Buffer.from([0x16, 3, 1, b.length >> 8, b.length & 255]), b]);
    const split = Buffer.concat([rec(body.subarray(0, 40)), rec(body.subarray(40))]);
    expect(parseClientHello(split)).toMatchObject({ state: "done", serverName: "split.test" });
  });
});

describe("parseClientHello refuses what is not one ClientHello", () => {
  let hello: Buffer;
  beforeAll(async () => {
    hello = await nodeHello("granted.test");
  });
  const invalid = (b: Buffer) => {
    const p = parseClientHello(b);
    expect(p.state).toBe("invalid");
    return (p as { reason: string }).reason;
  };

  it("refuses plain HTTP", () => {
    expect(invalid(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))).toMatch(/not TLS/);
  });

  it("refuses a record that is not a handshake, and a handshake that is not a ClientHello", () => {
    const alert = Buffer.from(hello);
    alert[0] = 0x15;
    expect(invalid(alert)).toMatch(/not TLS/);
    const serverHello = Buffer.from(hello);
    serverHello[5] = 2;
    expect(invalid(serverHello)).toMatch(/not a ClientHello/);
  });

  it("refuses bytes after the hello in its record, and inner lengths that disagree", () => {
    const len = hello.readUInt16BE(3);
    const longer = Buffer.concat([hello, Buffer.from([0])]);
    longer.writeUInt16BE(len + 1, 3);
    expect(invalid(longer)).toMatch(/follow the ClientHello/);
    const bad = Buffer.from(hello);
    bad.writeUIntBE(bad.readUIntBE(6, 3) - 1, 6, 3); // handshake length one short
    expect(invalid(bad)).toMatch(/follow the ClientHello|length|truncated/);
  });

  it("refuses a server_name extension given twice or holding two names", () => {
    // A minimal hello: version, random, no session, one suite, null compression, extensions.
    const sni = (...names: string[]) => {
      const entries = Buffer.concat(
        names.map((n) => Buffer.concat([Buffer.from([0, n.length >> 8, n.length & 255]), Buffer.from(n)])),
      );
      const list = Buffer.concat([u16(entries.length), entries]);
      return Buffer.concat([u16(0), u16(list.length), list]);
    };
    const make = (exts: Buffer) => {
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
      const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 255]), body]);
      return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs]);
    };
    expect(parseClientHello(make(sni("ok.test")))).toMatchObject({ state: "done", serverName: "ok.test" });
    expect(parseClientHello(make(sni("OK.Test.")))).toMatchObject({ state: "done", serverName: "ok.test" });
    expect(invalid(make(sni("ok.test..")))).toMatch(/not a host name/);
    expect(invalid(make(Buffer.concat([sni("a.test"), sni("b.test")])))).toMatch(/twice/);
    expect(invalid(make(sni("a.test", "b.test")))).toMatch(/more than one name/);
    expect(invalid(make(sni("a.test\u0000.evil")))).toMatch(/not a host name/);
    expect(invalid(make(sni("10.0.0.1")))).toMatch(/IP address/);
  });

  it("gives up on a flight larger than the bound", () => {
    const huge = Buffer.concat([Buffer.from([0x16, 3, 1, 0x40, 0]), Buffer.alloc(16384)]);
    huge[5] = 1;
    huge.writeUIntBE(0xffffff, 6, 3);
    expect(invalid(huge)).toMatch(new RegExp(`larger than ${CLIENT_HELLO_MAX_BYTES}`));
  });
});

function u16(n: number): Buffer {
  return Buffer.from([n >> 8, n & 255]);
}
