// mcp/daemon-link.ts — how `aido mcp serve` reaches agentd: connect to its socket,
// starting it detached (as `aido daemon start` does) when nothing listens, then open the
// MCP session's principal (session.open). The connection that opened the session is kept
// for the session's whole life: when this process dies, the daemon sees it close and
// ends the session (its container goes). A daemon that cannot be started is an error
// that says why (the end of its log).

import { readFileSync } from "node:fs";
import { AidoClient } from "../client/client.js";
import type { SessionInfo } from "../client/types.js";
import type { Config, Env } from "../config.js";
import { startDetached } from "../daemon/detach.js";
import { AidoError, ErrorCode } from "../errors.js";

export interface SessionOptions {
  /** Host folder bound as the session's /workspace. */
  workspace?: string;
  /** A manifest file for the session (YAML); default the daemon's manifests/mcp-session.yaml. */
  manifestFile?: string;
  /** Which MCP client (free text, audited). */
  client?: string;
}

export interface DaemonLink {
  client: AidoClient;
  session: SessionInfo;
  /**
   * The request line the daemon reads: its own daemon.max_line_bytes as session.open tells it,
   * when lower than this server's configuration says (they may differ: a daemon started
   * with another configuration), else the configured one.
   */
  maxLineBytes: number;
  /** End the session and the connection (idempotent). */
  close(): Promise<void>;
}

/** A client on the daemon's socket; the daemon is started detached when nothing listens. */
export async function connectDaemon(config: Config, env: Env, log: (m: string) => void): Promise<AidoClient> {
  try {
    return await AidoClient.connect(config.socketPath, { maxLineBytes: config.daemon.maxLineBytes });
  } catch (e) {
    if (!(e instanceof AidoError) || e.code !== ErrorCode.notFound) throw e;
  }
  log(`no Aido daemon answers on ${config.socketPath}: starting one`);
  try {
    await startDetached(config, { env });
  } catch (e) {
    if (!(e instanceof AidoError) || e.code !== ErrorCode.usage) {
      throw new AidoError(
        ErrorCode.internal,
        `aido mcp serve cannot start the Aido daemon: ${e instanceof Error ? e.message : String(e)}`,
        {},
        { cause: e },
      );
    }
  }
  return AidoClient.connect(config.socketPath, { maxLineBytes: config.daemon.maxLineBytes });
}

/** Open the session on `client`'s connection; closing that connection ends it. */
export async function openSession(
  client: AidoClient,
  opts: SessionOptions & { maxLineBytes: number },
): Promise<DaemonLink> {
  let manifest: string | undefined;
  if (opts.manifestFile !== undefined) {
    try {
      manifest = readFileSync(opts.manifestFile, "utf8");
    } catch (e) {
      throw new AidoError(
        ErrorCode.usage,
        `--manifest ${opts.manifestFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
      );
    }
  }
  const { max_line_bytes: daemonMax, ...session } = await client.call("session.open", {
    ...(manifest !== undefined ? { manifest } : {}),
    ...(opts.workspace !== undefined ? { workspace: opts.workspace } : {}),
    ...(opts.client !== undefined ? { client: opts.client } : {}),
  });
  const maxLineBytes =
    typeof daemonMax === "number" && daemonMax > 0
      ? Math.min(daemonMax, opts.maxLineBytes)
      : opts.maxLineBytes;
  client.lowerLineLimit(maxLineBytes);
  let closing: Promise<void> | undefined;
  return {
    client,
    session,
    maxLineBytes,
    close() {
      closing ??= client
        .call("session.close", { session_id: session.session_id }, { timeoutMs: 5_000 })
        .then(
          () => undefined,
          () => undefined, // already ended (agent.stop, daemon gone): closing the connection is enough
        )
        .finally(() => client.close());
      return closing;
    },
  };
}
