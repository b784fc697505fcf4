// test/egress/caller-ports.ts — loopback ports that hand each connection to the egress proxy as
// one caller (what a sandbox's own proxy port does), for tests that drive EgressProxy.handle()
// directly. Every socket they take is kept, so a test can cut them and afterAll can close all.
// useCallerBench: the bench those files open around them (provider, upstreams, daemon, proxy).

import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll } from "vitest";
import { EgressCallers } from "../../src/egress/callers.js";
import type { EgressCaller, EgressProxy } from "../../src/egress/types.js";
import type { TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import {
  type EgressBench,
  openEgressBench,
  startUpstreams,
  UPSTREAM_ADDRESS,
  type Upstreams,
} from "./fixture.js";

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

/** What a file of call-credential cases drives: see useCallerBench. */
export interface CallerBench {
  /** Who each connection's credentials are (the daemon's own, built bare here). */
  readonly callers: EgressCallers;
  readonly ports: CallerPorts;
  /** Set before the file's first test. */
  bench: EgressBench;
  up: Upstreams;
  proxy: EgressProxy;
  /** A standalone agent allowed the upstream address, and a port whose connections are its own. */
  agentWithPort(name: string): Promise<{ id: string; caller: EgressCaller; port: number }>;
}

/**
 * The file's provider, upstreams and egress bench (its config tuned by `tune`), opened before
 * its first test and closed after its last, with a proxy that asks `callers` which call a
 * connection's credentials name. `shares`: the proxy also counts each call's share of the
 * agent's connections (callsOf, endedCall), as the daemon's does.
 */
export function useCallerBench(
  tune: (c: TempHome["config"]) => void = () => {},
  opts: { shares?: boolean } = {},
): CallerBench {
  const callers = new EgressCallers();
  let server: ProviderServer | undefined;
  const t = {
    callers,
    ports: new CallerPorts(() => t.proxy),
    async agentWithPort(name: string) {
      const a = t.bench.agent(name, [`network: ${UPSTREAM_ADDRESS}:*`]);
      const caller = { goalId: a.goalId, agentId: a.id };
      return { id: a.id, caller, port: await t.ports.listen(caller) };
    },
  } as CallerBench;
  beforeAll(async () => {
    server = await startProviderServer();
    t.up = await startUpstreams();
    t.bench = await openEgressBench(server, (c) => {
      c.policy.confirm = ["network: *"];
      tune(c);
    });
    t.proxy = t.bench.rt.egress.proxy((c, u, p) => callers.authenticate(c, u, p), {
      requestOf: (c, p) => callers.requestOf(c, p),
      ...(opts.shares
        ? { callsOf: (c) => callers.callsOf(c), endedCall: (c, p) => callers.endedCall(c, p) }
        : {}),
    });
  }, 60_000);
  afterAll(async () => {
    for (const s of t.ports.sockets) s.destroy();
    await t.proxy?.close();
    await t.ports.close();
    await t.bench?.close();
    await t.up?.close();
    await server?.close();
  });
  return t;
}
