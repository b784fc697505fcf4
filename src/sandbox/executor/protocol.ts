// sandbox/executor/protocol.ts — the wire between the host (executor-session.ts) and the
// executor in a goal's container, shared by both ends so they cannot drift apart.
//
// A frame is a 4-byte big-endian length, then that many bytes. The host's very first frame
// on the executor's stdin is the session secret (SECRET_BYTES random bytes, never in argv or
// env). Every later frame, in both directions, is `secret | JSON body`, and a receiver
// compares the secret in constant time. Caps: MAX_FRAME_TO_EXECUTOR / MAX_FRAME_TO_HOST;
// a header announcing more is refused before a byte of the body is buffered.
//   host -> executor   {id, op, args}            (op "cancel" {id} stops a running exec)
//   executor -> host   {id, ok: true, result} | {id, ok: false, error: {code, message}}
//                      id 0 is the hello: {hello: "aido-executor", version, pid, landlockAbi}
// Anything else (an unknown, oversized, malformed or unauthenticated frame) is a
// FrameError: the receiver stops trusting the stream and ends the session.

import { timingSafeEqual } from "node:crypto";

export const PROTOCOL_VERSION = 2;
export const SECRET_BYTES = 32;
/** Replies are bounded by the tools (output caps, read windows); 16 MiB leaves room. */
export const MAX_FRAME_TO_HOST = 16 * 1024 * 1024;
/** Requests carry file contents (file_write: 10 MiB of text, JSON-escaped). */
export const MAX_FRAME_TO_EXECUTOR = 96 * 1024 * 1024;

export interface Request {
  id: number;
  op: string;
  args: Record<string, unknown>;
}

export interface ErrorBody {
  code: string;
  message: string;
}

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: ErrorBody };

export interface Hello {
  hello: "aido-executor";
  version: number;
  pid: number;
  /** The kernel's Landlock ABI as the helper reports it; 0 = no Landlock. */
  landlockAbi: number;
}

export type FrameProblem = "oversized" | "malformed" | "unauthenticated" | "unknown";

export class FrameError extends Error {
  constructor(
    readonly problem: FrameProblem,
    message: string,
  ) {
    super(message);
    this.name = "FrameError";
  }
}

function header(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length, 0);
  return h;
}

/** The host's first frame: the secret alone. */
export function secretFrame(secret: Buffer): Buffer {
  return Buffer.concat([header(secret.length), secret]);
}

/** `secret | JSON` with its length; refuses (oversized) past `max` instead of sending. */
export function encodeFrame(secret: Buffer, body: unknown, max: number): Buffer {
  const json = Buffer.from(JSON.stringify(body), "utf8");
  const length = secret.length + json.length;
  if (length > max) {
    throw new FrameError("oversized", `a frame of ${length} bytes is over the limit of ${max}`);
  }
  return Buffer.concat([header(length), secret, json]);
}

/**
 * Incremental, linear-time splitting of a byte stream into length-prefixed frames. Chunks
 * are queued as they come; a frame's bytes are copied once, when it is complete. The length
 * is checked against `max` as soon as the 4 header bytes are in.
 */
export class FrameDecoder {
  /** Queued chunks from index `first` on (no Array.shift: that is linear in the queue). */
  private chunks: Buffer[] = [];
  private first = 0;
  private queued = 0;
  private need = -1;

  constructor(
    private readonly max: number,
    private readonly onFrame: (payload: Buffer) => void,
  ) {}

  /** Bytes received and not yet part of a delivered frame. */
  get pending(): number {
    return this.queued;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.queued < 4) return;
        const length = this.take(4).readUInt32BE(0);
        if (length > this.max) {
          throw new FrameError("oversized", `a frame header announces ${length} bytes (limit ${this.max})`);
        }
        this.need = length;
      }
      if (this.queued < this.need) return;
      const payload = this.take(this.need);
      this.need = -1;
      this.onFrame(payload);
    }
  }

  /** Remove and return the first `n` queued bytes (n <= queued), copying them at most once. */
  private take(n: number): Buffer {
    const head = this.chunks[this.first] as Buffer;
    let out: Buffer;
    if (head.length >= n) {
      out = head.subarray(0, n);
      if (head.length === n) this.first++;
      else this.chunks[this.first] = head.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[this.first] as Buffer;
        const part = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, part);
        filled += part;
        if (part === c.length) this.first++;
        else this.chunks[this.first] = c.subarray(part);
      }
    }
    this.queued -= n;
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first > 1024 && this.first * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
    return out;
  }
}

/** The JSON body of an authenticated frame; unauthenticated or not JSON is a FrameError. */
export function openFrame(secret: Buffer, payload: Buffer): unknown {
  if (payload.length < secret.length || !timingSafeEqual(payload.subarray(0, secret.length), secret)) {
    throw new FrameError("unauthenticated", "a frame without the session secret");
  }
  try {
    return JSON.parse(payload.subarray(secret.length).toString("utf8"));
  } catch (e) {
    throw new FrameError("malformed", `a frame that is not JSON (${(e as Error).message})`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

export function parseRequest(body: unknown): Request {
  if (!isObject(body) || !isId(body.id) || body.id === 0 || typeof body.op !== "string") {
    throw new FrameError("malformed", "a request needs a positive integer id and an op");
  }
  const args = body.args === undefined ? {} : body.args;
  if (!isObject(args)) throw new FrameError("malformed", `request ${body.id}: args must be an object`);
  return { id: body.id, op: body.op, args };
}

export function parseReply(body: unknown): Reply {
  if (!isObject(body) || !isId(body.id) || typeof body.ok !== "boolean") {
    throw new FrameError("malformed", "a reply needs an integer id and ok");
  }
  if (body.ok) return { id: body.id, ok: true, result: body.result ?? null };
  const e = body.error;
  if (!isObject(e) || typeof e.code !== "string" || typeof e.message !== "string") {
    throw new FrameError("malformed", `reply ${body.id}: error needs a code and a message`);
  }
  return { id: body.id, ok: false, error: { code: e.code, message: e.message } };
}

export function parseHello(result: unknown): Hello {
  if (
    !isObject(result) ||
    result.hello !== "aido-executor" ||
    result.version !== PROTOCOL_VERSION ||
    !isId(result.pid) ||
    !isId(result.landlockAbi)
  ) {
    throw new FrameError(
      "malformed",
      `the executor's hello is not protocol version ${PROTOCOL_VERSION} (an image built by another Aido?)`,
    );
  }
  return {
    hello: "aido-executor",
    version: PROTOCOL_VERSION,
    pid: result.pid,
    landlockAbi: result.landlockAbi,
  };
}
