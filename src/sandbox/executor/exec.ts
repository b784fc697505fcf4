// sandbox/executor/exec.ts — running one command. Every command starts through the
// Landlock helper (aido-landlock, see sandbox-image/aido-landlock.c):
//     aido-landlock <rules of the calling agent> -- /bin/dash -c CMD   (or -- ARGV...)
//     aido-landlock --unconfined -- ...                                 (trusted callers)
//     aido-landlock --unconfined --no-unix-sockets -- ...       (a human sandbox's task)
// so the command and everything it starts are bound by the agent's file grants (and, in a
// container on an egress network, by its relay port: --tcp-connect), cannot make
// setuid/setgid files, and (with maxFileBytes) cannot grow a file past a size. On
// Landlock ABI >= 6 the helper also stays as the call's reaper (--reap); how a call's
// processes end, with or without one, is lifetime.ts. stdout and stderr are captured head
// and tail within a cap.

import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFile } from "node:fs";
import type { Confinement } from "../types.js";
import { confinementArgs, ensurePrivateTmp, grantsCoverMounts, type Rule } from "./confinement.js";
import { killGroup, type Running, sweepOrphans } from "./lifetime.js";
import { fail, fsFail } from "./op-error.js";
import { absolute, WORKSPACE } from "./realpath.js";

export const HELPER = "/opt/aido/aido-landlock";
/** Command strings run in exactly the dialect the policy parsed them in. */
export const SHELL = "/bin/dash";
const DEFAULT_OUTPUT_CAP = 1024 * 1024;

/**
 * Set in the environment of every exec, for code that programs would otherwise take from
 * files the agent can write, which the shell analysis never reads:
 *   - LESSSECURE=1: less runs no shell escape, no LESSOPEN/LESSCLOSE preprocessor, and reads
 *     no lesskey file (LESSKEYIN, ~/.lesskey under any HOME), whose #env section could set
 *     LESSOPEN; man, zless and friends run less too;
 *   - git configuration at command-line precedence, which beats every configuration file
 *     (the repository's .git/config included): core.hooksPath=/dev/null (no hook runs) and
 *     core.fsmonitor=false (no fsmonitor command); GIT_CONFIG_NOSYSTEM=1.
 *   - CURL_HOME=/opt/aido/curl, an empty, read-only .curlrc in the image (sandbox-image/
 *     Dockerfile): curl reads the first .curlrc it finds under $CURL_HOME, $XDG_CONFIG_HOME,
 *     $HOME, and HOME is the agent's temp folder, where an agent that may write it could put
 *     a .curlrc whose `engine` line loads a shared object into the next curl.
 * Each was seen taking effect in the image (test/redteam/config-files.test.ts). The analysis
 * refuses any command that sets, unsets or clears them (security/policy-variables.ts). A
 * trusted caller's own `env` (the human sandbox) comes after and may replace them.
 */
export const SAFETY_ENV: Readonly<Record<string, string>> = {
  LESSSECURE: "1",
  GIT_CONFIG_COUNT: "2",
  GIT_CONFIG_KEY_0: "core.hooksPath",
  GIT_CONFIG_VALUE_0: "/dev/null",
  GIT_CONFIG_KEY_1: "core.fsmonitor",
  GIT_CONFIG_VALUE_1: "false",
  GIT_CONFIG_NOSYSTEM: "1",
  CURL_HOME: "/opt/aido/curl",
};
/** How long a finished call waits for pipes held open by a process that left its group. */
const PIPE_GRACE_MS = 250;
/** How long past the grace such pipes may keep bringing output before they are cut anyway. */
const PIPE_DRAIN_MAX_MS = 1000;

/** Keeps the first and last `cap/2` bytes of a stream and counts what falls between. */
export class Capture {
  private readonly headCap: number;
  private readonly tailCap: number;
  private readonly head: Buffer[] = [];
  private headLen = 0;
  private readonly tail: Buffer[] = [];
  private tailLen = 0;
  private total = 0;

