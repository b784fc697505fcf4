// tools/mcp/connection.ts — one live MCP client session with an external server: connect
// (Streamable HTTP with headers from the daemon's environment, or stdio in the server's own
// container, sandbox/mcp-container.ts), initialize, tools/list (every
// page), a fresh list whenever the server sends notifications/tools/list_changed, tool
// calls, close. Every request is capped by the server's timeout_ms, and every answer of a
// remote server by MAX_MESSAGE_BYTES.
// Header values are secrets: read from the environment variable the operator named at
// connect, sent, and never written anywhere. An error a library raises could quote a
// header, so every message leaving this module has the values cut out (`redact`).

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import type { Config, McpServerConfig } from "../../config.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import type { McpServerContainer } from "../../sandbox/mcp-container.js";
import { MAX_MESSAGE_BYTES } from "../../sandbox/mcp-transport.js";
import { definitionOf, type McpToolDefinition } from "./definitions.js";

/** What connecting needs besides the server's config. */
export interface ConnectDeps {
  headerValue: Config["mcp"]["headerValue"];
  /** Start a stdio server's container (for a goal, or a probe's pseudo-goal). */
  startStdio(server: Extract<McpServerConfig, { transport: "stdio" }>): Promise<McpServerContainer>;
}

/**
 * fetch for a remote server, each response's body cut off past MAX_MESSAGE_BYTES (the cap
 * the stdio transport puts on one message): the SDK reads a JSON answer whole, so a server
 * streaming gigabytes would otherwise fill the daemon's memory.
 */
async function boundedFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  if (!res.body) return res;
  let seen = 0;
  const body = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        seen += chunk.byteLength;
        if (seen > MAX_MESSAGE_BYTES)
          out.error(new Error(`it sent a response larger than ${MAX_MESSAGE_BYTES} bytes; it was cut off`));
        else out.enqueue(chunk);
      },
    }),
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** At most this many tools/list pages are read (a server cannot page forever). */
const MAX_PAGES = 20;

export class McpConnection {
  readonly server: McpServerConfig;
  private readonly client: Client;
  private readonly secrets: readonly string[];
  private readonly container: McpServerContainer | undefined;
  private live: Map<string, McpToolDefinition> = new Map();
  private closed = false;

  private constructor(
    server: McpServerConfig,
    client: Client,
    secrets: readonly string[],
    container: McpServerContainer | undefined,
  ) {
    this.server = server;
    this.client = client;
    this.secrets = secrets;
    this.container = container;
  }

  /** Connect, initialize and list the tools; an unreachable server is a sandbox_unavailable error. */
  static async open(server: McpServerConfig, deps: ConnectDeps): Promise<McpConnection> {
    if (server.transport === "stdio") {
      const container = await deps.startStdio(server);
      return McpConnection.start(server, container.transport, [], container);
    }
    const headers: Record<string, string> = {};
    for (const [header, variable] of Object.entries(server.headers)) {
      const value = deps.headerValue(variable);
      if (value === undefined || value === "") {
        throw new AidoError(
          ErrorCode.configInvalid,
          `MCP server ${server.name}: header ${header} is read from the environment variable ${variable}, which is not set in the daemon's environment`,
          { server: server.name, header, variable },
        );
      }
      headers[header] = value;
    }
    const transport = new StreamableHTTPClientTransport(new URL(server.url), {
      requestInit: { headers, redirect: "error" },
      fetch: boundedFetch,
    });
    return McpConnection.start(server, transport, Object.values(headers), undefined);
  }

  private static async start(
    server: McpServerConfig,
    transport: Transport,
    secrets: readonly string[],
    container: McpServerContainer | undefined,
  ): Promise<McpConnection> {
    const client = new Client({ name: "aido", version: "1" });
    const conn = new McpConnection(server, client, secrets, container);
    try {
      await client.connect(transport, { timeout: server.timeoutMs });
      await conn.refresh();
    } catch (e) {
      await conn.close();
      throw conn.failure("cannot be reached", e);
    }
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      // A list that cannot be read now leaves the last one: the gate compares each call's
      // definition with its pin anyway.
      await conn.refresh().catch(() => undefined);
    });
    return conn;
  }

  /** The tools the server offers now, by name (as of the last tools/list). */
  get tools(): ReadonlyMap<string, McpToolDefinition> {
    return this.live;
  }

  /** tools/list again, every page. */
  async refresh(): Promise<void> {
    const next = new Map<string, McpToolDefinition>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const r = await this.client.listTools(cursor === undefined ? {} : { cursor }, {
        timeout: this.server.timeoutMs,
      });
      for (const t of r.tools) next.set(t.name, definitionOf(t));
      cursor = r.nextCursor;
      if (cursor === undefined) break;
    }
    this.live = next;
  }

  /** tools/call; a transport or protocol failure is a tool_failed error (its text redacted). */
  async call(tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    try {
      return (await this.client.callTool({ name: tool, arguments: args }, undefined, {
        timeout: this.server.timeoutMs,
        ...(signal ? { signal } : {}),
      })) as CallToolResult;
    } catch (e) {
      throw this.failure(`failed the call of ${tool}`, e, ErrorCode.toolFailed);
    }
  }

  /** Close the session; a stdio server's container is removed with it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close().catch(() => undefined);
    await this.container?.stop();
  }

  /** `text` with every header value cut out. */
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (s.length > 0) out = out.split(s).join("[redacted]");
    return out;
  }

  private failure(what: string, e: unknown, code: ErrorCode = ErrorCode.sandboxUnavailable): AidoError {
    return new AidoError(code, `MCP server ${this.server.name} ${what}: ${this.redact(errorMessage(e))}`, {
      server: this.server.name,
    });
  }
}
