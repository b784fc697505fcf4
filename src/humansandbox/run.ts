// humansandbox/run.ts — `aido run`: one task in the active human sandbox, through the
// executor (its timeout kills the task's whole process group). The task's stdout and
// stderr go to files in the stream folder (mounted at /aido/stream) which the host reads
// as they grow, so output shows live and lands in the evidence without a size cap on the
// executor's side; the host makes them anew (O_EXCL | O_NOFOLLOW: never through a link
// or FIFO an earlier task left at the name) and holds them open before the task starts,
// so a task that swaps them for links cannot make the host read or write its own files.
// Every line passes the env scrubber before it is shown or written. With a host list, this process serves
// the sandbox's egress proxy for the run (egress.ts): the task gets the proxy variables and
// a TCP connect to the relay's port only, and the run's connections land in network.log.

import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { constants as osConstants } from "node:os";
import { basename, extname, join, resolve } from "node:path";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { DockerSandbox } from "../sandbox/docker-sandbox.js";
import { connectDocker } from "../sandbox/engine.js";
import { parseUser, removeTreeNoFollow } from "../sandbox/folders.js";
import type { ExecResult } from "../sandbox/types.js";
import { attach, STREAM_DIR } from "./container.js";
import { type NetworkCounts, type RunEgress, serveRunEgress } from "./egress.js";
import { destroySandbox, refusalOf } from "./lifecycle.js";
import { type CollectResult, collectOutputs, diffOfPaths, inGitRepo } from "./outputs.js";
import { LineStream, Scrubber } from "./scrub.js";
import { loadSandboxSpec } from "./spec.js";
import {
  activeRecord,
  appendEvent,
  isExpired,
  type SandboxPaths,
  type SandboxRecord,
  sandboxPaths,
} from "./state.js";
import { StopSignals } from "./stop-signals.js";

/** Evidence keeps at most this much of each stream; the rest is counted and cut with a marker. */
export const MAX_LOG_BYTES = 64 * 1024 * 1024;
const POLL_MS = 15;

export interface RunOptions {
  cwd: string;
  config: Config;
  /** TASK and ARGS: a script file in the project (copied in) or a command. */
  task: string[];
  sandboxId?: string;
  docker?: Docker;
  onStdout?: (line: string) => void;
  onStderr?: (line: string) => void;
  notice?: (message: string) => void;
}

export interface RunSummary {
  sandbox_id: string;
  run_id: string;
  task: { kind: "script" | "command"; argv: string[]; file?: string };
  started_at: string;
  ended_at: string;
  duration_ms: number;
  exit_code: number | null;
  signal: string | null;
  timed_out: boolean;
  /**
   * What stopped it: the run timeout, what was left of the sandbox's TTL, or a signal to
   * `aido run` itself (Ctrl-C, a supervisor; which one in `stop_signal`).
   */
  stopped_by: "timeout" | "ttl" | "signal" | null;
  /** With stopped_by "signal": the signal `aido run` got. The task's end is then unknown. */
  stop_signal?: NodeJS.Signals;
  oom_killed: boolean;
  timeout_ms: number;
  limits: SandboxRecord["limits"];
  permissions: SandboxRecord["permissions"];
  flags: SandboxRecord["flags"];
  image: string;
  runtime: SandboxRecord["runtime"];
  env_names: string[];
  stdout_bytes: number;
  stderr_bytes: number;
  logs_truncated: boolean;
  outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
  outputs_diff: string | null;
  /** With a host list: the run's connections (network.log). */
  network?: NetworkCounts;
  error?: string;
}

/** The exit status `aido run` reports for a run (timeout(1)'s 124; 128+N for a signal). */
export function exitStatusOf(s: Pick<RunSummary, "exit_code" | "signal" | "timed_out">): number {
  if (s.timed_out) return 124;
  if (s.exit_code !== null) return s.exit_code;
  const n = s.signal ? (osConstants.signals as Record<string, number>)[s.signal] : undefined;
  return n === undefined ? 1 : 128 + n;
}

