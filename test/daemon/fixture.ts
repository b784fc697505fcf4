// test/daemon/fixture.ts — a real agentd (in process) on a temp AIDO_HOME, its real
// socket, the scripted provider server behind the real SDK clients, and clients that
// speak to it over the socket. Suites that never touch a container run with the agent
// harness's `noContainers` backend.

import { Writable } from "node:stream";
import { AidoClient, type AidoRpcError } from "../../src/client/client.js";
import type { Config } from "../../src/config.js";
import { type Daemon, startDaemon } from "../../src/daemon/server.js";
import type { RuntimeOptions } from "../../src/kernel/runtime.js";
import { MODEL, noContainers, providerEnv } from "../agent/harness.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import type { ProviderServer } from "../support/provider-server.js";

export { MODEL };

export interface DaemonFixture {
  home: TempHome;
  daemon: Daemon;
  /** Every line the daemon wrote to its event log (its stdout in production). */
  eventLog: string[];
  /** Diagnostics it logged. */
  logs: string[];
  client(): Promise<AidoClient>;
  /** Stop the daemon (as SIGTERM would) and start a new one on the same home. */
  restart(): Promise<Daemon>;
  close(): Promise<void>;
}

export interface FixtureOptions {
  runtime?: RuntimeOptions;
  config?: (c: Config) => void;
  env?: Record<string, string>;
}

export async function startFixture(
  server: ProviderServer,
  opts: FixtureOptions = {},
): Promise<DaemonFixture> {
  const home = makeTempHome(providerEnv(server, opts.env ?? {}));
  opts.config?.(home.config);
  const eventLog: string[] = [];
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      eventLog.push(...String(chunk).split("\n").filter(Boolean));
      cb();
    },
  });
  const runtime: RuntimeOptions = {
    backend: noContainers,
    llm: { backoff: { baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 50 } },
    ...(opts.runtime ?? {}),
  };
  const start = () => startDaemon(home.config, { eventLog: sink, log: (m) => logs.push(m), runtime });
  let daemon = await start();
  const clients: AidoClient[] = [];
  return {
    home,
    get daemon() {
      return daemon;
    },
    eventLog,
    logs,
    async client() {
      const c = await AidoClient.connect(home.config.socketPath);
      clients.push(c);
      return c;
    },
    async restart() {
      await daemon.close();
      daemon = await start();
      return daemon;
    },
    async close() {
      for (const c of clients) c.close();
      await daemon.close();
      home.cleanup();
    },
  };
}

/** A manifest whose agent answers from the script matched by `manifest "<name>"`. */
export function manifest(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, model: MODEL, system_prompt: `You are ${name}, under test.`, ...extra };
}

/** The error a call the daemon must refuse ends with; a call that succeeds fails the test. */
export async function rpcError(p: Promise<unknown>): Promise<AidoRpcError> {
  return p.then(
    () => {
      throw new Error("expected the daemon to refuse");
    },
    (e: AidoRpcError) => e,
  );
}
