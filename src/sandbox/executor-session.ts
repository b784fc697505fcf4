// sandbox/executor-session.ts — the host end of one executor process: a single
// `docker exec` session (stdin attached, Tty off) carrying length-prefixed JSON frames
// (see executor/executor.js). With Tty off the engine multiplexes stdout and stderr on
// the stream with 8-byte headers [stream, 0, 0, 0, size32be]; we take them apart here.
// Many calls may be in flight; each has an id and its own timeout. When the stream ends,
// every pending call fails with sandbox_failed and the session is dead for good: the
// owner (DockerSandbox) starts a new one.

import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";

export const EXECUTOR_PATH = "/opt/aido/executor.js";
const READY_TIMEOUT_MS = 15_000;

interface Pending {
  op: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Frame {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

/** Executor error codes -> AidoError codes (the executor's own code stays in details). */
function toAidoError(op: string, e: { code: string; message: string }): AidoError {
  const code =
    e.code === "not_found"
      ? ErrorCode.notFound
      : e.code === "invalid_input"
        ? ErrorCode.invalidInput
        : ErrorCode.toolFailed;
  return new AidoError(code, e.message, { op, reason: e.code });
}

export class ExecutorSession {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private mux: Buffer = Buffer.alloc(0);
  private frames: Buffer = Buffer.alloc(0);
  private stderrTail = "";
  private dead: string | undefined;
  private readonly exitListeners: Array<(reason: string) => void> = [];
  private hello: { resolve: (pid: number) => void; reject: (e: Error) => void } | undefined;
  executorPid = 0;

  private constructor(private readonly stream: Duplex) {
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("end", () => this.die("the executor's stream ended"));
    stream.on("close", () => this.die("the executor's stream closed"));
    stream.on("error", (e: Error) => this.die(`the executor's stream failed: ${e.message}`));
  }

  /** Start the executor in a running container and wait for its hello frame. */
  static async start(container: Docker.Container): Promise<ExecutorSession> {
    const exec = await container.exec({
      Cmd: ["node", EXECUTOR_PATH],
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
        resolve: (pid) => {
          clearTimeout(timer);
          session.executorPid = pid;
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
    return session;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  onExit(listener: (reason: string) => void): void {
    this.exitListeners.push(listener);
  }

  call<T>(op: string, args: Record<string, unknown>, timeoutMs: number): Promise<T> {
    if (this.dead !== undefined) {
      return Promise.reject(
        new AidoError(ErrorCode.sandboxFailed, `executor is not running: ${this.dead}`, { op }),
      );
    }
    const id = this.nextId++;
    const body = Buffer.from(JSON.stringify({ id, op, args }), "utf8");
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length, 0);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new AidoError(ErrorCode.sandboxFailed, `sandbox call ${op} got no answer within ${timeoutMs} ms`, {
            op,
          }),
        );
      }, timeoutMs);
      this.pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject, timer });
      this.stream.write(Buffer.concat([head, body]));
    });
  }

  /** Ends the executor: closing its stdin makes it kill what it runs and exit. */
  close(): void {
    if (this.dead === undefined) this.stream.end();
    this.die("closed by the host");
    this.stream.destroy();
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
      p.reject(
        new AidoError(ErrorCode.sandboxFailed, `executor stopped during ${p.op}: ${this.dead}`, { op: p.op }),
      );
    }
    this.pending.clear();
    for (const l of this.exitListeners) l(this.dead);
  }

  /** Demultiplex the engine's stdout/stderr framing. */
  private onData(chunk: Buffer): void {
    this.mux = this.mux.length === 0 ? chunk : Buffer.concat([this.mux, chunk]);
    while (this.mux.length >= 8) {
      const size = this.mux.readUInt32BE(4);
      if (this.mux.length < 8 + size) break;
      const kind = this.mux[0];
      const payload = this.mux.subarray(8, 8 + size);
      this.mux = this.mux.subarray(8 + size);
      if (kind === 1) this.onStdout(payload);
      else if (kind === 2) this.stderrTail = (this.stderrTail + payload.toString("utf8")).slice(-4000);
    }
  }

  private onStdout(payload: Buffer): void {
    this.frames = this.frames.length === 0 ? Buffer.from(payload) : Buffer.concat([this.frames, payload]);
    while (this.frames.length >= 4) {
      const len = this.frames.readUInt32BE(0);
      if (this.frames.length < 4 + len) break;
      const body = this.frames.subarray(4, 4 + len).toString("utf8");
      this.frames = this.frames.subarray(4 + len);
      let frame: Frame;
      try {
        frame = JSON.parse(body) as Frame;
      } catch (e) {
        this.die(`the executor sent a frame that is not JSON (${errorMessage(e)})`);
        return;
      }
      this.dispatch(frame);
    }
  }

  private dispatch(frame: Frame): void {
    if (frame.id === 0) {
      const pid = (frame.result as { pid?: number } | undefined)?.pid ?? 0;
      this.hello?.resolve(pid);
      this.hello = undefined;
      return;
    }
    const p = this.pending.get(frame.id);
    if (!p) return; // answered after its timeout
    this.pending.delete(frame.id);
    clearTimeout(p.timer);
    if (frame.ok) p.resolve(frame.result);
    else p.reject(toAidoError(p.op, frame.error ?? { code: "io_error", message: "unknown executor error" }));
  }
}
