// `aido mcp config CLIENT`: the JSON printed for each client launches a working server —
// the test takes what `aido mcp config claude-code` printed and starts the server exactly
// as the client would (command, args, env), then lists the session's tools.

import { spawnSync } from "node:child_process";
import { isAbsolute } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { beforeAll, describe, expect, it } from "vitest";
import { requireDocker } from "../support/docker.js";
import { CLI, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

interface Printed {
  mcpServers: { aido: { type?: string; command: string; args: string[]; env?: Record<string, string> } };
}

function printConfig(
  client: string,
  extra: string[] = [],
): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, "mcp", "config", client, ...extra], {
    env: { ...process.env, ...suite.fx.home.env },
    encoding: "utf8",
    timeout: 30_000,
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe("aido mcp config", () => {
  it("prints, for each client, a launch with absolute paths, the workspace and AIDO_HOME", async () => {
    await suite.start();
    for (const client of ["claude-code", "claude-desktop", "cursor"]) {
      const r = printConfig(client, ["--workspace", suite.project]);
      expect(r.status, r.err).toBe(0);
      const aido = (JSON.parse(r.out) as Printed).mcpServers.aido;
      expect(isAbsolute(aido.command)).toBe(true);
      expect(aido.args.slice(-4)).toEqual(["mcp", "serve", "--workspace", suite.project]);
      expect(aido.args.filter((a) => a.endsWith("main.ts") || a.endsWith("main.js")).every(isAbsolute)).toBe(
        true,
      );
      expect(aido.env).toEqual({ AIDO_HOME: suite.fx.home.config.home });
      expect(aido.type).toBe(client === "claude-code" ? "stdio" : undefined);
    }
    const bad = printConfig("vscode");
    expect(bad.status).toBe(2);
    expect(bad.err).toContain("claude-code, claude-desktop, cursor");
  });

  it("what it prints for claude-code launches a working server", async () => {
    await suite.start();
    const { mcpServers } = JSON.parse(
      printConfig("claude-code", ["--workspace", suite.project]).out,
    ) as Printed;
    const { command, args, env } = mcpServers.aido;
    const client = new Client({ name: "as-claude-code", version: "1" });
    await client.connect(
      new StdioClientTransport({
        command,
        args,
        env: { ...(env ?? {}), PATH: process.env.PATH ?? "" },
        stderr: "pipe",
      }),
    );
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain("file_read");
    await client.close();
  });
});