  constructor(cap: number) {
    this.headCap = Math.ceil(cap / 2);
    this.tailCap = cap - this.headCap;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.headLen < this.headCap) {
      const take = Math.min(chunk.length, this.headCap - this.headLen);
      this.head.push(chunk.subarray(0, take));
      this.headLen += take;
      chunk = chunk.subarray(take);
    }
    if (chunk.length === 0 || this.tailCap === 0) return;
    this.tail.push(chunk);
    this.tailLen += chunk.length;
    while (this.tail.length > 1 && this.tailLen - (this.tail[0] as Buffer).length >= this.tailCap) {
      this.tailLen -= (this.tail.shift() as Buffer).length;
    }
  }

  /** Every byte pushed so far, kept or not. */
  get bytes(): number {
    return this.total;
  }

  get truncated(): boolean {
    return this.total > this.headLen + Math.min(this.tailLen, this.tailCap);
  }

  text(): string {
    const head = Buffer.concat(this.head).toString("utf8");
    let tail = Buffer.concat(this.tail);
    if (tail.length > this.tailCap) tail = tail.subarray(tail.length - this.tailCap);
    const omitted = this.total - this.headLen - tail.length;
    if (omitted <= 0) return head + tail.toString("utf8");
    return `${head}\n[... truncated ${omitted} bytes ...]\n${tail.toString("utf8")}`;
  }
}

/** What the executor knows about its container, fixed at start. */
export interface ExecEnvironment {
  /** The image carries the helper (false: an image not built from the recipe). */
  helper: boolean;
  landlockAbi: number;
  /** The helper stays as each call's reaper (Landlock ABI >= 6; lifetime.ts). */
  reaper: boolean;
  systemRules: readonly Rule[];
  mountedSkills: readonly string[];
}

export function mountedSkills(): string[] {
  try {
    return readdirSync("/skills").sort();
  } catch {
    return [];
  }
}

function readOomKills(): number | null {
  for (const f of ["/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"]) {
    try {
      const m = /oom_kill (\d+)/.exec(readFileSync(f, "utf8"));
      if (m) return Number(m[1]);
    } catch {
      // not this cgroup layout
    }
  }
  return null;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
  oomKilled: boolean;
  cancelled: boolean;
  durationMs: number;
}

function parseConfinement(v: unknown): Confinement | "unconfined" {
  if (v === "unconfined") return v;
  const o = v as Record<string, unknown> | null;
  const list = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === "string");
  if (!o || typeof o !== "object" || typeof o.tmp !== "string")
    fail("invalid_input", "exec needs a confinement");
  for (const k of ["read", "write", "deny", "denyRead", "denyWrite"]) {
    if (!list(o[k])) fail("invalid_input", `confinement.${k} must be a list of globs`);
  }
  if (typeof o.execute !== "boolean") fail("invalid_input", "confinement.execute must be true or false");
  parsePorts(o.connect, "confinement.connect");
  return o as unknown as Confinement;
}

function parsePorts(v: unknown, what: string): number[] | undefined {
  if (v === undefined) return undefined;
  if (!(Array.isArray(v) && v.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535)))
    fail("invalid_input", `${what} must be a list of TCP ports`);
  return v as number[];
}

function parseDenyUnixSockets(v: unknown): boolean {
  if (v === undefined || typeof v === "boolean") return v === true;
  fail("invalid_input", "denyUnixSockets must be true or false");
}

/** aido-landlock --tcp-connect for these ports ("none" for an empty list); nothing when absent. */
function tcpArgs(ports: readonly number[] | undefined): string[] {
  if (!ports) return [];
  return ["--tcp-connect", ports.length > 0 ? ports.join(",") : "none"];
}