function newRunDir(paths: SandboxPaths): { runId: string; dir: string } {
  for (let n = 1; ; n++) {
    const runId = `run-${String(n).padStart(3, "0")}`;
    const dir = join(paths.runs, runId);
    try {
      mkdirSync(dir);
      return { runId, dir };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
}

/** summary.json written whole or not at all (a reader never sees half of one), and linked as the latest. */
function writeSummary(paths: SandboxPaths, dir: string, runId: string, summary: RunSummary): void {
  const tmp = join(dir, ".summary.json.tmp");
  writeFileSync(tmp, `${JSON.stringify(summary, null, 2)}\n`);
  renameSync(tmp, join(dir, "summary.json"));
  pointLatest(paths, runId, "summary.json");
}

/** Point root/<name> at runs/<run>/<name> (a relative link, replaced atomically). */
function pointLatest(paths: SandboxPaths, runId: string, name: string): void {
  const link = join(paths.root, name);
  const tmp = `${link}.tmp-${process.pid}`;
  removeTreeNoFollow(tmp);
  symlinkSync(join("runs", runId, name), tmp);
  renameSync(tmp, link);
}

const INTERPRETERS: Record<string, string> = {
  ".py": "python3",
  ".js": "node",
  ".mjs": "node",
  ".cjs": "node",
  ".sh": "sh",
};

/** Stage the task: a project file is copied into the workspace, anything else runs as a command. */
async function stageTask(
  cwd: string,
  record: SandboxRecord,
  paths: SandboxPaths,
  sb: DockerSandbox,
  task: string[],
): Promise<RunSummary["task"]> {
  const [first, ...args] = task as [string, ...string[]];
  const host = resolve(cwd, first);
  if (!existsSync(host) || !statSync(host).isFile()) return { kind: "command", argv: task };
  const name = basename(host);
  const inBox = `/workspace/${name}`;
  const interpreter = INTERPRETERS[extname(name).toLowerCase()];
  if (record.permissions.filesystem === "none") {
    await sb.writeFile(inBox, readFileSync(host, "utf8"));
    // No known interpreter: run it as a program (its shebang line decides).
    if (!interpreter)
      await sb.exec({ argv: ["chmod", "755", inBox], timeoutMs: 10_000, confinement: "unconfined" });
  } else stageFile(host, paths.work, name, interpreter ? 0o644 : 0o755);
  const argv = interpreter ? [interpreter, inBox, ...args] : [inBox, ...args];
  return { kind: "script", file: first, argv };
}

/**
 * Put a copy of `src` at work/<name> without following anything there: the work folder is
 * writable by the script (filesystem: readwrite), which may have left a symlink named like
 * the next task pointing at a host file. A temp file is created (O_EXCL | O_NOFOLLOW) and
 * renamed over the name, which replaces a link instead of writing through it.
 */
function stageFile(src: string, work: string, name: string, mode: number): void {
  const tmp = join(work, `.aido-stage-${process.pid}-${Date.now().toString(36)}`);
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    mode,
  );
  let open = true;
  try {
    writeFileSync(fd, readFileSync(src));
    fchmodSync(fd, mode);
    closeSync(fd);
    open = false;
    renameSync(tmp, join(work, name));
  } catch (e) {
    if (open) closeSync(fd);
    removeTreeNoFollow(tmp);
    throw e;
  }
}

/**
 * What a poll reads of each stream at most: a task that writes faster than the lines are
 * scrubbed and written (a flood of short lines goes at about 1 MiB/s) must not hold the event
 * loop, where the run's timeout, the executor's answer and a stop signal are handled.
 */
const POLL_READ_BYTES = 256 * 1024;
/**
 * What a stop signal folds in at most of each stream's backlog, as much as a poll reads:
 * the stop ends the process within half a second however far behind a flood of output left
 * the reading (a second Ctrl-C meanwhile would end it at once, without a summary). The rest
 * is counted (stdout_bytes, stderr_bytes) and the logs marked truncated.
 */
const STOP_FOLD_BYTES = POLL_READ_BYTES;

/** Reads a stream file as it grows, in order, up to the evidence cap; the rest is counted, never read. */
class Tail {
  private pos = 0;
  bytes = 0;
  truncated = false;
  private readonly buf = Buffer.alloc(256 * 1024);
  constructor(
    private readonly fd: number,
    private readonly lines: LineStream,
  ) {}
  /**
   * Read what the file holds now, at most `limit` bytes of it (what is written meanwhile
   * waits for the next call, so a call always ends).
   */
  drain(limit = Number.POSITIVE_INFINITY): void {
    const end = fstatSync(this.fd).size;
    for (let left = limit; this.pos < end && left > 0 && this.bytes < MAX_LOG_BYTES; ) {
      const want = Math.min(this.buf.length, end - this.pos, left, MAX_LOG_BYTES - this.bytes);
      const n = readSync(this.fd, this.buf, 0, want, this.pos);
      if (n <= 0) return;
      this.pos += n;
      this.bytes += n;
      left -= n;
      this.lines.write(this.buf.subarray(0, n));
    }
    if (this.bytes >= MAX_LOG_BYTES) this.skipTo(end);
  }
  /** Count what is there up to `end` without reading it (past the cap, or left by a stop). */
  skipTo(end: number): void {
    if (end <= this.pos) return;
    this.bytes += end - this.pos;
    this.pos = end;
    this.truncated = true;
  }
  /** Whether it has yet to read up to `end` (below the cap). */
  behind(end: number): boolean {
    return this.pos < end && this.bytes < MAX_LOG_BYTES;
  }
  /** The file's size now. */
  size(): number {
    return fstatSync(this.fd).size;
  }
}

/**
 * A new, empty stream file for the task to write to, open for the host to read. The stream
 * folder is the task's to write, and the next run's names are easy to guess: whatever an
 * earlier task left at the name (a link to a host file, a FIFO, a folder) is removed without
 * being followed or opened, the file is made with O_EXCL and O_NOFOLLOW, and it is given
 * to the task's user through its descriptor, never by a path that could lead elsewhere.
 */
function openStream(paths: SandboxPaths, file: string, user: string): number {
  const p = join(paths.stream, file);
  removeTreeNoFollow(p);
  let fd: number;
  try {
    fd = openSync(p, constants.O_RDONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `${p} was made again by something in the sandbox while the run started; the run did not start`,
      { path: p },
    );
  }
  if (process.getuid?.() === 0) {
    const u = parseUser(user);
    fchownSync(fd, u.uid, u.gid);
  }
  return fd;
}

/** Env values from the sandbox file as it is now (they are never stored by Aido). */
function envOf(
  record: SandboxRecord,
  config: Config,
  paths: SandboxPaths,
  notice: (m: string) => void,
): Record<string, string> {
  if (!record.spec_file) return {};
  const spec = loadSandboxSpec(record.spec_file, config, record.name);
  const names = Object.keys(spec.env).sort();
  if (names.join(",") !== record.env_names.join(",")) {
    const message = `${record.spec_file} now declares env ${names.join(", ") || "(none)"}; the sandbox was made with ${record.env_names.join(", ") || "(none)"}`;
    notice(`warning: ${message}`);
    appendEvent(paths, { event: "warning", message });
  }
  return spec.env;
}

export async function runTask(opts: RunOptions): Promise<RunSummary> {
  const notice = opts.notice ?? (() => {});
  const record = activeRecord(opts.cwd, opts.sandboxId);
  const paths = sandboxPaths(opts.cwd, record.id);
  const docker = opts.docker ?? connectDocker();
  const refusal = refusalOf(record);
  if (refusal) {
    appendEvent(paths, { event: "run_refused", reason: refusal });
    if (record.state === "running" && isExpired(record))
      await destroySandbox(opts.cwd, record.id, { docker, reason: "ttl expired" });
    throw new AidoError(ErrorCode.sandboxUnavailable, refusal, { id: record.id });
  }
  const env = envOf(record, opts.config, paths, notice);
  const signals = new StopSignals();
  try {
    return await runInSandbox(opts, { record, paths, docker, env, notice }, signals);
  } finally {
    signals.release();
  }
}

/** A run in the sandbox `record` says, after runTask's checks, with the stop signals held. */
async function runInSandbox(
  opts: RunOptions,
  at: {
    record: SandboxRecord;
    paths: SandboxPaths;
    docker: Docker;
    env: Record<string, string>;
    notice: (m: string) => void;
  },
  signals: StopSignals,
): Promise<RunSummary> {
  const { record, paths, docker, env, notice } = at;
  const scrubber = new Scrubber(env);
  const { runId, dir } = newRunDir(paths);
  const started = Date.now();
  const writeRunJson = (t: RunSummary["task"]) =>
    writeFileSync(
      join(dir, "run.json"),
      `${JSON.stringify({ run_id: runId, pid: process.pid, started_at: new Date(started).toISOString(), task: t })}\n`,
    );
  // First of all: `aido logs --follow` knows from it that the run is live.
  writeRunJson({ kind: "command", argv: opts.task });
  const outFd = openStream(paths, `${runId}.out`, record.user);
  const errFd = openStream(paths, `${runId}.err`, record.user);
  const stdoutLog = openSync(join(dir, "stdout.log"), "w", 0o644);
  const stderrLog = openSync(join(dir, "stderr.log"), "w", 0o644);
  const sink = (fd: number, show?: (l: string) => void) => (line: string) => {
    writeSync(fd, `${line}\n`);
    show?.(line);
  };
  const outLines = new LineStream(scrubber, sink(stdoutLog, opts.onStdout));
  const errLines = new LineStream(scrubber, sink(stderrLog, opts.onStderr));
  const outTail = new Tail(outFd, outLines);
  const errTail = new Tail(errFd, errLines);
  pointLatest(paths, runId, "stdout.log");
  pointLatest(paths, runId, "stderr.log");
  let streamsDone = false;
  /**
   * The raw stream files folded into the evidence, then removed: what is left of them read,
   * `notes` (the executor's, a failure) added to stderr, a last line without its "\n"
   * written too. Once, whichever comes first: the run's end or a signal that stops it.
   */
  const finishStreams = (notes: readonly string[], limit = Number.POSITIVE_INFINITY): void => {
    if (streamsDone) return;
    streamsDone = true;
    for (const tail of [outTail, errTail]) {
      tail.drain(limit);
      tail.skipTo(tail.size());
    }
    for (const note of notes) errLines.write(Buffer.from(note));
    outLines.end();
    errLines.end();
    for (const fd of [outFd, errFd, stdoutLog, stderrLog]) closeSync(fd);
    for (const f of [`${runId}.out`, `${runId}.err`]) removeTreeNoFollow(join(paths.stream, f));
  };
  const ttlLeft = Date.parse(record.expires_at) - started;
  const timeoutMs = Math.max(1, Math.min(record.limits.timeout_ms, ttlLeft));
  let task: RunSummary["task"] = { kind: "command", argv: opts.task };
  let result: ExecResult | undefined;
  let failure: string | undefined;
  const poll = setInterval(() => {
    outTail.drain(POLL_READ_BYTES);
    errTail.drain(POLL_READ_BYTES);
  }, POLL_MS);
  let sb: DockerSandbox | undefined;
  let egress: RunEgress | undefined;
  let network: NetworkCounts | undefined;
  const hosts = record.permissions.network;
  /** The summary's fields known from the start; the rest depend on how the run ends. */
  const base = () => ({
    sandbox_id: record.id,
    run_id: runId,
    task,
    started_at: new Date(started).toISOString(),
    timeout_ms: timeoutMs,
    limits: record.limits,
    permissions: record.permissions,
    flags: record.flags,
    image: record.runtime.image,
    runtime: record.runtime,
    env_names: record.env_names,
  });
  // A run stopped by a signal (Ctrl-C, a supervisor) ends as before, stopped by it, but first
  // leaves its evidence: the output printed so far in stdout.log and stderr.log (the raw
  // stream files removed, as at a normal end), the refusals the network log's open windows
  // counted, and a summary.json that says it was stopped, with what this process knows by
  // then (the task's own end is unknown unless it came first, and outputs are not collected).
  signals.onStop((signal) => {
    try {
      clearInterval(poll);
      finishStreams([], STOP_FOLD_BYTES);
      const ended = Date.now();
      const stopped: RunSummary = {
        ...base(),
        ended_at: new Date(ended).toISOString(),
        duration_ms: ended - started,
        exit_code: result?.exitCode ?? null,
        signal: result?.signal ?? null,
        timed_out: result?.timedOut ?? false,
        stopped_by: "signal",
        stop_signal: signal,
        oom_killed: result?.oomKilled ?? false,
        stdout_bytes: outTail.bytes,
        stderr_bytes: errTail.bytes,
        logs_truncated: outTail.truncated || errTail.truncated,
        outputs: { collected: [], skipped: [] },
        outputs_diff: null,
        ...(network ? { network } : egress ? { network: egress.countNow() } : {}),
        error: `aido run was stopped by ${signal} ${result ? "after" : "before"} the task ended; outputs were not collected`,
      };
      writeSummary(paths, dir, runId, stopped);
      appendEvent(paths, { event: "run_stopped", run_id: runId, signal, duration_ms: stopped.duration_ms });
    } catch (e) {
      notice(`warning: the stopped run's summary could not be written: ${errorMessage(e)}`);
    }
  });
  try {
    if (Array.isArray(hosts))
      egress = await serveRunEgress({
        docker,
        config: opts.config,
        cwd: opts.cwd,
        id: record.id,
        hosts,
        paths,
        runId,
        runDir: dir,
        scrubber,
        log: (m) => notice(`warning: ${scrubber.scrub(m)}`),
      });
    sb = await attach(docker, record);
    task = await stageTask(opts.cwd, record, paths, sb, opts.task);
    writeRunJson(task);
    appendEvent(paths, { event: "run_started", run_id: runId, task: task.argv, timeout_ms: timeoutMs });
    result = await sb.exec({
      argv: [
        "/bin/sh",
        "-c",
        `exec "$@" >${STREAM_DIR}/${runId}.out 2>${STREAM_DIR}/${runId}.err`,
        "aido-run",
        ...task.argv,
      ],
      cwd: "/workspace",
      // The person's own script in a sandbox made for it: the container (and its network:
      // none, or with a host list the relay only) is the wall.
      confinement: "unconfined",
      // A host list: the proxy variables, and a TCP connect to the relay's port only.
      ...(egress ? { connect: egress.connect } : {}),
      env: { PYTHONUNBUFFERED: "1", ...egress?.env, ...env },
      timeoutMs,
      maxOutputBytes: 64 * 1024,
    });
    if (egress && sb.landlockAbi < 4) {
      const message = `this kernel's Landlock ABI is ${sb.landlockAbi}: the task's TCP connects were not held to the proxy's port (the sandbox's network still reaches nothing but its relay)`;
      notice(`warning: ${message}`);
      appendEvent(paths, { event: "warning", message });
    }
  } catch (e) {
    failure = errorMessage(e);
  } finally {
    clearInterval(poll);
    sb?.close();
  }
  network = await egress?.close();
  // What the task wrote before it ended, read a poll's worth at a time with the event loop
  // turning between (a flood of short lines takes a while: a stop signal is handled meanwhile),
  // up to the sizes now (a process the task left that keeps writing cannot hold the run).
  const tails = [outTail, errTail];
  const ends = tails.map((t) => t.size());
  while (!streamsDone && tails.some((t, i) => t.behind(ends[i] as number))) {
    for (const t of tails) t.drain(POLL_READ_BYTES);
    await new Promise((r) => setImmediate(r));
  }
  // The executor's own notes (timeout, out of memory) belong to the task's stderr.
  finishStreams([
    ...[result?.stdout ?? "", result?.stderr ?? ""]
      .filter((chunk) => chunk.trim() !== "")
      .map((chunk) => chunk.replace(/^\n+/, "")),
    ...(failure ? [`[aido: the run failed: ${failure}]\n`] : []),
  ]);

  // What the task left in /output can make the collection fail (more folders than a pattern
  // may match, say): the run is still recorded, failed with the reason.
  let collected: CollectResult = { collected: [], skipped: [] };
  try {
    if (record.outputs.length > 0) collected = collectOutputs(paths.output, opts.cwd, record.outputs);
  } catch (e) {
    failure ??= `outputs were not collected: ${errorMessage(e)}`;
  }
  for (const s of collected.skipped)
    appendEvent(paths, { event: "warning", message: `output ${s.path} not collected: ${s.reason}` });
  let diffFile: string | null = null;
  if (record.outputs.length > 0 && inGitRepo(opts.cwd)) {
    writeFileSync(join(dir, "outputs.diff"), scrubber.scrub(diffOfPaths(opts.cwd, collected.collected)));
    diffFile = join("runs", runId, "outputs.diff");
    pointLatest(paths, runId, "outputs.diff");
  }
  const ended = Date.now();
  const timedOut = result?.timedOut ?? false;
  const summary: RunSummary = {
    ...base(),
    ended_at: new Date(ended).toISOString(),
    duration_ms: ended - started,
    exit_code: result?.exitCode ?? null,
    signal: result?.signal ?? null,
    timed_out: timedOut,
    stopped_by: timedOut ? (timeoutMs < record.limits.timeout_ms ? "ttl" : "timeout") : null,
    oom_killed: result?.oomKilled ?? false,
    stdout_bytes: outTail.bytes,
    stderr_bytes: errTail.bytes,
    logs_truncated: outTail.truncated || errTail.truncated,
    outputs: collected,
    outputs_diff: diffFile,
    ...(network ? { network } : {}),
    ...(failure ? { error: scrubber.scrub(failure) } : {}),
  };
  signals.release();
  writeSummary(paths, dir, runId, summary);
  appendEvent(paths, {
    event: "run_completed",
    run_id: runId,
    exit_code: summary.exit_code,
    timed_out: timedOut,
    duration_ms: summary.duration_ms,
  });
  if (failure)
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `run ${runId} in sandbox ${record.id} failed: ${summary.error}`,
      { id: record.id, run_id: runId },
    );
  return summary;
}
