// test/daemon/raw.ts — a raw socket to the daemon, for speaking broken protocol on purpose
// and for seeing exactly which lines come back (AidoClient would hide both).

import { createConnection, type Socket } from "node:net";

export interface RawConnection {
  sock: Socket;
  lines: string[];
  send(text: string | Buffer): void;
  /** The next line (parsed), waiting up to timeoutMs. */
  next(timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves when the daemon closes the connection. */
  ended: Promise<void>;
  close(): void;
}

export function rawConnect(socketPath: string): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    const lines: string[] = [];
    const waiters: (() => void)[] = [];
    let read = 0;
    let buf = "";
    let endedResolve: () => void = () => {};
    const ended = new Promise<void>((r) => {
      endedResolve = r;
    });
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      buf += chunk;
      let nl = buf.indexOf("\n");
      while (nl !== -1) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
      }
      for (const w of waiters.splice(0)) w();
    });
    sock.on("close", () => {
      endedResolve();
      for (const w of waiters.splice(0)) w();
    });
    sock.once("error", reject);
    sock.once("connect", () => {
      resolve({
        sock,
        lines,
        ended,
        send: (text) => sock.write(text),
        async next(timeoutMs = 10_000) {
          const deadline = Date.now() + timeoutMs;
          while (read >= lines.length) {
            if (sock.destroyed || Date.now() > deadline)
              throw new Error(`no line from the daemon (got ${lines.length})`);
            await new Promise<void>((r) => {
              const t = setTimeout(r, Math.max(0, deadline - Date.now()));
              waiters.push(() => {
                clearTimeout(t);
                r();
              });
            });
          }
          return JSON.parse(lines[read++] as string) as Record<string, unknown>;
        },
        close: () => sock.destroy(),
      });
    });
  });
}
