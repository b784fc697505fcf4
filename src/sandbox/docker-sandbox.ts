// sandbox/docker-sandbox.ts — a goal's sandbox as tools see it (SandboxHandle), backed by
// one container and the executor session inside it. Recovery rules:
//   - the executor died (killed from inside, crashed) or its session was killed because
//     the stream broke the protocol or a call got no answer in time (executor-session.ts):
//     the calls in flight fail with sandbox_failed; the next call starts a new executor in
//     the same container (a stuck one is killed first: it may not see its stdin close);
//   - the container died: the call fails with sandbox_failed saying so (out of memory,
//     exit code); the next call gets a fresh container over the same workspace.

import type Docker from "dockerode";
import { AidoError, ErrorCode, errorMessage, isAidoError } from "../errors.js";
import { cancelledError, ExecutorSession } from "./executor-session.js";
import type {
  ExecRequest,
  ExecResult,
  FileOpOptions,
  FileStat,
  GrepMatch,
  GrepOptions,
  ListEntry,
  SandboxHandle,
} from "./types.js";

/** What a sandbox needs from the backend that made it. */
export interface SandboxOwner {
  /** Remove the goal's dead container and start a fresh one over the same folders. */
  replaceContainer(goalId: string): Promise<Docker.Container>;
  readonly execTimeoutMs: number;
  readonly maxOutputBytes: number;
  /**
   * `sandbox.landlock`: "off" runs every exec without a Landlock domain (the operator's
   * choice, audited at start-up); absent means "on".
   */
  readonly landlock?: "on" | "off";
  /** The goal's container is on its egress network (then a confined exec names its ports). */
  onEgressNetwork?(goalId: string): boolean;
  /** An exec with a TCP rule ran on a kernel below Landlock ABI 4, which skips the rule. */
  noTcpRule?(abi: number): void;
  /**
   * Settles once the goal's container is not frozen (its node's fence): true; or as `signal`
   * aborts first: false (the call is cancelled, nothing left waiting).
   */
  untilThawed?(goalId: string, signal?: AbortSignal): Promise<boolean>;
}

const FILE_OP_TIMEOUT_MS = 30_000;
/**
 * realpath and stat are a few lstat calls: an executor that has not answered one in 10 s is
 * stuck (its session is then replaced, executor-session.ts), and every tool asks one first.
 */
const META_OP_TIMEOUT_MS = 10_000;
const GRACE_MS = 5_000;

export class DockerSandbox implements SandboxHandle {
  private session: ExecutorSession | undefined;
  private starting: Promise<ExecutorSession> | undefined;
  private replacing: Promise<void> | undefined;
  private containerDead = false;
  private closed = false;

  constructor(
    readonly goalId: string,
    private container: Docker.Container,
    private readonly owner: SandboxOwner,
    session?: ExecutorSession,
  ) {
    this.session = session;
  }

  get containerId(): string {
    return this.container.id;
  }

  /** The executor's pid inside the container (0 before the first call). */
  get executorPid(): number {
    return this.session?.executorPid ?? 0;
  }

  /** The kernel's Landlock ABI as the executor reports it (0: none, or not started yet). */
  get landlockAbi(): number {
    return this.session?.landlockAbi ?? 0;
  }

  /**
   * Landlock on and the kernel has it: a confined exec gets its domain and its private
   * folder. With ABI 0 an agent whose grants cover the mounts runs --unconfined, no TMPDIR.
   */
  confinesWithPrivateTmp(): boolean {
    return this.owner.landlock !== "off" && this.landlockAbi > 0;
  }

  realpath(path: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    return this.call("realpath", { path }, META_OP_TIMEOUT_MS, opts.signal);
  }

