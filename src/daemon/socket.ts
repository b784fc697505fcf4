// daemon/socket.ts — claiming the socket path safely. The socket is created under a
// umask of 0177, so it is 0600 from the moment it exists (a chmod afterwards would leave
// a window where another local user could connect). A socket file already at the path
// is probed: if a daemon answers, we refuse to start (two daemons on one AIDO_HOME would
// both run the queue); if nothing answers, it is a stale leftover of a crash and is
// removed. Something at the path that is not a socket is never removed.

import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";

const PROBE_TIMEOUT_MS = 1000;

/** Does something accept connections on `socketPath`? */
export function socketAnswers(socketPath: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(socketPath);
    const done = (v: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    // A peer that accepts but hangs is still a live daemon (busy), not a stale file.
    const timer = setTimeout(() => done(true), timeoutMs);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/** Remove a stale socket at `socketPath`, or refuse when a daemon is live there. */
export async function clearStaleSocket(socketPath: string): Promise<"absent" | "removed"> {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(socketPath);
  } catch {
    return "absent";
  }
  if (!st.isSocket()) {
    throw new AidoError(
      ErrorCode.usage,
      `${socketPath} exists and is not a socket; refusing to replace it (move it away and start again)`,
      { socket: socketPath },
    );
  }
  if (await socketAnswers(socketPath)) {
    throw new AidoError(ErrorCode.usage, `another Aido daemon is already running on ${socketPath}`, {
      socket: socketPath,
    });
  }
  unlinkSync(socketPath);
  return "removed";
}

/** Listen on `socketPath` (mode 0600 from creation); `onConnection` gets each client. */
export async function listenPrivate(
  socketPath: string,
  onConnection: (sock: Socket) => void,
): Promise<Server> {
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
  await clearStaleSocket(socketPath);
  const server = createServer({ allowHalfOpen: false }, onConnection);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(
        e.code === "EADDRINUSE"
          ? new AidoError(ErrorCode.usage, `another Aido daemon is already running on ${socketPath}`, {
              socket: socketPath,
            })
          : new AidoError(ErrorCode.internal, `cannot listen on ${socketPath}: ${e.message}`, {
              socket: socketPath,
            }),
      );
    };
    server.once("error", onError);
    // bind(2) happens synchronously inside listen(), so the umask covers exactly the
    // socket's creation and is restored before any other code runs.
    const previous = process.umask(0o177);
    try {
      server.listen(socketPath, () => {
        server.off("error", onError);
        resolve();
      });
    } finally {
      process.umask(previous);
    }
  });
  chmodSync(socketPath, 0o600);
  return server;
}