/** The helper's arguments (up to and including "--") and the env changes for one call. */
export function wrapperFor(
  confinement: Confinement | "unconfined",
  env: ExecEnvironment,
  maxFileBytes: number | undefined,
  /**
   * An unconfined command's TCP ports (the operator turned Landlock's file rules off, and the
   * agent's exec is on an egress network): the TCP rule still applies. A confined command
   * carries its ports in confinement.connect.
   */
  unconfinedConnect?: readonly number[],
  /** No Unix socket of the command's own (aido-landlock --no-unix-sockets). */
  denyUnixSockets = false,
): { args: string[]; env: Record<string, string> } {
  if (!env.helper) {
    // A human sandbox on a foreign image (docker://...): no helper, so no domain, no
    // seccomp filter, no size limit, no TCP rule and no Unix socket refusal; only trusted
    // callers that ask for none of them may run there.
    if (
      confinement === "unconfined" &&
      maxFileBytes === undefined &&
      unconfinedConnect === undefined &&
      !denyUnixSockets
    )
      return { args: [], env: {} };
    fail(
      "landlock_unavailable",
      `this image has no ${HELPER}: commands can only run unconfined in it, with Unix sockets allowed`,
    );
  }
  // 0 is a limit too, the tightest: a goal at its quota may delete files but grow none.
  const options =
    maxFileBytes === undefined ? [] : ["--fsize", String(Math.max(0, Math.floor(maxFileBytes)))];
  // Prefer the command (and all it starts, its reaper too) over the executor when the
  // container runs out of memory: set before the helper forks, so nothing starts without it.
  options.push("--oom-score-adj", "1000");
  if (env.reaper) options.push("--reap");
  if (denyUnixSockets) options.push("--no-unix-sockets");
  if (confinement === "unconfined")
    return { args: ["--unconfined", ...options, ...tcpArgs(unconfinedConnect), "--"], env: {} };
  if (env.landlockAbi === 0) {
    if (grantsCoverMounts(confinement, env.mountedSkills))
      return { args: ["--unconfined", ...options, ...tcpArgs(confinement.connect), "--"], env: {} };
    fail(
      "landlock_unavailable",
      "exec needs Landlock (Linux 5.13 or later with landlock among the active LSMs) because this agent's " +
        "grants are narrower than the goal's mounts (files there it may not read or write, or programs there it " +
        "may not run), and this kernel has none; run Aido on such a kernel, " +
        "or set `sandbox.landlock: off` in the operator's config.yaml to run commands without it",
    );
  }
  ensurePrivateTmp(confinement.tmp);
  const rules = confinementArgs(confinement, env.systemRules);
  // On an egress network: the agent's relay port, or no TCP connect at all.
  options.push(...tcpArgs(confinement.connect));
  return { args: [...rules, ...options, "--"], env: { HOME: confinement.tmp, TMPDIR: confinement.tmp } };
}

