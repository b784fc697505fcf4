// sandbox/mcp-transport.ts — an MCP SDK Transport over a container's attached stdin and
// stdout: the stdio transport's framing (one JSON-RPC message per line, the SDK's own
// ReadBuffer and serializeMessage) carried by the engine's hijacked attach stream, whose
// stdout and stderr arrive multiplexed (Tty off) and are taken apart by MuxSplitter.
//
// Everything the server writes is untrusted, so the transport is strict where the SDK's
// host-process transport is lenient: a line that is not a JSON-RPC message, or a line
// longer than MAX_MESSAGE_BYTES (a flood without a newline), is reported through onerror
// and ends the connection at once — nothing beyond one message is ever buffered. Stderr is
// kept as a bounded tail for the operator's diagnostics (never for a model). Whatever ends
// the connection (close(), the server exiting, a broken line, the stream failing), onclose
// fires once and the owner's `ended` hook runs once, which is where the container goes.

import type { Duplex } from "node:stream";
import { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { errorMessage } from "../errors.js";
import { MuxSplitter } from "./executor-session.js";

/** The longest line (one JSON-RPC message) a server may send. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** How much of the server's stderr is kept, from the end. */
export const STDERR_TAIL_BYTES = 8 * 1024;

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

  private readonly reader = new ReadBuffer({ maxBufferSize: MAX_MESSAGE_BYTES });
  private readonly splitter: MuxSplitter;
  private stderr = Buffer.alloc(0);
  private started = false;
  /** Messages and an end that came before start(): the server may speak before the client listens. */
  private early: JSONRPCMessage[] = [];
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
    return new Promise((resolve, reject) => {
      this.stream.write(serializeMessage(message), (e) => (e ? reject(e) : resolve()));
    });
  }

  /** Ends the connection from our side: stdin is closed, then the owner removes the container. */
  close(): Promise<void> {
    return this.end(false, undefined);
  }

  /** The last STDERR_TAIL_BYTES of the server's stderr, as text. */
  stderrTail(): string {
    return this.stderr.toString("utf8");
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  private onStdout(bytes: Buffer): void {
    if (this.closing) return;
    try {
      this.reader.append(bytes);
    } catch {
      this.fail(`it sent a line longer than ${MAX_MESSAGE_BYTES} bytes; it was cut off`);
      return;
    }
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.reader.readMessage();
      } catch (e) {
        this.fail(
          `it sent a line that is not a JSON-RPC message (${firstLine(errorMessage(e))}); it was cut off`,
        );
        return;
      }
      if (message === null) return;
      if (this.started) this.onmessage?.(message);
      else this.early.push(message);
      if (this.closing) return;
    }
  }

  private onStderr(bytes: Buffer): void {
    const joined = Buffer.concat([this.stderr, bytes]);
    this.stderr =
      joined.length > STDERR_TAIL_BYTES ? joined.subarray(joined.length - STDERR_TAIL_BYTES) : joined;
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
    this.reader.clear();
    this.early = [];
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
