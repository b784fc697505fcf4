// daemon/refuse.ts — connections over daemon.max_connections. Each is told why (one error
// line naming no request) and closed. The cap is there to bound the daemon's descriptors,
// so the refused ones are bounded too: a refused socket waits for its client to read the
// line and hang up (so the client reads the reason, not a reset) for at most
// REFUSED_GRACE_MS, and at most MAX_REFUSED_OPEN wait at once; one more closes the oldest
// at once. Without that bound a client connecting in a loop, never reading, held one
// descriptor per refusal for two seconds each: thousands, past the cap it was to keep.
// The log says so at a bounded rate too: the first refusal of a second is a line, the
// others of that second are counted into one line when it ends.

import type { Socket } from "node:net";
import { ErrorCode } from "../errors.js";
import { rpcCodeOf } from "./errors.js";
import { errorLine } from "./protocol.js";

/** How long a refused socket waits for its client to hang up. */
export const REFUSED_GRACE_MS = 2_000;
/** Refused sockets waiting for their client at once; past it the oldest is closed. */
export const MAX_REFUSED_OPEN = 64;
/** Refusals after a logged one within this long are counted into one line. */
const LOG_WINDOW_MS = 1_000;

export class ConnectionRefusals {
  /** Refused sockets not yet closed, oldest first. */
  private readonly open = new Set<Socket>();
  private counted = 0;
  private window: NodeJS.Timeout | undefined;

  constructor(
    private readonly max: number,
    private readonly log: (m: string) => void,
  ) {}

  /** Refused sockets still open (tests check the bound). */
  get waiting(): number {
    return this.open.size;
  }

  refuse(sock: Socket, openConnections: number): void {
    this.note(openConnections);
    sock.on("error", () => {});
    if (this.open.size >= MAX_REFUSED_OPEN) {
      const oldest = this.open.values().next().value;
      if (oldest) this.drop(oldest);
    }
    this.open.add(sock);
    const timer = setTimeout(() => this.drop(sock), REFUSED_GRACE_MS).unref();
    sock.once("close", () => {
      clearTimeout(timer);
      this.open.delete(sock);
    });
    sock.end(
      errorLine(null, {
        code: rpcCodeOf(ErrorCode.limitExceeded),
        message: `the Aido daemon refuses the connection: ${openConnections} are open, daemon.max_connections is ${this.max}`,
        data: { code: ErrorCode.limitExceeded, details: { max_connections: this.max } },
      }),
    );
  }

  /** Close every refused socket still open (the daemon stops). */
  close(): void {
    for (const s of [...this.open]) this.drop(s);
    if (this.window) clearTimeout(this.window);
    this.window = undefined;
    this.flushCount();
  }

  private drop(sock: Socket): void {
    this.open.delete(sock);
    sock.destroy();
  }

  /** Log the refusal, or count it when one was logged within the second. */
  private note(openConnections: number): void {
    if (this.window) {
      this.counted += 1;
      return;
    }
    this.log(`refused a connection: ${openConnections} open, daemon.max_connections ${this.max}`);
    this.window = setTimeout(() => {
      this.window = undefined;
      this.flushCount();
    }, LOG_WINDOW_MS).unref();
  }

  private flushCount(): void {
    if (this.counted === 0) return;
    this.log(
      `refused ${this.counted} more connection(s) within a second: daemon.max_connections ${this.max}`,
    );
    this.counted = 0;
  }
}
