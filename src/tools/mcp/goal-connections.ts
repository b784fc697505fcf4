// tools/mcp/goal-connections.ts — one goal's live connections to its external MCP servers.
// A server is connected the first time a call of the goal is allowed to reach it (or an
// offer needs its live definitions to check them against the pins), kept for the goal's
// life and closed with the goal. Which calls may connect is the gate's and servers.ts's:
// nothing here is reached before the token, the grants, the policy and the budget passed.
// A connection that ends on its own (the server exited, flooded, broke the protocol, or
// stopped answering: a call timed out and a ping after it too, connection.ts) is
// dropped at once and audited as mcp.disconnected with the transport's reason; the next
// need connects again, at most MAX_RECONNECTS times per goal and server (a server that
// keeps dying is not restarted in a loop). A server that cannot be reached is not tried
// again for a while (BACKOFF_MS, doubling per failure): an offer each turn and every call
// would otherwise wait its full timeout and audit it again. Once the goal ended, nothing
// connects for it, and a connection a call in flight was opening is closed when it opens.
// A call waiting for its server's connection to open (its goal frozen by its node's fence: the
// start, connect and listing wait for the thaw) leaves as its caller cancels it; an open no call
// waits for any more is given up (its own signal), counted as no failure of the server's.
// A listing that refuses tools for their size (definitions.ts admitTools) is audited as
// mcp.tool_too_large, once per tool definition and connection, and at most
// OVERSIZED_ENTRIES_PER_LISTING entries a listing (the last counts the rest, `others`): a
// server listing thousands of tiny tools past its cap would otherwise write an entry each.

import type { McpServerConfig } from "../../config.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import type { AuditLog } from "../../security/audit.js";
import { inert } from "../../security/terminal-text.js";
import { type ConnectDeps, McpConnection } from "./connection.js";
import { shownName } from "./definitions.js";

declare module "../../security/audit-events.js" {
  interface AuditPayloads {
    /** A goal's connection to a server ended on its own (reason redacted, inert, bounded). */
    "mcp.disconnected": { server: string; reason: string; reconnects_left: number };
    /** A listing refused a tool for its size: not offered, not callable. */
    "mcp.tool_too_large": {
      server: string;
      tool: string;
      bytes: number;
      cap: number;
      limit: "tool" | "server";
      /** More tools this listing refused (not reported before), counted here, not written each. */
      others?: number;
    };
  }
}

/** mcp.tool_too_large entries one listing writes at most (the last counts the rest). */
const OVERSIZED_ENTRIES_PER_LISTING = 16;

/** How many times a goal connects again to a server whose connection ended on its own. */
export const MAX_RECONNECTS = 2;

/** How long a goal waits before trying an unreachable server again; doubles per failure. */
export const BACKOFF_MS = 10_000;
const BACKOFF_MAX_MS = 300_000;

interface OpenWaiter {
  resolve(conn: McpConnection): void;
  reject(e: unknown): void;
}

/** A connection being opened: the calls waiting for it with a signal, and its own signal. */
interface OpenWaiters {
  opening: Promise<McpConnection>;
  /** Aborted once every call waiting has cancelled (and none waits without a signal). */
  unwanted: AbortController;
  waiting: Set<OpenWaiter>;
  /** A caller without a signal waits too: the open goes on whoever leaves. */
  forGood: boolean;
}

export interface GoalConnectionsDeps {
  audit: AuditLog;
  /** How a connection of this goal reaches its server (its stdio container is the goal's). */
  connectDeps(goalId: string): ConnectDeps;
}

export class GoalConnections {
  readonly goalId: string;
  private readonly deps: GoalConnectionsDeps;
  private readonly conns = new Map<string, Promise<McpConnection>>();
  /** The open connections, by server (those `conns` resolved to and still held). */
  private readonly open = new Map<string, McpConnection>();
  /** Per server: how many of its connections ended on its own, and the last reason. */
  private readonly ends = new Map<string, { count: number; reason: string }>();
  /** Per server: when its last ended connection's container is gone. */
  private readonly gone = new Map<string, Promise<void>>();
  /** Per server that could not be reached: how often in a row, why, and when to try again. */
  private readonly unreachable = new Map<string, { count: number; reason: string; until: number }>();
  /** The goal ended (close()): nothing connects for it any more. */
  private closed = false;
  /** Per server, while its connection opens: who waits for it, and how to give the open up. */
  private readonly opening = new Map<string, OpenWaiters>();

  constructor(goalId: string, deps: GoalConnectionsDeps) {
    this.goalId = goalId;
    this.deps = deps;
  }

