// tools/mcp/servers.ts — the external MCP servers, as the gate and the operator see them.
// Per goal (goal-connections.ts), a server is connected the first time one of the goal's
// agents needs its tools: an offer to an agent a grant allows a pinned tool of it, or a
// call the gate allowed (a tool is built from its pin and contacts its server only at the
// gate's needs stage), kept for the goal's life and closed when the goal's sandbox is
// retired. A tool is offered and callable only when all of these hold: its
// server is in the agent's manifest `mcp_servers`, the operator approved the server
// (pins.ts), the tool has a pin, its live definition hashes to that pin, and its inputSchema
// is within the size caps (definitions.ts: a tool over them is left out of every listing,
// so it is neither offered, nor callable, nor pinned). The agent's
// `mcp:` grants, the policy, the budget and the approval are the gate's (gate/judge.ts).
// For the operator, status() and approve() open a connection of their own, outside any
// goal (a probe: a stdio server runs in a container of a pseudo-goal `mcp-probe-…`, whose
// folders go after), and close it after: `aido mcp list` and `aido mcp approve` (what a
// status holds is server-status.ts's).

import { randomBytes } from "node:crypto";
import type { Config, McpServerConfig } from "../../config.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import type { ExternalTools, Principal, ToolRefusal } from "../../gate/invoke.js";
import type { ToolDef } from "../../gate/types.js";
import type { McpServerContainer } from "../../sandbox/mcp-container.js";
import type { AuditLog } from "../../security/audit.js";
import type { Grant } from "../../security/grants.js";
import { grantsAllow } from "../../security/narrowing.js";
import { mcpToolName, parseMcpToolName } from "../names.js";
import { type ConnectDeps, McpConnection } from "./connection.js";
import { changedParts, definitionHash, oversizedReason, shownName } from "./definitions.js";
import { GoalConnections } from "./goal-connections.js";
import {
  approvalCovers,
  approvalMismatch,
  type McpPins,
  type ServerPins,
  type ToolPin,
  type WorkspaceAccess,
} from "./pins.js";
import { currentPins, type McpServerStatus, serverStatus } from "./server-status.js";
import { mcpToolDef } from "./tool-def.js";

declare module "../../security/audit-events.js" {
  interface AuditPayloads {
    /** The operator approved a server's tools (`aido mcp approve`): the pins recorded. */
    "mcp.approved": {
      server: string;
      tools: { name: string; hash: string }[];
      /** The network entries approved with them (a stdio server's `network`, sorted). */
      network: string[];
      /** The access to the goal's /workspace approved with them (none for a remote server). */
      workspace: WorkspaceAccess;
      /** A remote server's headers approved with them: header -> environment variable NAME. */
      headers: Record<string, string>;
      /** Tools it listed that were not pinned: over a size cap (definitions.ts admitTools). */
      too_large: { name: string; bytes: number; cap: number; limit: "tool" | "server" }[];
      by: string;
    };
    /** A server could not be connected for a goal (its reason without header values). */
    "mcp.unreachable": { server: string; reason: string };
  }
}

/** Tool names every provider's API accepts (Anthropic's rule is the narrowest). */
const OFFERABLE = /^[A-Za-z0-9_-]{1,64}$/;

export interface McpServersDeps {
  config: Pick<Config, "mcp">;
  pins: McpPins;
  audit: AuditLog;
  /** The servers an agent's effective manifest names (undefined: no such agent). */
  serversOf(agentId: string): readonly string[] | undefined;
  /**
   * Start a stdio server's container for a goal (the sandbox backend's startMcpServer); its
   * wait for a frozen goal's thaw ends as `signal` aborts.
   */
  startStdio(goalId: string, server: StdioServer, signal?: AbortSignal): Promise<McpServerContainer>;
  /** A probe's pseudo-goal is over: its container and folders go. */
  endProbe(goalId: string): Promise<void>;
}

type StdioServer = Extract<McpServerConfig, { transport: "stdio" }>;

export class McpServers implements ExternalTools {
  private readonly deps: McpServersDeps;
  private readonly goals = new Map<string, GoalConnections>();
  /** Tools built per goal, server and definition hash. */
  private readonly built = new WeakMap<GoalConnections, Map<string, ToolDef>>();
  /** Pseudo-goals of the probes running now (the sweeper leaves their containers alone). */
  private readonly probes = new Set<string>();

  constructor(deps: McpServersDeps) {
    this.deps = deps;
  }

