// A goal an MCP session submits (aido_submit) names its own manifest, so its identity, and
// the session's folder: a session's goal named `bootstrap` was the user's own `bootstrap`
// goals to the approval queue. A human's Allow Always given to the user's goals covered the
// session's goal with nobody asked, and one given to the session's goal covered the user's;
// and nothing a human read (approval.list, goal.status) said which was which. Now a goal's
// row records who submitted it (`submitted_by`), its Allow Always grants bind to that origin
// as well as to its identity and project, and the origin is shown wherever a human decides.

import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { AidoClient } from "../../src/client/client.js";
import type { WireEvent } from "../../src/client/types.js";
import { captureIo } from "../cli/io.js";
import { manifest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { textOf, until, useMcpSuite } from "./fixture.js";

const suite = useMcpSuite();

type Human = Awaited<ReturnType<typeof suite.fx.client>>;

/** What `aido approvals` prints now (in-process, against the suite's daemon). */
async function approvalsText(): Promise<string> {
  const c = captureIo();
  expect(await runCli(["approvals"], c.io, suite.fx.home.env)).toBe(0);
  return c.text();
}

/** The user's own goal (goal.submit from the project folder, as `aido submit` sends it). */
async function userGoal(human: Human, m: Record<string, unknown>, goal = "write out.md"): Promise<string> {
  return (await human.call("goal.submit", { goal, manifest: m, workspace: suite.project })).goal_id;
}

/** A goal the session's model submits through aido_submit. */
async function sessionGoal(
  client: Client,
  m: Record<string, unknown>,
  goal = "write out.md",
): Promise<string> {
  const r = await client.callTool({ name: "aido_submit", arguments: { goal, manifest: m } });
  expect(r.isError ?? false).toBe(false);
  return (JSON.parse(textOf(r)) as { goal_id: string }).goal_id;
}

/** The user's and the session's goals alike: `bootstrap`, whose file_write waits for a human. */
const BOOTSTRAP = manifest("bootstrap", {
  capabilities: ["tool: file_write", "file_write: /workspace/**"],
  approval_required: ["file_write"],
});

describe("a goal an MCP session submitted does not pass for the user's own", () => {
  it("keeps Allow Always answers to the origin they were given for, and shows the origin", async () => {
    const fx = await suite.start();
    const human = await fx.client();
    const seen: WireEvent[] = [];
    const watch = await AidoClient.subscribe(fx.home.config.socketPath, undefined, (ev) => seen.push(ev));
    /** The approval.requested events of a goal, as a watcher (aido watch, the dashboard) gets them. */
    const requested = (goalId: string) =>
      seen.filter((e) => e.type === "approval.requested" && e.goal_id === goalId);
    /** The next goal's agent writes /workspace/out.md once, then ends. */
    const scriptWrite = () =>
      suite.server.script("You are bootstrap", [
        turn.toolUse("file_write", { path: "/workspace/out.md", content: "x" }),
        turn.text("wrote"),
      ]);
    /** Run the goal to its end; a question it asks is answered `decision`. Returns the questions it asked. */
    const settle = async (goalId: string, decision: string) => {
      const asked: Record<string, unknown>[] = [];
      await until(async () => {
        const { approvals } = await human.call("approval.list", {});
        const open = approvals.find((a) => a.goal_id === goalId && a.status === "pending");
        if (open) {
          asked.push({ ...(open as unknown as Record<string, unknown>), cli: await approvalsText() });
          await human.call("approval.respond", { id: open.id, decision });
          return true;
        }
        const { state } = await human.call("goal.status", { goal_id: goalId });
        return state !== "queued" && state !== "running";
      }, 60_000);
      expect((await human.call("goal.wait", { goal_id: goalId, timeout_ms: 60_000 })).state).toBe(
        "succeeded",
      );
      return asked;
    };
    const user = () => {
      scriptWrite();
      return userGoal(human, BOOTSTRAP);
    };
    const session = (client: Client) => {
      scriptWrite();
      return sessionGoal(client, BOOTSTRAP);
    };
    const sessionIdOf = async (client: Client) =>
      (
        JSON.parse(textOf(await client.callTool({ name: "aido_orchestrator_info", arguments: {} }))) as {
          session: { session_id: string };
        }
      ).session.session_id;

    // A session's goal asks; the human says Allow Always, and the question showed whose goal it was.
    const one = await suite.connect();
    const oneId = await sessionIdOf(one);
    const s1 = await session(one);
    const [q1] = await settle(s1, "allow_always");
    expect(q1?.submitted_by).toEqual({ kind: "mcp_session", session_id: oneId });
    expect(q1?.cli).toContain(`    submitted by: MCP session ${oneId} (its client's model wrote the goal`);
    const byOne = { kind: "mcp_session", session_id: oneId };
    expect((await human.call("goal.status", { goal_id: s1 })).submitted_by).toEqual(byOne);
    expect((await human.call("goal.list", {})).goals.find((g) => g.goal_id === s1)?.submitted_by).toEqual(
      byOne,
    );
    const audited = async (kind: string) =>
      (await human.call("audit.query", { goal_id: s1, kind })).entries.map(
        (e) => (e.payload as { submitted_by?: unknown }).submitted_by,
      );
    expect(await audited("goal.submitted")).toEqual([byOne]);
    expect(await audited("approval.requested")).toEqual([byOne]);
    expect(requested(s1).map((e) => e.submitted_by)).toEqual([byOne]);

    // The user's own goal of the same name, from the same folder: that answer does not cover it.
    const u1 = await user();
    const asked = await settle(u1, "allow_always");
    expect(asked).toHaveLength(1);
    expect(asked[0]?.submitted_by).toBeNull();
    expect(asked[0]?.cli).toContain("    submitted by: you (not an MCP session)");
    expect((await human.call("goal.status", { goal_id: u1 })).submitted_by).toBeUndefined();
    expect(requested(u1)).toHaveLength(1);
    expect(requested(u1)[0]).not.toHaveProperty("submitted_by");

    // The user's Allow Always does not cover another session's goal either.
    const two = await suite.connect();
    const twoId = await sessionIdOf(two);
    const s2 = await session(two);
    const asked2 = await settle(s2, "allow_once");
    expect(asked2.map((q) => q.submitted_by)).toEqual([{ kind: "mcp_session", session_id: twoId }]);

    // Within one origin the answers stand: the user's next goal and session one's next pass unasked.
    expect(await settle(await user(), "deny")).toEqual([]);
    expect(await settle(await session(one), "deny")).toEqual([]);
    watch.close();
  }, 240_000);

  it("keeps a session goal's memories apart from the user's goals of the same name", async () => {
    // Persistent memory on: a goal's private memories are recalled by later goals of its identity.
    const fx = await suite.start({ config: (c) => (c.persistentMemory = true) });
    const human = await fx.client();
    const client = await suite.connect();
    const rememberer = manifest("bootstrap", { capabilities: ["tool: memory_store", "tool: memory_query"] });
    /** The next goal stores `content` as a private fact, then ends. */
    const plant = (content: string) =>
      suite.server.script("You are bootstrap", [
        turn.toolUse("memory_store", { content, category: "fact" }),
        turn.text("noted"),
      ]);
    /** The next goal asks its memory about the vault; what it was sent (recall and answer) is returned. */
    const ask = () => {
      const s = suite.server.script("You are bootstrap", [
        turn.toolUse("memory_query", { query: "where is the vault" }),
        turn.text("looked"),
      ]);
      return () => s.requests.map((r) => JSON.stringify(r.body)).join("\n");
    };
    const finished = async (goalId: string) =>
      expect((await human.call("goal.wait", { goal_id: goalId, timeout_ms: 60_000 })).state).toBe(
        "succeeded",
      );

    plant("the vault is at user-vault-7");
    await finished(await userGoal(human, rememberer, "note the vault"));
    plant("the vault is at session-vault-9");
    const planter = await sessionGoal(client, rememberer, "note the vault");
    await finished(planter);

    // The session's goal neither recalls nor finds the user's memory; it finds its own.
    const seenBySession = ask();
    await finished(await sessionGoal(client, rememberer, "where is the vault"));
    expect(seenBySession()).not.toContain("user-vault-7");
    expect(seenBySession()).toContain("session-vault-9");
    // The user's goal does not see what the session's goal planted; it sees its own.
    const seenByUser = ask();
    await finished(await userGoal(human, rememberer, "where is the vault"));
    expect(seenByUser()).not.toContain("session-vault-9");
    expect(seenByUser()).toContain("user-vault-7");

    // The goal's row keeps who submitted it across a restart.
    await fx.restart();
    const after = await fx.client();
    expect((await after.call("goal.status", { goal_id: planter })).submitted_by).toEqual({
      kind: "mcp_session",
      session_id: expect.stringMatching(/^mcp_/),
    });
  }, 240_000);
});
