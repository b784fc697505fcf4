// The reference MCP servers (@modelcontextprotocol/server-filesystem, server-memory,
// server-everything) as stdio servers in containers of their own (sandbox/mcp-container.ts),
// declared in the operator's config, approved over the socket, and called through the gate
// by agents: allowed (read-only by the operator's word), denied (no grant; a policy rule),
// and waiting for a human (every tool the operator did not mark read-only). Their code runs
// from a read-only mount of this checkout's node_modules. Their containers go with the goal.

import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import type { Config, McpServerConfig } from "../../src/config.js";
import type { ApprovalRecord } from "../../src/security/approvals.js";
import { manifest, rpcError, useDaemonPerTest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { containersOfHome } from "../support/home.js";

const NODE_MODULES = realpathSync(join(process.cwd(), "node_modules"));
const MOUNT = { source: NODE_MODULES, target: "/opt/mcp/node_modules" };
const SERVERS = "/opt/mcp/node_modules/@modelcontextprotocol";

beforeAll(() => requireDocker());
const suite = useDaemonPerTest();

function stdio(
  name: string,
  command: string[],
  extra: Partial<Extract<McpServerConfig, { transport: "stdio" }>> = {},
): McpServerConfig {
  return {
    name,
    transport: "stdio",
    command,
    env: {},
    workspace: "none",
    mounts: [MOUNT],
    readOnlyTools: [],
    timeoutMs: 60_000,
    ...extra,
  };
}

async function start(): Promise<{ c: AidoClient; human: AidoClient; home: string }> {
  const fx = await suite.start({
    runtime: { backend: undefined },
    config: (cfg: Config) => {
      cfg.mcp.servers = {
        files: stdio("files", ["node", `${SERVERS}/server-filesystem/dist/index.js`, "/workspace"], {
          workspace: "rw",
          readOnlyTools: ["read_text_file", "list_directory"],
        }),
        memory: stdio("memory", ["node", `${SERVERS}/server-memory/dist/index.js`], {
          env: { MEMORY_FILE_PATH: "/tmp/memory.jsonl" },
        }),
        // The same server with the workspace read-only, and the image named explicitly.
        "files-ro": stdio("files-ro", ["node", `${SERVERS}/server-filesystem/dist/index.js`, "/workspace"], {
          workspace: "ro",
          image: cfg.sandbox.image,
          readOnlyTools: ["*"],
        }),
        everything: stdio("everything", ["node", `${SERVERS}/server-everything/dist/index.js`, "stdio"], {
          readOnlyTools: ["echo"],
        }),
      };
      cfg.grantCeilings = [
        ["tool: *", "mcp: files/*", "mcp: files-ro/*", "mcp: memory/*", "mcp: everything/*"],
      ];
      cfg.policy.deny = ["mcp: files/move_*"];
    },
  });
  const c = await fx.client();
  for (const server of ["files", "files-ro", "memory", "everything"]) {
    const s = await c.call("mcp.approve", { server });
    expect(s.state, server).toBe("approved");
  }
  return { c, human: await fx.client(), home: fx.home.config.home };
}

async function nextPending(human: AidoClient): Promise<ApprovalRecord> {
  for (let i = 0; i < 1000; i++) {
    const { approvals } = await human.call("approval.list", {});
    if (approvals[0]) return approvals[0];
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no approval request appeared");
}

const call = (c: AidoClient, agentId: string, tool: string, input: Record<string, unknown>) =>
  c.call("tool.invoke", { agent_id: agentId, tool, input });

describe("the reference MCP servers through the gate", () => {
  it("calls them allowed, denied and approved, and removes their containers with the goal", async () => {
    const { c, human, home } = await start();
    const a = await c.call("agent.spawn", {
      manifest: manifest("mcp-user", {
        lifecycle: "persistent",
        capabilities: ["mcp: files/*", "mcp: files-ro/*", "mcp: memory/read_*", "mcp: everything/echo"],
        mcp_servers: ["files", "files-ro", "memory", "everything"],
      }),
    });
    const workspace = join(suite.fx.home.config.goalsDir, a.goal_id, "workspace");

    // Allowed: the operator marked echo read-only.
    const echoed = await call(c, a.agent_id, "mcp__everything__echo", { message: "through the gate" });
    expect(echoed.output).toContain("through the gate");

    // Allowed: listing and reading the goal's workspace, which the operator mounted for this server.
    const listed = await call(c, a.agent_id, "mcp__files__list_directory", { path: "/workspace" });
    expect(listed.is_error).toBe(false);
    writeFileSync(join(workspace, "note.txt"), "a note on the host\n");
    const read = await call(c, a.agent_id, "mcp__files__read_text_file", { path: "/workspace/note.txt" });
    expect(read.output).toBe("a note on the host\n");

    // workspace: ro: the same server reads the goal's files but cannot write them.
    const roRead = await call(c, a.agent_id, "mcp__files-ro__read_text_file", {
      path: "/workspace/note.txt",
    });
    expect(roRead.output).toBe("a note on the host\n");
    const roWrite = await call(c, a.agent_id, "mcp__files-ro__write_file", {
      path: "/workspace/ro.txt",
      content: "x",
    });
    expect(roWrite.is_error).toBe(true);
    expect(existsSync(join(workspace, "ro.txt"))).toBe(false);

    // Denied: no grant for memory's create_entities; a policy rule for files' move_file.
    const noGrant = await rpcError(
      call(c, a.agent_id, "mcp__memory__create_entities", {
        entities: [{ name: "x", entityType: "t", observations: [] }],
      }),
    );
    expect(noGrant.code).toBe("capability_denied");
    const policy = await rpcError(
      call(c, a.agent_id, "mcp__files__move_file", {
        source: "/workspace/note.txt",
        destination: "/workspace/n2",
      }),
    );
    expect(policy.code).toBe("policy_denied");
    expect(existsSync(join(workspace, "note.txt"))).toBe(true);

    // Schema: the pinned inputSchema refuses before the server sees the call.
    const bad = await rpcError(call(c, a.agent_id, "mcp__files__write_file", { path: "/workspace/x" }));
    expect(bad.code).toBe("invalid_input");
    expect(bad.message).toContain("content");

    // Approval: write_file is not read-only; a human allows it once, then denies the next.
    const write = call(c, a.agent_id, "mcp__files__write_file", {
      path: "/workspace/from-mcp.txt",
      content: "written after a human said yes",
    });
    const rec = await nextPending(human);
    expect(rec.tool).toBe("mcp__files__write_file");
    expect(existsSync(join(workspace, "from-mcp.txt"))).toBe(false);
    await human.call("approval.respond", { id: rec.id, decision: "allow_once" });
    expect((await write).is_error).toBe(false);
    expect(readFileSync(join(workspace, "from-mcp.txt"), "utf8")).toBe("written after a human said yes");

    const graph = call(c, a.agent_id, "mcp__memory__read_graph", {});
    const rec2 = await nextPending(human);
    await human.call("approval.respond", { id: rec2.id, decision: "deny" });
    expect((await rpcError(graph)).code).toBe("approval_denied");

    expect(containersOfHome(home).filter((n) => n.startsWith("aido-mcp-")).length).toBe(4);
    await c.call("agent.stop", { agent_id: a.agent_id });
    for (let i = 0; i < 100 && containersOfHome(home).some((n) => n.startsWith("aido-mcp-")); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(containersOfHome(home).filter((n) => n.startsWith("aido-mcp-"))).toEqual([]);
  }, 180_000);
});