  async resolve(
    principal: Principal,
    name: string,
  ): Promise<{ tool: ToolDef<unknown> } | { refusal: ToolRefusal } | undefined> {
    const parsed = parseMcpToolName(name);
    const server = parsed ? this.deps.config.mcp.servers[parsed.server] : undefined;
    if (!parsed || !server) return undefined;
    const refuse = (reason: string) => ({
      refusal: { code: ErrorCode.capabilityDenied, stage: "capability" as const, reason },
    });
    if (!(this.deps.serversOf(principal.agentId) ?? []).includes(server.name))
      return refuse(`MCP server ${server.name} is not in the agent's manifest mcp_servers`);
    const approved = this.deps.pins.get(server.name);
    const mismatch = approved && approvalMismatch(approved, server);
    if (mismatch)
      return refuse(`${mismatch}; it offers nothing until approved again (aido mcp approve ${server.name})`);
    if (approved === undefined)
      return refuse(
        `MCP server ${server.name} has not been approved by the operator (aido mcp approve ${server.name}); it offers nothing`,
      );
    const pin = approved.tools.get(parsed.tool);
    if (!pin)
      return refuse(
        `tool ${parsed.tool} of MCP server ${server.name} is not among the tools the operator approved (a tool the server offers now is new since the server was approved); it is not offered until the operator approves it (aido mcp approve ${server.name})`,
      );
    // Built from the pin, nothing contacted: the server is connected at the gate's stage 5,
    // once the token, the grants, the policy and the budget allowed the call (tool-def.ts).
    return { tool: this.toolOf(this.goalOf(principal.goalId), server, pin) as ToolDef<unknown> };
  }

  knows(name: string): boolean {
    const parsed = parseMcpToolName(name);
    const server = parsed ? this.deps.config.mcp.servers[parsed.server] : undefined;
    return (
      parsed !== undefined &&
      server !== undefined &&
      this.deps.pins.get(server.name)?.tools.has(parsed.tool) === true
    );
  }

  async offered(
    principal: Pick<Principal, "agentId" | "goalId">,
    grants: readonly Grant[],
  ): Promise<ToolDef<unknown>[]> {
    const out: ToolDef<unknown>[] = [];
    for (const name of this.deps.serversOf(principal.agentId) ?? []) {
      const server = this.deps.config.mcp.servers[name];
      const pins = server ? this.pinsOf(server) : undefined;
      if (!server || !pins) continue;
      // Offered from the pins: those the agent's grants allow (and the providers' APIs
      // accept as names). None: the server is not contacted at all.
      const wanted = [...pins.tools.values()].filter(
        (p) =>
          OFFERABLE.test(mcpToolName(name, p.definition.name)) &&
          grantsAllow(grants, { kind: "mcp", server: name, tool: p.definition.name }),
      );
      if (wanted.length === 0) continue;
      const goal = this.goalOf(principal.goalId);
      let conn: McpConnection;
      try {
        conn = await goal.connection(server);
      } catch {
        continue; // audited as mcp.unreachable; a call names the failure
      }
      // Connected only to check the live definitions against the pins.
      for (const pin of wanted) {
        const live = conn.tools.get(pin.definition.name);
        if (live && definitionHash(live) === pin.hash)
          out.push(this.toolOf(goal, server, pin) as ToolDef<unknown>);
      }
    }
    return out;
  }

  /** The goal ended (its sandbox retired): close its connections. */
  async closeGoal(goalId: string): Promise<void> {
    const goal = this.goals.get(goalId);
    if (!goal) return;
    this.goals.delete(goalId);
    await goal.close();
  }

  /** The daemon stops: close every connection. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.goals.keys()].map((g) => this.closeGoal(g)));
  }

  /**
   * Every declared server (or one), its tools and their state against the pins. A remote
   * server whose headers no approval of its url covers is not contacted unless
   * `sendHeaders` (the operator saw which secrets it is sent).
   */
  async status(only?: string, sendHeaders = false): Promise<McpServerStatus[]> {
    const names = only === undefined ? Object.keys(this.deps.config.mcp.servers).sort() : [only];
    const out: McpServerStatus[] = [];
    for (const name of names) out.push(await this.statusOf(this.declared(name), sendHeaders));
    return out;
  }

  /**
   * Pin the server's tools as they are now. `expect` (tool -> hash, what the operator
   * reviewed): refused when the live definitions differ from it, so what is pinned is what
   * a human saw.
   */
  async approve(
    name: string,
    expect: Record<string, string> | undefined,
    by: string,
  ): Promise<McpServerStatus> {
    const server = this.declared(name);
    await this.probe(server, async (conn) => {
      const tools = [...conn.tools.values()].map((d) => ({ hash: definitionHash(d), definition: d }));
      if (expect !== undefined) {
        const live = Object.fromEntries(tools.map((t) => [t.definition.name, t.hash]));
        const same =
          Object.keys(live).length === Object.keys(expect).length &&
          Object.entries(live).every(([t, h]) => expect[t] === h);
        if (!same) {
          throw new AidoError(
            ErrorCode.capabilityDenied,
            `MCP server ${name}'s tools changed since they were shown for approval; nothing was approved (review them again)`,
            { server: name },
          );
        }
      }
      const covers = approvalCovers(server);
      this.deps.pins.approve(name, covers, tools, by);
      this.deps.audit.record("mcp.approved", {
        server: name,
        tools: tools.map((t) => ({ name: t.definition.name, hash: t.hash })),
        network: [...covers.network],
        workspace: covers.workspace,
        headers: covers.headers,
        too_large: [...conn.oversized.values()].map((t) => ({
          name: shownName(t.name),
          bytes: t.bytes,
          cap: t.cap,
          limit: t.limit,
        })),
        by,
      });
    });
    return this.statusOf(server);
  }

