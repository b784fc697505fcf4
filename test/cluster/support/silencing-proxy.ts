// test/cluster/support/silencing-proxy.ts — a TCP proxy in front of a real redis-server whose
// silence() makes the connections open through it silent (what they send is read and dropped,
// nothing is answered, no reset: a firewall that forgot them), while new connections go
// through. For the tests of a node's connections gone silent.

import { createServer, Socket } from "node:net";

/**
 * A proxy to `redisUrl` whose silence() makes every connection open through it silent (until
 * reset(), which closes them: the test's cleanup).
 */
export async function silencingProxy(redisUrl: string) {
  const target = Number(new URL(redisUrl).port);
  const open = new Set<{ client: Socket; upstream: Socket }>();
  const silent = new Set<Socket>();
  /** The node's ends of the silenced connections, until the node closes them. */
  const silentClients = new Set<Socket>();
  const srv = createServer((client) => {
    const upstream = new Socket();
    const pair = { client, upstream };
    open.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(pair);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    upstream.connect(target, "127.0.0.1", () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  return {
    url: `redis://127.0.0.1:${(srv.address() as { port: number }).port}`,
    silence() {
      for (const { client, upstream } of open) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.removeAllListeners("data");
        client.on("data", () => {}).resume(); // read and dropped: no reset, no answer (unpipe paused it)
        silent.add(client).add(upstream);
        silentClients.add(client);
        client.on("close", () => silentClients.delete(client));
      }
      open.clear();
    },
    /** How many of the connections silenced are still open (neither end closed them). */
    silentOpen(): number {
      return silentClients.size;
    },
    reset() {
      for (const s of silent) s.destroy();
      silent.clear();
    },
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}
