// test/support/mcp-remote-server.ts — an external MCP server made in the test with the
// official SDK (its low-level Server) behind Streamable HTTP on loopback, over one tool
// table the test owns and may change between calls (a malicious server rewriting a tool's
// description after approval). Stateless by default (every POST a fresh server); with
// `sessions`, clients keep a session and `toolsChanged()` sends them
// notifications/tools/list_changed. It records what it received: each call's arguments,
// each request's headers, and each call the client cancelled (notifications/cancelled,
// which reaches a tool through its signal: with sessions) and how many tools/list requests
// it answered; `hold` makes it slow to answer.

import { randomUUID } from "node:crypto";
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";

export type ToolHandler = (
  args: Record<string, unknown>,
  /** Aborted when the client cancels the call (or the session closes). */
  extra: { signal: AbortSignal },
) => CallToolResult | Promise<CallToolResult>;

export interface RemoteMcpServer {
  url: string;
  /** The tools it lists, by name: change them at will. */
  tools: Map<string, { def: Tool; run: ToolHandler }>;
  /** Every tools/call it received. */
  calls: { name: string; args: Record<string, unknown> }[];
  /** Every call the client cancelled while it ran, with the reason notifications/cancelled gave. */
  cancelled: { name: string; reason: string }[];
  /** The headers of every HTTP request it received. */
  headers: IncomingMessage["headers"][];
  /** How many tools/list requests it received. */
  lists(): number;
  /** With sessions: tell every connected client the tool list changed (`times` over, at once). */
  toolsChanged(times?: number): Promise<void>;
  /** Hold every request from now on for `ms` before handling it (0: no more, and the held go on). */
  hold(ms: number): void;
  close(): Promise<void>;
}

/** An echo tool: `{text}` -> the same text back. */
export function echoTool(description = "Echo the text back."): { def: Tool; run: ToolHandler } {
  return {
    def: {
      name: "echo",
      description,
      inputSchema: {
        type: "object",
        properties: { text: { type: "string", maxLength: 1000 } },
        required: ["text"],
        additionalProperties: false,
      },
    },
    run: (args) => ({ content: [{ type: "text", text: String(args.text) }] }),
  };
}

export async function startRemoteMcpServer(
  tools: { def: Tool; run: ToolHandler }[] = [echoTool()],
  opts: { sessions?: boolean } = {},
): Promise<RemoteMcpServer> {
  const table = new Map(tools.map((t) => [t.def.name, t]));
  const calls: RemoteMcpServer["calls"] = [];
  const cancelled: RemoteMcpServer["cancelled"] = [];
  const headers: RemoteMcpServer["headers"] = [];
  let lists = 0;
  const serverFor = () => {
    const s = new Server(
      { name: "test-remote", version: "1.0.0" },
      { capabilities: { tools: { listChanged: true } } },
    );
    s.setRequestHandler(ListToolsRequestSchema, async () => {
      lists++;
      return { tools: [...table.values()].map((t) => t.def) };
    });
    s.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
      const args = (req.params.arguments ?? {}) as Record<string, unknown>;
      calls.push({ name: req.params.name, args });
      // A cancellation's reason is the client's text; an abort because the session closed has none.
      extra.signal.addEventListener("abort", () => {
        const reason: unknown = extra.signal.reason;
        if (typeof reason === "string") cancelled.push({ name: req.params.name, reason });
      });
      const t = table.get(req.params.name);
      if (!t) return { content: [{ type: "text", text: `no tool ${req.params.name}` }], isError: true };
      return t.run(args, { signal: extra.signal });
    });
    return s;
  };

  const sessions = new Map<string, { server: Server; transport: StreamableHTTPServerTransport }>();
  const withSession = async (req: IncomingMessage, res: ServerResponse) => {
    const id = req.headers["mcp-session-id"];
    const known = typeof id === "string" ? sessions.get(id) : undefined;
    if (known) {
      await known.transport.handleRequest(req, res);
      return;
    }
    const server = serverFor();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => {
        sessions.set(sid, { server, transport });
      },
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };
  const stateless = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "POST") {
      res.writeHead(405).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    const server = serverFor();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  let holdMs = 0;
  /** Ends the holds under way: a long hold does not outlive the test that set it. */
  const held = new Set<() => void>();
  const release = () => {
    for (const go of held) go();
    held.clear();
  };
  const http: HttpServer = createServer(async (req, res) => {
    headers.push(req.headers);
    if (holdMs > 0)
      await new Promise<void>((r) => {
        const go = () => {
          clearTimeout(timer);
          held.delete(go);
          r();
        };
        const timer = setTimeout(go, holdMs);
        held.add(go);
      });
    await (opts.sessions ? withSession(req, res) : stateless(req, res));
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    tools: table,
    calls,
    cancelled,
    headers,
    hold: (ms) => {
      holdMs = ms;
      if (ms === 0) release();
    },
    lists: () => lists,
    toolsChanged: async (times = 1) => {
      for (const s of sessions.values())
        await Promise.all(Array.from({ length: times }, () => s.server.sendToolListChanged()));
    },
    close: async () => {
      release();
      for (const s of sessions.values()) await s.transport.close().catch(() => undefined);
      await new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      });
    },
  };
}
