// test/agent/harness.ts — a Runtime wired to the scripted provider server (real SDK
// clients over real HTTP), in a temp AIDO_HOME. Suites that never touch a container pass
// `noContainers` as the backend: any tool that reaches the sandbox fails loudly.

import type { Env } from "../../src/config.js";
import { AidoError, ErrorCode } from "../../src/errors.js";
import { Runtime, type RuntimeOptions } from "../../src/kernel/runtime.js";
import type { SandboxBackend } from "../../src/sandbox/backend.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import type { ProviderServer } from "../support/provider-server.js";
import { useProviderServer } from "../support/provider-suite.js";

export const MODEL = "anthropic/claude-test";

export const noContainers: SandboxBackend = {
  acquire: async (goalId) => {
    throw new AidoError(ErrorCode.sandboxUnavailable, `this suite runs without containers (goal ${goalId})`);
  },
  stop: async () => {},
  remove: async () => {},
  // No container ever runs: nothing to freeze.
  pause: async () => "paused",
  unpause: async () => {},
  startMcpServer: async (spec) => {
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      `this suite runs without containers (goal ${spec.goalId})`,
    );
  },
  reattach: async () => [],
  gc: async () => ({ removedContainers: [], removedFolders: [], failedFolders: [], failedContainers: [] }),
  close: async () => {},
};

export interface Harness {
  home: TempHome;
  rt: Runtime;
  reopen(opts?: RuntimeOptions): Promise<Runtime>;
  close(): Promise<void>;
}

export function providerEnv(server: ProviderServer, extra: Env = {}): Env {
  return {
    ANTHROPIC_API_KEY: "sk-ant-test",
    ANTHROPIC_BASE_URL: server.url,
    OPENAI_API_KEY: "sk-openai-test",
    OPENAI_BASE_URL: server.openaiURL,
    AIDO_MODEL: MODEL,
    ...extra,
  };
}

export async function openHarness(
  server: ProviderServer,
  opts: RuntimeOptions & {
    env?: Env;
    config?: (c: TempHome["config"]) => void;
    /** The backend, made from the home's config (before `backend`, which it replaces). */
    backendOf?: (c: TempHome["config"]) => SandboxBackend;
  } = {},
): Promise<Harness> {
  const home = makeTempHome(providerEnv(server, opts.env));
  opts.config?.(home.config);
  const { backendOf, ...rest } = opts;
  const rtOpts: RuntimeOptions = {
    backend: noContainers,
    llm: { backoff: { baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 50 } },
    ...rest,
    ...(backendOf ? { backend: backendOf(home.config) } : {}),
  };
  let rt = await Runtime.open(home.config, rtOpts);
  const h: Harness = {
    home,
    get rt() {
      return rt;
    },
    async reopen(more = {}) {
      await rt.close();
      rt = await Runtime.open(home.config, { ...rtOpts, ...more });
      return rt;
    },
    async close() {
      await rt.close();
      home.cleanup();
    },
  };
  return h;
}

/**
 * The file's provider server (test/support/provider-suite.ts) and its tests' harness: the one
 * `current()` returns (the running test's) is closed after each test, before the provider
 * forgets its scripts.
 */
export function useHarnessSuite(
  started: (server: ProviderServer) => void,
  current: () => Harness | undefined,
): void {
  useProviderServer({ started, afterEach: () => current()?.close() });
}
