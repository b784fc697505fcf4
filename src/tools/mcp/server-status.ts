// tools/mcp/server-status.ts — what `aido mcp list` and `aido mcp approve` show of a server:
// its endpoint, what approving it covers (network, workspace, headers), and each tool's
// state against its pin (approved, changed with a diff, new, removed, too large). A remote
// server whose headers (the daemon's secrets) no approval covers is not contacted unless the
// operator asks. The connection it looks through is a probe of McpServers (servers.ts).

import type { McpServerConfig } from "../../config.js";
import { errorMessage } from "../../errors.js";
import type { JsonValue } from "../../security/canonical-json.js";
import { headerValues, type McpConnection } from "./connection.js";
import { definitionDiff, definitionHash, type McpToolDefinition, type OversizedTool } from "./definitions.js";
import {
  approvalMismatch,
  headersApproved,
  headersShown,
  type McpPins,
  type ServerPins,
  serverHeaders,
  serverNetwork,
  serverWorkspace,
  type WorkspaceAccess,
} from "./pins.js";
import { isReadOnly } from "./tool-def.js";

/**
 * A tool's state against its pin; `too_large`: it is over a size cap (its inputSchema's,
 * or the server's tools' in all), so it is neither offered nor pinned whatever its pin says.
 */
export type McpToolState = "approved" | "changed" | "new" | "removed" | "too_large";

export interface McpToolStatus {
  name: string;
  state: McpToolState;
  /** The live definition's hash (absent for a removed tool). */
  hash?: string;
  pinned_hash?: string;
  description: string;
  /** The server's inputSchema for it (shown for approval as the model would be shown it). */
  input_schema: { [key: string]: JsonValue };
  /** The operator listed it in read_only_tools: it runs without a human's approval. */
  read_only: boolean;
  /** The server's own hints, untrusted: shown, never acted on. */
  annotations?: { [key: string]: JsonValue };
  /** Pinned -> live, for a changed tool. */
  diff?: string;
  /**
   * For a too_large tool: its size and the cap it is over (its schema is not shown): its
   * inputSchema's (limit tool), or the tool's as offered to a model (limit server).
   */
  schema_bytes?: number;
  schema_cap?: number;
  schema_limit?: "tool" | "server";
}

export interface McpServerStatus {
  server: string;
  /** The url of a remote server, the command of a stdio one. */
  endpoint: string;
  transport: "http" | "stdio";
  state: "approved" | "not_approved" | "unreachable";
  /** The hosts the config lets it reach (a stdio server's `network`): what approving it covers. */
  network: string[];
  /** How much of the goal's /workspace it sees (none, ro, rw): approving it covers that too. */
  workspace: WorkspaceAccess;
  /**
   * A remote server's headers: header -> the NAME of the daemon's environment variable whose
   * value it is sent (never the value). Approving it covers which secrets it gets.
   */
  headers: Record<string, string>;
  approved_at?: string;
  /** There is an approval, but it does not cover the server as configured now: why. */
  approval_stale?: string;
  /**
   * The server was not contacted: a remote server whose headers (the daemon's secrets) no
   * approval of its url covers is sent them only when the operator asks (mcp.list
   * send_headers, which `aido mcp approve` sets after showing them).
   */
  not_contacted?: string;
  error?: string;
  tools: McpToolStatus[];
}

/** What a server's status is read with. */
export interface StatusContext {
  pins: McpPins;
  /** The value of a header's environment variable (config.mcp.headerValue). */
  headerValue(variable: string): string | undefined;
  /** Run `fn` over a connection of its own, outside any goal (McpServers' probe). */
  probe<T>(server: McpServerConfig, fn: (conn: McpConnection) => Promise<T>): Promise<T>;
  /** Contact a remote server whose headers no approval covers (the operator saw them). */
  sendHeaders: boolean;
}

