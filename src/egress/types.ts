// egress/types.ts — the contract between the egress proxy (egress/proxy.ts: HTTP CONNECT
// and plain HTTP, DNS, address and SNI checks, byte counts) and what hosts it: the daemon
// (grants, policy, approvals, audit, events, per goal) or `aido run` for a human sandbox
// (a fixed host list, the evidence folder). The proxy decides nothing by itself about who
// may reach what; it asks its host through EgressPolicy, and reports every connection,
// allowed or refused, through record().
//
// How bytes reach the proxy: a container that may use the network sits on an internal
// Docker network of its own whose only other member is a relay container. The relay
// listens on TCP ports EGRESS_BASE_PORT + slot (one port per caller: the exec Landlock
// domain of an agent allows a TCP connect to its own port only) and forwards each
// connection to the Unix socket EGRESS_SOCKET in a folder the daemon shares with it,
// after one header line: `${RELAY_HEADER} <port>\n`. The daemon's side reads that line,
// maps the port to its caller and hands the rest of the stream to the proxy.

import type { Duplex } from "node:stream";

/** The relay's first port; caller slot n listens on EGRESS_BASE_PORT + n. */
export const EGRESS_BASE_PORT = 3128;
/** Callers (agents, servers) one relay serves: ports EGRESS_BASE_PORT .. + EGRESS_SLOTS - 1. */
export const EGRESS_SLOTS = 256;
/** The Unix socket's name in the shared folder. */
export const EGRESS_SOCKET = "proxy.sock";
/** The relay's header line: `AIDO-EGRESS <port>\n`, then the caller's bytes. */
export const RELAY_HEADER = "AIDO-EGRESS";

/** Who a connection speaks for: known from the relay port, confirmed by its credentials. */
export interface EgressCaller {
  /** The goal (or human sandbox id) whose network this is. */
  goalId: string;
  /** The agent (or "sandbox" for a human sandbox, or mcp:<server> for a server container). */
  agentId: string;
}

/** One host:port a caller wants, as network grants spell hosts (lower case, IPv6 in []). */
export interface EgressTarget {
  host: string;
  port: number;
  /**
   * The host is an address to be named exactly by a grant: an IP literal the client asked
   * for, or an inward address (private, loopback, link-local, metadata) a name resolved to.
   * `*` and `*.domain` grants never allow it.
   */
  literal: boolean;
}

/**
 * Where a connection was refused: the request itself (form, size, time), the proxy
 * credentials, the goal's connection limit, the host's policy (capability: no grant;
 * policy: a deny rule; approval: a human said no or did not answer), resolving the name, an
 * address it resolved to, the upstream connection, the TLS ClientHello (SNI), or the
 * record of its opening (record("open") threw: the audit log could not take it).
 */
export type EgressStage =
  | "request"
  | "auth"
  | "limit"
  | "capability"
  | "policy"
  | "approval"
  | "resolve"
  | "address"
  | "upstream"
  | "tls"
  | "audit"
  /** A connection on a relay port no caller holds (listener.ts): no request was read. */
  | "relay"
  /**
   * Never a verdict: the record summing a caller's refusals past those written in a second
   * (denial-throttle.ts).
   */
  | "flood";

export type EgressVerdict = { allow: true } | { allow: false; reason: string; stage?: EgressStage };

/** The call a connection's credentials named when it authenticated (EgressPolicy.requestOf). */
export interface EgressCall {
  requestId: string;
  /**
   * Its credentials still name it: false once the call ended (a connection may wait for its
   * turn past that: then it asks as the agent, naming no call).
   */
  running(): boolean;
  /** Aborts, with the cancel's reason, when the call is cancelled (before its command is stopped). */
  cancelled?: AbortSignal;
}

/** What the proxy asks of its host. */
export interface EgressPolicy {
  /**
   * Are these proxy credentials (Proxy-Authorization: Basic user:password) the caller's?
   * A connection whose credentials belong to another caller, or none, is refused.
   */
  authenticate(caller: EgressCaller, user: string, password: string): boolean;
  /**
   * The socket request (the daemon's request id) of the call whose own credentials these
   * are, while it runs (egress/callers.ts openCall); undefined for the caller's own
   * credentials, a call that ended, or a host with no calls. Asked after authenticate().
   */
  requestOf?(caller: EgressCaller, password: string): string | undefined;
  /**
   * Aborts, with the cancel's reason, when the call these credentials name was cancelled
   * (egress/callers.ts CallCredentials.cancel); undefined where requestOf names no call.
   */
  cancelOf?(caller: EgressCaller, password: string): AbortSignal | undefined;
  /**
   * How many calls of the caller run now with credentials of their own (egress/callers.ts
   * openCall): a call alone may hold all of the caller's connections, one among others its
   * fair share (call-shares.ts callShare). Absent: taken as more than one.
   */
  callsOf?(caller: EgressCaller): number;
  /**
   * Are these a call's own credentials (its key and secret) whose call ended? They still
   * authenticate, naming no call (a process the call left behind); the proxy counts all
   * such connections of a caller together, within a share (proxy.ts). Asked after
   * authenticate(). Absent: never.
   */
  endedCall?(caller: EgressCaller, password: string): boolean;
  /**
   * May the caller reach the target? May wait (a human's approval); the proxy gives up on
   * a client that leaves meanwhile. The reason of a refusal is what the client and the
   * audit see. `call` (requestOf): a human asked is asked on behalf of that call, if it
   * still runs when asked.
   */
  decide(
    caller: EgressCaller,
    target: EgressTarget,
    signal: AbortSignal,
    call?: EgressCall,
  ): Promise<EgressVerdict>;
  /**
   * Each connection's record, in order: "open" before the first byte goes upstream (an
   * exception here refuses the connection: audit fails closed), then "close" with the
   * bytes each way; or "denied" alone, with the reason.
   */
  record(entry: EgressRecord): void;
}

export interface EgressRecord {
  phase: "open" | "close" | "denied";
  caller: EgressCaller;
  /**
   * What the client asked for (CONNECT authority or the absolute URL's host:port). "" and 0
   * when the request never parsed (oversized or malformed headers, a client too slow to send them).
   */
  host: string;
  port: number;
  /** "CONNECT", or the plain HTTP method. */
  method: string;
  /** The address the proxy connected to (open, close). */
  address?: string;
  /** Why it was refused (denied), or why it ended early (close). */
  reason?: string;
  /** Client to upstream, and back (close). */
  bytesUp?: number;
  bytesDown?: number;
  /** Which check refused it (denied). */
  stage?: EgressStage;
  /** From the first byte upstream to the end (close). */
  durationMs?: number;
  /**
   * One number per connection (open and close share it), unique within one proxy, so a
   * reader can pair them.
   */
  connection?: number;
}

/** The proxy as its hosts use it. */
export interface EgressProxy {
  /** Serve one client stream (after the relay header) for `caller`. */
  handle(stream: Duplex, caller: EgressCaller): void;
  /** Stop: refuse new streams, end the open ones. */
  close(): Promise<void>;
}
