// mcp/call-connections.ts — the daemon connections a session's cancellable calls run on.
// A call the client may cancel while it runs (a typed action, a plan's execution, an
// intent's check, a simulation in a shadow copy, worlds) goes over a connection of its
// own, closed when the client cancels it: the daemon ends a call whose connection closed
// (a running command is stopped, audited as tool.failed, code cancelled; a plan stops at
// that step and is recorded failed), where on the session's shared connection it would
// run on with nobody to read its result. The close waits CANCEL_GRACE_MS, so that an
// approval the call still waits for is denied first (typed-tools.ts withHuman) and is on
// record as a denial.
//
// Bounded: a session holds at most MAX_CALL_CONNECTIONS of them at once, and a call beyond
// that waits for one to free, so a client that fires thousands of calls holds that many
// descriptors at most, here and in the daemon. A call the client cancels while it waits
// for a connection, or before its request left, never reaches the daemon: nothing ran and
// nothing is on record. Closing the session closes every one (close()).

import { AidoClient } from "../client/client.js";
import { AidoError, ErrorCode } from "../errors.js";

/** Connections one session's calls may hold at once. */
export const MAX_CALL_CONNECTIONS = 16;
/** After a cancel, the time a pending approval's denial has to reach the daemon before the call's connection closes. */
export const CANCEL_GRACE_MS = 500;

const cancelledBeforeSent = () =>
  new AidoError(ErrorCode.cancelled, "the client cancelled the call before it reached the Aido daemon", {});

export class CallConnections {
  private held = 0;
  private readonly open = new Set<AidoClient>();
  private readonly queue: { grant(): void; refuse(e: Error): void }[] = [];
  private closedError: Error | undefined;

  constructor(
    private readonly socketPath: string,
    /** The daemon's daemon.max_line_bytes (the client refuses a longer request line). */
    private readonly maxLineBytes: number,
    readonly max = MAX_CALL_CONNECTIONS,
  ) {}

  /** Connections held now (open, or being opened). */
  get inUse(): number {
    return this.held;
  }

  /**
   * Run `fn` on a connection of its own, closed when it settles, or CANCEL_GRACE_MS after
   * `signal` aborts (which then fails `fn`'s pending request).
   */
  async run<T>(signal: AbortSignal, fn: (client: AidoClient) => Promise<T>): Promise<T> {
    await this.acquire(signal);
    let own: AidoClient | undefined;
    let grace: NodeJS.Timeout | undefined;
    const cancel = () => {
      grace ??= setTimeout(() => own?.close(), CANCEL_GRACE_MS);
    };
    try {
      own = await AidoClient.connect(this.socketPath, { maxLineBytes: this.maxLineBytes });
      this.open.add(own);
      if (this.closedError) throw this.closedError;
      if (signal.aborted) throw cancelledBeforeSent();
      signal.addEventListener("abort", cancel, { once: true });
      return await fn(own);
    } finally {
      signal.removeEventListener("abort", cancel);
      clearTimeout(grace);
      if (own) {
        own.close();
        this.open.delete(own);
      }
      this.release();
    }
  }

  /** The session ends: every call's connection closes (the daemon ends their calls), waiting calls fail. */
  close(): void {
    this.closedError ??= new AidoError(ErrorCode.cancelled, "the MCP session closed", {});
    for (const c of this.open) c.close();
    for (const w of this.queue.splice(0)) w.refuse(this.closedError);
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (signal.aborted) return Promise.reject(cancelledBeforeSent());
    if (this.held < this.max) {
      this.held += 1;
      return Promise.resolve();
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
