// egress/listener.ts — the daemon's end of one relay: a Unix socket (EGRESS_SOCKET, 0600)
// in the folder shared with the goal's relay container. Each stream starts with the relay's
// header line `AIDO-EGRESS <port>\n`; the listener maps the port to its caller
// (EgressCallers) and hands the rest of the stream to the proxy. A stream whose header is
// malformed or late is closed without a byte: only the relay can connect here (the folder is
// 0700, the socket 0600, both the daemon's), and it never sends such a thing, so this guards
// against a bug, not a peer. A stream on a port no caller holds is a peer's doing (anything
// in the goal's container can connect to any of the relay's ports; only an agent's Landlock
// TCP rule keeps its execs to its own): it is closed without a byte too, and reported to the
// host (`unheld`, audited as egress.denied) at most once per port per second, the
// connections in between counted into the next report, so a flood cannot fill the log.

import { chmodSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { errorMessage } from "../errors.js";
import { ensurePrivateDir } from "../security/private-home.js";
import { EGRESS_SOCKET, type EgressCaller, type EgressProxy, RELAY_HEADER } from "./types.js";

/** The header is short: `AIDO-EGRESS 65535\n`. */
const MAX_HEADER = 32;
const HEADER_TIMEOUT_MS = 5_000;
/** At most one report of an unheld port per this long; the connections between are counted. */
const UNHELD_REPORT_MS = 1_000;

export interface RelayListenerOptions {
  /** The folder shared with the relay ($AIDO_HOME/egress/<goal>). */
  dir: string;
  /** The caller a port of this relay belongs to now. */
  callerOf(port: number): EgressCaller | undefined;
  proxy: EgressProxy;
  /**
   * `connections` streams (since the last report of this port) named a port no caller holds
   * and were closed: the host records it. May throw (the audit log failed): logged.
   */
  unheld(port: number, connections: number): void;
  log(message: string): void;
}

export class RelayListener {
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  private readonly unheld: UnheldPorts;

  private constructor(private readonly opts: RelayListenerOptions) {
    this.server = createServer((s) => this.accept(s));
    this.unheld = new UnheldPorts((port, connections) => {
      try {
        opts.unheld(port, connections);
      } catch (e) {
        opts.log(`recording a connection on unheld egress port ${port}: ${errorMessage(e)}`);
      }
    });
  }

  /** Listen on `<dir>/proxy.sock` (the folder made 0700, the socket 0600, a stale one replaced). */
  static async start(opts: RelayListenerOptions): Promise<RelayListener> {
    ensurePrivateDir(opts.dir);
    const path = join(opts.dir, EGRESS_SOCKET);
    rmSync(path, { force: true });
    const l = new RelayListener(opts);
    await new Promise<void>((resolve, reject) => {
      l.server.once("error", reject);
      l.server.listen(path, () => {
        l.server.off("error", reject);
        resolve();
      });
    });
    chmodSync(path, 0o600);
    l.server.on("error", (e) => opts.log(`egress listener ${path}: ${errorMessage(e)}`));
    return l;
  }

  /** Stop listening and end the streams not yet handed to the proxy (the proxy ends its own). */
  async close(): Promise<void> {
    this.unheld.flush();
    for (const s of this.open) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(join(this.opts.dir, EGRESS_SOCKET), { force: true });
  }

  /**
   * Read the header in paused mode ('readable', read()), so that what follows it is put back
   * unread and the stream reaches the proxy neither flowing nor paused: the proxy reads it
   * as it likes (data events, pipe), losing nothing.
   */
  private accept(s: Socket): void {
    this.open.add(s);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => s.destroy(), HEADER_TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      s.off("readable", onReadable);
      this.open.delete(s);
    };
    const onReadable = () => {
      for (let chunk = s.read() as Buffer | null; chunk !== null; chunk = s.read() as Buffer | null) {
        head = Buffer.concat([head, chunk]);
        const nl = head.indexOf(0x0a);
        if (nl < 0) {
          if (head.length <= MAX_HEADER) continue;
          done();
          s.destroy();
          return;
        }
        done();
        const port = nl <= MAX_HEADER ? portOfHeader(head.subarray(0, nl).toString("latin1")) : undefined;
        const caller = port === undefined ? undefined : this.opts.callerOf(port);
        if (!caller) {
          s.destroy();
          if (port !== undefined) this.unheld.seen(port);
          return;
        }
        const rest = head.subarray(nl + 1);
        if (rest.length > 0) s.unshift(rest);
        this.opts.proxy.handle(s, caller);
        return;
      }
    };
    s.on("readable", onReadable);
    s.on("error", () => s.destroy());
    s.on("close", done);
  }
}

function portOfHeader(line: string): number | undefined {
  const m = new RegExp(`^${RELAY_HEADER} ([0-9]{1,5})$`).exec(line);
  return m ? Number(m[1]) : undefined;
}

/**
 * Reports of connections on unheld ports, at most one per port per UNHELD_REPORT_MS: the
 * first at once, those that follow within the interval counted and reported when it ends
 * (so every connection is on record, and a flood costs one entry per port per interval).
 */
class UnheldPorts {
  /** Ports reported within the interval: connections since, and the interval's end. */
  private readonly quiet = new Map<number, { since: number; timer: NodeJS.Timeout }>();

  constructor(private readonly report: (port: number, connections: number) => void) {}

  seen(port: number): void {
    const q = this.quiet.get(port);
    if (q) {
      q.since++;
      return;
    }
    this.report(port, 1);
    this.hold(port);
  }

  /** The listener closes: what was counted is reported now. */
  flush(): void {
    const counted = [...this.quiet].filter(([, q]) => q.since > 0);
    for (const [, q] of this.quiet) clearTimeout(q.timer);
    this.quiet.clear();
    for (const [port, q] of counted) this.report(port, q.since);
  }

  private hold(port: number): void {
    const q = {
      since: 0,
      timer: setTimeout(() => {
        this.quiet.delete(port);
        if (q.since === 0) return;
        this.report(port, q.since);
        this.hold(port);
      }, UNHELD_REPORT_MS),
    };
    q.timer.unref();
    this.quiet.set(port, q);
  }
}
