// A goal's MCP server containers in the running runtime: they go where the goal's own
// container goes — when a goal run by the agent loop (real SDK, scripted provider) ends,
// and when an MCP session ends — a session's server sees the host folder the session
// bound as /workspace (read-only when the operator says "ro"), and at start-up the sweep
// removes the servers a dead process left (audited as sandbox.destroyed).

import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Runtime } from "../../src/kernel/runtime.js";
import { parseManifestValue } from "../../src/manifest/load.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import { LABEL } from "../../src/sandbox/docker-containers.js";
import type { McpServerSpec } from "../../src/sandbox/mcp-container.js";
import { providerEnv } from "../agent/harness.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";

const NODE_MODULES = realpathSync(join(process.cwd(), "node_modules"));
const FILESYSTEM = "/opt/mcp/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js";

let provider: ProviderServer;
let home: TempHome;
let rt: Runtime | undefined;
let project: string;

beforeAll(async () => {
  requireDocker();
  provider = await startProviderServer();
  home = makeTempHome(providerEnv(provider));
  project = mkdtempSync(join(tmpdir(), "mcprun-project-"));
  chmodSync(project, 0o755);
  writeFileSync(join(project, "README.md"), "the user's project\n");
  chmodSync(join(project, "README.md"), 0o644);
}, 60_000);
afterAll(async () => {
  await rt?.close();
  await provider?.close();
  home?.cleanup();
  if (project) rmSync(project, { recursive: true, force: true });
});

function files(goalId: string, workspace: McpServerSpec["workspace"]): McpServerSpec {
  return {
    goalId,
    server: "files",
    command: ["node", FILESYSTEM, "/workspace"],
    workspace,
    mounts: [{ source: NODE_MODULES, target: "/opt/mcp/node_modules" }],
  };
}

/** The runtime's MCP server containers of a goal, running or not. */
function serversOf(goalId: string): string[] {
  return execFileSync(
    "docker",
    [
      "ps",
      "-a",
      "--filter",
      `label=${LABEL.goal}=${goalId}`,
      "--filter",
      `label=${LABEL.mcpServer}`,
      "--format",
      "{{.Names}}",
    ],
    { encoding: "utf8" },
  )
    .split("\n")
    .filter(Boolean);
}

async function until(what: string, done: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("MCP server containers in the runtime", () => {
  it("are swept at start-up when a process that died left them, and the removal is audited", async () => {
    // A "dead daemon": a backend of the same home that started a server and never closed.
    const dead = new DockerBackend(home.config);
    const left = await dead.startMcpServer(files("g_left-behind", "none"));
    expect(serversOf("g_left-behind")).toEqual(["aido-mcp-g_left-behind-files"]);
    rt = await Runtime.open(home.config);
    expect(serversOf("g_left-behind")).toEqual([]);
    const destroyed = rt.audit.query({ goal_id: "g_left-behind", kind: "sandbox.destroyed" });
    expect(destroyed.map((e) => e.payload)).toEqual([
      { container_id: left.containerId, reason: expect.stringMatching(/^orphan: /), mcp_server: "files" },
    ]);
  }, 60_000);

  it("go when their goal ends (a goal run by the agent loop)", async () => {
    const live = rt as Runtime;
    // The goal waits on a human's approval while the test uses its server; then it ends.
    provider.script('manifest "mcp-user"', [turn.toolUse("exec", { command: "true" }), turn.text("done")]);
    const { goal_id: goalId } = live.goals.submit({
      goal: "use a server",
      manifest: {
        name: "mcp-user",
        system_prompt: "You use servers.",
        capabilities: ["tool: exec", "exec: true", "file_read: /workspace/**"],
        approval_required: ["exec"],
      },
    });
    await until("the goal waits for approval", () => live.approvals.list({ status: "pending" }).length === 1);
    const server = await live.backend.startMcpServer(files(goalId, "rw"));
    const client = new Client({ name: "aido-test", version: "1.0.0" });
    await client.connect(server.transport, { timeout: 20_000 });
    const listed = await client.callTool({ name: "list_directory", arguments: { path: "/workspace" } });
    expect(listed.isError).toBeFalsy();
    expect(serversOf(goalId)).toEqual([`aido-mcp-${goalId}-files`]);
    const [pending] = live.approvals.list({ status: "pending" });
    live.approvals.respond(pending?.id as string, "allow_once");
    expect((await live.goals.wait(goalId, 60_000)).state).toBe("succeeded");
    await until("the goal's server is gone", () => serversOf(goalId).length === 0);
  }, 90_000);

  it("of an MCP session see its bound project folder (read-only) and go when the session ends", async () => {
    const live = rt as Runtime;
    const manifest = parseManifestValue(
      { name: "session", system_prompt: "An MCP client's agent.", capabilities: ["tool: file_read"] },
      "test",
    );
    const session = live.sessions.open({ manifest, workspace: project });
    const goalId = live.registry.require(session.agent_id).goalId;
    const server = await live.backend.startMcpServer(files(goalId, "ro"));
    const client = new Client({ name: "aido-test", version: "1.0.0" });
    await client.connect(server.transport, { timeout: 20_000 });
    const read = await client.callTool({
      name: "read_text_file",
      arguments: { path: "/workspace/README.md" },
    });
    expect((read.content as { text: string }[])[0]?.text).toBe("the user's project\n");
    const wrote = await client.callTool({
      name: "write_file",
      arguments: { path: "/workspace/planted.txt", content: "x" },
    });
    expect(wrote.isError).toBe(true);
    expect((wrote.content as { text: string }[])[0]?.text).toMatch(/read-only file system|EROFS/i);
    live.sessions.close(session.session_id, "test over");
    await live.sessions.settled();
    await until("the session's server is gone", () => serversOf(goalId).length === 0);
  }, 60_000);
});
