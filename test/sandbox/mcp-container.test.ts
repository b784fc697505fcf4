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
import { isAidoError } from "../../src/errors.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import { goalFolders } from "../../src/sandbox/folders.js";
import {
  type McpServerContainer,
  type McpServerSpec,
  mcpContainerName,
  stopMcpContainersOfGoal,
} from "../../src/sandbox/mcp-container.js";
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

describe("a server's container", () => {
  it("has the lockdown of a goal's container, its limits only ever lower than the config's", async () => {
    const server = await fx.backend.startMcpServer({
      goalId: goal("locked"),
      server: "everything",
      command: ["node", `${SERVERS}/server-everything/dist/index.js`, "stdio"],
      workspace: "none",
      mounts: [MOUNT],
      limits: { memoryMb: 128, pids: 1_000_000 },
    });
    const info = JSON.parse(execFileSync("docker", ["inspect", server.containerId], { encoding: "utf8" }))[0];
    const host = info.HostConfig;
    expect(host.NetworkMode).toBe("none");
    expect(host.CapDrop).toEqual(["ALL"]);
    expect(host.SecurityOpt).toContain("no-new-privileges");
    expect(host.ReadonlyRootfs).toBe(true);
    expect(Object.keys(host.Tmpfs)).toEqual(["/tmp"]);
    expect(host.Init).toBe(true);
    expect(host.Memory).toBe(128 * 1024 * 1024);
    expect(host.PidsLimit).toBe(fx.config.sandbox.pids);
    expect(host.NanoCpus).toBe(Math.round(fx.config.sandbox.cpus * 1e9));
    expect(host.Mounts).toEqual([
      expect.objectContaining({ Target: "/opt/mcp/node_modules", ReadOnly: true }),
    ]);
    expect(info.Config.User).not.toMatch(/^0?(:|$)/);
    expect(info.Config.Tty).toBe(false);
    expect(info.Config.Entrypoint).toEqual(["node", `${SERVERS}/server-everything/dist/index.js`, "stdio"]);
    await server.stop();
  });
});

describe("a server's lifetime", () => {
  const memory = (goalId: string): McpServerSpec => ({
    goalId,
    server: "memory",
    command: ["node", `${SERVERS}/server-memory/dist/index.js`],
    env: { MEMORY_FILE_PATH: "/tmp/memory.jsonl" },
    workspace: "none",
    mounts: [MOUNT],
  });

  it("goes with its goal: remove() closes the goal's servers, and no new one starts for it", async () => {
    const goalId = goal("retired");
    const { server, client } = await connect(memory(goalId));
    const other = await fx.backend.startMcpServer({ ...memory(goalId), server: "memory-two" });
    let closed = false;
    client.onclose = () => {
      closed = true;
    };
    await fx.backend.remove(goalId);
    expect(closed).toBe(true);
    expect(containerExists(server.containerId)).toBe(false);
    expect(containerExists(other.containerId)).toBe(false);
    const err = await fx.backend.startMcpServer(memory(goalId)).catch((e) => e);
    expect(isAidoError(err, "sandbox_failed")).toBe(true);
    expect(err.message).toMatch(/removed when the goal ended/);
  });

  it("is not started twice for one goal: the second start would cut the first one's client off", async () => {
    const goalId = goal("twice");
    const [first, second] = await Promise.allSettled([
      fx.backend.startMcpServer(memory(goalId)),
      fx.backend.startMcpServer(memory(goalId)),
    ]);
    expect(first.status).toBe("fulfilled");
    expect(second.status === "rejected" && second.reason.message).toMatch(
      /MCP server "memory" of goal mcprun-twice-.* is running already; stop it before starting it again/,
    );
    const server = (first as PromiseFulfilledResult<McpServerContainer>).value;
    const client = new Client({ name: "aido-test", version: "1.0.0" });
    await client.connect(server.transport, { timeout: 20_000 });
    await expect(fx.backend.startMcpServer(memory(goalId))).rejects.toThrow(/is running already/);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await server.stop();
    const again = await fx.backend.startMcpServer(memory(goalId));
    await again.stop();
  });

  it("is swept once its goal is not live, and kept while it is", async () => {
    const goalId = goal("swept");
    const { server } = await connect(memory(goalId));
    const kept = await fx.backend.gc({ isGoalLive: (g) => g === goalId });
    expect(kept.removedContainers).toEqual([]);
    expect(containerExists(server.containerId)).toBe(true);
    const swept = await fx.backend.gc({ isGoalLive: () => false });
    expect(swept.removedContainers).toEqual([
      {
        name: mcpContainerName(goalId, "memory"),
        containerId: server.containerId,
        goalId,
        mcpServer: "memory",
        reason: "orphan",
      },
    ]);
    expect(containerExists(server.containerId)).toBe(false);
  });

  it("is swept as expired when it stopped past its TTL, so that its goal ends", async () => {
    // The stopped check came first: one the engine (or its own exit) stopped was "stopped",
    // and its goal went on past the TTL.
    const goalId = goal("stopped-expired");
    const { server } = await connect(memory(goalId));
    execFileSync("docker", ["stop", "-t", "0", server.containerId], { stdio: "ignore" });
    const later = Math.floor(Date.now() / 1000) + fx.config.sandbox.ttlSeconds + 60;
    const report = await fx.backend.gc({ isGoalLive: () => true, nowSeconds: later });
    expect(report.removedContainers).toEqual([
      expect.objectContaining({ goalId, mcpServer: "memory", reason: "expired" }),
    ]);
    expect(containerExists(server.containerId)).toBe(false);
  });

  it("is swept by a process that does not speak to it (a restarted daemon), even for a live goal", async () => {
    const goalId = goal("restart");
    const { server } = await connect(memory(goalId));
    const restarted = new DockerBackend(fx.config, { labels: { "aido.test": "sandbox" } });
    const report = await restarted.gc({ isGoalLive: () => true });
    expect(report.removedContainers).toEqual([
      expect.objectContaining({ goalId, mcpServer: "memory", reason: "orphan" }),
    ]);
    expect(containerExists(server.containerId)).toBe(false);
    await restarted.close();
  });

  it("goes when the backend closes: nothing else could speak to it", async () => {
    const backend = new DockerBackend(fx.config, { labels: { "aido.test": "sandbox" } });
    const server = await backend.startMcpServer(memory(goal("closed")));
    await backend.close();
    expect(containerExists(server.containerId)).toBe(false);
  });

  it("are removed by goal id, and no other goal's", async () => {
    const a = goal("list-a");
    const b = goal("list-b");
    await fx.backend.startMcpServer(memory(a));
    const keep = await fx.backend.startMcpServer(memory(b));
    expect(await stopMcpContainersOfGoal(fx.backend.docker, fx.backend.runtimeId, a)).toEqual([
      mcpContainerName(a, "memory"),
    ]);
    expect(containerExists(mcpContainerName(a, "memory"))).toBe(false);
    expect(containerExists(keep.containerId)).toBe(true);
    await keep.stop();
  });
});