  /** The server's pins, when they still cover its config (its identity, its network). */
  private pinsOf(server: McpServerConfig): ServerPins | undefined {
    return currentPins(this.deps.pins, server);
  }

  /** Is `goalId` the pseudo-goal of a probe running now? */
  probing(goalId: string): boolean {
    return this.probes.has(goalId);
  }

  /** Run `fn` over a connection of its own, outside any goal; closed and cleaned up after. */
  private async probe<T>(server: McpServerConfig, fn: (conn: McpConnection) => Promise<T>): Promise<T> {
    const goalId = `mcp-probe-${randomBytes(6).toString("hex")}`;
    this.probes.add(goalId);
    try {
      const conn = await McpConnection.open(server, this.connectDeps(goalId));
      try {
        return await fn(conn);
      } finally {
        await conn.close();
      }
    } finally {
      if (server.transport === "stdio") await this.deps.endProbe(goalId).catch(() => undefined);
      this.probes.delete(goalId);
    }
  }

  private connectDeps(goalId: string): ConnectDeps {
    return {
      headerValue: this.deps.config.mcp.headerValue,
      startStdio: (s, signal) => this.deps.startStdio(goalId, s, signal),
    };
  }

  private declared(name: string): McpServerConfig {
    const server = this.deps.config.mcp.servers[name];
    if (!server) {
      const known = Object.keys(this.deps.config.mcp.servers);
      throw new AidoError(
        ErrorCode.notFound,
        `no MCP server "${name}" in the operator's config (mcp_servers: ${known.length > 0 ? known.join(", ") : "none"})`,
        { server: name },
      );
    }
    return server;
  }

  private statusOf(server: McpServerConfig, sendHeaders = false): Promise<McpServerStatus> {
    return serverStatus(server, {
      pins: this.deps.pins,
      headerValue: this.deps.config.mcp.headerValue,
      probe: (srv, fn) => this.probe(srv, fn),
      sendHeaders,
    });
  }

  private goalOf(goalId: string): GoalConnections {
    let goal = this.goals.get(goalId);
    if (!goal) {
      goal = new GoalConnections(goalId, {
        audit: this.deps.audit,
        connectDeps: (g) => this.connectDeps(g),
      });
      this.goals.set(goalId, goal);
    }
    return goal;
  }

  /** The goal's tool for a pin (made once per goal and definition). */
  private toolOf(goal: GoalConnections, server: McpServerConfig, pin: ToolPin): ToolDef {
    let tools = this.built.get(goal);
    if (!tools) {
      tools = new Map();
      this.built.set(goal, tools);
    }
    const key = `${server.name}\u0000${pin.hash}`;
    let tool = tools.get(key);
    if (!tool) {
      const reach = (signal?: AbortSignal) => this.reach(goal, server, pin, signal);
      tool = mcpToolDef(server, pin.definition, pin.hash, {
        verify: async () => {
          await reach();
        },
        call: async (args, signal) => (await reach(signal)).call(pin.definition.name, args, signal),
      }) as ToolDef;
      tools.set(key, tool);
    }
    return tool;
  }

  /**
   * The goal's connection to `server` (opened now if need be), once its live definition of
   * the pinned tool is checked against the pin: a tool the server dropped or changed since
   * approval is refused (capability_denied, the gate's stage 5).
   */
  private async reach(
    goal: GoalConnections,
    server: McpServerConfig,
    pin: ToolPin,
    signal?: AbortSignal,
  ): Promise<McpConnection> {
    const tool = pin.definition.name;
    // A call cancelled while its server is being connected (its goal frozen, say) ends as a call
    // cancelled at the server does (McpConnection.call).
    const conn = await goal.connection(server, signal).catch((e: unknown) => {
      if (!signal?.aborted) throw e;
      throw new AidoError(
        ErrorCode.toolFailed,
        `MCP server ${server.name} did not finish the call of ${tool}: ${errorMessage(signal.reason)}`,
        { server: server.name },
      );
    });
    const live = conn.tools.get(tool);
    const oversized = conn.oversized.get(tool);
    if (!live && oversized)
      throw new AidoError(ErrorCode.capabilityDenied, oversizedReason(server.name, oversized), {
        server: server.name,
      });
    if (!live)
      throw new AidoError(
        ErrorCode.capabilityDenied,
        `MCP server ${server.name} no longer offers tool ${tool}`,
        {
          server: server.name,
        },
      );
    if (definitionHash(live) !== pin.hash)
      throw new AidoError(
        ErrorCode.capabilityDenied,
        `tool ${tool} of MCP server ${server.name} changed since the operator approved it (${changedParts(pin.definition, live).join(" and ") || "definition"} differ from the pin); it is disabled until re-approved (aido mcp approve ${server.name})`,
        { server: server.name },
      );
    return conn;
  }
}
