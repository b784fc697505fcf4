// The container stdio transport on the host, over an in-memory stream that speaks the
// engine's multiplexed framing: lines split anywhere (down to one byte per frame) make one
// message each; what comes before start() is delivered by it, an end included; the end
// is told once however it comes; stderr keeps only its tail; a stream that is not the
// engine's framing is cut off.

import { Duplex } from "node:stream";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { ContainerStdioTransport, STDERR_TAIL_BYTES } from "../../src/sandbox/mcp-transport.js";

/** One frame of the engine's stream: [kind, 0, 0, 0, size32be] + bytes. */
function frame(kind: 1 | 2, bytes: Buffer | string): Buffer {
  const body = Buffer.from(bytes);
  const head = Buffer.alloc(8);
  head[0] = kind;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

function harness() {
  const written: string[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk, _enc, cb) {
      written.push(String(chunk));
      cb();
    },
  });
  const ends: boolean[] = [];
  const transport = new ContainerStdioTransport(stream, {
    label: 'MCP server "t" (goal g)',
    describeEnd: async () => "it exited with code 7",
    ended: async (unexpected) => {
      ends.push(unexpected);
    },
  });
  const messages: JSONRPCMessage[] = [];
  const errors: string[] = [];
  let closes = 0;
  const listen = () => {
    transport.onmessage = (m) => messages.push(m);
    transport.onerror = (e) => errors.push(e.message);
    transport.onclose = () => closes++;
  };
  return { stream, transport, written, ends, messages, errors, closes: () => closes, listen };
}

const settle = () => new Promise((r) => setTimeout(r, 20));
const ping = (id: number) => JSON.stringify({ jsonrpc: "2.0", id, method: "ping" });

describe("the container stdio transport", () => {
  it("makes one message of each line, however the frames and chunks cut it", async () => {
    const h = harness();
    h.listen();
    await h.transport.start();
    const bytes = frame(1, `${ping(1)}\r\n${ping(2)}\n${ping(3).slice(0, 10)}`);
    h.stream.push(bytes.subarray(0, 5));
    h.stream.push(bytes.subarray(5));
    for (const b of Buffer.from(`${ping(3).slice(10)}\n`)) h.stream.push(frame(1, Buffer.from([b])));
    await settle();
    expect(h.messages.map((m) => (m as { id: number }).id)).toEqual([1, 2, 3]);
    expect(h.errors).toEqual([]);
  });

  it("parses a long line sent a byte per frame", async () => {
    const h = harness();
    h.listen();
    await h.transport.start();
    const line = JSON.stringify({
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { data: "x".repeat(256 * 1024) },
    });
    const frames = [...Buffer.from(`${line}\n`)].map((b) => frame(1, Buffer.from([b])));
    for (let i = 0; i < frames.length; i += 4096) h.stream.push(Buffer.concat(frames.slice(i, i + 4096)));
    await settle();
    expect(h.messages).toHaveLength(1);
  });

  it("delivers what came before start() when it is called, an end included, and tells the end once", async () => {
    const h = harness();
    h.stream.push(frame(1, `${ping(1)}\n`));
    h.stream.push(frame(2, "bye\n"));
    h.stream.push(null);
    await settle();
    expect(h.ends).toEqual([true]);
    h.listen();
    await h.transport.start();
    expect(h.messages).toEqual([{ jsonrpc: "2.0", id: 1, method: "ping" }]);
    expect(h.errors).toEqual(['MCP server "t" (goal g) ended: it exited with code 7 (stderr: bye)']);
    expect(h.closes()).toBe(1);
    await h.transport.close();
    expect(h.ends).toEqual([true]);
    expect(h.closes()).toBe(1);
  });

  it("cuts off a server that says more than a message's worth before anyone listens", async () => {
    const h = harness();
    const big = JSON.stringify({
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { data: "x".repeat(1 << 20) },
    });
    for (let i = 0; i < 5; i++) h.stream.push(frame(1, `${big}\n`));
    await settle();
    expect(h.ends).toEqual([true]);
    h.listen();
    await h.transport.start();
    expect(h.errors).toEqual([
      expect.stringMatching(/ended: it sent more than 4194304 bytes before the client listened/),
    ]);
    expect(h.closes()).toBe(1);
  });

  it("closes once from our side: ended(false), onclose once, and no send after", async () => {
    const h = harness();
    h.listen();
    await h.transport.start();
    await h.transport.send({ jsonrpc: "2.0", id: 1, method: "ping" });
    expect(h.written).toEqual([`${ping(1)}\n`]);
    await Promise.all([h.transport.close(), h.transport.close()]);
    expect(h.ends).toEqual([false]);
    expect(h.closes()).toBe(1);
    expect(h.errors).toEqual([]);
    await expect(h.transport.send({ jsonrpc: "2.0", id: 2, method: "ping" })).rejects.toThrow(
      /is not connected/,
    );
  });

  it("keeps only the tail of stderr", async () => {
    const h = harness();
    h.listen();
    await h.transport.start();
    for (let i = 0; i < 1000; i++)
      h.stream.push(frame(2, `line ${String(i).padStart(4, "0")} ${"e".repeat(90)}\n`));
    await settle();
    const tail = h.transport.stderrTail();
    expect(tail.length).toBe(STDERR_TAIL_BYTES);
    expect(tail.endsWith(`line 0999 ${"e".repeat(90)}\n`)).toBe(true);
  });

  it("cuts off a stream that is not the engine's framing", async () => {
    const h = harness();
    h.listen();
    await h.transport.start();
    h.stream.push(Buffer.from('{"jsonrpc":"2.0"}\n and more'));
    await settle();
    expect(h.errors).toEqual([
      expect.stringMatching(/ended: its output stream is not the engine's framing: .*unknown stream kind/),
    ]);
    expect(h.ends).toEqual([true]);
  });
});
