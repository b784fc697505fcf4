// An MCP session's own agent (the pseudo-goal `aido mcp serve --manifest coder.yaml` runs its
// client's direct calls under) is the session's, not the user's. It kept its memories under
// `agent:coder`, the owner the user's own goals' `coder` agents use: the client's model
// (untrusted to Aido) read the user's goals' private memories with memory_query and planted
// memories their agents later recalled, and its exec approval prompts said "submitted by:
// you". Now its memories are owned by `mcp_session:<id>/agent:coder` and every approval view
// names the session. Real CLI, real SDK client, real daemon and Docker, scripted provider.

import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { ElicitRequest, ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { AidoClient } from "../../src/client/client.js";
import type { WireEvent } from "../../src/client/types.js";
import { captureIo } from "../cli/io.js";
import { manifest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { turn } from "../support/provider-server.js";
import { textOf, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

/** The session's manifest: named as the user's own goals' agent is, memory and a narrow exec that asks. */
const SESSION = `name: coder
system_prompt: You are the principal of an MCP session.
capabilities:
  - "tool: memory_store"
  - "tool: memory_query"
  - "tool: exec"
  - "exec: echo *"
  - "file_read: /workspace/**"
approval_required: [exec]
limits: { max_iterations: 1, max_children: 0, max_depth: 1 }
memory: { episodic: true }
`;

/** The user's own goals' agent: the same name. */
const CODER = manifest("coder", { capabilities: ["tool: memory_store", "tool: memory_query"] });

/** What an in-process `aido <args>` prints, against the suite's daemon and home. */
async function cli(args: string[]): Promise<string> {
  const c = captureIo();
  expect(await runCli(args, c.io, suite.fx.home.env)).toBe(0);
  return c.text();
}

/** `aido mcp serve --manifest <SESSION>` with an SDK client (elicit: it declares elicitation). */
function connect(elicit?: (req: ElicitRequest) => Promise<ElicitResult>): Promise<Client> {
  const file = join(dirname(suite.project), "coder.yaml");
  writeFileSync(file, SESSION);
  return suite.connect({ args: ["--manifest", file], ...(elicit ? { elicit } : {}) });
}

async function sessionIdOf(client: Client): Promise<string> {
  const r = await client.callTool({ name: "aido_orchestrator_info", arguments: {} });
  return (JSON.parse(textOf(r)) as { session: { session_id: string } }).session.session_id;
}

/** A call of the session's client, which must not fail; its text. */
async function call(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 });
  expect(r.isError ?? false, textOf(r)).toBe(false);
  return textOf(r);
}

/** A daemon with persistent memory (a goal's private memories are recalled by later goals of its owner). */
async function withMemory() {
  const fx = await suite.start({ config: (c) => (c.persistentMemory = true) });
  const human = await fx.client();
  return {
    /** Run the user's own goal (as `aido submit` sends it from the project folder; its agent is `coder`) to success. */
    async userGoal(goal: string): Promise<void> {
      const id = (await human.call("goal.submit", { goal, manifest: CODER, workspace: suite.project }))
        .goal_id;
      expect((await human.call("goal.wait", { goal_id: id, timeout_ms: 60_000 })).state).toBe("succeeded");
    },
  };
}

/** The user's next goal's agent stores `content` as a private fact. */
function scriptStore(content: string): void {
  suite.server.script("You are coder", [
    turn.toolUse("memory_store", { content, category: "fact" }),
    turn.text("noted"),
  ]);
}

/** The user's next goal's agent asks its memory about the vault; returns what it was sent (recall, answer). */
function scriptQuery(): () => string {
  const s = suite.server.script("You are coder", [
    turn.toolUse("memory_query", { query: "where is the vault" }),
    turn.text("looked"),
  ]);
  return () => s.requests.map((r) => JSON.stringify(r.body)).join("\n");
}

const storeSession = (client: Client, content: string) =>
  call(client, "memory_store", { content, category: "fact" });

describe("an MCP session's own agent is the session's, not the user's", () => {
  it("does not let the session's client read the user's goals' private memories", async () => {
    const { userGoal } = await withMemory();
    scriptStore("the vault is at user-vault-7");
    await userGoal("note the vault");

    // The session's client asks its memory: the user's goal's private memory is not there;
    // what it stored itself is, under the session's own owner.
    const client = await connect();
    const sessionId = await sessionIdOf(client);
    expect(await storeSession(client, "the vault is at session-vault-9")).toMatch(/stored memory \d+/);
    const found = await call(client, "memory_query", { query: "where is the vault" });
    expect(found).not.toContain("user-vault-7");
    expect(found).toContain("session-vault-9");
    const owners = (
      JSON.parse(await cli(["memory", "list", "--json"])) as { identity: string; content: string }[]
    )
      .map((m) => `${m.identity} ${m.content}`)
      .sort();
    expect(owners).toEqual([
      "agent:coder the vault is at user-vault-7",
      `mcp_session:${sessionId}/agent:coder the vault is at session-vault-9`,
    ]);
  }, 180_000);

  it("does not let the session's client plant memories the user's goals recall, nor a later session", async () => {
    const { userGoal } = await withMemory();
    const client = await connect();
    const sessionId = await sessionIdOf(client);
    await storeSession(client, "the vault is at session-vault-9");

    // The user's goals neither recall nor find what the session stored; they find their own.
    scriptStore("the vault is at user-vault-7");
    await userGoal("note the vault");
    const seenByUser = scriptQuery();
    await userGoal("where is the vault");
    expect(seenByUser()).not.toContain("session-vault-9");
    expect(seenByUser()).toContain("user-vault-7");

    // A later session is a new owner: it does not see the earlier session's own memories.
    await client.close();
    const later = await connect();
    expect(await sessionIdOf(later)).not.toBe(sessionId);
    const foundLater = await call(later, "memory_query", { query: "where is the vault" });
    expect(foundLater).not.toContain("session-vault-9");
    expect(foundLater).not.toContain("user-vault-7");
  }, 180_000);

  it("shows the session as the origin of its own exec's approval, in every view", async () => {
    const fx = await suite.start();
    const human = await fx.client();
    const seen: WireEvent[] = [];
    const watch = await AidoClient.subscribe(fx.home.config.socketPath, undefined, (ev) => seen.push(ev));
    /** What each view showed while the request waited: the client's form, approval.list, `aido approvals`. */
    const views: { form: string; listed: Record<string, unknown>[]; cli: string }[] = [];
    const client = await connect(async (req) => {
      const { approvals } = await human.call("approval.list", {});
      views.push({
        form: (req.params as { message: string }).message,
        listed: approvals.filter((a) => a.status === "pending") as unknown as Record<string, unknown>[],
        cli: await cli(["approvals"]),
      });
      return { action: "accept", content: { decision: "allow_once" } };
    });
    const sessionId = await sessionIdOf(client);
    const bySession = { kind: "mcp_session", session_id: sessionId };

    expect(await call(client, "exec", { command: "echo asked" })).toContain("asked");
    expect(views).toHaveLength(1);
    const [view] = views;
    expect(view?.listed).toHaveLength(1);
    const listed = view?.listed[0] ?? {};
    expect(listed.tool).toBe("exec");
    expect(listed.submitted_by).toEqual(bySession);
    expect(view?.cli).toContain(
      `    submitted by: MCP session ${sessionId}: its own call (its client's model made it, not you)`,
    );
    expect(view?.cli).not.toContain("submitted by: you");
    expect(view?.form).toContain(`Asked by: MCP session ${sessionId} (this session's own call`);
    const requested = seen.filter((e) => e.type === "approval.requested" && e.approval_id === listed.id);
    expect(requested.map((e) => e.submitted_by)).toEqual([bySession]);
    const audited = (await human.call("audit.query", { kind: "approval.requested" })).entries.map(
      (e) => (e.payload as { submitted_by?: unknown }).submitted_by,
    );
    expect(audited).toEqual([bySession]);
    watch.close();
  }, 180_000);
});