  exec(req: ExecRequest): Promise<ExecResult> {
    const { signal, ...rest } = req;
    const timeoutMs = req.timeoutMs ?? this.owner.execTimeoutMs;
    let confinement = req.confinement;
    // Fail closed: a confined exec on an egress network that names no ports connects nowhere.
    if (confinement !== "unconfined" && !confinement.connect && this.owner.onEgressNetwork?.(this.goalId))
      confinement = { ...confinement, connect: [] };
    // Landlock off (the operator's choice) drops the file rules, never a TCP rule: on a
    // goal's egress network it keeps one agent off another's relay port, in a human sandbox
    // it holds the script to the proxy's port. An unconfined exec names its ports itself.
    const { connect, ...others } = rest;
    const off = this.owner.landlock === "off";
    const ports = confinement === "unconfined" ? connect : confinement.connect;
    const args = {
      ...others,
      confinement: off ? "unconfined" : confinement,
      ...((off || confinement === "unconfined") && ports ? { connect: ports } : {}),
      timeoutMs,
      maxOutputBytes: req.maxOutputBytes ?? this.owner.maxOutputBytes,
    };
    if (ports) {
      return this.call<ExecResult>("exec", args, timeoutMs + GRACE_MS, signal).then((r) => {
        if (this.landlockAbi < 4) this.owner.noTcpRule?.(this.landlockAbi);
        return r;
      });
    }
    return this.call("exec", args, timeoutMs + GRACE_MS, signal);
  }

  readFile(
    path: string,
    opts: { offset?: number; limit?: number; maxBytes?: number } & FileOpOptions = {},
  ): Promise<{ content: string; truncated: boolean; size: number }> {
    const { signal, ...rest } = opts;
    return this.call("read", { path, ...rest }, FILE_OP_TIMEOUT_MS, signal);
  }

  /** A write's cancel is honoured until it is sent, never after (FileOpOptions.signal). */
  writeFile(path: string, content: string, opts: FileOpOptions = {}): Promise<{ bytes: number }> {
    const { signal, ...rest } = opts;
    return this.call("write", { path, content, ...rest }, FILE_OP_TIMEOUT_MS, signal, "until-sent");
  }

  editFile(
    path: string,
    oldString: string,
    newString: string,
    replaceAll: boolean,
    opts: FileOpOptions = {},
  ): Promise<{ replacements: number }> {
    const { signal, ...rest } = opts;
    const args = { path, oldString, newString, replaceAll, ...rest };
    return this.call("edit", args, FILE_OP_TIMEOUT_MS, signal, "until-sent");
  }

  list(path: string, opts: FileOpOptions = {}): Promise<ListEntry[]> {
    const { signal, ...rest } = opts;
    return this.call("list", { path, ...rest }, FILE_OP_TIMEOUT_MS, signal);
  }

  stat(path: string, opts: FileOpOptions = {}): Promise<FileStat | null> {
    const { signal, ...rest } = opts;
    return this.call("stat", { path, ...rest }, META_OP_TIMEOUT_MS, signal);
  }

  grep(
    pattern: string,
    path: string,
    glob?: string,
    maxMatches?: number,
    opts: GrepOptions = {},
  ): Promise<GrepMatch[]> {
    const limit = opts.timeoutMs ?? FILE_OP_TIMEOUT_MS;
    const args = { pattern, path, glob, maxMatches, timeoutMs: limit, expect: opts.expect, view: opts.view };
    return this.call("grep", args, limit + GRACE_MS, opts.signal);
  }

  /** The backend removed the container: the next call starts a fresh one over the same folders. */
  containerGone(): void {
    this.containerDead = true;
  }

