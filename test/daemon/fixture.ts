// test/daemon/fixture.ts — a real agentd (in process) on a temp AIDO_HOME, its real
// socket, the scripted provider server behind the real SDK clients, and clients that
// speak to it over the socket. Suites that never touch a container run with the agent
// harness's `noContainers` backend. useDaemonPerTest() is the set-up most suites share:
// one provider server for the file, a daemon started by the test that needs it and
// closed after it.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { AidoClient, type AidoRpcError } from "../../src/client/client.js";
import type { Config } from "../../src/config.js";
import { type Daemon, startDaemon } from "../../src/daemon/server.js";
import type { RuntimeOptions } from "../../src/kernel/runtime.js";
import { MODEL, noContainers, providerEnv } from "../agent/harness.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import type { ProviderServer } from "../support/provider-server.js";
import { useProviderServer } from "../support/provider-suite.js";

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

export interface DaemonPerTest {
  /** The file's scripted provider server (scripts and requests are reset after each test). */
  readonly server: ProviderServer;
  /** The daemon this test started; start() first. */
  readonly fx: DaemonFixture;
  /** Start this test's daemon on a fresh home; it is closed after the test. */
  start(opts?: FixtureOptions): Promise<DaemonFixture>;
}

/**
 * One provider server for the test file and a daemon per test. After each test:
 * `beforeClose` (while the daemon still runs), the daemon closed and its home removed,
 * `afterEach` (e.g. the test's scratch folders), then the server's scripts forgotten.
 */
export function useDaemonPerTest(
  hooks: { beforeClose?(fx: DaemonFixture | undefined): unknown; afterEach?(): unknown } = {},
): DaemonPerTest {
  let server: ProviderServer | undefined;
  let fx: DaemonFixture | undefined;
  useProviderServer({
    started: (s) => {
      server = s;
    },
    afterEach: async () => {
      await hooks.beforeClose?.(fx);
      await fx?.close();
      fx = undefined;
      await hooks.afterEach?.();
    },
  });
  return {
    get server() {
      if (!server) throw new Error("the provider server starts before the suite's first test");
      return server;
    },
    get fx() {
      if (!fx) throw new Error("this test started no daemon (call start() first)");
      return fx;
    },
    async start(opts = {}) {
      if (!server) throw new Error("the provider server starts before the suite's first test");
      fx = await startFixture(server, opts);
      return fx;
    },
  };
}

export interface InputsDaemon extends DaemonPerTest {
  /** This test's scratch folder outside AIDO_HOME, for the trees it hands in; open() first. */
  readonly outside: string;
  /** A scratch folder, then this test's daemon with these input limits; returns a client. */
  open(limits: { files: number; mb: number; goals: number }): Promise<AidoClient>;
}

/**
 * goal.submit `inputs` suites: a daemon per test with the input limits (sandbox.inputs_max_files,
 * inputs_max_mb) and goal slots the test chooses, and a scratch folder named `prefix…`
 * for the host trees it submits, removed after the test.
 */
export function useInputsDaemon(prefix: string): InputsDaemon {
  let outside: string | undefined;
  const suite = useDaemonPerTest({
    afterEach: () => {
      if (outside) rmSync(outside, { recursive: true, force: true });
      outside = undefined;
    },
  });
  return {
    get server() {
      return suite.server;
    },
    get fx() {
      return suite.fx;
    },
    start: (opts) => suite.start(opts),
    get outside() {
      if (!outside) throw new Error("this test opened no daemon (call open() first)");
      return outside;
    },
    async open(limits) {
      outside = mkdtempSync(join(tmpdir(), prefix));
      const fx = await suite.start({
        config: (c) => {
          c.sandbox.inputsMaxFiles = limits.files;
          c.sandbox.inputsMaxMb = limits.mb;
          c.limits.maxConcurrentGoals = limits.goals;
        },
      });
      return fx.client();
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
