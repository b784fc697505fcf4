// daemon/connection.ts — one client connection. Lines in, responses and event
// notifications out. Requests on a connection run concurrently (a goal.wait does not
// hold up an approval.respond) and are answered by id. Whatever goes wrong with one
// line — bad JSON, a batch, an unknown method, bad params, a line over the size cap —
// gets an error response and the connection reads on from the next line; nothing a
// client sends can take the daemon down.
// When the client leaves (or is too slow to read its event stream), every subscription
// it held is dropped and the responses still in flight are discarded; the work they
// started (a goal, an agent run) is not cancelled by the client leaving.

import type { Socket } from "node:net";
import { RpcCode, type RpcErrorObject, toRpcError } from "./errors.js";
import {
  errorLine,
  LineSplitter,
  notificationLine,
  parseRequest,
  RpcErrorWithId,
  type RpcId,
  type RpcRequest,
  resultLine,
} from "./protocol.js";

/** A client that lets this much output pile up unread is disconnected. */
export const MAX_UNREAD_BYTES = 16 * 1024 * 1024;

export interface ConnectionHooks {
  maxLineBytes: number;
  /**
   * Run one request; the value is the result. Throwing yields an error response.
   * `afterResponse` registers work to run once the response line is written (a stream's
   * first events must follow the response that opened it).
   */
  dispatch(req: RpcRequest, conn: Connection, afterResponse: (fn: () => void) => void): Promise<unknown>;
  log(message: string): void;
  onClose(conn: Connection): void;
}

export class Connection {
  private readonly splitter: LineSplitter;
  private readonly cleanups = new Set<() => void>();
  private closedFlag = false;
  readonly inFlight = new Set<Promise<void>>();

  constructor(
    readonly sock: Socket,
    private readonly hooks: ConnectionHooks,
  ) {
    this.splitter = new LineSplitter(hooks.maxLineBytes);
    sock.on("data", (chunk: Buffer) => this.onData(chunk));
    sock.on("error", () => this.close());
    sock.on("close", () => this.close());
  }

  /** Run `fn` when the connection closes (unsubscribe, release waiters). */
  onClose(fn: () => void): () => void {
    if (this.closedFlag) {
      fn();
      return () => {};
    }
    this.cleanups.add(fn);
    return () => this.cleanups.delete(fn);
  }

  /** Send a notification (an `event` line). Returns false if the connection is gone. */
  notify(method: string, params: unknown): boolean {
    return this.write(notificationLine(method, params));
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const fn of this.cleanups) {
      try {
        fn();
      } catch (e) {
        this.hooks.log(`connection cleanup failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    this.cleanups.clear();
    this.sock.destroy();
    this.hooks.onClose(this);
  }

  private write(text: string): boolean {
    if (this.closedFlag || this.sock.destroyed) return false;
    if (this.sock.writableLength > MAX_UNREAD_BYTES) {
      this.hooks.log(`closing a client that left ${this.sock.writableLength} bytes unread`);
      this.close();
      return false;
    }
    this.sock.write(text);
    return true;
  }

  private respondError(id: RpcId, error: RpcErrorObject): void {
    this.write(errorLine(id, error));
  }

  private onData(chunk: Buffer): void {
    for (const ev of this.splitter.push(chunk)) {
      if (this.closedFlag) return;
      if (ev.kind === "oversized") {
        this.respondError(null, {
          code: RpcCode.invalidRequest,
          message: `invalid request: line longer than ${this.hooks.maxLineBytes} bytes (daemon.max_line_bytes); it was dropped up to the next newline`,
          data: { code: "invalid_input", details: { max_line_bytes: this.hooks.maxLineBytes } },
        });
        continue;
      }
      this.handleLine(ev.text);
    }
  }

  private handleLine(line: string): void {
    let req: RpcRequest;
    try {
      req = parseRequest(line);
    } catch (e) {
      const id = e instanceof RpcErrorWithId ? e.id : null;
      this.respondError(id, toRpcError(e, this.hooks.log));
      return;
    }
    const p = this.run(req);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async run(req: RpcRequest): Promise<void> {
    const notification = req.id === undefined;
    const after: (() => void)[] = [];
    try {
      const result = await this.hooks.dispatch(req, this, (fn) => after.push(fn));
      if (!notification) this.write(resultLine(req.id as RpcId, result));
      for (const fn of after) fn();
    } catch (e) {
      const error = toRpcError(e, this.hooks.log);
      if (!notification) this.respondError(req.id as RpcId, error);
    }
  }
}
