// sandbox/mcp-transport.ts — an MCP SDK Transport over a container's attached stdin and
// stdout: the stdio transport's framing (one JSON-RPC message per line, parsed and written
// by the SDK's own deserializeMessage and serializeMessage) carried by the engine's
// hijacked attach stream, whose stdout and stderr arrive multiplexed (Tty off) and are
// taken apart by MuxSplitter.
//
// Everything the server writes is untrusted, so the transport is strict where the SDK's
// host-process transport is lenient: a line that is not a JSON-RPC message, or a line
// longer than MAX_MESSAGE_BYTES (a flood without a newline), is reported through onerror
// and ends the connection at once — nothing beyond one message is ever buffered, and the
// work per byte is constant (the SDK's ReadBuffer copies its whole buffer on every chunk,
// which a server writing a long line a byte at a time would turn into quadratic work on
// the host). A server that stops reading its stdin while making us write (answers to its
// pings) is cut off once MAX_PENDING_WRITE_BYTES wait to be sent. Stderr is kept as a
// bounded tail for the operator's diagnostics (never for a model). Whatever ends the
// connection (close(), the server exiting, a broken line, the stream failing), onclose
// fires once and the owner's `ended` hook runs once, which is where the container goes.

import type { Duplex } from "node:stream";
import { deserializeMessage, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { errorMessage } from "../errors.js";
import { MuxSplitter } from "./executor-session.js";

/** The longest line (one JSON-RPC message) a server may send. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** How much of the server's stderr is kept, from the end. */
export const STDERR_TAIL_BYTES = 8 * 1024;
/** Bytes written to the server and not yet taken by it, beyond which it is cut off. */
export const MAX_PENDING_WRITE_BYTES = 4 * 1024 * 1024;
const NEWLINE = 0x0a;

export interface ContainerStdioOptions {
  /** Names the server in errors: `MCP server "memory" (goal g_1)`. */
  label: string;
  /**
   * Runs once when the connection ends for any reason, after onclose. `unexpected` is
   * true when the server ended it (it exited, broke the protocol, the stream failed).
   */
  ended(unexpected: boolean): Promise<void>;
  /** How the server ended, for the error of an unexpected end (e.g. its exit code). */
  describeEnd(): Promise<string>;
}

export class ContainerStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private readonly splitter: MuxSplitter;
  /**
   * The line being received, copied into one buffer that doubles up to MAX_MESSAGE_BYTES
   * (not kept as its chunks: a line sent a byte per frame would cost an object per byte).
   */
  private line = Buffer.alloc(0);
  private lineBytes = 0;
  /** Stderr's last chunks; compacted to the tail once they hold twice as much. */
  private stderr: Buffer[] = [];
  private stderrBytes = 0;
  private started = false;
  /** Messages and an end that came before start(): the server may speak before the client listens. */
  private early: JSONRPCMessage[] = [];
  private earlyBytes = 0;
  private closing: Promise<void> | undefined;
  /** The end, when it came before start(): reported by start(). */
  private untold: { error?: Error } | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly opts: ContainerStdioOptions,
  ) {
    this.splitter = new MuxSplitter(
      (bytes) => this.onStdout(bytes),
      (bytes) => this.onStderr(bytes),
    );
    stream.on("data", (chunk: Buffer) => {
      if (this.closing) return;
      try {
        this.splitter.push(chunk);
      } catch (e) {
        this.fail(`its output stream is not the engine's framing: ${errorMessage(e)}`);
      }
    });
    stream.on("end", () => this.fail(undefined));
    stream.on("close", () => this.fail(undefined));
    stream.on("error", (e: Error) => this.fail(`its stream failed: ${e.message}`));
  }

  async start(): Promise<void> {
    if (this.started) throw new Error(`${this.opts.label}: the transport was started already`);
    this.started = true;
    const early = this.early;
    this.early = [];
    this.earlyBytes = 0;
    for (const m of early) this.onmessage?.(m);
    // An end that came before anyone listened is told now, so connect() fails saying why.
    const told = this.untold;
    this.untold = undefined;
    if (told) {
      if (told.error) this.onerror?.(told.error);
      this.onclose?.();
    }
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.closing) return Promise.reject(new Error(`${this.opts.label} is not connected`));
    const sent = new Promise<void>((resolve, reject) => {
      this.stream.write(serializeMessage(message), (e) => (e ? reject(e) : resolve()));
    });
    if (this.stream.writableLength > MAX_PENDING_WRITE_BYTES) {
      this.fail(
        `it stopped reading its input (${this.stream.writableLength} bytes waited for it); it was cut off`,
      );
    }
    return sent;
  }

  /** Ends the connection from our side: stdin is closed, then the owner removes the container. */
  close(): Promise<void> {
    return this.end(false, undefined);
  }

  /** The last STDERR_TAIL_BYTES of the server's stderr, as text. */
  stderrTail(): string {
    const all = Buffer.concat(this.stderr, this.stderrBytes);
    return all.subarray(Math.max(0, all.length - STDERR_TAIL_BYTES)).toString("utf8");
  }

  /** Cut stdout into lines, each byte looked at once; every whole line is one message. */
  private onStdout(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length && !this.closing) {
      const nl = bytes.indexOf(NEWLINE, at);
      const end = nl === -1 ? bytes.length : nl;
      if (this.lineBytes + (end - at) > MAX_MESSAGE_BYTES) {
        this.fail(`it sent a line longer than ${MAX_MESSAGE_BYTES} bytes; it was cut off`);
        return;
      }
      this.append(bytes.subarray(at, end));
      if (nl === -1) return;
      at = nl + 1;
      const text = this.line.toString("utf8", 0, this.lineBytes).replace(/\r$/, "");
      this.lineBytes = 0;
      let message: JSONRPCMessage;
      try {
        message = deserializeMessage(text);
      } catch (e) {
        this.fail(
          `it sent a line that is not a JSON-RPC message (${firstLine(errorMessage(e))}); it was cut off`,
        );
        return;
      }
      if (this.started) this.onmessage?.(message);
      else {
        this.early.push(message);
        this.earlyBytes += text.length;
        if (this.earlyBytes > MAX_MESSAGE_BYTES) {
          this.fail(
            `it sent more than ${MAX_MESSAGE_BYTES} bytes before the client listened; it was cut off`,
          );
        }
      }
    }
  }

  private append(part: Buffer): void {
    const need = this.lineBytes + part.length;
    if (need > this.line.length) {
      const grown = Buffer.alloc(
        Math.min(MAX_MESSAGE_BYTES, Math.max(need, 2 * this.line.length, 64 * 1024)),
      );
      this.line.copy(grown, 0, 0, this.lineBytes);
      this.line = grown;
    }
    part.copy(this.line, this.lineBytes);
    this.lineBytes = need;
  }

  private onStderr(bytes: Buffer): void {
    this.stderr.push(bytes);
    this.stderrBytes += bytes.length;
    if (this.stderrBytes < 2 * STDERR_TAIL_BYTES) return;
    const all = Buffer.concat(this.stderr, this.stderrBytes);
    const tail = Buffer.from(all.subarray(all.length - STDERR_TAIL_BYTES));
    this.stderr = [tail];
    this.stderrBytes = tail.length;
  }

  /** The server ended the connection (or broke it): `why` for a broken protocol, else its exit. */
  private fail(why: string | undefined): void {
    void this.end(true, why);
  }

  private end(unexpected: boolean, why: string | undefined): Promise<void> {
    this.closing ??= this.finish(unexpected, why);
    return this.closing;
  }

  private async finish(unexpected: boolean, why: string | undefined): Promise<void> {
    this.line = Buffer.alloc(0);
    this.lineBytes = 0;
    if (why !== undefined) this.stream.destroy();
    else this.stream.end();
    let error: Error | undefined;
    if (unexpected) {
      const how =
        why ?? (await this.opts.describeEnd().catch((e) => `its end could not be read: ${errorMessage(e)}`));
      const tail = this.stderrTail().trim();
      error = new Error(
        `${this.opts.label} ended: ${how}${tail === "" ? "" : ` (stderr: ${tail.slice(-500)})`}`,
      );
    }
    if (!this.started) this.untold = error ? { error } : {};
    else {
      if (error) this.onerror?.(error);
      this.onclose?.();
    }
    await this.opts.ended(unexpected);
  }
}

function firstLine(s: string): string {
  const line = s.split("\n", 1)[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