  /** Stop talking to the container (it keeps running; the backend decides its fate). */
  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }

  /** The executor is up (starting it if needed): a warm handle answers its first call fast. */
  async ready(): Promise<void> {
    await this.ensureSession();
  }

  private async call<T>(
    op: string,
    args: Record<string, unknown>,
    timeoutMs: number,
    signal?: AbortSignal,
    /** "until-sent": the signal ends the waits before the call is sent, not the call (a write's). */
    cancel: "any-time" | "until-sent" = "any-time",
  ): Promise<T> {
    // Not sent into a frozen container (its node's fence) before the engine has unfrozen it:
    // its answer time would run while nothing in there can answer (a call that got past the
    // gate's hold as the fence fell). One sent before the freeze keeps its time, as an exec.
    // Its caller's cancel ends the wait: before, a call cancelled while its goal was frozen
    // (goal.cancel, the agent stopped, a timeout) waited for the thaw or the goal's removal.
    await this.thawedFor(op, signal);
    if (this.closed)
      throw new AidoError(ErrorCode.sandboxFailed, `the sandbox of goal ${this.goalId} was released`, {});
    const session = await this.ensureSession(op, signal);
    if (signal?.aborted) throw cancelledError(op);
    try {
      return await session.call<T>(op, args, timeoutMs, cancel === "any-time" ? signal : undefined);
    } catch (e) {
      // The executor refused a path that no longer resolves to the one the host judged.
      if (e instanceof AidoError && e.details?.reason === "path_changed") {
        throw new AidoError(ErrorCode.capabilityDenied, e.message, { ...e.details }, { cause: e });
      }
      if (!isAidoError(e, ErrorCode.sandboxFailed) || session.alive) throw e;
      throw await this.explainDeath(op, e);
    }
  }

  /** Settles once the goal is not frozen; throws the call's cancellation if `signal` aborts first. */
  private async thawedFor(op: string, signal: AbortSignal | undefined): Promise<void> {
    const thawed = (await this.owner.untilThawed?.(this.goalId, signal)) ?? true;
    if (!thawed || signal?.aborted) throw cancelledError(op);
  }

  private async ensureSession(op = "start", signal?: AbortSignal): Promise<ExecutorSession> {
    if (this.containerDead) {
      this.replacing ??= this.owner.replaceContainer(this.goalId).then(
        (c) => {
          this.container = c;
          this.containerDead = false;
          this.replacing = undefined;
        },
        (e) => {
          this.replacing = undefined;
          throw e;
        },
      );
      await this.replacing;
      // Frozen while it was being made (the backend froze it too): the executor starts once thawed.
      await this.thawedFor(op, signal);
    }
    if (this.session?.alive) return this.session;
    if (this.session?.stuck) {
      const pid = this.session.executorPid;
      this.session = undefined;
      await this.killExecutor(pid);
    }
    this.starting ??= ExecutorSession.start(this.container).finally(() => {
      this.starting = undefined;
    });
    try {
      this.session = await this.starting;
    } catch (e) {
      throw await this.explainDeath("start", e);
    }
    return this.session;
  }

  /**
   * Kill a stuck executor (stopped, or wedged so it never reads that its stdin closed), if
   * that pid is still the executor. Its reapers then end their calls (parent-death signal).
   */
  private async killExecutor(pid: number): Promise<void> {
    if (pid <= 0) return;
    try {
      const exec = await this.container.exec({
        Cmd: ["/bin/sh", "-c", 'grep -qs executor.js "/proc/$0/cmdline" && kill -KILL "$0"', String(pid)],
        AttachStdout: false,
        AttachStderr: false,
      });
      await exec.start({ Detach: true });
      for (let i = 0; i < 50 && (await exec.inspect()).Running; i++)
        await new Promise((r) => setTimeout(r, 20));
    } catch {
      // the container is gone: ensureSession finds out next
    }
  }

  /** After a session failure: was it the container or only the executor? */
  private async explainDeath(op: string, cause: unknown): Promise<AidoError> {
    let state: Docker.ContainerInspectInfo["State"] | undefined;
    try {
      state = (await this.container.inspect()).State;
    } catch {
      state = undefined;
    }
    if (state?.Running) {
      return new AidoError(
        ErrorCode.sandboxFailed,
        `the executor of goal ${this.goalId} stopped during ${op} (${errorMessage(cause)}); it is restarted on the next call`,
        { goalId: this.goalId, op },
        { cause },
      );
    }
    this.containerDead = true;
    const why = !state
      ? "was removed"
      : state.OOMKilled
        ? "ran out of memory"
        : `exited with code ${state.ExitCode}${state.Error ? ` (${state.Error})` : ""}`;
    return new AidoError(
      ErrorCode.sandboxFailed,
      `the container of goal ${this.goalId} ${why} during ${op}; the next call starts a fresh container over the same workspace`,
      { goalId: this.goalId, op },
      { cause },
    );
  }
}
