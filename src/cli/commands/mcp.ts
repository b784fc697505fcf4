// cli/commands/mcp.ts — `aido mcp serve`: Aido as an MCP server (src/mcp/). Over stdio,
// one MCP session whose principal is a daemon session (session.open) with the shipped
// manifests/mcp-session.yaml or --manifest FILE, optionally working in the host folder
// --workspace DIR. The daemon is started detached when nothing listens. stdout belongs
// to the protocol: every diagnostic goes to stderr.

import { resolve } from "node:path";
import { serveStdio } from "../../mcp/stdio.js";
import { type Command, parseCommandArgs } from "../command.js";

export const mcpServe: Command = {
  name: "mcp serve",
  summary: "serve Aido to an MCP client (Claude Code, Cursor, Claude Desktop) over stdio",
  usage: "aido mcp serve [--workspace DIR] [--manifest FILE] [--allow-approve]",
  example: "aido mcp serve --workspace ~/src/my-project",
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      {
        workspace: { type: "string" },
        manifest: { type: "string" },
        "allow-approve": { type: "boolean" },
      },
      false,
    );
    const config = ctx.config();
    return serveStdio({
      config,
      env: { ...process.env, AIDO_HOME: config.home },
      allowApprove: values["allow-approve"] === true,
      ...(values.workspace !== undefined ? { workspace: resolve(values.workspace) } : {}),
      ...(values.manifest !== undefined ? { manifestFile: resolve(values.manifest) } : {}),
      log: (m) => ctx.io.err(`aido mcp: ${m}`),
    });
  },
};
