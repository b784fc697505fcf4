// egress/plumbing.ts — a goal's way out, from the daemon's side: per goal whose root
// manifest holds a network grant, the folder shared with its relay ($AIDO_HOME/egress/<goal>,
// 0700), the listener on its socket (listener.ts, handing each stream to the proxy) and the
// relay's address on the goal's network (the backend makes network and relay:
// sandbox/egress-network.ts); per caller, its relay port and credentials (callers.ts).
// What an exec of an agent gets from here (access): on a goal with a network, the ports its
// Landlock domain may connect to — its own relay port if it holds a network grant, none
// otherwise — and, with a port, the proxy variables carrying its credentials. The goal's
// end (close) stops the listener and frees its callers; the backend removes network and
// relay with the goal's container.
// A stdio MCP server with `network:` entries (server()) gets the same on a pseudo-goal of its
// own (mcp-callers.ts: never its goal's network), with one caller, mcp:<server>.

import { join } from "node:path";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { SandboxBackend } from "../sandbox/backend.js";
import { removeTreeNoFollow } from "../sandbox/folders.js";
import type { Grant } from "../security/grants.js";
import { EgressCallers, proxyEnv } from "./callers.js";
import { RelayListener, type UnheldReport } from "./listener.js";
import { mcpCallerId, mcpEgressId, mcpProxyUser, parseMcpEgressId } from "./mcp-callers.js";
import { credentialSpellings } from "./secret-spellings.js";
import type { EgressProxy } from "./types.js";

/** What one exec of an agent gets on a goal with a network. */
export interface EgressAccess {
  /** TCP ports its Landlock domain may connect to: its relay port, or none. */
  connect: number[];
  /** The proxy variables (with its credentials); empty without a port. */
  env: Record<string, string>;
  /**
   * Values never to show the model (the password, its parts, and the Basic header value
   * curl -v prints): the exec tool blanks them in output.
   */
  secrets: string[];
  /**
   * The spellings of the goal's credentials to blank in `text` beyond `secrets`: every
   * caller's of the goal (callers.ts credentialsIn: a child reads the proxy URL its parent
   * wrote to the workspace), and every call's, running or ended, that `text` holds
   * (goalCallCredentialsIn: a command of that call wrote them to a file). Given to every agent
   * of a goal with a network, with or without network grants of its own.
   */
  secretsIn?(text: string): string[];
  /**
   * A call's own credentials were issued (access with a request id): the call ended, they
   * name it no more. Absent otherwise.
   */
  end?(): void;
  /** The call was cancelled (CallCredentials.cancel); absent with the agent's own credentials. */
  cancelled?(reason: string): void;
}

export interface EgressPlumbingDeps {
  /** $AIDO_HOME: the shared folders live in its egress/. */
  home: string;
  backend: Pick<SandboxBackend, "egress">;
  /** The proxy the listeners hand streams to (built on first need: it checks credentials here). */
  proxy(): EgressProxy;
  /**
   * Streams on ports of the relay of `egressId` (a goal, or an MCP server's pseudo-goal)
   * that no caller holds were closed: audit them (EgressGate.recordUnheldPort).
   */
  unheldPort(egressId: string, report: UnheldReport): void;
  log(message: string): void;
}

interface GoalEgress {
  share: string;
  listener: Promise<RelayListener>;
  /** The relay's address, once the backend made it. */
  address?: string;
  /** The Docker network the relay sits on, once made. */
  network?: string;
}

/** What a stdio MCP server's container gets to reach the proxy: its network and variables. */
export interface ServerEgress {
  /** The pseudo-goal its network, relay and caller are keyed by. */
  egressId: string;
  /** The Docker network its container joins (no other member than its relay). */
  network: string;
  /** The proxy variables with its caller's credentials. */
  env: Record<string, string>;
  /**
   * Those credentials in every spelling a tool prints by itself (secret-spellings.ts): what
   * the server's connection blanks in its tool results, errors and stderr (McpConnection).
   */
  secrets: string[];
}

export class EgressPlumbing {
  readonly callers = new EgressCallers();
  private readonly goals = new Map<string, GoalEgress>();
  private proxy: EgressProxy | undefined;

  constructor(private readonly deps: EgressPlumbingDeps) {}

  shareOf(goalId: string): string {
    return join(this.deps.home, "egress", goalId);
  }

  /**
   * The goal's listener and relay, made on first call: the shared folder to hand the
   * backend for the goal's container (AcquireOptions.egressShare).
   */
  async open(goalId: string): Promise<string> {
    const { backend } = this.deps;
    if (!backend.egress) {
      throw new AidoError(
        ErrorCode.sandboxUnavailable,
        `goal ${goalId} holds network grants, and this sandbox backend cannot give a container a network`,
        { goalId },
      );
    }
    let g = this.goals.get(goalId);
    if (!g) {
      const share = this.shareOf(goalId);
      this.proxy ??= this.deps.proxy();
      const listener = RelayListener.start({
        dir: share,
        callerOf: (port) => this.callers.callerOfPort(goalId, port),
        proxy: this.proxy,
        unheld: (report) => this.deps.unheldPort(goalId, report),
        log: this.deps.log,
      });
      g = { share, listener };
      this.goals.set(goalId, g);
      listener.catch(() => this.goals.delete(goalId));
    }
    await g.listener;
    const endpoint = await backend.egress(goalId, g.share);
    g.address = endpoint.address;
    g.network = endpoint.network;
    return g.share;
  }

