// tools/mcp/stdio-start.ts — how a goal's stdio MCP server is started (kernel/assemble.ts wires
// it into McpServers): a server with network entries gets an egress network and relay of its
// own (egress/plumbing.ts, sandbox/egress-network.ts) with the proxy variables of its caller
// mcp:<server>; else network none. Order: the goal's thaw first (its node fenced, the start
// waits; sandbox/frozen-goals.ts), then the network, then the container. Before, the network and
// relay were made before the start waited for the thaw: a frozen goal's server start made them
// during the fence, and a start cancelled meanwhile left them until the goal ended. A start
// cancelled after they were made (a fence that fell again while they were being made) removes
// them.

import type { McpServerConfig } from "../../config.js";
import type { EgressPlumbing } from "../../egress/plumbing.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import type { SandboxBackend } from "../../sandbox/backend.js";
import type { McpServerContainer } from "../../sandbox/mcp-container.js";

type StdioServer = Extract<McpServerConfig, { transport: "stdio" }>;

export interface StdioStartDeps {
  backend: SandboxBackend;
  egress: EgressPlumbing;
  /** Whether the goal is a probe's (aido mcp list / approve): it only lists tools, without network. */
  probing: (goalId: string) => boolean;
  log: (line: string) => void;
}

/** Start `s` for the goal (see the header); `signal` aborts the start (every caller cancelled). */
export async function startStdioServer(
  deps: StdioStartDeps,
  goalId: string,
  s: StdioServer,
  signal?: AbortSignal,
): Promise<McpServerContainer> {
  const { backend } = deps;
  const spec = {
    goalId,
    server: s.name,
    command: s.command,
    ...(s.image !== undefined ? { image: s.image } : {}),
    env: { ...s.env },
    workspace: s.workspace,
    mounts: s.mounts,
  };
  if ((s.network ?? []).length === 0 || deps.probing(goalId)) return backend.startMcpServer(spec, signal);
  if (!((await backend.untilThawed?.(goalId, signal)) ?? true)) throw cancelled(goalId, s.name);
  const net = await deps.egress.server(goalId, s.name);
  try {
    return await backend.startMcpServer(
      { ...spec, env: { ...spec.env, ...net.env }, network: net.network },
      signal,
    );
  } catch (e) {
    if (signal?.aborted || (e instanceof AidoError && e.code === ErrorCode.cancelled)) {
      // The listener, callers and folder (daemon side), then the relay and network (engine side).
      await deps.egress.close(net.egressId);
      await backend
        .removeEgress?.(net.egressId)
        .catch((r: unknown) =>
          deps.log(
            `removing the egress network of MCP server ${s.name} of goal ${goalId} after its start was cancelled: ${errorMessage(r)} (the sweep removes it)`,
          ),
        );
    }
    throw e;
  }
}

function cancelled(goalId: string, server: string): AidoError {
  return new AidoError(
    ErrorCode.cancelled,
    `the start of MCP server ${server} for goal ${goalId} was cancelled while the goal was frozen`,
    { goalId, server },
  );
}
