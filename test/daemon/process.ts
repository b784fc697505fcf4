// test/daemon/process.ts — agentd as a real child process (`main.ts --foreground`, or the
// detached `aido daemon start`), for suites that kill it, signal it or start it under a
// chosen umask. Every child started here is killed by killChildren() (call it in afterEach).

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AidoClient } from "../../src/client/client.js";
import { socketAnswers } from "../../src/daemon/socket.js";
import { providerEnv } from "../agent/harness.js";
import type { TempHome } from "../support/home.js";
import type { ProviderServer } from "../support/provider-server.js";

export const MAIN = join(import.meta.dirname, "..", "..", "src", "daemon", "main.ts");

const children: ChildProcess[] = [];

export interface DaemonChild {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

export interface ChildOptions {
  /** Start under this umask (octal string, e.g. "000"): the shell sets it, then execs node. */
  umask?: string;
  /** Without --foreground: the detached mode, whose own child is the daemon. */
  detached?: boolean;
  /**
   * A test's module loaded before the daemon's (node --import), with `env` added to the
   * daemon's environment: a latch that holds one step of it (test/support/hold-unpack.mjs).
   */
  preload?: { module: string; env: Record<string, string> };
}

/** The environment a daemon child gets: the provider server and the home, nothing else. */
export function daemonEnv(h: TempHome, server: ProviderServer): NodeJS.ProcessEnv {
  const image = process.env.AIDO_SANDBOX_IMAGE;
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...providerEnv(server),
    AIDO_HOME: h.dir,
    ...(image ? { AIDO_SANDBOX_IMAGE: image } : {}),
  };
}

export async function until<T>(probe: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start agentd for `h`; resolves once its socket answers (detached: once the starter exited 0). */
export async function startDaemonChild(
  h: TempHome,
  server: ProviderServer,
  opts: ChildOptions = {},
): Promise<DaemonChild> {
  const node = [
    process.execPath,
    "--import",
    import.meta.resolve("tsx"),
    ...(opts.preload ? ["--import", opts.preload.module] : []),
    MAIN,
  ];
  if (!opts.detached) node.push("--foreground");
  const [cmd, ...args] = opts.umask
    ? ["sh", "-c", `umask ${opts.umask} && exec "$0" "$@"`, ...node]
    : (node as [string, ...string[]]);
  const child = spawn(cmd as string, args, {
    env: { ...daemonEnv(h, server), ...opts.preload?.env },
    cwd: h.dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  if (opts.detached) {
    const code = await exited;
    if (code !== 0) throw new Error(`aido daemon start exited ${code}:\n${out}`);
  }
  await until(async () => {
    if (!opts.detached && child.exitCode !== null) throw new Error(`agentd exited early:\n${out}`);
    return existsSync(h.config.socketPath) && (await socketAnswers(h.config.socketPath)) ? true : undefined;
  });
  // The socket answers before the Runtime is open (binding it is the lock); a first answer
  // means the runtime is open and the signal handlers are installed.
  const c = await AidoClient.connect(h.config.socketPath);
  try {
    await c.call("goal.list", {}, { timeoutMs: 60_000 });
  } finally {
    c.close();
  }
  return { child, output: () => out, exited };
}

/** SIGKILL every child still running. */
export function killChildren(): void {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}