  /**
   * The network of `server` in `goalId` (made on first call: listener, network, relay) and
   * the proxy variables of its one caller, mcp:<server>. Closed by close(egressId).
   */
  async server(goalId: string, server: string): Promise<ServerEgress> {
    const egressId = mcpEgressId(goalId, server);
    try {
      await this.open(egressId);
    } catch (e) {
      // Its goal ended (or the engine failed): no listener or folder stays behind for it.
      await this.closeOne(egressId);
      throw e;
    }
    const g = this.goals.get(egressId);
    if (g?.address === undefined || g.network === undefined) {
      throw new AidoError(
        ErrorCode.sandboxFailed,
        `the egress network of MCP server ${server} went while it was made`,
        {
          goalId,
          server,
        },
      );
    }
    const slot = this.callers.slotOf(
      { goalId: egressId, agentId: mcpCallerId(server) },
      mcpProxyUser(server),
    );
    return {
      egressId,
      network: g.network,
      env: proxyEnv(slot, g.address),
      secrets: credentialSpellings(slot.user, slot.password, [slot.password]),
    };
  }

  /**
   * What an exec of the agent gets; undefined when its goal has no network (then TCP is
   * not restricted: the container reaches nothing but itself). With `requestId` (a call a
   * socket client made), credentials of the call's own (callers.ts openCall), which name
   * it in the relay's questions until end() — called when the call ends.
   */
  access(
    goalId: string,
    agentId: string,
    grants: readonly Grant[],
    requestId?: string,
  ): EgressAccess | undefined {
    const address = this.goals.get(goalId)?.address;
    if (address === undefined) return undefined;
    // What a text holds beyond the caller's own: the credentials of every other caller of the
    // goal (a child reading the proxy URL its parent wrote to the workspace), and those of any
    // call of theirs or of its own (a file a command of that call wrote them to).
    const secretsIn = (text: string) => this.goalSecretsIn(goalId, text);
    if (!grants.some((g) => g.kind === "network")) return { connect: [], env: {}, secrets: [], secretsIn };
    const slot = this.callers.slotOf({ goalId, agentId });
    if (requestId === undefined) {
      return {
        connect: [slot.port],
        env: proxyEnv(slot, address),
        secrets: credentialSpellings(slot.user, slot.password, [slot.password]),
        secretsIn,
      };
    }
    const call = this.callers.openCall({ goalId, agentId }, requestId);
    return {
      secretsIn,
      connect: [call.slot.port],
      env: proxyEnv(call.slot, address, call.password),
      // The whole and each part: a command may print either alone (`${HTTP_PROXY#*.}`).
      secrets: credentialSpellings(call.slot.user, call.password, [call.password, call.key, call.secret]),
      end: call.end,
      cancelled: call.cancel,
    };
  }

  /**
   * The spellings of every caller's credentials of the goal (callers.ts credentialsIn: the
   * agents' and its MCP servers' passwords, the caller's own among them: an exec of a socket
   * call holds only its call's) and of every call credential of the goal `text` holds.
   */
  private goalSecretsIn(goalId: string, text: string): string[] {
    const calls = this.callers
      .goalCallCredentialsIn(goalId, text)
      .flatMap((c) => credentialSpellings(c.user, c.password, [c.password, c.key, c.secret]));
    const callers = this.callers
      .credentialsIn(goalId)
      .flatMap((c) => credentialSpellings(c.user, c.password, [c.password]));
    return [...calls, ...callers];
  }

  /** The agent stopped: its port and credentials go. */
  agentStopped(agentId: string): void {
    this.callers.freeAgent(agentId);
  }

  /**
   * The goal ended: its listener stops, its callers go, its shared folder is removed; the
   * same for each of its MCP servers' networks.
   */
  async close(goalId: string): Promise<void> {
    for (const id of [...this.goals.keys()]) {
      if (parseMcpEgressId(id)?.goalId === goalId) await this.closeOne(id);
    }
    await this.closeOne(goalId);
  }

  private async closeOne(goalId: string): Promise<void> {
    const g = this.goals.get(goalId);
    this.goals.delete(goalId);
    this.callers.freeGoal(goalId);
    if (!g) return;
    try {
      await (await g.listener).close();
    } catch (e) {
      this.deps.log(`closing the egress listener of ${goalId}: ${errorMessage(e)}`);
    }
    removeTreeNoFollow(g.share);
  }

  /** Every listener stops, then the proxy ends its open streams (the daemon shuts down). */
  async closeAll(): Promise<void> {
    for (const goalId of [...this.goals.keys()]) await this.closeOne(goalId);
    await this.proxy?.close();
    this.proxy = undefined;
  }
}
