// mcp/call-connections.ts — the daemon connections a session's cancellable calls run on.
// A call the client may cancel while it runs (a typed action, a plan's execution, an
// intent's check, a simulation in a shadow copy, worlds) goes over a connection of its
// own, closed when the client cancels it: the daemon ends a call whose connection closed
// (a running command is stopped, audited as tool.failed, code cancelled; a plan stops at
// that step and is recorded failed), where on the session's shared connection it would
// run on with nobody to read its result. The close comes at once, unless the call still
// waits for an approval: then it waits for that request's denial (typed-tools.ts withHuman,
// holdClose) to be answered, CANCEL_GRACE_MS at most, so that it is on record as a denial.
// A fixed grace after every cancel let the call run on for it: a plan's step that ended
// meanwhile was followed by the next one, whose effect landed after the client cancelled.
//
// Bounded: a session holds at most MAX_CALL_CONNECTIONS of them at once, and a call beyond
// that waits for one to free, so a client that fires thousands of calls holds that many
// descriptors at most, here and in the daemon. The calls waiting are bounded too
// (daemon.mcp_max_queued_calls): one more is refused at once, naming the key, and recorded
// (onRefused: the daemon's audit, session.call_refused), never left to wait without end.
// Recorded at a bounded rate, every one counted: the first refusal is an entry at once, the
// ones in the REFUSAL_WINDOW_MS after it one more entry saying how many (a client firing
// thousands of calls past the queue was an audit entry each). A call the client cancels while it waits
// for a connection, or before its request left, never reaches the daemon: nothing ran and
// nothing is on record. Closing the session closes every one (close()).

import { AidoClient } from "../client/client.js";
import { AidoError, ErrorCode } from "../errors.js";

/** Connections one session's calls may hold at once. */
export const MAX_CALL_CONNECTIONS = 16;
/** After a cancel, the time a pending approval's denial has at most to reach the daemon before the call's connection closes. */
export const CANCEL_GRACE_MS = 500;

/** Queue refusals after a recorded one within this long are recorded as one count. */
export const REFUSAL_WINDOW_MS = 1_000;

const cancelledBeforeSent = () =>
  new AidoError(ErrorCode.cancelled, "the client cancelled the call before it reached the Aido daemon", {});

export class CallConnections {
  private held = 0;
  private readonly open = new Set<AidoClient>();
  private readonly queue: { grant(): void; refuse(e: Error): void }[] = [];
  /** Per running call (by its signal): what its connection's close waits for after a cancel. */
  private readonly holds = new Map<AbortSignal, Promise<unknown>[]>();
  private closedError: Error | undefined;
  /** Open while refusals are counted rather than recorded (a window after a recorded one). */
  private refusalWindow: NodeJS.Timeout | undefined;
  private refusalsCounted = 0;

  constructor(
    private readonly socketPath: string,
    /** The daemon's daemon.max_line_bytes (the client refuses a longer request line). */
    private readonly maxLineBytes: number,
    /** daemon.mcp_max_queued_calls: calls that may wait for a connection at once. */
    readonly maxQueued: number,
    /** A call refused because too many wait: recorded by the session (session.refused). */
    private readonly onRefused: (reason: string) => void,
    readonly max = MAX_CALL_CONNECTIONS,
  ) {}

  /** Connections held now (open, or being opened). */
  get inUse(): number {
    return this.held;
  }

  /**
   * Run `fn` on a connection of its own, closed when it settles, or when `signal` aborts
   * (which then fails `fn`'s pending request): at once, or once what the call holds the
   * close for (holdClose) settled, CANCEL_GRACE_MS at most.
   */
  async run<T>(signal: AbortSignal, fn: (client: AidoClient) => Promise<T>): Promise<T> {
    await this.acquire(signal);
    let own: AidoClient | undefined;
    let grace: NodeJS.Timeout | undefined;
    const held: Promise<unknown>[] = [];
    const cancel = () => {
      // The call's own abort listeners (added after this one) run first and may hold the close.
      setImmediate(() => {
        if (held.length === 0) return own?.close();
        grace = setTimeout(() => own?.close(), CANCEL_GRACE_MS);
        void Promise.allSettled(held).then(() => own?.close());
      });
    };
    this.holds.set(signal, held);
    try {
      own = await AidoClient.connect(this.socketPath, { maxLineBytes: this.maxLineBytes });
      this.open.add(own);
      if (this.closedError) throw this.closedError;
      if (signal.aborted) throw cancelledBeforeSent();
      signal.addEventListener("abort", cancel, { once: true });
      return await fn(own);
    } finally {
      this.holds.delete(signal);
      signal.removeEventListener("abort", cancel);
      clearTimeout(grace);
      if (own) {
        own.close();
        this.open.delete(own);
      }
      this.release();
    }
  }

  /**
   * The call of `signal`, cancelled, has `p` to settle before its connection closes (an
   * approval's denial on its way to the daemon); CANCEL_GRACE_MS at most.
   */
  holdClose(signal: AbortSignal, p: Promise<unknown>): void {
    this.holds.get(signal)?.push(p);
  }

  /** The session ends: every call's connection closes (the daemon ends their calls), waiting calls fail. */
  close(): void {
    this.closedError ??= new AidoError(ErrorCode.cancelled, "the MCP session closed", {});
    for (const c of this.open) c.close();
    for (const w of this.queue.splice(0)) w.refuse(this.closedError);
    clearTimeout(this.refusalWindow);
    this.refusalWindow = undefined;
    this.recordCounted();
  }

  /** Record a queue refusal, or count it when one was recorded within the window. */
  private refused(reason: string): void {
    if (this.refusalWindow) {
      this.refusalsCounted += 1;
      return;
    }
    this.onRefused(reason);
    this.openRefusalWindow();
  }

  private openRefusalWindow(): void {
    this.refusalWindow = setTimeout(() => {
      this.refusalWindow = undefined;
      // A steady flood: one entry per window, each opening the next.
      if (this.recordCounted()) this.openRefusalWindow();
    }, REFUSAL_WINDOW_MS);
    this.refusalWindow.unref?.();
  }

  /** The refusals counted in the window, as one entry; true when there were any. */
  private recordCounted(): boolean {
    const n = this.refusalsCounted;
    if (n === 0) return false;
    this.refusalsCounted = 0;
    this.onRefused(
      `${n} more call(s) refused within ${REFUSAL_WINDOW_MS} ms: more than daemon.mcp_max_queued_calls (${this.maxQueued}) calls of this session waited for one of its ${this.max} daemon connections; none of them was run`,
    );
    return true;
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (signal.aborted) return Promise.reject(cancelledBeforeSent());
    if (this.held < this.max) {
      this.held += 1;
      return Promise.resolve();
    }
    if (this.queue.length >= this.maxQueued) {
      const reason = `${this.queue.length} calls of this session already wait for one of its ${this.max} daemon connections (daemon.mcp_max_queued_calls ${this.maxQueued}); the call was not run, try it again once calls end`;
      this.refused(reason);
      return Promise.reject(
        new AidoError(ErrorCode.limitExceeded, reason, { max_queued_calls: this.maxQueued }),
      );
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        refuse: (e: Error) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        const i = this.queue.indexOf(entry);
        if (i !== -1) this.queue.splice(i, 1);
        reject(cancelledBeforeSent());
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(entry);
    });
  }

  /** A call's connection is done: its slot goes to the first call waiting, else back. */
  private release(): void {
    const next = this.queue.shift();
    if (next) next.grant();
    else this.held -= 1;
  }
}
