// aido_submit reaches no further than the MCP session that submits: through the SDK's own
// client on `aido mcp serve` in front of a real daemon and containers. A session without
// network grants cannot submit a goal whose manifest holds one (nor an external MCP server):
// refused naming the field and the session's limit, audited as session.call_refused, nothing
// queued, while a bare socket client submits the same manifest as before. The default
// bootstrap is narrowed, not refused: with an operator's bootstrap that holds "network: *",
// a goal of a session without network has a bootstrap without it, whose child asking for
// network is refused at spawn; a session reaching x.test submits goals reaching x.test and
// not y.test, and its default bootstrap's children are held the same way.

import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import type { Config } from "../../src/config.js";
import { manifest, rpcError } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { turn } from "../support/provider-server.js";
import { textOf, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

const json = (r: unknown) => JSON.parse(textOf(r)) as Record<string, unknown>;

/** The operator's ceiling: network and an external MCP server are grantable at all. */
const CEILING = [
  "tool: *",
  "file_read: /**",
  "file_write: /**",
  "exec: *",
  "network: *:*",
  "mcp: gh/*",
  "spawn_child: [*]",
];
const ceiling = (c: Config) => {
  c.grantCeilings = [CEILING];
};

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/**
 * A package root like Aido's own whose manifests/bootstrap.yaml also holds "network: *" (an
 * operator who gave the default bootstrap the network); everything else is Aido's, linked.
 */
function packageWithNetworkBootstrap(real: string): string {
  const root = mkdtempSync(join(tmpdir(), "aido-package-"));
  roots.push(root);
  for (const entry of readdirSync(real)) {
    if (entry !== "manifests") symlinkSync(join(real, entry), join(root, entry));
  }
  cpSync(join(real, "manifests"), join(root, "manifests"), { recursive: true });
  const file = join(root, "manifests", "bootstrap.yaml");
  const text = readFileSync(file, "utf8");
  writeFileSync(file, text.replace("capabilities:\n", 'capabilities:\n  - "network: *"\n'));
  return root;
}

/** A session manifest file beside the project: the shipped session's reach plus `extra` grants. */
function sessionFile(extra: string[]): string {
  const file = join(dirname(suite.project), "reach-session.yaml");
  writeFileSync(
    file,
    [
      "name: reach-session",
      "system_prompt: You are the principal of an MCP session.",
      "capabilities:",
      ...["tool: file_read", "file_read: /workspace/**", ...extra].map((g) => `  - "${g}"`),
      "limits: { max_iterations: 1, max_children: 0, max_depth: 1 }",
      "",
    ].join("\n"),
  );
  return file;
}

async function audited(c: AidoClient, kind: string) {
  return (await c.call("audit.query", { kind })).entries as { agent_id: string | null; payload: unknown }[];
}

/**
 * The default bootstrap of a goal `client` submits spawns a child holding `grant`; resolves
 * with the goal's audit of that spawn (the child's spawn or its refusal).
 */
async function bootstrapChildAsking(client: Client, grant: string) {
  const child = "researcher"; // a role the bootstrap's spawn_child grant names
  suite.server.script("You are the bootstrap agent of Aido", [
    turn.toolUse("spawn_agent", {
      manifest: {
        name: child,
        system_prompt: "You fetch.",
        capabilities: ["tool: web_fetch", grant],
      },
      message: "fetch https://x.test/ and report",
    }),
    turn.text("delegated"),
  ]);
  suite.server.script("You fetch.", [turn.text("fetched")]);
  const goal_id = json(await client.callTool({ name: "aido_submit", arguments: { goal: "send it" } }))
    .goal_id as string;
  const done = json(await client.callTool({ name: "aido_wait", arguments: { goal_id, timeout_ms: 60_000 } }));
  expect(done.state).toBe("succeeded");
  const c = await suite.fx.client();
  const of = async (kind: string) =>
    ((await c.call("audit.query", { goal_id, kind })).entries as { payload: Record<string, unknown> }[]).map(
      (e) => e.payload,
    );
  const spawned = await of("agent.spawned");
  return {
    bootstrap: spawned.find((p) => p.manifest === "bootstrap"),
    child: spawned.find((p) => p.manifest === child),
    denied: (await of("agent.spawn_denied")).filter((p) => p.manifest === child),
  };
}

describe("aido_submit is held to the session's reach", () => {
  it("refuses a manifest with network or MCP reach the session lacks, audited; a socket client is not held", async () => {
    const fx = await suite.start({ config: ceiling });
    const client = await suite.connect();
    const leaky = manifest("leaky", { capabilities: ["tool: web_fetch", "network: *"] });
    const r = await client.callTool({
      name: "aido_submit",
      arguments: { goal: "send the project out", manifest: leaky, inputs: ["README.md"] },
    });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain("(capability_denied)");
    expect(textOf(r)).toContain(`capabilities: "network: *" beyond the session's network and mcp grants []`);
    const viaMcp = await client.callTool({
      name: "aido_submit",
      arguments: {
        goal: "ask github",
        manifest: manifest("tooled", { capabilities: ["mcp: gh/list_issues"], mcp_servers: ["gh"] }),
      },
    });
    expect(viaMcp.isError).toBe(true);
    expect(textOf(viaMcp)).toContain(`capabilities: "mcp: gh/list_issues" beyond the session's`);
    expect(textOf(viaMcp)).toContain(`mcp_servers: "gh" not in the session's mcp_servers []`);

    const c = await fx.client();
    expect((await c.call("goal.list", {})).goals).toEqual([]);
    const refusals = (await audited(c, "session.call_refused")).map((e) => e.payload) as {
      tool: string;
      reason: string;
    }[];
    expect(refusals.map((p) => p.tool)).toEqual(["aido_submit", "aido_submit"]);
    const reasons = refusals.map((p) => p.reason).join("\n");
    expect(reasons).toContain(`manifest "leaky" reaches further than MCP session`);
    expect(reasons).toContain(`manifest "tooled" reaches further than MCP session`);

    // goal.submit without a session (the person at the socket) is held to the operator's ceiling only.
    suite.server.script('manifest "leaky"', [turn.text("ok")]);
    const { goal_id } = await c.call("goal.submit", { goal: "mine", manifest: leaky });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");
    // A session that is not open is named, not ignored.
    const e = await rpcError(c.call("goal.submit", { goal: "x", manifest: leaky, session_id: "mcp_nope" }));
    expect(e.rpcCode).toBe(-32003);
    expect(e.message).toBe(
      "session_id: no open session mcp_nope; a goal of an MCP session is submitted while the session is open",
    );
  });

  it("narrows the default bootstrap: its child asking for network is refused at spawn", async () => {
    await suite.start({
      config: (c) => {
        c.packageRoot = packageWithNetworkBootstrap(c.packageRoot);
      },
    });
    const client = await suite.connect();
    const seen = await bootstrapChildAsking(client, "network: x.test");
    expect(seen.bootstrap?.grants).not.toContain("network: *");
    expect(seen.child).toBeUndefined();
    expect(seen.denied).toHaveLength(1);
    expect(seen.denied[0]?.offending).toEqual(["network: x.test"]);
  });

  it("lets a session reaching x.test submit goals reaching x.test, never y.test", async () => {
    await suite.start({
      config: (c) => {
        ceiling(c);
        c.packageRoot = packageWithNetworkBootstrap(c.packageRoot);
      },
    });
    const client = await suite.connect({ args: ["--manifest", sessionFile(["network: x.test"])] });
    const fetcher = (host: string) =>
      manifest("fetcher", { capabilities: ["tool: web_fetch", `network: ${host}`] });

    const wider = await client.callTool({
      name: "aido_submit",
      arguments: { goal: "fetch y", manifest: fetcher("y.test") },
    });
    expect(wider.isError).toBe(true);
    expect(textOf(wider)).toContain(
      `capabilities: "network: y.test" beyond the session's network and mcp grants [network: x.test]`,
    );
    suite.server.script('manifest "fetcher"', [turn.text("fetched x")]);
    const ok = json(
      await client.callTool({
        name: "aido_submit",
        arguments: { goal: "fetch x", manifest: fetcher("x.test") },
      }),
    );
    const done = json(
      await client.callTool({ name: "aido_wait", arguments: { goal_id: ok.goal_id, timeout_ms: 60_000 } }),
    );
    expect(done.state).toBe("succeeded");

    // The default bootstrap ("network: *" here) runs with the session's x.test only.
    const toX = await bootstrapChildAsking(client, "network: x.test");
    expect(toX.bootstrap?.grants).toContain("network: x.test");
    expect(toX.bootstrap?.grants).not.toContain("network: *");
    expect(toX.child?.grants).toContain("network: x.test");
    const toY = await bootstrapChildAsking(client, "network: y.test");
    expect(toY.child).toBeUndefined();
    expect(toY.denied[0]?.offending).toEqual(["network: y.test"]);
  });
});
