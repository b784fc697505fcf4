// humansandbox/run.ts — `aido run`: one task in the active human sandbox, through the
// executor (its timeout kills the task's whole process group). The task's stdout and
// stderr go to files in the stream folder which the host reads as they grow
// (run-streams.ts), so output shows live and lands in the evidence (run-evidence.ts)
// without a size cap on the executor's side. A project file given as the task is staged
// into the workspace first (run-stage.ts). Every line passes the env scrubber before it is
// shown or written. With a host list, this process serves the sandbox's egress proxy for
// the run (egress.ts): the task gets the proxy variables and a TCP connect to the relay's
// port only, and the run's connections land in network.log.

import { closeSync, fstatSync, statSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { DockerSandbox } from "../sandbox/docker-sandbox.js";
import { connectDocker } from "../sandbox/engine.js";
import type { ExecResult } from "../sandbox/types.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import { attach, STREAM_DIR } from "./container.js";
import { type NetworkCounts, type RunEgress, serveRunEgress } from "./egress.js";
import { destroySandbox, refusalOf } from "./lifecycle.js";
import { type CollectResult, collectOutputs } from "./outputs.js";
import { diffOfPaths, inGitRepo } from "./outputs-diff.js";
import { closeProject, openProject, type Project } from "./project.js";
import { assertRecordUser, recordSpecText } from "./record-trust.js";
import { newRunDir, pointLatest, type RunSummary, writeRunFile, writeSummary } from "./run-evidence.js";
import { stageTask } from "./run-stage.js";
import { POLL_MS, RunStreams, STOP_FOLD_BYTES } from "./run-streams.js";
import { Scrubber } from "./scrub.js";
import { parseSandboxSpec } from "./spec.js";
import {
  activeRecord,
  appendEvent,
  giveEvidence,
  isExpired,
  type SandboxPaths,
  type SandboxRecord,
  sandboxPaths,
} from "./state.js";
import { StopSignals } from "./stop-signals.js";
import { sandboxDir } from "./store-dirs.js";

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

/** Env values from the sandbox file as it is now (they are never stored by Aido). */
function envOf(
  record: SandboxRecord,
  text: string | null,
  config: Config,
  paths: SandboxPaths,
  notice: (m: string) => void,
): Record<string, string> {
  if (!record.spec_file || text === null) return {};
  const spec = parseSandboxSpec(text, record.spec_file, config, record.name);
  const names = Object.keys(spec.env).sort();
  if (names.join(",") !== record.env_names.join(",")) {
    const message = `${record.spec_file} now declares env ${names.join(", ") || "(none)"}; the sandbox was made with ${record.env_names.join(", ") || "(none)"}`;
    notice(`warning: ${message}`);
    appendEvent(paths, { event: "warning", message });
  }
  return spec.env;
}

/**
 * `aido run`: the project folder is opened once and every step reaches it through that
 * (project.ts): whose it is, its store, the record's sandbox file, the task file, the
 * collection of the outputs.
 */
export async function runTask(opts: RunOptions): Promise<RunSummary> {
  const project = openProject(opts.cwd);
  try {
    return await runTaskIn(project, opts);
  } finally {
    closeProject(project);
  }
}

async function runTaskIn(project: Project, opts: RunOptions): Promise<RunSummary> {
  const notice = opts.notice ?? (() => {});
  const record = activeRecord(project, opts.sandboxId);
  const paths = sandboxPaths(project, record.id);
  const docker = opts.docker ?? connectDocker();
  const refusal = refusalOf(record);
  if (refusal) {
    appendEvent(paths, { event: "run_refused", reason: refusal });
    if (record.state === "running" && isExpired(record))
      await destroySandbox(project, record.id, { docker, reason: "ttl expired" });
    throw new AidoError(ErrorCode.sandboxUnavailable, refusal, { id: record.id });
  }
  let text: string | null;
  try {
    // The record's fields a root aido acts on (record-trust.ts): refused, audited, nothing run.
    assertRecordUser(record, project.owner);
    text = recordSpecText(project, record);
  } catch (e) {
    appendEvent(paths, { event: "run_refused", reason: errorMessage(e) });
    throw e;
  }
  const env = envOf(record, text, opts.config, paths, notice);
  const signals = new StopSignals();
  const run = newRunDir(paths);
  // The sandbox's folder held open for the run: its working folders are reached through it,
  // never by a path whose folders the person (the store is theirs under a root aido) swaps.
  // It is reached from the project held open, into which the outputs are collected.
  let sandbox: number | undefined;
  try {
    sandbox = sandboxDir(project, record.id);
    const working = workingPaths(paths, sandbox);
    return await runInSandbox(opts, { record, paths, working, project, docker, env, notice, run }, signals);
  } finally {
    if (sandbox !== undefined) closeSync(sandbox);
    signals.release();
    closeSync(run.fd);
    giveEvidence(paths, notice);
  }
}

/** The folder at `path` (links followed) is the one open at `fd`. */
function sameFolder(path: string, fd: number): boolean {
  const by = statSync(path, { throwIfNoEntry: false });
  const held = fstatSync(fd);
  return by?.dev === held.dev && by?.ino === held.ino;
}

/**
 * `paths` whose sandbox folder and working folders are names in the folder open at
 * `sandbox` (/proc/self/fd/N/…): what a run does in them as root (make its stream files,
 * stage the task, collect the outputs and write the collection's journal) no longer goes
 * through a sandbox folder the person swapped for a link. Each of them opens its own
 * folder without following a link (run-streams.ts, run-stage.ts, outputs.ts).
 */
function workingPaths(paths: SandboxPaths, sandbox: number): SandboxPaths {
  return {
    ...paths,
    root: fdPath(sandbox),
    work: fdPath(sandbox, "work"),
    output: fdPath(sandbox, "output"),
    stream: fdPath(sandbox, "stream"),
  };
}

/** A run in the sandbox `record` says, after runTask's checks, with the stop signals held. */
async function runInSandbox(
  opts: RunOptions,
  at: {
    record: SandboxRecord;
    paths: SandboxPaths;
    /** `paths` with the working folders reached through the sandbox's folder held open (workingPaths). */
    working: SandboxPaths;
    /** The project folder held open for the command (project.ts). */
    project: Project;
    docker: Docker;
    env: Record<string, string>;
    notice: (m: string) => void;
    /** Its folder (run-evidence.ts newRunDir: `dir` is the descriptor's path). */
    run: { runId: string; dir: string };
  },
  signals: StopSignals,
): Promise<RunSummary> {
  const { record, paths, working, docker, env, notice } = at;
  const scrubber = new Scrubber(env);
  const { runId, dir } = at.run;
  const started = Date.now();
  const writeRunJson = (t: RunSummary["task"]) =>
    writeRunFile(
      dir,
      "run.json",
      `${JSON.stringify({ run_id: runId, pid: process.pid, started_at: new Date(started).toISOString(), task: t })}\n`,
    );
  // First of all: `aido logs --follow` knows from it that the run is live.
  writeRunJson({ kind: "command", argv: opts.task });
  const ttlLeft = Date.parse(record.expires_at) - started;
  const timeoutMs = Math.max(1, Math.min(record.limits.timeout_ms, ttlLeft));
  let task: RunSummary["task"] = { kind: "command", argv: opts.task };
  let result: ExecResult | undefined;
  let failure: string | undefined;
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
  /** The stream files, once made: a stop before that has no output to fold in. */
  let opened: RunStreams | undefined;
  /** Why the run could not be set up (its stream files, its logs), when it could not. */
  let setupFailure: string | undefined;
  let poll: NodeJS.Timeout | undefined;
  // A run stopped by a signal (Ctrl-C, a supervisor) ends as before, stopped by it, but first
  // leaves its evidence: the output printed so far in stdout.log and stderr.log (the raw
  // stream files removed, as at a normal end), the refusals the network log's open windows
  // counted, and a summary.json that says it was stopped, with what this process knows by
  // then (the task's own end is unknown unless it came first, and outputs are not collected).
  // Set before the setup, which a signal can come in the middle of (and which can fail).
  signals.onStop((signal) => {
    try {
      clearInterval(poll);
      opened?.finish([], STOP_FOLD_BYTES);
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
        stdout_bytes: opened?.stdoutBytes ?? 0,
        stderr_bytes: opened?.stderrBytes ?? 0,
        logs_truncated: opened?.truncated ?? false,
        outputs: { collected: [], skipped: [] },
        outputs_diff: null,
        ...(network ? { network } : egress ? { network: egress.countNow() } : {}),
        error:
          setupFailure === undefined
            ? `aido run was stopped by ${signal} ${result ? "after" : "before"} the task ended; outputs were not collected`
            : `aido run was stopped by ${signal} while it set the run up, which failed: ${setupFailure}; the task did not start`,
      };
      writeSummary(paths, dir, runId, stopped);
      appendEvent(paths, { event: "run_stopped", run_id: runId, signal, duration_ms: stopped.duration_ms });
    } catch (e) {
      notice(`warning: the stopped run's summary could not be written: ${errorMessage(e)}`);
    }
  });
  /**
   * The setup failed: the run is recorded as failed, with why (a run.json alone read as a run
   * still going). A stop signal that came during the synchronous setup is handled on a later
   * turn of the event loop, and the listener went with the error: the signal was lost, and
   * `aido run` ended 1 with no summary. It is let in first: it ends the process by that
   * signal, its summary saying the setup failed too.
   */
  const setupFailed = async (e: unknown): Promise<AidoError> => {
    setupFailure = scrubber.scrub(errorMessage(e));
    const ended = Date.now();
    writeSummary(paths, dir, runId, {
      ...base(),
      ended_at: new Date(ended).toISOString(),
      duration_ms: ended - started,
      exit_code: null,
      signal: null,
      timed_out: false,
      stopped_by: null,
      oom_killed: false,
      stdout_bytes: 0,
      stderr_bytes: 0,
      logs_truncated: false,
      outputs: { collected: [], skipped: [] },
      outputs_diff: null,
      error: `the run could not be set up; the task did not start: ${setupFailure}`,
    });
    appendEvent(paths, { event: "run_failed", run_id: runId, error: setupFailure });
    await signals.settle();
    return new AidoError(
      ErrorCode.sandboxFailed,
      `run ${runId} in sandbox ${record.id} could not be set up: ${setupFailure}; if what a task left in its stream folder is in the way, destroy the sandbox (aido sandbox destroy ${record.id}) and start a new one`,
      { id: record.id, run_id: runId },
      { cause: e },
    );
  };
  const warnScrubbed = (raw: string) => {
    const message = scrubber.scrub(raw);
    notice(`warning: ${message}`);
    appendEvent(paths, { event: "warning", message });
  };
  try {
    opened = RunStreams.open(working, dir, runId, {
      user: record.user,
      scrubber,
      // What a task left is named in these, by names the task chose: scrubbed like its lines.
      warn: warnScrubbed,
      ...(opts.onStdout ? { onStdout: opts.onStdout } : {}),
      ...(opts.onStderr ? { onStderr: opts.onStderr } : {}),
    });
    pointLatest(paths, runId, "stdout.log");
    pointLatest(paths, runId, "stderr.log");
  } catch (e) {
    throw await setupFailed(e);
  }
  const streams = opened;
  poll = setInterval(() => streams.poll(), POLL_MS);
  try {
    if (Array.isArray(hosts))
      egress = await serveRunEgress({
        docker,
        config: opts.config,
        id: record.id,
        hosts,
        paths,
        held: working.root,
        runId,
        runDir: dir,
        scrubber,
        log: (m) => notice(`warning: ${scrubber.scrub(m)}`),
      });
    const unixSockets = record.permissions.unix_sockets;
    if (unixSockets === undefined)
      throw new AidoError(
        ErrorCode.sandboxFailed,
        `sandbox ${record.id} was made before a script was refused Unix sockets, and its container may not refuse them: destroy it and bring it up again`,
        { id: record.id },
      );
    sb = await attach(docker, record, at.project, opts.config);
    task = await stageTask(at.project, record, working, sb, opts.task, warnScrubbed);
    writeRunJson(task);
    appendEvent(paths, { event: "run_started", run_id: runId, task: task.argv, timeout_ms: timeoutMs });
    result = await sb.exec({
      argv: [
        "/bin/sh",
        "-c",
        `exec "$@" >${STREAM_DIR}/${streams.names.out} 2>${STREAM_DIR}/${streams.names.err}`,
        "aido-run",
        ...task.argv,
      ],
      cwd: "/workspace",
      // The person's own script in a sandbox made for it: the container (and its network:
      // none, or with a host list the relay only) is the wall.
      confinement: "unconfined",
      // A host list: the proxy variables, and a TCP connect to the relay's port only.
      ...(egress ? { connect: egress.connect } : {}),
      // No Unix socket of its own unless the sandbox file allows them (spec.ts).
      denyUnixSockets: unixSockets === "deny",
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
  await streams.catchUp();
  // The executor's own notes (timeout, out of memory) belong to the task's stderr.
  streams.finish([
    ...[result?.stdout ?? "", result?.stderr ?? ""]
      .filter((chunk) => chunk.trim() !== "")
      .map((chunk) => chunk.replace(/^\n+/, "")),
    ...(failure ? [`[aido: the run failed: ${failure}]\n`] : []),
  ]);

  // What the task left in /output can make the collection fail (more folders than a pattern
  // may match, say): the run is still recorded, failed with the reason.
  let collected: CollectResult = { collected: [], skipped: [] };
  try {
    if (record.outputs.length > 0)
      collected = collectOutputs(working.output, fdPath(at.project.fd), record.outputs, {
        id: record.id,
        root: working.root,
        runtime: opts.config,
        owner: at.project.owner,
      });
  } catch (e) {
    failure ??= `outputs were not collected: ${errorMessage(e)}`;
  }
  for (const s of collected.skipped)
    appendEvent(paths, { event: "warning", message: `output ${s.path} not collected: ${s.reason}` });
  let diffFile: string | null = null;
  // By its path (git runs there), only while that is still the project folder held.
  if (record.outputs.length > 0 && !sameFolder(opts.cwd, at.project.fd))
    notice("warning: the project folder was moved during the run: no outputs.diff is made");
  else if (record.outputs.length > 0 && inGitRepo(opts.cwd, at.project.owner)) {
    // With the person's rights under root in their project (outputs-diff.ts: git goes by path).
    const diff = diffOfPaths(opts.cwd, collected.collected, at.project.owner);
    writeRunFile(dir, "outputs.diff", scrubber.scrub(diff));
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
    stdout_bytes: streams.stdoutBytes,
    stderr_bytes: streams.stderrBytes,
    logs_truncated: streams.truncated,
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
