// tools/mcp/pins.ts — the operator's approvals of external MCP servers, in aido.db: per
// server, what was approved (its identity: the url, or the image, command, env and mounts
// of a stdio server; and the network entries a stdio server may reach), when, and per tool
// the hash and the definition approved. A tool is offered only while its live definition
// hashes to its pin (definitions.ts) and the server's config still has the identity
// approved and no network entry beyond those approved: pins are the endpoint's, not the
// name's, so pointing a name at another endpoint (with the same tool definitions), or
// letting it reach more hosts, needs approval. Fewer entries (a project's narrowing) keep
// it. Approving a server again replaces all its pins with the definitions it offers then.

import type { McpServerConfig } from "../../config.js";
import { type Db, migrate, prepared } from "../../db/database.js";
import { canonicalJson } from "../../security/canonical-json.js";
import { formatGrant } from "../../security/grants.js";
import type { McpToolDefinition } from "./definitions.js";

const MIGRATIONS = [
  `CREATE TABLE mcp_servers_approved (
     server TEXT PRIMARY KEY,
     approved_at TEXT NOT NULL,
     approved_by TEXT NOT NULL
   );
   CREATE TABLE mcp_tool_pins (
     server TEXT NOT NULL REFERENCES mcp_servers_approved(server) ON DELETE CASCADE,
     tool TEXT NOT NULL,
     hash TEXT NOT NULL,
     definition TEXT NOT NULL,
     PRIMARY KEY (server, tool)
   );`,
  // What the approval was of (serverIdentity): pins approved before it existed match nothing.
  "ALTER TABLE mcp_servers_approved ADD COLUMN identity TEXT NOT NULL DEFAULT ''",
  // The network entries approved (JSON, serverNetwork). NULL: approved before entries were
  // pinned, so it approves none (a server given entries since is refused until approved).
  "ALTER TABLE mcp_servers_approved ADD COLUMN network TEXT",
];

export interface ToolPin {
  hash: string;
  definition: McpToolDefinition;
}

export interface ServerPins {
  /** serverIdentity() of the server's config when it was approved. */
  identity: string;
  /** serverNetwork() of the server's config when it was approved ([] for older approvals). */
  network: string[];
  approvedAt: string;
  approvedBy: string;
  tools: Map<string, ToolPin>;
}

/** What an approval of `server` is of: where its tools come from, as the config says. */
export function serverIdentity(server: McpServerConfig): string {
  return server.transport === "http"
    ? canonicalJson({ url: server.url })
    : canonicalJson({
        command: server.command,
        image: server.image ?? null,
        env: server.env,
        mounts: server.mounts,
      });
}

/**
 * The hosts a stdio server may reach (config `network`), as approved: each entry
 * `host[:port]`, sorted, once (the order in the config means nothing). A remote server has
 * none: the daemon connects to it itself.
 */
export function serverNetwork(server: McpServerConfig): string[] {
  if (server.transport !== "stdio") return [];
  const entries = (server.network ?? []).map((g) => formatGrant(g).replace(/^network: /, ""));
  return [...new Set(entries)].sort();
}

/**
 * Why the approval `pins` does not cover `server` as configured now, or undefined when it
 * does: its endpoint changed, or it may reach a host the operator did not approve.
 */
export function approvalMismatch(pins: ServerPins, server: McpServerConfig): string | undefined {
  if (pins.identity !== serverIdentity(server))
    return `MCP server ${server.name}'s ${server.transport === "http" ? "url" : "command, image, env or mounts"} changed since the operator approved it`;
  const approved = new Set(pins.network);
  const wider = serverNetwork(server).filter((n) => !approved.has(n));
  if (wider.length > 0)
    return `MCP server ${server.name}'s network entries ${wider.map((n) => `"${n}"`).join(", ")} are not among those the operator approved (${pins.network.length > 0 ? pins.network.join(", ") : "none"})`;
  return undefined;
}

export class McpPins {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
    migrate(db, "mcp_pins", MIGRATIONS);
  }

  /** The server's approval and pins, or undefined when the operator never approved it. */
  get(server: string): ServerPins | undefined {
    const row = prepared(
      this.db,
      "SELECT identity, network, approved_at, approved_by FROM mcp_servers_approved WHERE server = ?",
    ).get(server) as
      | { identity: string; network: string | null; approved_at: string; approved_by: string }
      | undefined;
    if (!row) return undefined;
    const tools = new Map<string, ToolPin>();
    const pins = prepared(this.db, "SELECT tool, hash, definition FROM mcp_tool_pins WHERE server = ?").all(
      server,
    ) as { tool: string; hash: string; definition: string }[];
    for (const p of pins) tools.set(p.tool, { hash: p.hash, definition: JSON.parse(p.definition) });
    return {
      identity: row.identity,
      network: row.network === null ? [] : (JSON.parse(row.network) as string[]),
      approvedAt: row.approved_at,
      approvedBy: row.approved_by,
      tools,
    };
  }

  /** Record `tools` (and `network`) as the server's approved ones, replacing any earlier pins. */
  approve(
    server: string,
    identity: string,
    network: readonly string[],
    tools: readonly ToolPin[],
    by: string,
  ): void {
    this.db.transaction(() => {
      prepared(this.db, "DELETE FROM mcp_servers_approved WHERE server = ?").run(server);
      prepared(
        this.db,
        "INSERT INTO mcp_servers_approved (server, identity, network, approved_at, approved_by) VALUES (?, ?, ?, ?, ?)",
      ).run(server, identity, JSON.stringify(network), new Date().toISOString(), by);
      for (const t of tools) {
        prepared(
          this.db,
          "INSERT INTO mcp_tool_pins (server, tool, hash, definition) VALUES (?, ?, ?, ?)",
        ).run(server, t.definition.name, t.hash, JSON.stringify(t.definition));
      }
    })();
  }
}
