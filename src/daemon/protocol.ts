// daemon/protocol.ts — the wire: newline-delimited JSON-RPC 2.0. A LineSplitter cuts a
// byte stream into lines no longer than a cap (a line over the cap is reported once and
// its bytes are dropped up to the next newline, so the connection resynchronises instead
// of buffering without bound); parseRequest turns one line into a request or into the
// protocol error the client must get. Batches are refused (-32600): a batch would have
// to share one response line with a streaming events.subscribe, and no Aido client
// needs them.

import { RpcCode, RpcError, type RpcErrorObject } from "./errors.js";

export type RpcId = string | number | null;

export interface RpcRequest {
  /** Absent for a notification (no response is sent). */
  id?: RpcId;
  method: string;
  params: Record<string, unknown>;
}

export type LineEvent = { kind: "line"; text: string } | { kind: "oversized"; bytes: number };

/** Splits incoming chunks into lines of at most `maxBytes` bytes (newline excluded). */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  /** True while dropping the rest of an oversized line. */
  private skipping = false;
  private skipped = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): LineEvent[] {
    const out: LineEvent[] = [];
    let start = 0;
    while (start <= chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (this.skipping) {
        this.skipped += piece.length;
      } else if (this.size + piece.length > this.maxBytes) {
        this.skipping = true;
        this.skipped = this.size + piece.length;
        this.parts = [];
        this.size = 0;
        out.push({ kind: "oversized", bytes: this.skipped });
      } else if (piece.length > 0) {
        this.parts.push(Buffer.from(piece));
        this.size += piece.length;
      }
      if (nl === -1) break;
      if (!this.skipping) {
        const text = Buffer.concat(this.parts, this.size).toString("utf8");
        if (text.trim() !== "") out.push({ kind: "line", text });
      }
      this.parts = [];
      this.size = 0;
      this.skipping = false;
      this.skipped = 0;
      start = nl + 1;
    }
    return out;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * One line -> a request. Throws RpcError with the id the client should see (null when
 * the line never got far enough to have one).
 */
export function parseRequest(line: string): RpcRequest {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    throw new RpcErrorWithId(null, RpcCode.parseError, `parse error: ${(e as Error).message}`);
  }
  if (Array.isArray(msg)) {
    throw new RpcErrorWithId(
      null,
      RpcCode.invalidRequest,
      "invalid request: batches are not supported; send one request object per line",
    );
  }
  if (!isObject(msg)) {
    throw new RpcErrorWithId(
      null,
      RpcCode.invalidRequest,
      "invalid request: a request must be a JSON object",
    );
  }
  const rawId = msg.id;
  const idOk = rawId === undefined || rawId === null || typeof rawId === "string" || Number.isFinite(rawId);
  const id: RpcId = idOk && rawId !== undefined ? (rawId as RpcId) : null;
  const bad = (what: string): never => {
    throw new RpcErrorWithId(id, RpcCode.invalidRequest, `invalid request: ${what}`);
  };
  if (!idOk) bad("id must be a string, a number or null");
  if (msg.jsonrpc !== "2.0") bad('jsonrpc must be "2.0"');
  if (typeof msg.method !== "string" || msg.method === "") bad("method must be a non-empty string");
  for (const key of Object.keys(msg)) {
    if (!["jsonrpc", "id", "method", "params"].includes(key)) bad(`unknown member "${key}"`);
  }
  let params: Record<string, unknown> = {};
  if (msg.params !== undefined) {
    if (!isObject(msg.params)) {
      throw new RpcErrorWithId(
        id,
        RpcCode.invalidParams,
        "invalid params: params must be an object of named parameters",
        { code: "invalid_input", details: { field: "params" } },
      );
    }
    params = msg.params;
  }
  const req: RpcRequest = { method: msg.method as string, params };
  if (rawId !== undefined) req.id = id;
  return req;
}

/** A protocol error that knows which id it answers. */
export class RpcErrorWithId extends RpcError {
  constructor(
    readonly id: RpcId,
    code: RpcCode,
    message: string,
    data?: RpcErrorObject["data"],
  ) {
    super(code, message, data);
  }
}

export function resultLine(id: RpcId, result: unknown): string {
  return `${JSON.stringify({ jsonrpc: "2.0", id, result: result ?? null })}\n`;
}

export function errorLine(id: RpcId, error: RpcErrorObject): string {
  return `${JSON.stringify({ jsonrpc: "2.0", id, error })}\n`;
}

export function notificationLine(method: string, params: unknown): string {
  return `${JSON.stringify({ jsonrpc: "2.0", method, params })}\n`;
}
