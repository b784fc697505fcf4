// tools/mcp/pins.ts — the operator's approvals of external MCP servers, in aido.db: per
// server, what was approved (its identity: the url, or the image, command, env and mounts
// of a stdio server; which of the daemon's environment variables a remote server's headers
// carry; the network entries and the access to the goal's workspace a stdio server has),
// when, and per tool the hash and the definition approved. A tool is offered only while its
// live definition hashes to its pin (definitions.ts) and the server's config still has the
// identity and headers approved, no network entry beyond those approved and no more
// workspace access: pins are the endpoint's, not the name's, so pointing a name at another
// endpoint (with the same tool definitions), sending it another secret, or letting it
// reach more hosts or write the workspace, needs approval. Fewer entries (a project's
// narrowing), or less access, keep it. Approving a server again replaces all its pins with
// the definitions it offers then.

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
  // The workspace access approved (serverWorkspace). NULL: approved before it was pinned,
  // so it approves "none" (a server with the workspace mounted is refused until approved).
  "ALTER TABLE mcp_servers_approved ADD COLUMN workspace TEXT",
  // The headers approved (JSON, serverHeaders: header -> variable NAME). NULL: approved
  // before headers were pinned, so it approves none (a server with headers is refused until
  // approved again: which secret it is sent was never shown to the approver).
  "ALTER TABLE mcp_servers_approved ADD COLUMN headers TEXT",
];

/** A stdio server's access to the goal's /workspace, least first. */
const WORKSPACE_ACCESS = ["none", "ro", "rw"] as const;
export type WorkspaceAccess = (typeof WORKSPACE_ACCESS)[number];

export interface ToolPin {
  hash: string;
  definition: McpToolDefinition;
}

export interface ServerPins {
  /** serverIdentity() of the server's config when it was approved. */
  identity: string;
  /** serverNetwork() of the server's config when it was approved ([] for older approvals). */
  network: string[];
  /** serverWorkspace() of the server's config when it was approved ("none" for older approvals). */
  workspace: WorkspaceAccess;
  /** serverHeaders() of the server's config when it was approved ({} for older approvals). */
  headers: Record<string, string>;
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

/** How much of the goal's /workspace a server sees: a remote one none (it runs elsewhere). */
export function serverWorkspace(server: McpServerConfig): WorkspaceAccess {
  return server.transport === "stdio" ? server.workspace : "none";
}

/**
 * Which of the daemon's environment variables a remote server is sent, as headers: header
 * name -> variable NAME (never a value), sorted by header. A stdio server has none.
 */
export function serverHeaders(server: McpServerConfig): Record<string, string> {
  if (server.transport !== "http") return {};
  return Object.fromEntries(Object.entries(server.headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Headers as shown: `Authorization from $GITHUB_TOKEN, …`, or "none". */
export function headersShown(headers: Record<string, string>): string {
  const shown = Object.entries(headers).map(([h, v]) => `${h} from $${v}`);
  return shown.length > 0 ? shown.join(", ") : "none";
}

/**
 * Why the approval `pins` does not cover `server` as configured now, or undefined when it
 * does: its endpoint changed, its headers carry other variables (any change: another
 * variable is another secret sent), it may reach a host the operator did not approve, or it
 * sees more of the workspace than approved (none < ro < rw).
 */
export function approvalMismatch(pins: ServerPins, server: McpServerConfig): string | undefined {
  if (pins.identity !== serverIdentity(server))
    return `MCP server ${server.name}'s ${server.transport === "http" ? "url" : "command, image, env or mounts"} changed since the operator approved it`;
  const headers = serverHeaders(server);
  if (canonicalJson(headers) !== canonicalJson(pins.headers))
    return `MCP server ${server.name}'s headers changed since the operator approved them (now: ${headersShown(headers)}; approved: ${headersShown(pins.headers)})`;
  const approved = new Set(pins.network);
  const wider = serverNetwork(server).filter((n) => !approved.has(n));
  if (wider.length > 0)
    return `MCP server ${server.name}'s network entries ${wider.map((n) => `"${n}"`).join(", ")} are not among those the operator approved (${pins.network.length > 0 ? pins.network.join(", ") : "none"})`;
  const access = serverWorkspace(server);
  if (WORKSPACE_ACCESS.indexOf(access) > WORKSPACE_ACCESS.indexOf(pins.workspace))
    return `MCP server ${server.name}'s workspace access "${access}" is more than the operator approved (${pins.workspace})`;
  return undefined;
}

/**
 * The operator approved sending `server`'s headers to its url as configured now: an
 * approval (current or stale for another reason) of this very url with these very header
 * -> variable pairs. Without it, only `aido mcp approve` (after showing them) sends them.
 */
export function headersApproved(pins: ServerPins | undefined, server: McpServerConfig): boolean {
  return (
    pins !== undefined &&
    pins.identity === serverIdentity(server) &&
    canonicalJson(serverHeaders(server)) === canonicalJson(pins.headers)
  );
}

/** What an approval covers besides the tools, as the server's config has it when approved. */
export interface ApprovalCovers {
  identity: string;
  network: readonly string[];
  workspace: WorkspaceAccess;
  headers: Record<string, string>;
}

/** What approving `server` as configured now covers besides its tools. */
export function approvalCovers(server: McpServerConfig): ApprovalCovers {
  return {
    identity: serverIdentity(server),
    network: serverNetwork(server),
    workspace: serverWorkspace(server),
    headers: serverHeaders(server),
  };
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
      "SELECT identity, network, workspace, headers, approved_at, approved_by FROM mcp_servers_approved WHERE server = ?",
    ).get(server) as
      | {
          identity: string;
          network: string | null;
          workspace: string | null;
          headers: string | null;
          approved_at: string;
          approved_by: string;
        }
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
      workspace: (WORKSPACE_ACCESS as readonly string[]).includes(row.workspace ?? "")
        ? (row.workspace as WorkspaceAccess)
        : "none",
      headers: row.headers === null ? {} : (JSON.parse(row.headers) as Record<string, string>),
      approvedAt: row.approved_at,
      approvedBy: row.approved_by,
      tools,
    };
  }

  /** Record `tools` (and what else `covers`) as the server's approved ones, replacing any earlier pins. */
  approve(server: string, covers: ApprovalCovers, tools: readonly ToolPin[], by: string): void {
    this.db.transaction(() => {
      prepared(this.db, "DELETE FROM mcp_servers_approved WHERE server = ?").run(server);
      prepared(
        this.db,
        "INSERT INTO mcp_servers_approved (server, identity, network, workspace, headers, approved_at, approved_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ).run(
        server,
        covers.identity,
        JSON.stringify(covers.network),
        covers.workspace,
        JSON.stringify(covers.headers),
        new Date().toISOString(),
        by,
      );
      for (const t of tools) {
        prepared(
          this.db,
          "INSERT INTO mcp_tool_pins (server, tool, hash, definition) VALUES (?, ?, ?, ?)",
        ).run(server, t.definition.name, t.hash, JSON.stringify(t.definition));
      }
    })();
  }
}
