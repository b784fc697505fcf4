// The executor protocol's codec on the host, without Docker: frames split anywhere by the
// transport are put back together, a header over the cap is refused before its body is
// buffered, a frame without the session secret or with a body that is not a well-formed
// reply is refused, and the engine's stdout/stderr framing is taken apart incrementally.

import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  encodeFrame,
  FrameDecoder,
  FrameError,
  openFrame,
  parseHello,
  parseReply,
  parseRequest,
  SECRET_BYTES,
  secretFrame,
} from "../../src/sandbox/executor/protocol.js";
import { MuxSplitter } from "../../src/sandbox/executor-session.js";

const secret = randomBytes(SECRET_BYTES);

function decodeAll(bytes: Buffer, chunk: number, max = 1 << 20): Buffer[] {
  const out: Buffer[] = [];
  const d = new FrameDecoder(max, (p) => out.push(Buffer.from(p)));
  for (let i = 0; i < bytes.length; i += chunk) d.push(bytes.subarray(i, i + chunk));
  return out;
}

describe("FrameDecoder", () => {
  const frames = [
    encodeFrame(secret, { id: 1, ok: true, result: "a" }, 1 << 20),
    encodeFrame(secret, { id: 2, ok: false, error: { code: "x", message: "é ✓" } }, 1 << 20),
    encodeFrame(secret, { id: 3, ok: true, result: "z".repeat(70_000) }, 1 << 20),
  ];
  const stream = Buffer.concat(frames);

  it.each([1, 3, 4, 5, 7, 64, 4096, stream.length])("reassembles frames cut every %i bytes", (n) => {
    const got = decodeAll(stream, n).map((p) => openFrame(secret, p));
    expect(got).toEqual([
      { id: 1, ok: true, result: "a" },
      { id: 2, ok: false, error: { code: "x", message: "é ✓" } },
      { id: 3, ok: true, result: "z".repeat(70_000) },
    ]);
  });

  it("refuses a header announcing more than the cap as soon as the 4 bytes are in", () => {
    const d = new FrameDecoder(1024, () => {});
    const head = Buffer.alloc(4);
    head.writeUInt32BE(2 ** 31, 0);
    d.push(head.subarray(0, 3));
    expect(() => d.push(head.subarray(3))).toThrow(FrameError);
    try {
      new FrameDecoder(1024, () => {}).push(head);
    } catch (e) {
      expect((e as FrameError).problem).toBe("oversized");
      expect((e as Error).message).toMatch(/2147483648 bytes \(limit 1024\)/);
    }
  });

  it("holds a large frame arriving in small pieces without re-copying the backlog", () => {
    // 8 MiB in 1 KiB chunks: with a concat per chunk this would copy ~32 GiB.
    const big = encodeFrame(secret, { id: 9, ok: true, result: "q".repeat(8 << 20) }, 16 << 20);
    const seen: number[] = [];
    const d = new FrameDecoder(16 << 20, (p) => seen.push(p.length));
    for (let i = 0; i < big.length; i += 1024) d.push(big.subarray(i, i + 1024));
    expect(seen).toEqual([big.length - 4]);
    expect(d.pending).toBe(0);
  });

  it("refuses to encode a frame over the cap instead of sending it", () => {
    expect(() => encodeFrame(secret, { id: 1, op: "write", args: { content: "x".repeat(100) } }, 64)).toThrow(
      /over the limit of 64/,
    );
  });
});

describe("openFrame and the message shapes", () => {
  it("refuses a frame without the session secret, or with another one", () => {
    const forged = encodeFrame(randomBytes(SECRET_BYTES), { id: 1, ok: true, result: 1 }, 1 << 20);
    const [payload] = decodeAll(forged, 1 << 20);
    expect(() => openFrame(secret, payload as Buffer)).toThrow(/without the session secret/);
    expect(() => openFrame(secret, Buffer.from("short"))).toThrow(/without the session secret/);
  });

  it("refuses an authenticated frame whose body is not JSON", () => {
    expect(() => openFrame(secret, Buffer.concat([secret, Buffer.from("{nope")]))).toThrow(/not JSON/);
  });

  it("checks replies, requests and the hello field by field", () => {
    expect(parseReply({ id: 4, ok: true })).toEqual({ id: 4, ok: true, result: null });
    expect(() => parseReply({ id: "4", ok: true })).toThrow(/integer id/);
    expect(() => parseReply({ id: 4, ok: false, error: "boom" })).toThrow(/code and a message/);
    expect(parseRequest({ id: 2, op: "stat", args: { path: "/x" } })).toEqual({
      id: 2,
      op: "stat",
      args: { path: "/x" },
    });
    expect(() => parseRequest({ id: 0, op: "stat" })).toThrow(/positive integer id/);
    expect(() => parseRequest({ id: 1, op: "stat", args: [1] })).toThrow(/args must be an object/);
    expect(parseHello({ hello: "aido-executor", version: 2, pid: 8, landlockAbi: 7 }).landlockAbi).toBe(7);
    expect(() => parseHello({ hello: "aido-executor", version: 1, pid: 8 })).toThrow(/protocol version 2/);
  });

  it("starts a session with the secret alone", () => {
    const [first] = decodeAll(secretFrame(secret), 5);
    expect(first?.equals(secret)).toBe(true);
  });
});

describe("MuxSplitter (the engine's stdout/stderr framing)", () => {
  const mux = (kind: number, body: string) => {
    const b = Buffer.from(body);
    const h = Buffer.alloc(8);
    h[0] = kind;
    h.writeUInt32BE(b.length, 4);
    return Buffer.concat([h, b]);
  };

  it.each([1, 2, 5, 8, 9, 1000])("separates the streams with headers cut every %i bytes", (n) => {
    const out: string[] = [];
    const err: string[] = [];
    const s = new MuxSplitter(
      (b) => out.push(b.toString()),
      (b) => err.push(b.toString()),
    );
    const all = Buffer.concat([mux(1, "hello "), mux(2, "warn"), mux(1, "world"), mux(1, "")]);
    for (let i = 0; i < all.length; i += n) s.push(all.subarray(i, i + n));
    expect(out.join("")).toBe("hello world");
    expect(err.join("")).toBe("warn");
  });

  it("refuses a stream kind the engine never sends", () => {
    const s = new MuxSplitter(
      () => {},
      () => {},
    );
    expect(() => s.push(mux(7, "x"))).toThrow(/unknown stream kind 7/);
  });
});
