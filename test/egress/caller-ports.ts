// test/egress/caller-ports.ts — loopback ports that hand each connection to the egress proxy as
// one caller (what a sandbox's own proxy port does), for tests that drive EgressProxy.handle()
// directly. Every socket they take is kept, so a test can cut them and afterAll can close all.

import { createServer, type Server, type Socket } from "node:net";
import type { EgressCaller, EgressProxy } from "../../src/egress/types.js";

export class CallerPorts {
  /** Every connection open now, taken by a port or added by the test. */
  readonly sockets = new Set<Socket>();
  private readonly listeners: Server[] = [];

  /** `proxy` is read at each connection: the file may start it after making its ports. */
  constructor(private readonly proxy: () => EgressProxy) {}

  /** A new port on 127.0.0.1 whose connections are `caller`'s. */
  listen(caller: EgressCaller): Promise<number> {
    const srv = createServer((socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      this.proxy().handle(socket, caller);
    });
    this.listeners.push(srv);
    return new Promise((resolve) =>
      srv.listen(0, "127.0.0.1", () => resolve((srv.address() as { port: number }).port)),
    );
  }

  /** Cuts every connection and closes every port. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.listeners.map((l) => new Promise((r) => l.close(r))));
  }
}
