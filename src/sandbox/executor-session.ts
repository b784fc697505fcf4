// sandbox/executor-session.ts — the host end of one executor process: a single
// `docker exec` session (stdin attached, Tty off) speaking executor/protocol.ts. With Tty
// off the engine multiplexes stdout and stderr with 8-byte headers [stream, 0, 0, 0,
// size32be]; MuxSplitter takes them apart as the bytes stream in, and FrameDecoder cuts
// stdout into frames, both in linear time with nothing buffered beyond one frame.
//
// Trust: the session secret is made here and sent as the first frame on stdin. A frame
// that lacks it, is over the cap, is not a well-formed reply, or answers a call that was
// never made (or was answered already) means someone other than the executor wrote into
// the stream: the session is killed and every pending call fails with sandbox_failed. The
// owner (DockerSandbox) starts a fresh executor for the next call.
//
// Liveness: every call has a deadline (its op's own timeout plus a grace; the executor
// ends an exec or a grep itself before it). A call that gets no answer by then means the
// executor is stuck — a blocked file-system thread, a stopped or wedged process — and every
// later call would wait the same way, so the session is treated as broken: it is killed
// (`stuck` is set) and its pending calls fail saying so; the next call starts a new one.

import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import {
  encodeFrame,
  FrameDecoder,
  FrameError,
  type Hello,
  MAX_FRAME_TO_EXECUTOR,
  MAX_FRAME_TO_HOST,
  openFrame,
  parseHello,
  parseReply,
  SECRET_BYTES,
  secretFrame,
} from "./executor/protocol.js";

export const EXECUTOR_PATH = "/opt/aido/executor.js";
/**
 * The image's executor runs on /opt/aido/node, a copy of node its user may execute but not
 * read, which makes the process non-dumpable (see sandbox-image/Dockerfile). Images not
 * built from the recipe (a human sandbox's docker:// runtime) fall back to their own node.
 */
const EXECUTOR_CMD = [
  "/bin/sh",
  "-c",
  'if [ -x /opt/aido/node ]; then exec /opt/aido/node "$0"; fi; exec node "$0"',
  EXECUTOR_PATH,
];
const READY_TIMEOUT_MS = 15_000;
/** Answers still allowed to arrive after their call gave up (timeout, cancel). */
const LATE_MAX = 4096;

interface Pending {
  op: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  cleanup: () => void;
}

/** Executor error codes -> AidoError codes (the executor's own code stays in details). */
function toAidoError(op: string, e: { code: string; message: string }): AidoError {
  const code =
    e.code === "not_found"
      ? ErrorCode.notFound
      : e.code === "invalid_input"
        ? ErrorCode.invalidInput
        : e.code === "confinement_too_large"
          ? ErrorCode.limitExceeded
          : e.code === "landlock_unavailable"
            ? ErrorCode.sandboxUnavailable
            : ErrorCode.toolFailed;
  return new AidoError(code, e.message, { op, reason: e.code });
}

/** Docker's stdout/stderr framing, taken apart incrementally. */
export class MuxSplitter {
  private readonly head = Buffer.alloc(8);
  private headFill = 0;
  private remaining = 0;
  private kind = 0;

  constructor(
    private readonly onStdout: (bytes: Buffer) => void,
    private readonly onStderr: (bytes: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining === 0) {
        const n = Math.min(8 - this.headFill, chunk.length - at);
        chunk.copy(this.head, this.headFill, at, at + n);
        this.headFill += n;
        at += n;
        if (this.headFill < 8) return;
        this.headFill = 0;
        this.kind = this.head[0] as number;
        if (this.kind !== 1 && this.kind !== 2) {
          throw new FrameError(
            "malformed",
            `the engine's stream carries an unknown stream kind ${this.kind}`,
          );
        }
        this.remaining = this.head.readUInt32BE(4);
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - at);
      const part = chunk.subarray(at, at + n);
      this.remaining -= n;
      at += n;
      if (this.kind === 1) this.onStdout(part);
      else this.onStderr(part);
    }
  }
}

export class ExecutorSession {
  private readonly pending = new Map<number, Pending>();
  private readonly late = new Set<number>();
  private readonly secret = randomBytes(SECRET_BYTES);
  private readonly splitter: MuxSplitter;
  private readonly decoder: FrameDecoder;
  private nextId = 1;
  private stderrTail = "";
  private dead: string | undefined;
  private hello: { resolve: (h: Hello) => void; reject: (e: Error) => void } | undefined;
  executorPid = 0;
  /** The kernel's Landlock ABI as the executor found it (0: none). */
  landlockAbi = 0;
  /** The session was killed because a call got no answer in time (see the header). */
  stuck = false;

  private constructor(private readonly stream: Duplex) {
    this.decoder = new FrameDecoder(MAX_FRAME_TO_HOST, (payload) => this.onFrame(payload));
    this.splitter = new MuxSplitter(
      (bytes) => this.decoder.push(bytes),
      (bytes) => {
        this.stderrTail = (this.stderrTail + bytes.toString("utf8")).slice(-4000);
      },
    );
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("end", () => this.die("the executor's stream ended"));
    stream.on("close", () => this.die("the executor's stream closed"));
    stream.on("error", (e: Error) => this.die(`the executor's stream failed: ${e.message}`));
  }