  /**
   * The goal's connection to `server`, opened now if it has none. `signal`: the caller's; its
   * abort ends this wait (rejected with its reason), and the open once no one else waits for it.
   */
  connection(server: McpServerConfig, signal?: AbortSignal): Promise<McpConnection> {
    const held = this.conns.get(server.name);
    const given = this.opening.get(server.name);
    // One given up (no call waited any more) is not waited for: a new one opens after it ends.
    if (held && !given?.unwanted.signal.aborted) return this.waitFor(server.name, held, signal);
    if (this.closed) return Promise.reject(this.goalEnded(server.name));
    const failed = this.unreachable.get(server.name);
    if (failed && Date.now() < failed.until) {
      return Promise.reject(
        new AidoError(
          ErrorCode.sandboxUnavailable,
          `${failed.reason} (not tried again for this goal for ${Math.ceil((failed.until - Date.now()) / 1000)} s)`,
          { server: server.name },
        ),
      );
    }
    const ended = this.ends.get(server.name);
    if (ended && ended.count > MAX_RECONNECTS) {
      return Promise.reject(
        new AidoError(
          ErrorCode.sandboxUnavailable,
          `MCP server ${server.name}'s connection ended ${ended.count} times in this goal; it is not connected again for this goal (last: ${ended.reason})`,
          { server: server.name },
        ),
      );
    }
    const deps: ConnectDeps = {
      ...this.deps.connectDeps(this.goalId),
      ended: (conn, reason, gone) => this.ended(server.name, conn, reason, gone),
      oversized: (_conn, refused) => {
        const written = refused.slice(0, OVERSIZED_ENTRIES_PER_LISTING);
        const others = refused.length - written.length;
        written.forEach((t, i) => {
          this.deps.audit.record(
            "mcp.tool_too_large",
            {
              server: server.name,
              tool: shownName(t.name),
              bytes: t.bytes,
              cap: t.cap,
              limit: t.limit,
              ...(others > 0 && i === written.length - 1 ? { others } : {}),
            },
            { goalId: this.goalId },
          );
        });
      },
    };
    // A stdio server's last container goes before its next one is started (same name).
    const gone = Promise.all([this.gone.get(server.name), given?.opening.catch(() => undefined)]);
    const unwanted = new AbortController();
    const opening: Promise<McpConnection> = gone
      .then(() => McpConnection.open(server, deps, unwanted.signal))
      .then(
        async (conn) => {
          if (this.closed) {
            // The goal ended while this was opening: nobody else would ever close it.
            await conn.close();
            throw this.goalEnded(server.name);
          }
          this.unreachable.delete(server.name);
          this.open.set(server.name, conn);
          return conn;
        },
        (e: unknown) => {
          // Not kept: the next need after the backoff tries again.
          if (this.conns.get(server.name) === opening) this.conns.delete(server.name);
          // Given up as no call waited for it any more: no failure of the server's.
          if (this.closed || unwanted.signal.aborted) throw e;
          const reason = inert(errorMessage(e)).slice(0, 1000);
          const count = (this.unreachable.get(server.name)?.count ?? 0) + 1;
          const wait = Math.min(BACKOFF_MS * 2 ** (count - 1), BACKOFF_MAX_MS);
          this.unreachable.set(server.name, { count, reason, until: Date.now() + wait });
          this.deps.audit.record("mcp.unreachable", { server: server.name, reason }, { goalId: this.goalId });
          throw e;
        },
      );
    this.conns.set(server.name, opening);
    const waiters: OpenWaiters = { opening, unwanted, waiting: new Set(), forGood: false };
    this.opening.set(server.name, waiters);
    // Settles every waiter at once: a waiter that left is no reaction kept on the open.
    void opening.then(
      (conn) => this.opened(server.name, waiters, (w) => w.resolve(conn)),
      (e: unknown) => this.opened(server.name, waiters, (w) => w.reject(e)),
    );
    return this.waitFor(server.name, opening, signal);
  }

  /** Wait for the open under way (or what `held` is), or until `signal` aborts. */
  private waitFor(
    server: string,
    held: Promise<McpConnection>,
    signal?: AbortSignal,
  ): Promise<McpConnection> {
    const open = this.opening.get(server);
    if (!open || open.opening !== held) return held;
    if (!signal) {
      open.forGood = true; // a caller that cannot cancel: the open is wanted to its end
      return held;
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<McpConnection>((resolve, reject) => {
      const waiter: OpenWaiter = {
        resolve: (c) => {
          signal.removeEventListener("abort", onAbort);
          resolve(c);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        open.waiting.delete(waiter);
        if (open.waiting.size === 0 && !open.forGood) open.unwanted.abort(signal.reason);
        reject(signal.reason);
      };
      open.waiting.add(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private opened(server: string, open: OpenWaiters, settle: (w: OpenWaiter) => void): void {
    if (this.opening.get(server) === open) this.opening.delete(server);
    for (const w of open.waiting) settle(w);
    open.waiting.clear();
  }

  /** How many calls with a signal wait for the goal's connection to `server` to open. */
  waiting(server: string): number {
    return this.opening.get(server)?.waiting.size ?? 0;
  }

  /** The goal ended: close every connection. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.conns.values()];
    this.conns.clear();
    this.open.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => undefined)));
  }

  private goalEnded(server: string): AidoError {
    return new AidoError(
      ErrorCode.sandboxUnavailable,
      `goal ${this.goalId} ended; its connection to MCP server ${server} is closed`,
      { server },
    );
  }

  /** A connection ended on its own: dropped (the next need reconnects) and audited. */
  private ended(server: string, conn: McpConnection, reason: string, gone: Promise<void>): void {
    this.gone.set(server, gone);
    // One that never opened is the open's failure (mcp.unreachable), not a disconnection.
    if (this.open.get(server) !== conn) return;
    this.open.delete(server);
    this.conns.delete(server);
    const count = (this.ends.get(server)?.count ?? 0) + 1;
    this.ends.set(server, { count, reason });
    this.deps.audit.record(
      "mcp.disconnected",
      { server, reason, reconnects_left: Math.max(0, MAX_RECONNECTS - count + 1) },
      { goalId: this.goalId },
    );
  }
}
