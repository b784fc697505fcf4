// test/support/engine-proxy.ts — the real Docker engine behind a socket of the test's own that
// can refuse chosen requests with a 500 (an engine that refuses, a daemon restarting) or hold
// them a while (an engine slow to answer): faults no request to a healthy engine shows.

import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";

export interface EngineProxy {
  docker: Docker;
  close: () => Promise<void>;
}

/** What the proxy does with a request: see engineProxy. */
export type EngineAnswer =
  | "refuse"
  | number
  | { refuseAfterMs: number }
  | { holdUntil: Promise<unknown> }
  | undefined;

/**
 * `answer` sees each request's first line ("POST /v1.41/containers/x/unpause"): "refuse" answers
 * it with a 500, a number holds it that many ms, `{ refuseAfterMs }` holds it that long and then
 * refuses it, `{ holdUntil }` holds it until that settles (an engine that never answers, for the
 * test's length), undefined passes it on. Requests keep their order on a connection: a held one
 * holds what follows it.
 */
export async function engineProxy(answer: (line: string) => EngineAnswer): Promise<EngineProxy> {
  const dir = mkdtempSync(join(tmpdir(), "aido-engine-"));
  const socket = join(dir, "docker.sock");
  const server = createServer((client) => {
    const upstream = connect("/var/run/docker.sock");
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    upstream.pipe(client);
    let queue = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      const line = /^[A-Z]+ \S+/.exec(chunk.toString("latin1"))?.[0];
      const what = line === undefined ? undefined : answer(line);
      queue = queue.then(async () => {
        if (typeof what === "object" && "holdUntil" in what) await what.holdUntil.catch(() => {});
        else if (typeof what === "object") await new Promise((r) => setTimeout(r, what.refuseAfterMs));
        if (what === "refuse" || (typeof what === "object" && "refuseAfterMs" in what)) {
          const body = JSON.stringify({ message: `injected refusal of ${line}` });
          client.end(
            `HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          );
          upstream.destroy();
          return;
        }
        if (typeof what === "number") await new Promise((r) => setTimeout(r, what));
        upstream.write(chunk);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    docker: new Docker({ socketPath: socket }),
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
