// cli/commands/mcp.ts — `aido mcp serve`: Aido as an MCP server (src/mcp/). Over stdio
// (default), one MCP session; with --http, Streamable HTTP on loopback with a bearer
// token, one daemon session per MCP session. Each session's principal is a daemon
// session (session.open) with the shipped manifests/mcp-session.yaml or --manifest FILE,
// optionally working in the host folder --workspace DIR. The daemon is started detached
// when nothing listens. stdout belongs to the protocol: diagnostics go to stderr.

import { resolve } from "node:path";
import { clientConfig, currentLaunch, MCP_CLIENTS, type McpClientName } from "../../mcp/client-config.js";
import { DEFAULT_IDLE_SECONDS, DEFAULT_PORT, serveHttp } from "../../mcp/http.js";
import { serveStdio } from "../../mcp/stdio.js";
import { type Command, parseCommandArgs, printJson, UsageError } from "../command.js";
import { commandSpec } from "./index.js";

export const mcpServe: Command = {
  ...commandSpec("mcp serve"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      {
        workspace: { type: "string" },
        manifest: { type: "string" },
        "allow-approve": { type: "boolean" },
        http: { type: "boolean" },
        port: { type: "string" },
        host: { type: "string" },
        "allow-remote": { type: "boolean" },
        "idle-timeout": { type: "string" },
      },
      false,
    );
    const httpOnly = [values.port, values.host, values["allow-remote"], values["idle-timeout"]];
    if (!values.http && httpOnly.some((v) => v !== undefined)) {
      throw new UsageError(
        `aido mcp serve: --port, --host, --allow-remote and --idle-timeout go with --http\nusage: ${this.usage}`,
      );
    }
    const idle = values["idle-timeout"] === undefined ? DEFAULT_IDLE_SECONDS : Number(values["idle-timeout"]);
    if (!Number.isFinite(idle) || idle <= 0) {
      throw new UsageError(
        `aido mcp serve: --idle-timeout must be a positive number of seconds, got "${values["idle-timeout"]}"`,
      );
    }
    const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UsageError(`aido mcp serve: --port must be a port number (0-65535), got "${values.port}"`);
    }
    const config = await ctx.config();
    const common = {
      config,
      env: { ...ctx.env, AIDO_HOME: config.home },
      allowApprove: values["allow-approve"] === true,
      ...(values.workspace !== undefined ? { workspace: resolve(values.workspace) } : {}),
      ...(values.manifest !== undefined ? { manifestFile: resolve(values.manifest) } : {}),
      log: (m: string) => ctx.io.err(`aido mcp: ${m}`),
    };
    if (!values.http) return serveStdio(common);
    const server = await serveHttp({
      ...common,
      host: values.host ?? "127.0.0.1",
      port,
      allowRemote: values["allow-remote"] === true,
      idleMs: idle * 1000,
    });
    await new Promise<void>((done) => {
      process.once("SIGINT", done);
      process.once("SIGTERM", done);
    });
    await server.close();
    return 0;
  },
};

export const mcpConfig: Command = {
  ...commandSpec("mcp config"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, { workspace: { type: "string" } });
    const client = positionals[0];
    if (positionals.length !== 1 || !MCP_CLIENTS.includes(client as McpClientName)) {
      throw new UsageError(
        `aido mcp config: name one client: ${MCP_CLIENTS.join(", ")}\nusage: ${this.usage}`,
      );
    }
    const home = ctx.env.AIDO_HOME;
    printJson(
      ctx.io,
      clientConfig(client as McpClientName, currentLaunch(process.argv[1] ?? ""), {
        ...(values.workspace !== undefined ? { workspace: values.workspace } : {}),
        ...(home ? { aidoHome: home } : {}),
      }),
    );
    return 0;
  },
};
