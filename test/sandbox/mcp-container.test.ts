// External stdio MCP servers in containers of their own: the three reference servers
// (filesystem, memory, everything) run on the sandbox image's node from a read-only mount
// of this checkout's node_modules, spoken to by the SDK's own Client over the container
// transport; then the lifecycle: stop() removes the container (twice is harmless), a
// goal's servers go with the goal, and the sweep removes the ones no process speaks to.

import { execFileSync } from "node:child_process";
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { goalFolders } from "../../src/sandbox/folders.js";
import type { McpServerContainer, McpServerSpec } from "../../src/sandbox/mcp-container.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const NODE_MODULES = realpathSync(join(process.cwd(), "node_modules"));
const MOUNT = { source: NODE_MODULES, target: "/opt/mcp/node_modules" };
const SERVERS = "/opt/mcp/node_modules/@modelcontextprotocol";

let fx: SandboxFixture;
let seq = 0;
/** A goal id of this suite's own (container names begin aido-mcp-mcprun-). */
const goal = (what: string) => `mcprun-${what}-${process.pid}-${++seq}`;

beforeAll(() => {
  fx = makeSandboxFixture();
});
afterAll(async () => {
  await fx?.cleanup();
});

function containerExists(nameOrId: string): boolean {
  try {
    execFileSync("docker", ["inspect", nameOrId], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

async function connect(spec: McpServerSpec): Promise<{ server: McpServerContainer; client: Client }> {
  const server = await fx.backend.startMcpServer(spec);
  const client = new Client({ name: "aido-test", version: "1.0.0" });
  await client.connect(server.transport, { timeout: 20_000 });
  return { server, client };
}

function text(result: Awaited<ReturnType<Client["callTool"]>>): string {
  const content = result.content as { type: string; text?: string }[];
  return content.map((c) => c.text ?? "").join("");
}

describe("the reference servers in containers", () => {
  it("runs server-filesystem over the goal's /workspace: lists its tools, reads and writes", async () => {
    const goalId = goal("fs");
    const workspace = goalFolders(fx.config.goalsDir, goalId).workspace;
    const { server, client } = await connect({
      goalId,
      server: "files",
      command: ["node", `${SERVERS}/server-filesystem/dist/index.js`, "/workspace"],
      workspace: "rw",
      mounts: [MOUNT],
    });
    writeFileSync(join(workspace, "from-host.txt"), "written on the host\n");
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["read_text_file", "write_file", "list_directory"]));
    const read = await client.callTool({
      name: "read_text_file",
      arguments: { path: "/workspace/from-host.txt" },
    });
    expect(text(read)).toBe("written on the host\n");
    const wrote = await client.callTool({
      name: "write_file",
      arguments: { path: "/workspace/from-server.txt", content: "written by the server" },
    });
    expect(wrote.isError).toBeFalsy();
    expect(readFileSync(join(workspace, "from-server.txt"), "utf8")).toBe("written by the server");
    await client.close();
    expect(containerExists(server.containerId)).toBe(false);
  });

  it("runs server-memory with its file under /tmp: entities stored and read back", async () => {
    const { server, client } = await connect({
      goalId: goal("memory"),
      server: "memory",
      command: ["node", `${SERVERS}/server-memory/dist/index.js`],
      env: { MEMORY_FILE_PATH: "/tmp/memory.jsonl" },
      workspace: "none",
      mounts: [MOUNT],
    });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["create_entities", "read_graph"]));
    await client.callTool({
      name: "create_entities",
      arguments: { entities: [{ name: "aido", entityType: "runtime", observations: ["runs agents"] }] },
    });
    const graph = JSON.parse(text(await client.callTool({ name: "read_graph", arguments: {} })));
    expect(graph.entities).toEqual([{ name: "aido", entityType: "runtime", observations: ["runs agents"] }]);
    expect(server.stderrTail()).toContain("Knowledge Graph MCP Server running on stdio");
    await server.stop();
    await server.stop();
    expect(containerExists(server.containerId)).toBe(false);
  });

  it("runs server-everything with `stdio`: echo answers", async () => {
    const { server, client } = await connect({
      goalId: goal("every"),
      server: "everything",
      command: ["node", `${SERVERS}/server-everything/dist/index.js`, "stdio"],
      workspace: "none",
      mounts: [MOUNT],
    });
    expect(client.getServerVersion()?.name).toMatch(/everything/);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("echo");
    const echoed = await client.callTool({ name: "echo", arguments: { message: "hello from the host" } });
    expect(text(echoed)).toContain("hello from the host");
    await server.stop();
    expect(containerExists(server.containerId)).toBe(false);
  });
});
