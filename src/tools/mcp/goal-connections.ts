// tools/mcp/goal-connections.ts — one goal's live connections to its external MCP servers.
// A server is connected the first time a call of the goal is allowed to reach it (or an
// offer needs its live definitions to check them against the pins), kept for the goal's
// life and closed with the goal. Which calls may connect is the gate's and servers.ts's:
// nothing here is reached before the token, the grants, the policy and the budget passed.

import type { McpServerConfig } from "../../config.js";
import { errorMessage } from "../../errors.js";
import type { AuditLog } from "../../security/audit.js";
import { type ConnectDeps, McpConnection } from "./connection.js";

export interface GoalConnectionsDeps {
  audit: AuditLog;
  /** How a connection of this goal reaches its server (its stdio container is the goal's). */
  connectDeps(goalId: string): ConnectDeps;
}

export class GoalConnections {
  readonly goalId: string;
  private readonly deps: GoalConnectionsDeps;
  private readonly conns = new Map<string, Promise<McpConnection>>();

  constructor(goalId: string, deps: GoalConnectionsDeps) {
    this.goalId = goalId;
    this.deps = deps;
  }

  /** The goal's connection to `server`, opened now if it has none. */
  connection(server: McpServerConfig): Promise<McpConnection> {
    const held = this.conns.get(server.name);
    if (held) return held;
    const opening = McpConnection.open(server, this.deps.connectDeps(this.goalId)).catch((e: unknown) => {
      // Not kept: the next need tries again.
      this.conns.delete(server.name);
      this.deps.audit.record(
        "mcp.unreachable",
        { server: server.name, reason: errorMessage(e) },
        { goalId: this.goalId },
      );
      throw e;
    });
    this.conns.set(server.name, opening);
    return opening;
  }

  /** The goal ended: close every connection. */
  async close(): Promise<void> {
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => undefined)));
  }
}
