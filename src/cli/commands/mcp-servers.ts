// cli/commands/mcp-servers.ts — the operator's view of the external MCP servers declared
// in config.yaml (tools/mcp/): `aido mcp list` shows each server, its tools, their pins
// and state (approved, changed with the diff, new, removed, too_large: over a
// size cap, never offered nor pinned; or the server unreachable),
// and `aido mcp approve SERVER` pins the definitions the server offers now, after showing
// them in full as a model would read them (description and input schema, invisible text
// removed: no part of what is pinned goes to a model unseen; annotations as the untrusted
// hints they are; on re-approval the diff of each changed tool) and asking on a terminal
// unless --yes, with the environment variables a remote server's headers are read from (the
// secrets it is sent: shown, and asked about, before they are first sent), the network entries a stdio server may reach and how much of the
// goal's workspace it sees (approved with its tools).
// The approval names the hashes the operator was shown, so a server that
// changes in between is refused, not pinned.
// Everything a server wrote is printed inert (security/terminal-text.ts).

import { inert, inertLines } from "../../security/terminal-text.js";
import { cleanDescription, visibleSchema } from "../../tools/mcp/definitions.js";
import { headersShown } from "../../tools/mcp/pins.js";
import type { McpServerStatus, McpToolStatus } from "../../tools/mcp/server-status.js";
import { type CliIo, type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

function describeTool(io: CliIo, t: McpToolStatus): void {
  const hash = t.hash ?? t.pinned_hash ?? "";
  io.out(
    `  ${inert(t.name)}  ${t.state}${t.read_only ? "  read-only (operator)" : "  needs approval per call"}  ${hash.slice(0, 12)}`,
  );
  if (t.state === "too_large") {
    // Never offered nor pinned: its size is what the operator needs, not a megabyte of schema.
    io.out(
      t.schema_limit === "server"
        ? `      not offered: it takes ${t.schema_bytes} bytes as offered to a model (name, description, inputSchema), past the cap of ${t.schema_cap} bytes for one server's tools in all`
        : `      not offered: its inputSchema is ${t.schema_bytes} bytes, over the cap of ${t.schema_cap} bytes per tool`,
    );
    return;
  }
  // What the model reads, in full: its description and its input schema, as cleaned for it.
  const description = cleanDescription(t.description);
  if (description !== "") for (const line of inertLines(description).split("\n")) io.out(`      ${line}`);
  const schema = JSON.stringify(visibleSchema(t.input_schema), null, 2);
  for (const line of inertLines(`input schema: ${schema}`).split("\n")) io.out(`      ${line}`);
  if (t.annotations)
    io.out(`      hints from the server (untrusted): ${inert(JSON.stringify(t.annotations))}`);
  if (t.diff) for (const line of inertLines(t.diff).split("\n")) io.out(`      ${line}`);
}

const WORKSPACE_SHOWN = {
  none: "none (not mounted)",
  ro: "ro (the goal's /workspace, read-only)",
  rw: "rw (the goal's /workspace, read-write)",
} as const;

function describeServer(io: CliIo, s: McpServerStatus): void {
  io.out(
    `${s.server}  ${s.state}  ${s.transport} ${inert(s.endpoint)}${s.approved_at ? `  approved ${s.approved_at}` : ""}`,
  );
  // What approving it covers besides its tools: which of the daemon's secrets a remote one
  // is sent; the hosts a stdio one may reach, the workspace it sees.
  if (s.transport === "http") io.out(`  headers: ${headersShown(s.headers)}`);
  if (s.transport === "stdio") {
    io.out(`  network: ${s.network.length > 0 ? s.network.join(", ") : "none (no network at all)"}`);
    io.out(`  workspace: ${WORKSPACE_SHOWN[s.workspace]}`);
  }
  if (s.approval_stale) io.out(`  earlier approval no longer holds: ${inert(s.approval_stale)}`);
  if (s.not_contacted) io.out(`  ${inert(s.not_contacted)}`);
  if (s.error) io.out(`  ${inert(s.error)}`);
  for (const t of s.tools) describeTool(io, t);
}

export const mcpList: Command = {
  ...commandSpec("mcp list"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, jsonOption);
    if (positionals.length > 1)
      throw new UsageError(`aido mcp list: at most one server\nusage: ${this.usage}`);
    const server = positionals[0];
    const { servers } = await withClient(ctx, (c) =>
      c.call("mcp.list", server === undefined ? {} : { server }),
    );
    if (values.json) {
      printJson(ctx.io, servers);
      return 0;
    }
    if (servers.length === 0) ctx.io.out("no MCP servers declared (mcp_servers in config.yaml)");
    for (const s of servers) describeServer(ctx.io, s);
    const pending = servers.filter(
      (s) => s.approval_stale || s.tools.some((t) => t.state === "changed" || t.state === "new"),
    );
    for (const s of pending) ctx.io.out(`review and approve with: aido mcp approve ${s.server}`);
    return 0;
  },
};

/** The operator's yes on a terminal; "nothing approved" on anything else. */
async function ask(io: CliIo, server: string, question: string): Promise<boolean> {
  if (!io.interactive || !io.prompt)
    throw new UsageError(
      `aido mcp approve: not a terminal; review with aido mcp list ${server} and pass --yes`,
    );
  const answer = (await io.prompt(question))?.trim().toLowerCase();
  if (answer === "y" || answer === "yes") return true;
  io.out("nothing approved");
  return false;
}

export const mcpApprove: Command = {
  ...commandSpec("mcp approve"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, {
      ...jsonOption,
      yes: { type: "boolean" },
    });
    const [server] = positionals;
    if (positionals.length !== 1 || server === undefined)
      throw new UsageError(`aido mcp approve: name one server\nusage: ${this.usage}`);
    return withClient(ctx, async (client) => {
      let shown = (await client.call("mcp.list", { server })).servers[0];
      if (!shown) throw new UsageError(`aido mcp approve: no server "${server}"`);
      if (shown.not_contacted && !shown.error) {
        // Which of the daemon's secrets it is sent, before anything is sent.
        if (!values.json) describeServer(ctx.io, shown);
        if (!values.yes) {
          const answer = await ask(
            ctx.io,
            server,
            `Send these headers to ${inert(shown.endpoint)} to list its tools? [y/N] `,
          );
          if (!answer) return 1;
        }
        shown = (await client.call("mcp.list", { server, send_headers: true })).servers[0];
        if (!shown) throw new UsageError(`aido mcp approve: no server "${server}"`);
      }
      if (shown.state === "unreachable") {
        ctx.io.err(`aido mcp approve: ${server} cannot be reached: ${inert(shown.error ?? "")}`);
        return 1;
      }
      if (!values.json) describeServer(ctx.io, shown);
      if (
        !values.yes &&
        !(await ask(
          ctx.io,
          server,
          `Approve these ${shown.tools.filter((t) => t.hash).length} tool definitions of ${server}? [y/N] `,
        ))
      )
        return 1;
      const expect = Object.fromEntries(shown.tools.flatMap((t) => (t.hash ? [[t.name, t.hash]] : [])));
      const approved = await client.call("mcp.approve", { server, expect });
      if (values.json) printJson(ctx.io, approved);
      else
        ctx.io.out(
          `${server}: approved ${approved.tools.filter((t) => t.state === "approved").length} tools`,
        );
      return 0;
    });
  },
};