/** The server's pins, when they still cover its config (its identity, its network). */
export function currentPins(pins: McpPins, server: McpServerConfig): ServerPins | undefined {
  const p = pins.get(server.name);
  return p && approvalMismatch(p, server) === undefined ? p : undefined;
}

/**
 * The server's status: its tools as it lists them now against the pins, or, unreachable,
 * the pinned tools with the error.
 */
export async function serverStatus(server: McpServerConfig, ctx: StatusContext): Promise<McpServerStatus> {
  const pins = currentPins(ctx.pins, server);
  const stored = pins ? undefined : ctx.pins.get(server.name);
  const stale = stored && approvalMismatch(stored, server);
  const base = {
    server: server.name,
    endpoint: server.transport === "http" ? server.url : server.command.join(" "),
    transport: server.transport,
    network: serverNetwork(server),
    workspace: serverWorkspace(server),
    headers: serverHeaders(server),
    ...(pins ? { approved_at: pins.approvedAt } : {}),
    ...(stale ? { approval_stale: stale } : {}),
  };
  if (
    server.transport === "http" &&
    Object.keys(server.headers).length > 0 &&
    !ctx.sendHeaders &&
    !headersApproved(pins ?? stored, server)
  ) {
    try {
      headerValues(server, ctx.headerValue); // a variable not set is said now
    } catch (e) {
      return { ...base, state: "unreachable", error: errorMessage(e), tools: [] };
    }
    return {
      ...base,
      state: "not_approved",
      not_contacted: `not contacted: its headers (${headersShown(serverHeaders(server))}) are sent to ${server.url} only once the operator has seen them; aido mcp approve ${server.name} shows them and asks first`,
      tools: [],
    };
  }
  try {
    return await ctx.probe(server, async (conn) => {
      const tools: McpToolStatus[] = [];
      for (const live of conn.tools.values()) {
        const pin = pins?.tools.get(live.name);
        const hash = definitionHash(live);
        if (!pin) tools.push({ ...toolStatus(server, live, "new"), hash });
        else if (pin.hash === hash)
          tools.push({ ...toolStatus(server, live, "approved"), hash, pinned_hash: pin.hash });
        else
          tools.push({
            ...toolStatus(server, live, "changed"),
            hash,
            pinned_hash: pin.hash,
            diff: definitionDiff(pin.definition, live),
          });
      }
      for (const t of conn.oversized.values()) {
        const pin = pins?.tools.get(t.name);
        tools.push({ ...tooLargeStatus(server, t), ...(pin ? { pinned_hash: pin.hash } : {}) });
      }
      for (const [name, pin] of pins?.tools ?? []) {
        if (!conn.tools.has(name) && !conn.oversized.has(name))
          tools.push({ ...toolStatus(server, pin.definition, "removed"), pinned_hash: pin.hash });
      }
      tools.sort((a, b) => a.name.localeCompare(b.name));
      return { ...base, state: pins ? ("approved" as const) : ("not_approved" as const), tools };
    });
  } catch (e) {
    const tools = [...(pins?.tools.values() ?? [])].map((p) => toolStatus(server, p.definition, "approved"));
    return { ...base, state: "unreachable", error: errorMessage(e), tools };
  }
}

/** A tool over a schema size cap, as listed: its size, not its (large) schema. */
function tooLargeStatus(server: McpServerConfig, t: OversizedTool): McpToolStatus {
  return {
    name: t.name,
    state: "too_large",
    description: "",
    input_schema: {},
    read_only: isReadOnly(server, t.name),
    schema_bytes: t.bytes,
    schema_cap: t.cap,
    schema_limit: t.limit,
  };
}

function toolStatus(server: McpServerConfig, d: McpToolDefinition, state: McpToolState): McpToolStatus {
  return {
    name: d.name,
    state,
    description: d.description,
    input_schema: d.inputSchema,
    read_only: isReadOnly(server, d.name),
    ...(d.annotations ? { annotations: d.annotations } : {}),
  };
}
