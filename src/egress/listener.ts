// egress/listener.ts — the daemon's end of one relay: a Unix socket (EGRESS_SOCKET, 0600)
// in the folder shared with the goal's relay container. Each stream starts with the relay's
// header line `AIDO-EGRESS <port>\n`; the listener maps the port to its caller
// (EgressCallers) and hands the rest of the stream to the proxy. A stream whose header is
// malformed or late is closed without a byte: only the relay can connect here (the folder is
// 0700, the socket 0600, both the daemon's), and it never sends such a thing, so this guards
// against a bug, not a peer. A stream on a port no caller holds is a peer's doing (anything
// in the goal's container can connect to any of the relay's ports; only an agent's Landlock
// TCP rule keeps its execs to its own): it is closed without a byte too, and reported to the
// host (`unheld`, audited as egress.denied) at most once a second for the whole relay, the
// connections in between counted (per port) into the next report, so a flood cannot fill
// the log, not even one spread over every port of the relay.

import { chmodSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { errorMessage } from "../errors.js";
import { ensurePrivateDir } from "../security/private-home.js";
import { EGRESS_SOCKET, type EgressCaller, type EgressProxy, RELAY_HEADER } from "./types.js";

/** The header is short: `AIDO-EGRESS 65535\n`. */
const MAX_HEADER = 32;
const HEADER_TIMEOUT_MS = 5_000;
/** At most one report of unheld ports per this long; the connections between are counted. */
const UNHELD_REPORT_MS = 1_000;

export interface RelayListenerOptions {
  /** The folder shared with the relay ($AIDO_HOME/egress/<goal>). */
  dir: string;
  /** The caller a port of this relay belongs to now. */
  callerOf(port: number): EgressCaller | undefined;
  proxy: EgressProxy;
  /**
   * Streams (since the last report) named ports no caller holds and were closed: the host
   * records it. May throw (the audit log failed): logged.
   */
  unheld(report: UnheldReport): void;
  log(message: string): void;
}

/** Connections closed on ports of one relay that no caller held, since the last report. */
export interface UnheldReport {
  /** The ports they named, ascending. */
  ports: number[];
  /** How many there were, on all those ports. */
  connections: number;
}

/** `port 3228`, or `3 ports (3228 to 3230)`. */
export function unheldPortsInWords(ports: readonly number[]): string {
  if (ports.length === 1) return `port ${ports[0]}`;
  return `${ports.length} ports (${ports[0]} to ${ports[ports.length - 1]})`;
}

export class RelayListener {
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  private readonly unheld: UnheldPorts;

  private constructor(private readonly opts: RelayListenerOptions) {
    this.server = createServer((s) => this.accept(s));
    this.unheld = new UnheldPorts((report) => {
      try {
        opts.unheld(report);
      } catch (e) {
        opts.log(
          `recording connections on unheld egress ports ${report.ports.join(", ")}: ${errorMessage(e)}`,
        );
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
 * Reports of connections on unheld ports, at most one per UNHELD_REPORT_MS for the whole
 * relay: the first at once, those that follow within the interval counted per port and
 * reported together when it ends (so every connection is on record, and a flood costs one
 * entry per interval however many of the relay's ports it spreads over).
 */
class UnheldPorts {
  /** Connections per port since the last report, while an interval runs. */
  private counted = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly report: (report: UnheldReport) => void) {}

  seen(port: number): void {
    if (this.timer) {
      this.counted.set(port, (this.counted.get(port) ?? 0) + 1);
      return;
    }
    this.report({ ports: [port], connections: 1 });
    this.hold();
  }

  /** The listener closes: what was counted is reported now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.take();
  }

  private hold(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.take()) this.hold();
    }, UNHELD_REPORT_MS);
    this.timer.unref();
  }

  /** Report what was counted, if anything (true then). */
  private take(): boolean {
    if (this.counted.size === 0) return false;
    const counted = this.counted;
    this.counted = new Map();
    let connections = 0;
    for (const n of counted.values()) connections += n;
    this.report({ ports: [...counted.keys()].sort((a, b) => a - b), connections });
    return true;
  }
}
