// daemon/ui/connections.ts — which TCP connections the dashboard keeps open. Every local
// user can reach 127.0.0.1, not only the daemon's, so a stranger could open sockets and
// leave them idle: under one shared cap they would lock the user out of the dashboard,
// and without a cap they would use up the daemon's file descriptors. A connection is
// "signed in" once one of its requests has shown the credential (guard.ts); until then it
// is a stranger's. Strangers get their own small pool: each is closed when it has not
// signed in within SIGN_IN_WINDOW_MS, and when the pool is full a new connection pushes
// out the oldest stranger rather than being refused, so idle sockets cannot keep a
// browser that signs in at once from getting through. Signed-in connections have a larger
// cap that only holders of the credential can fill. A rotation of the token signs them all
// out: each has SIGN_IN_WINDOW_MS to show the new credential, or it is closed. Closed strangers are reported (the
// server audits them as ui.denied reason idle; a request refused at the signed-in cap as
// reason busy).

import type { Socket } from "node:net";

/** Connections not signed in yet, at once. */
export const MAX_STRANGERS = 16;
/** Signed-in connections at once (a browser's tabs use a few each, an event stream one). */
export const MAX_SIGNED_IN = 64;
/** A new connection must have shown the credential by then, or it is closed. */
export const SIGN_IN_WINDOW_MS = 3_000;

export class ConnectionPool {
  /** Strangers in the order they came (the first is the oldest), with their deadline timer. */
  private readonly strangers = new Map<Socket, NodeJS.Timeout>();
  private readonly signedIn = new Set<Socket>();
  /** Signed in before the token was rotated, with the deadline to show the new one. */
  private readonly signedOut = new Map<Socket, NodeJS.Timeout>();

  /** `closed` is told of each stranger closed for not signing in in time or pushed out. */
  constructor(private readonly closed: (socket: Socket) => void) {}

  /** A new connection: a stranger until signIn(); the oldest stranger goes when the pool is full. */
  admit(socket: Socket): void {
    if (this.strangers.size >= MAX_STRANGERS) {
      const oldest = this.strangers.keys().next().value;
      if (oldest !== undefined) this.close(oldest);
    }
    const deadline = setTimeout(() => this.close(socket), SIGN_IN_WINDOW_MS);
    deadline.unref();
    this.strangers.set(socket, deadline);
    socket.once("close", () => {
      clearTimeout(this.strangers.get(socket));
      this.strangers.delete(socket);
      this.signedIn.delete(socket);
      clearTimeout(this.signedOut.get(socket));
      this.signedOut.delete(socket);
    });
  }

  /**
   * A request on `socket` showed the credential. False when the signed-in cap is full:
   * the caller answers 503 and the connection closes.
   */
  signIn(socket: Socket): boolean {
    if (this.signedIn.has(socket)) return true;
    const deadline = this.strangers.get(socket) ?? this.signedOut.get(socket);
    if (deadline === undefined) return false; // closed meanwhile
    if (this.signedIn.size >= MAX_SIGNED_IN) return false;
    clearTimeout(deadline);
    this.strangers.delete(socket);
    this.signedOut.delete(socket);
    this.signedIn.add(socket);
    return true;
  }

  /**
   * The credential changed (`aido ui --rotate`): every signed-in connection is signed out,
   * counted no more against the cap, and closed unless one of its requests shows the new
   * credential within SIGN_IN_WINDOW_MS. A connection stays signed in for its life, so those
   * of a stolen cookie would otherwise keep the cap full against the user's new link, each
   * refused request keeping it alive. (Not closed at once: a client may be sending on one
   * of them just then; a browser's reload would fail rather than be refused.)
   */
  signOutAll(): void {
    for (const socket of this.signedIn) {
      const deadline = setTimeout(() => {
        this.signedOut.delete(socket);
        socket.destroy();
      }, SIGN_IN_WINDOW_MS);
      deadline.unref();
      this.signedOut.set(socket, deadline);
    }
    this.signedIn.clear();
  }

  private close(socket: Socket): void {
    clearTimeout(this.strangers.get(socket));
    this.strangers.delete(socket);
    this.closed(socket);
    socket.destroy();
  }
}
