// humansandbox/run-streams.ts — a run's output, from the stream files the task writes to
// (the stream folder, mounted at /aido/stream) to the evidence. The host makes the files
// anew (O_EXCL | O_NOFOLLOW: never through a link or FIFO an earlier task left at the
// name) and holds them open before the task starts, so a task that swaps them for links
// cannot make the host read or write its own files. They are read as they grow, in order,
// up to the evidence cap, every line through the scrubber to the terminal and to
// stdout.log / stderr.log; at the end (or at a stop signal) what is left is folded in and
// the stream files are removed.

import { randomBytes } from "node:crypto";
import { closeSync, constants, fchownSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { parseUser, removeTreeNoFollow, restoreOwnerAccess } from "../sandbox/folders.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import { NEW_FILE } from "./run-evidence.js";
import { LineStream, type Scrubber } from "./scrub.js";
import type { SandboxPaths } from "./state.js";
import { removeIn, withDir } from "./store-dirs.js";

/** Evidence keeps at most this much of each stream; the rest is counted and cut with a marker. */
export const MAX_LOG_BYTES = 64 * 1024 * 1024;
/** How often the stream files are read while the task runs. */
export const POLL_MS = 15;

/**
 * What a poll reads of each stream at most: a task that writes faster than the lines are
 * scrubbed and written (a flood of short lines goes at about 1 MiB/s) must not hold the event
 * loop, where the run's timeout, the executor's answer and a stop signal are handled.
 */
export const POLL_READ_BYTES = 256 * 1024;
/**
 * What a stop signal folds in at most of each stream's backlog, as much as a poll reads:
 * the stop ends the process within half a second however far behind a flood of output left
 * the reading (a second Ctrl-C meanwhile would end it at once, without a summary). The rest
 * is counted (stdout_bytes, stderr_bytes) and the logs marked truncated.
 */
export const STOP_FOLD_BYTES = POLL_READ_BYTES;

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
 *
 * What a task left there may not go (an entry the host cannot remove), or come back while
 * the run starts (a process the task left behind keeps making it): the run then writes to a
 * name no task can guess, <run>-<random>.<ext>, and `warn` says so. Before, such a leftover
 * failed every run that came to its name, and a task could plant one at each name to come.
 */
function openStream(
  paths: SandboxPaths,
  runId: string,
  ext: "out" | "err",
  user: string,
  warn: (message: string) => void,
): { fd: number; name: string } {
  const own = `${runId}.${ext}`;
  try {
    return { fd: makeStream(paths.stream, own, user), name: own };
  } catch (e) {
    const name = `${runId}-${randomBytes(6).toString("hex")}.${ext}`;
    warn(
      `stream/${own} could not be made (${errorMessage(e)}); the run writes to stream/${name} instead (\`aido sandbox destroy\` removes what the task left)`,
    );
    return { fd: makeStream(paths.stream, name, user), name };
  }
}

/**
 * The stream file `name` made new in the stream folder, opened without following a link:
 * run as root, the sandbox's folder is the person's (state.ts ownEvidence), and a `stream`
 * they renamed away and replaced by a link (to /etc/apt/apt.conf.d, say) had root make the
 * file there and hand it to the sandbox's user, theirs to fill.
 */
function makeStream(stream: string, name: string, user: string): number {
  let dir: number;
  try {
    dir = openSync(stream, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `${stream} is not the sandbox's stream folder (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}: a link put there on the host?): nothing is made through it`,
      { path: stream },
    );
  }
  try {
    return makeStreamIn(fdPath(dir, name), join(stream, name), user);
  } finally {
    closeSync(dir);
  }
}

/** makeStream's file at `p` (a path through the folder's descriptor; `shown` in errors). */
function makeStreamIn(p: string, shown: string, user: string): number {
  removeTreeNoFollow(p);
  let fd: number;
  try {
    fd = openSync(p, constants.O_RDONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `${shown} was made again by something in the sandbox while the run started`,
      { path: shown },
    );
  }
  try {
    if (process.getuid?.() === 0) {
      const u = parseUser(user);
      fchownSync(fd, u.uid, u.gid);
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/**
 * The two stream files of a run and the evidence they become: stdout.log and stderr.log in
 * the run's folder, each line scrubbed and shown as it comes.
 */
export class RunStreams {
  private done = false;
  private constructor(
    private readonly paths: SandboxPaths,
    /** The stream files' names in the stream folder (what the task's command writes to). */
    readonly names: { out: string; err: string },
    private readonly fds: number[],
    private readonly outLines: LineStream,
    private readonly errLines: LineStream,
    private readonly outTail: Tail,
    private readonly errTail: Tail,
    private readonly warn: (message: string) => void,
  ) {}

  /** Make the run's stream files and open its logs; nothing of them is left when it throws. */
  static open(
    paths: SandboxPaths,
    dir: string,
    runId: string,
    opts: {
      user: string;
      scrubber: Scrubber;
      warn: (message: string) => void;
      onStdout?: (l: string) => void;
      onStderr?: (l: string) => void;
    },
  ): RunStreams {
    const made: Array<{ fd: number; name?: string }> = [];
    const track = <T extends { fd: number; name?: string }>(m: T): T => {
      made.push(m);
      return m;
    };
    let out: { fd: number; name: string };
    let err: { fd: number; name: string };
    let stdoutLog: number;
    let stderrLog: number;
    try {
      // A task of the person's own uid can take the folder's write permission from its owner
      // (chmod 555 /aido/stream): every later run then failed to make its stream files.
      const mode = restoreOwnerAccess(paths.stream);
      if (mode !== undefined)
        opts.warn(
          `the stream folder had its owner's access taken (mode ${mode.toString(8).padStart(3, "0")}, by a task); it was given back (u+rwx)`,
        );
      out = track(openStream(paths, runId, "out", opts.user, opts.warn));
      err = track(openStream(paths, runId, "err", opts.user, opts.warn));
      // Made new in the run's folder made just now (never through a link put there).
      stdoutLog = track({ fd: openSync(join(dir, "stdout.log"), NEW_FILE, 0o644) }).fd;
      stderrLog = track({ fd: openSync(join(dir, "stderr.log"), NEW_FILE, 0o644) }).fd;
    } catch (e) {
      // Nothing of a run that did not start is left open, nor in the stream folder (what
      // will not go is said, and left for destroy: the setup's own error is the one thrown).
      for (const m of made) closeSync(m.fd);
      for (const m of made) if (m.name !== undefined) removeStream(paths, m.name, opts.warn);
      throw e;
    }
    const names = { out: out.name, err: err.name };
    const [outFd, errFd] = [out.fd, err.fd];
    const sink = (fd: number, show?: (l: string) => void) => (line: string) => {
      writeSync(fd, `${line}\n`);
      show?.(line);
    };
    const outLines = new LineStream(opts.scrubber, sink(stdoutLog, opts.onStdout));
    const errLines = new LineStream(opts.scrubber, sink(stderrLog, opts.onStderr));
    return new RunStreams(
      paths,
      names,
      [outFd, errFd, stdoutLog, stderrLog],
      outLines,
      errLines,
      new Tail(outFd, outLines),
      new Tail(errFd, errLines),
      opts.warn,
    );
  }

  /** Whether finish() has run. */
  get finished(): boolean {
    return this.done;
  }

  get stdoutBytes(): number {
    return this.outTail.bytes;
  }

  get stderrBytes(): number {
    return this.errTail.bytes;
  }

  get truncated(): boolean {
    return this.outTail.truncated || this.errTail.truncated;
  }

  /** One poll's read of each stream. */
  poll(): void {
    this.outTail.drain(POLL_READ_BYTES);
    this.errTail.drain(POLL_READ_BYTES);
  }

  /**
   * What the task wrote before it ended, read a poll's worth at a time with the event loop
   * turning between (a flood of short lines takes a while: a stop signal is handled
   * meanwhile), up to the sizes now (a process the task left that keeps writing cannot hold
   * the run).
   */
  async catchUp(): Promise<void> {
    const tails = [this.outTail, this.errTail];
    const ends = tails.map((t) => t.size());
    while (!this.done && tails.some((t, i) => t.behind(ends[i] as number))) {
      for (const t of tails) t.drain(POLL_READ_BYTES);
      await new Promise((r) => setImmediate(r));
    }
  }

  /**
   * The raw stream files folded into the evidence, then removed: what is left of them read
   * (at most `limit` bytes of each), `notes` (the executor's, a failure) added to stderr, a
   * last line without its "\n" written too. Once, whichever comes first: the run's end or a
   * signal that stops it.
   */
  finish(notes: readonly string[], limit = Number.POSITIVE_INFINITY): void {
    if (this.done) return;
    this.done = true;
    for (const tail of [this.outTail, this.errTail]) {
      tail.drain(limit);
      tail.skipTo(tail.size());
    }
    for (const note of notes) this.errLines.write(Buffer.from(note));
    this.outLines.end();
    this.errLines.end();
    for (const fd of this.fds) closeSync(fd);
    for (const f of [this.names.out, this.names.err]) removeStream(this.paths, f, this.warn);
  }
}

/**
 * Remove a run's stream file at its end. The task may have put at its name what the host
 * cannot remove (or left a process that keeps filling it): that is said and left for
 * `aido sandbox destroy`, never let cost the run its summary (it threw out of the run's end,
 * which then wrote no summary.json and no run_completed: a task could erase its record).
 */
function removeStream(paths: SandboxPaths, name: string, warn: (message: string) => void): void {
  try {
    // Through the stream folder opened without following a link, as it was made (makeStream).
    const dir = openSync(paths.stream, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    withDir(dir, (d) => removeIn(d, name, `stream/${name}`));
  } catch (e) {
    warn(
      `stream/${name} could not be removed at the run's end (${errorMessage(e)}); \`aido sandbox destroy\` removes what the task left`,
    );
  }
}
