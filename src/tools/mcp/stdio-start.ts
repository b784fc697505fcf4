// tools/mcp/stdio-start.ts — how a goal's stdio MCP server is started (kernel/assemble.ts wires
// it into McpServers): a server with network entries gets an egress network and relay of its
// own (egress/plumbing.ts, sandbox/egress-network.ts) with the proxy variables of its caller
// mcp:<server>; else network none. Order: the goal's thaw first (its node fenced, the start
// waits; sandbox/frozen-goals.ts), then the network, then the container. A network made while a
// fence fell (the goal frozen since the thaw the start waited for) is removed and made again after
// the next thaw: nothing the start uses was made during a fence. Before, the start went on with
// it. Whatever it made goes again, before the start reports, unless it ends with a running
// server: a start cancelled or failed (the engine, the relay, the container), and one whose
// connect or listing then fails or is cancelled (McpConnection.open stops the container: its
// network and relay go with it, see `owned`). Before, only a start cancelled before its container
// ran removed them; the others left them until the next start or the goal's end.
// The network is the server's (one per goal and server, mcpEgressId): a second start of the same
// server gets the one the first made. Each start holds it (`holds`) until it ends without a
// server, or its server stops; it goes with the last hold. Before, a second start refused (the
// server runs already) removed the first's network, relay and listener under its running server.

import type { McpServerConfig } from "../../config.js";
import { mcpEgressId } from "../../egress/mcp-callers.js";
import type { EgressPlumbing, ServerEgress } from "../../egress/plumbing.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import type { SandboxBackend } from "../../sandbox/backend.js";
import type { McpServerContainer } from "../../sandbox/mcp-container.js";

type StdioServer = Extract<McpServerConfig, { transport: "stdio" }>;

/** Per plumbing, per server network (its egress id): how many starts or running servers hold it. */
const holds = new WeakMap<EgressPlumbing, Map<string, number>>();

function holdsOf(deps: StdioStartDeps): Map<string, number> {
  let m = holds.get(deps.egress);
  if (!m) {
    m = new Map();
    holds.set(deps.egress, m);
  }
  return m;
}

/** This start holds the network (before it is made or found). */
function hold(deps: StdioStartDeps, egressId: string): void {
  const m = holdsOf(deps);
  m.set(egressId, (m.get(egressId) ?? 0) + 1);
}

/** This start lets go of the network: true when it was the last to hold it (it is to go). */
function letGo(deps: StdioStartDeps, egressId: string): boolean {
  const m = holdsOf(deps);
  const left = (m.get(egressId) ?? 1) - 1;
  if (left > 0) m.set(egressId, left);
  else m.delete(egressId);
  return left <= 0;
}

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
  const net = await thawedNetwork(deps, goalId, s.name, signal);
  let server: McpServerContainer;
  try {
    server = await backend.startMcpServer(
      { ...spec, env: { ...spec.env, ...net.env }, network: net.network },
      signal,
    );
  } catch (e) {
    await removeNetwork(deps, goalId, s.name, net.egressId, "its start failed");
    throw e;
  }
  return { ...owned(deps, goalId, s.name, net.egressId, server), secrets: net.secrets };
}

/**
 * The server's network, made while the goal is thawed: one the fence fell on while it was being
 * made (the goal's freeze count moved) is removed, and made again once the goal is thawed.
 */
async function thawedNetwork(
  deps: StdioStartDeps,
  goalId: string,
  server: string,
  signal: AbortSignal | undefined,
): Promise<ServerEgress> {
  const { backend } = deps;
  for (;;) {
    if (!((await backend.untilThawed?.(goalId, signal)) ?? true)) throw cancelled(goalId, server);
    const freezes = backend.freezes?.(goalId);
    if (freezes === null) continue; // frozen again as the wait ended
    let net: ServerEgress;
    hold(deps, mcpEgressId(goalId, server));
    try {
      net = await deps.egress.server(goalId, server);
    } catch (e) {
      // The network may be made (the relay's start failed, or the goal ended meanwhile).
      await removeNetwork(deps, goalId, server, mcpEgressId(goalId, server), "it could not be made");
      throw e;
    }
    if (backend.freezes?.(goalId) === freezes) return net;
    await removeNetwork(deps, goalId, server, net.egressId, "a fence fell while it was made");
  }
}

/** The server, its network and relay removed once its container is stopped (however it ends). */
function owned(
  deps: StdioStartDeps,
  goalId: string,
  server: string,
  egressId: string,
  container: McpServerContainer,
): McpServerContainer {
  // Its hold goes once, however often it is stopped (its connection's end and its goal's removal
  // both stop it): a second let-go would take another start's hold.
  let removal: Promise<void> | undefined;
  return {
    ...container,
    stop: async () => {
      try {
        await container.stop();
      } finally {
        removal ??= removeNetwork(deps, goalId, server, egressId, "its server was stopped");
        await removal;
      }
    },
  };
}

/**
 * This start's hold on the network goes; with the last, the daemon's listener, callers and
 * folder, then the relay and network (engine side; the server's container gone first: a network
 * in use stays). One the engine would not remove is logged; the sweep removes it.
 */
async function removeNetwork(
  deps: StdioStartDeps,
  goalId: string,
  server: string,
  egressId: string,
  why: string,
): Promise<void> {
  // Another start holds it (one whose server runs): it is that start's to remove.
  if (!letGo(deps, egressId)) return;
  await deps.egress.close(egressId);
  await deps.backend
    .removeEgress?.(egressId)
    .catch((r: unknown) =>
      deps.log(
        `removing the egress network of MCP server ${server} of goal ${goalId} (${why}): ${errorMessage(r)} (the sweep removes it)`,
      ),
    );
}

function cancelled(goalId: string, server: string): AidoError {
  return new AidoError(
    ErrorCode.cancelled,
    `the start of MCP server ${server} for goal ${goalId} was cancelled while the goal was frozen`,
    { goalId, server },
  );
}