  /** Start the executor in a running container, hand it the secret, wait for its hello. */
  static async start(container: Docker.Container): Promise<ExecutorSession> {
    const exec = await container.exec({
      Cmd: EXECUTOR_CMD,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      WorkingDir: "/workspace",
    });
    const stream = (await exec.start({ hijack: true, stdin: true })) as unknown as Duplex;
    const session = new ExecutorSession(stream);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        session.close();
        reject(
          new Error(`the executor did not say hello within ${READY_TIMEOUT_MS} ms${session.diagnostics()}`),
        );
      }, READY_TIMEOUT_MS);
      session.hello = {
        resolve: (h) => {
          clearTimeout(timer);
          session.executorPid = h.pid;
          session.landlockAbi = h.landlockAbi;
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      stream.write(secretFrame(session.secret));
    });
    return session;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  /**
   * One call. With `signal`, an abort fails the call at once (cancelled) and asks the
   * executor to stop it (for exec: kill its process group); a late answer is dropped.
   */
  call<T>(op: string, args: Record<string, unknown>, timeoutMs: number, signal?: AbortSignal): Promise<T> {
    if (this.dead !== undefined) {
      return Promise.reject(
        new AidoError(ErrorCode.sandboxFailed, `executor is not running: ${this.dead}`, { op }),
      );
    }
    if (signal?.aborted) return Promise.reject(cancelledError(op));
    const id = this.nextId++;
    let frame: Buffer;
    try {
      frame = encodeFrame(this.secret, { id, op, args }, MAX_FRAME_TO_EXECUTOR);
    } catch (e) {
      return Promise.reject(
        new AidoError(ErrorCode.invalidInput, `sandbox call ${op}: ${errorMessage(e)}`, { op }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.giveUp(id);
        reject(cancelledError(op));
        this.send({ id: this.nextId++, op: "cancel", args: { id } }, true);
      };
      const timer = setTimeout(() => {
        this.giveUp(id);
        reject(
          new AidoError(
            ErrorCode.sandboxFailed,
            `sandbox call ${op} got no answer within ${timeoutMs} ms; the executor is taken as stuck and replaced`,
            { op },
          ),
        );
        this.stuck = true;
        this.stream.end();
        this.die(`it did not answer a ${op} call within ${timeoutMs} ms and was taken as stuck`);
        this.stream.destroy();
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, {
        op,
        resolve: resolve as (v: unknown) => void,
        reject,
        timer,
        cleanup: () => signal?.removeEventListener("abort", onAbort),
      });
      this.stream.write(frame);
    });
  }

  /** Ends the executor: closing its stdin makes it kill what it runs and exit. */
  close(): void {
    if (this.dead === undefined) this.stream.end();
    this.die("closed by the host");
    this.stream.destroy();
  }

  private send(body: { id: number; op: string; args: Record<string, unknown> }, expectLate: boolean): void {
    if (this.dead !== undefined) return;
    if (expectLate) this.late.add(body.id);
    this.stream.write(encodeFrame(this.secret, body, MAX_FRAME_TO_EXECUTOR));
  }

  /** The caller stopped waiting for `id`; its answer may still come and is then dropped. */
  private giveUp(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    p.cleanup();
    this.pending.delete(id);
    this.late.add(id);
    if (this.late.size > LATE_MAX) this.late.delete(this.late.values().next().value as number);
  }

  private diagnostics(): string {
    const t = this.stderrTail.trim();
    return t === "" ? "" : ` (executor stderr: ${t.slice(-500)})`;
  }

  private die(reason: string): void {
    if (this.dead !== undefined) return;
    this.dead = reason + this.diagnostics();
    const err = new AidoError(ErrorCode.sandboxFailed, `executor stopped: ${this.dead}`, {});
    this.hello?.reject(err);
    this.hello = undefined;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.cleanup();
      p.reject(
        new AidoError(ErrorCode.sandboxFailed, `executor stopped during ${p.op}: ${this.dead}`, { op: p.op }),
      );
    }
    this.pending.clear();
  }

  /** A stream that breaks the protocol is not the executor's any more: kill the session. */
  private onData(chunk: Buffer): void {
    if (this.dead !== undefined) return;
    try {
      this.splitter.push(chunk);
    } catch (e) {
      const what = e instanceof FrameError ? `${e.problem} frame: ${e.message}` : errorMessage(e);
      this.die(`the executor's stream carried an ${what}; the session was killed`);
      this.stream.destroy();
    }
  }

  private onFrame(payload: Buffer): void {
    const reply = parseReply(openFrame(this.secret, payload));
    if (this.hello) {
      if (reply.id !== 0 || !reply.ok)
        throw new FrameError("malformed", "the executor's first frame is not its hello");
      const h = parseHello(reply.result);
      this.hello.resolve(h);
      this.hello = undefined;
      return;
    }
    const p = this.pending.get(reply.id);
    if (!p) {
      if (this.late.delete(reply.id)) return; // answered after its caller gave up
      throw new FrameError("unknown", `an answer to call ${reply.id}, which is not waiting for one`);
    }
    this.pending.delete(reply.id);
    clearTimeout(p.timer);
    p.cleanup();
    if (reply.ok) p.resolve(reply.result);
    else p.reject(toAidoError(p.op, reply.error));
  }
}

/** A call's cancellation by its caller's signal (an exec's, or its wait for a frozen goal's thaw). */
export function cancelledError(op: string): AidoError {
  return new AidoError(ErrorCode.cancelled, `sandbox call ${op} was cancelled`, { op });
}
