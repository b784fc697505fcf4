// test/mcp/fixture.ts — an MCP client (the SDK's own Client) on `aido mcp serve`,
// launched through the real CLI entry point as an MCP client launches it
// (StdioClientTransport spawning the process), in front of a real daemon on a temp
// AIDO_HOME with real Docker containers. A project folder outside AIDO_HOME is the
// session's workspace. Everything is removed after each test.

import { type ChildProcess, spawn } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  type ElicitRequest,
  ElicitRequestSchema,
  type ElicitResult,
} from "@modelcontextprotocol/sdk/types.js";
import type { Config } from "../../src/config.js";
import { type DaemonFixture, useDaemonPerTest } from "../daemon/fixture.js";
import { until as untilValue } from "../daemon/process.js";
import { containersOfHome } from "../support/home.js";
import type { ProviderServer } from "../support/provider-server.js";

export const CLI = join(import.meta.dirname, "..", "..", "src", "cli", "main.ts");

/** Wait until `cond` holds. */
export const until = (cond: () => boolean | Promise<boolean>, ms = 10_000) =>
  untilValue(async () => ((await cond()) ? true : undefined), ms);

export interface McpSuite {
  readonly fx: DaemonFixture;
  /** The file's scripted provider server. */
  readonly server: ProviderServer;
  /** The session's project folder (README.md inside), writable by the container user. */
  readonly project: string;
  /** Start the daemon (real Docker) and make the project folder; `config` changes the daemon's own configuration only. */
  start(opts?: { config?: (c: Config) => void }): Promise<DaemonFixture>;
  /**
   * `aido mcp serve --workspace <project>` with an SDK client; elicit set = the client declares
   * elicitation; workspace: another project folder than the suite's.
   */
  connect(opts?: {
    elicit?: (req: ElicitRequest) => Promise<ElicitResult>;
    args?: string[];
    workspace?: string;
  }): Promise<Client>;
  /** `aido mcp serve --http --port 0 --workspace <project>` as a child process; resolves with its URL. */
  serveHttp(args?: string[]): Promise<{ url: string; child: ChildProcess }>;
  /** This home's containers, running or not. */
  containers(): string[];
  /** What the server wrote to stderr. */
  stderr(): string;
}

export function useMcpSuite(): McpSuite {
  let project: string | undefined;
  let scratch: string | undefined;
  const clients: Client[] = [];
  const children: ChildProcess[] = [];
  let errText = "";
  const suite = useDaemonPerTest({
    beforeClose: async () => {
      for (const c of clients.splice(0)) await c.close().catch(() => {});
      for (const child of children.splice(0)) {
        if (child.exitCode !== null || child.signalCode !== null) continue;
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
    },
    afterEach: () => {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
      scratch = undefined;
      project = undefined;
      errText = "";
    },
  });
  const childEnv = () => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...suite.fx.home.env })) {
      if (typeof v === "string") env[k] = v;
    }
    return env;
  };
  const self: McpSuite = {
    get fx() {
      return suite.fx;
    },
    get server() {
      return suite.server;
    },
    get project() {
      if (!project) throw new Error("start() first");
      return project;
    },
    async start(opts = {}) {
      scratch = mkdtempSync(join(tmpdir(), "aido-mcp-project-"));
      project = join(scratch, "repo");
      mkdirSync(project);
      writeFileSync(join(project, "README.md"), "the user's project\n");
      if (process.getuid?.() === 0) {
        chownSync(project, 1000, 1000);
        chownSync(join(project, "README.md"), 1000, 1000);
      }
      return suite.start({
        runtime: { backend: undefined },
        ...(opts.config ? { config: opts.config } : {}),
      });
    },
    async serveHttp(args = []) {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          CLI,
          "mcp",
          "serve",
          "--http",
          "--port",
          "0",
          "--workspace",
          self.project,
          ...args,
        ],
        { env: childEnv(), stdio: ["ignore", "ignore", "pipe"] },
      );
      children.push(child);
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr?.on("data", (d: Buffer) => {
          errText += d.toString();
          const m = /serving MCP on (\S+)/.exec(errText);
          if (m?.[1]) resolve(m[1]);
        });
        child.once("exit", (code) => reject(new Error(`aido mcp serve --http exited ${code}: ${errText}`)));
      });
      return { url, child };
    },
    async connect(opts = {}) {
      const env = childEnv();
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [
          "--import",
          "tsx",
          CLI,
          "mcp",
          "serve",
          "--workspace",
          opts.workspace ?? self.project,
          ...(opts.args ?? []),
        ],
        env,
        stderr: "pipe",
      });
      transport.stderr?.on("data", (d: Buffer) => {
        errText += d.toString();
      });
      const client = new Client(
        { name: "aido-test-client", version: "1.0.0" },
        { capabilities: opts.elicit ? { elicitation: { form: {} } } : {} },
      );
      if (opts.elicit) {
        const elicit = opts.elicit;
        client.setRequestHandler(ElicitRequestSchema, (req) => elicit(req));
      }
      await client.connect(transport);
      clients.push(client);
      return client;
    },
    containers: () => containersOfHome(suite.fx.home.config.home),
    stderr: () => errText,
  };
  return self;
}

/**
 * An elicitation handler that records each form's text in `asked` and answers `decide`: every
 * form when it is one decision, each form the next of the list when a list (then "deny").
 */
export function answering(asked: string[], decide: string | string[]) {
  const queue = Array.isArray(decide) ? [...decide] : undefined;
  return async (req: ElicitRequest): Promise<ElicitResult> => {
    asked.push((req.params as { message: string }).message);
    return { action: "accept", content: { decision: queue ? (queue.shift() ?? "deny") : decide } };
  };
}

/** The text of a tools/call result. */
export function textOf(r: unknown): string {
  const content = ((r as { content?: unknown }).content ?? []) as { type: string; text?: string }[];
  return content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
}

/**
 * An HTTP forwarder to `target` that adds the bearer token, for a client that cannot send
 * one (the conformance suite). A Host or Origin naming the forwarder itself is rewritten
 * to the server's; any other one passes unchanged, so the server still judges it.
 */
export async function bearerForwarder(
  target: string,
  token: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const t = new URL(target);
  const srv = createServer((req, res) => {
    const port = (srv.address() as AddressInfo).port;
    const own = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    if (own.has(String(headers.host))) headers.host = t.host;
    const origin = String(headers.origin ?? "").replace(/^http:\/\//, "");
    if (own.has(origin)) headers.origin = `http://${t.host}`;
    const up = request(
      { host: t.hostname, port: t.port, path: req.url, method: req.method, headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}${t.pathname}`,
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}
