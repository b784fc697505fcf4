// daemon/principal.ts — who a request speaks for, as the daemon knows it rather than as the
// client says. Every client of the socket is the operator's process, but an MCP session's
// connection carries what the MCP client's model asks (`aido mcp serve` opens its session
// with session.open on the connection it then keeps for the session's life, and sends the
// session's orchestrator calls over it). A connection that opened a session speaks for that
// session from then on, even after the session closed: it never becomes the user's.
// The persistent intent uses it (intent/intents.ts): a session may not replace or clear
// the objective the user set on the project folder, nor lift its budget. A `by` a client
// writes is a label; this is what the rule reads.

import type { RequestClient } from "./methods.js";

const sessionOfConnection = new WeakMap<RequestClient, string>();

/** session.open on `conn`: its requests speak for that session (the latest one it opened). */
export function bindSession(conn: RequestClient, sessionId: string): void {
  sessionOfConnection.set(conn, sessionId);
}

/** The MCP session a request's connection opened, or undefined: the user (CLI, scripts, dashboard). */
export function sessionOf(conn: RequestClient): string | undefined {
  return sessionOfConnection.get(conn);
}
