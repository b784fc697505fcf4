// cluster/redis-greeting.ts — what Redis says to a connection before it is asked anything.
// A Redis at its `maxclients` answers a new connection "-ERR max number of clients reached"
// and closes it at once; the client's first write then fails (EPIPE, a reset) and the line
// is lost with the socket, so the node's commands failed only with "Stream isn't writeable",
// which says nothing of why. A connection dropped after it was made and before it was ready
// is asked here once more, writing nothing: Redis's greeting, if it has one, is its refusal.

import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { Redis } from "ioredis";
import { ReplyError } from "ioredis";

/** How long a greeting is waited for: Redis says it on accepting, or never. */
const GREETING_MS = 500;

/** Redis's error line to a new connection of `redis`'s, writing nothing; undefined if none. */
export function redisGreeting(redis: Redis): Promise<Error | undefined> {
  const o = redis.options;
  const at = { host: o.host ?? "localhost", port: o.port ?? 6379 };
  return new Promise((resolve) => {
    let socket: Socket;
    try {
      socket = o.path
        ? netConnect({ path: o.path })
        : o.tls
          ? tlsConnect({ ...o.tls, ...at })
          : netConnect(at);
    } catch {
      resolve(undefined);
      return;
    }
    let said = "";
    const done = (e: Error | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(e);
    };
    const timer = setTimeout(() => done(undefined), GREETING_MS);
    socket.on("data", (d: Buffer) => {
      said += d.toString("utf8");
      const line = /^-(.{1,300}?)\r\n/.exec(said);
      if (line?.[1]) done(new ReplyError(line[1]));
      else if (said.length > 300 || !said.startsWith("-")) done(undefined);
    });
    socket.on("error", () => done(undefined));
    socket.on("close", () => done(undefined));
  });
}