export function opExec(
  a: Record<string, unknown>,
  callId: number,
  env: ExecEnvironment,
  running: Running,
): Promise<ExecResult> {
  const argv = Array.isArray(a.argv) && a.argv.length > 0 ? (a.argv as unknown[]) : null;
  if (argv && !argv.every((x) => typeof x === "string")) fail("invalid_input", "argv must be strings");
  if (!argv && typeof a.command !== "string") fail("invalid_input", "exec needs argv or command");
  const cwd = absolute(a.cwd ?? WORKSPACE);
  let isDir: boolean;
  try {
    isDir = statSync(cwd).isDirectory();
  } catch (e) {
    fsFail(e, cwd);
  }
  if (!isDir) fail("invalid_input", `${cwd}: cwd is not a directory`);
  const cap =
    typeof a.maxOutputBytes === "number" && a.maxOutputBytes > 0 ? a.maxOutputBytes : DEFAULT_OUTPUT_CAP;
  const timeoutMs = typeof a.timeoutMs === "number" && a.timeoutMs > 0 ? a.timeoutMs : 0;
  const wrap = wrapperFor(
    parseConfinement(a.confinement),
    env,
    typeof a.maxFileBytes === "number" && Number.isFinite(a.maxFileBytes) ? a.maxFileBytes : undefined,
    parsePorts(a.connect, "connect"),
    parseDenyUnixSockets(a.denyUnixSockets),
  );
  const program = (argv as string[] | null) ?? [SHELL, "-c", a.command as string];
  const extraEnv = (a.env && typeof a.env === "object" ? a.env : {}) as Record<string, string>;
  const started = Date.now();
  const oomBefore = readOomKills();
  return new Promise((resolve) => {
    const out = new Capture(cap);
    const err = new Capture(cap);
    let child: ChildProcess;
    try {
      const [file, ...args] = wrap.args.length > 0 ? [HELPER, ...wrap.args, ...program] : program;
      child = spawn(file as string, args, {
        cwd,
        env: { ...process.env, ...SAFETY_ENV, ...extraEnv, ...wrap.env },
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (e) {
      resolve(spawnFailure(e, started));
      return;
    }
    let timedOut = false;
    let settled = false;
    const pid = child.pid;
    // Only the helper (given --reap) is a reaper: a foreign image's program is not.
    const reaper = env.reaper && wrap.args.includes("--reap");
    if (pid) {
      running.add(callId, pid, reaper);
      // Without the helper (a foreign image) nothing set it: prefer the command all the same.
      if (wrap.args.length === 0) writeFile(`/proc/${pid}/oom_score_adj`, "1000", () => {});
    }
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            running.stop(callId, "timeout");
          }, timeoutMs)
        : undefined;
    child.stdout?.on("data", (c: Buffer) => out.push(c));
    child.stderr?.on("data", (c: Buffer) => err.push(c));
    child.stdin?.on("error", () => {});
    child.stdin?.end(typeof a.stdin === "string" ? a.stdin : undefined);
    child.on("error", (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      running.remove(callId);
      resolve(spawnFailure(e, started));
    });
    let exitCode: number | null = null;
    let exitSignal: string | null = null;
    let cancelled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      cancelled ||= running.cancelled(callId);
      running.remove(callId);
      const oomAfter = readOomKills();
      // Killed outright, or a shell reporting its child's SIGKILL (128 + 9), while the
      // container's OOM-kill counter went up.
      const killed = exitSignal === "SIGKILL" || exitCode === 137;
      const oomKilled =
        killed && !timedOut && !cancelled && oomBefore !== null && oomAfter !== null && oomAfter > oomBefore;
      let stderr = err.text();
      if (oomKilled) stderr += "\n[aido: the command was killed because the sandbox ran out of memory]\n";
      if (timedOut) stderr += `\n[aido: the command timed out after ${timeoutMs} ms and was killed]\n`;
      if (cancelled) stderr += "\n[aido: the call was cancelled and the command killed]\n";
      resolve({
        exitCode,
        signal: exitSignal,
        stdout: out.text(),
        stderr,
        timedOut,
        truncated: out.truncated || err.truncated,
        oomKilled,
        cancelled,
        durationMs: Date.now() - started,
      });
    };
    // Cut the pipes, but never before what the command wrote before it exited is read. The
    // exit can be handled before the poll has read that output (libuv reaps every child on
    // any SIGCHLD, another call's too, in an iteration whose poll did not yet see this pipe
    // readable), and the grace timer then runs before the next poll when the executor stalls
    // past the grace in between (a loaded machine, many calls ending together): exit 0 and
    // an empty stdout once in 30 parallel calls. So the pipes are cut in the check phase
    // (setImmediate), after a poll that read nothing more; that output sits in the pipe
    // already, and one poll reads it all. Output that keeps coming (from a process that
    // left the group) is cut PIPE_DRAIN_MAX_MS past the grace.
    const cutPipes = (exited: number) => {
      let seen = out.bytes + err.bytes;
      const drained = () => {
        if (settled) return;
        const now = out.bytes + err.bytes;
        if (now !== seen && Date.now() - exited < PIPE_GRACE_MS + PIPE_DRAIN_MAX_MS) {
          seen = now;
          setImmediate(drained);
          return;
        }
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      };
      setImmediate(drained);
    };
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      exitCode = code;
      exitSignal = signal ?? null;
      // A call is one unit: whatever it left running in its process group goes with it (a
      // reaper has killed all of it already), and so does what left the group.
      if (pid) killGroup(pid, "SIGKILL");
      cancelled = running.cancelled(callId);
      running.remove(callId);
      sweepOrphans(running);
      // A process that left the group (setsid) may still hold the pipes: do not wait on it.
      const exited = Date.now();
      setTimeout(() => {
        sweepOrphans(running);
        cutPipes(exited);
      }, PIPE_GRACE_MS).unref();
    });
    // "close" comes after "exit" once both pipes are drained and closed.
    child.on("close", finish);
  });
}

function spawnFailure(e: unknown, started: number): ExecResult {
  const err = e as NodeJS.ErrnoException | undefined;
  return {
    exitCode: 127,
    signal: null,
    stdout: "",
    stderr: `${err?.code === "ENOENT" ? `${err.path ?? "program"}: command not found` : (err?.message ?? String(e))}\n`,
    timedOut: false,
    truncated: false,
    oomKilled: false,
    cancelled: false,
    durationMs: Date.now() - started,
  };
}
