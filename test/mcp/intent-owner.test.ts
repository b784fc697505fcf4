// Who may change a project folder's standing objective over MCP: the objective the user's
// own `aido submit` goals from the folder carry, with the token budget that caps them. The
// attacker is the MCP client's model, driving `aido mcp serve` (real CLI, real daemon)
// with aido_goal_set / aido_goal_clear: it may set an objective when none is active and
// replace or clear one its session set, never the user's or another session's, and never
// lift a budget. The user's socket client replaces anything.

import { beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { requireDocker } from "../support/docker.js";
import { textOf, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

type Client = Awaited<ReturnType<typeof suite.connect>>;

async function ok(c: Client, name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await c.callTool({ name, arguments: args });
  expect(r.isError ?? false, `${name}: ${textOf(r)}`).toBe(false);
  return JSON.parse(textOf(r)) as Record<string, unknown>;
}

async function refused(c: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const r = await c.callTool({ name, arguments: args });
  expect(r.isError, `${name} was not refused: ${textOf(r)}`).toBe(true);
  return textOf(r);
}

async function sessionId(c: Client): Promise<string> {
  const info = await ok(c, "aido_orchestrator_info", {});
  return (info.session as { session_id: string }).session_id;
}

async function active(d: AidoClient) {
  return (await d.call("intent.status", { workspace: suite.project })).intent;
}

async function refusals(d: AidoClient) {
  return (await d.call("audit.query", { kind: "intent.refused" })).entries
    .sort((a, b) => a.seq - b.seq)
    .map((e) => e.payload as { intent_id: string; action: string; session_id: string; reason: string });
}

describe("the objective the user set on the project folder", () => {
  it("is neither replaced nor cleared by the session's model: its budget stays, the refusal names the user and `aido intent`, audited", async () => {
    const fx = await suite.start();
    const user = await fx.client();
    // The person caps what goals from their project may spend (aido intent set --budget).
    const mine = await user.call("intent.set", {
      workspace: suite.project,
      objective: "Fix the flaky test",
      budget_tokens: 20_000,
      by: "aido cli",
    });
    const model = await suite.connect();
    const session = await sessionId(model);

    const set = await refused(model, "aido_goal_set", { objective: "Fix the flaky test" });
    expect(set).toContain(`intent ${mine.id} (${mine.workspace}) was set by the user (set_by "aido cli")`);
    expect(set).toContain(`MCP session ${session} may not replace it`);
    expect(set).toContain("`aido intent set` or `aido intent clear`");
    const clear = await refused(model, "aido_goal_clear", {});
    expect(clear).toContain(`MCP session ${session} may not clear it`);

    expect(await active(user)).toMatchObject({
      id: mine.id,
      objective: "Fix the flaky test",
      budget_tokens: 20_000,
      set_by: "aido cli",
      set_by_session: null,
    });
    expect((await refusals(user)).map((r) => [r.intent_id, r.action, r.session_id])).toEqual([
      [mine.id, "set", session],
      [mine.id, "clear", session],
    ]);
    // Nothing was set or cleared on the model's word.
    expect((await user.call("audit.query", { kind: "intent.set" })).entries).toHaveLength(1);
    expect((await user.call("audit.query", { kind: "intent.cleared" })).entries).toHaveLength(0);
  }, 180_000);
});

describe("an objective a session set", () => {
  it("is set when none is active and replaced by that session, the budget carried forward and never raised", async () => {
    const fx = await suite.start();
    const user = await fx.client();
    const model = await suite.connect();
    const session = await sessionId(model);

    await ok(model, "aido_goal_set", { objective: "Ship the release notes", budget_tokens: 10_000 });
    expect(await active(user)).toMatchObject({
      budget_tokens: 10_000,
      set_by: `mcp session ${session}`,
      set_by_session: session,
    });
    // Leaving budget_tokens out keeps the cap (what the replaced objective had left).
    await ok(model, "aido_goal_set", { objective: "Ship the release notes, reviewed" });
    const carried = await active(user);
    expect(carried).toMatchObject({ objective: "Ship the release notes, reviewed", budget_tokens: 10_000 });
    const raise = await refused(model, "aido_goal_set", { objective: "more", budget_tokens: 50_000 });
    expect(raise).toContain(`budget_tokens 50000 is more than intent ${carried?.id}`);
    expect(raise).toContain("never raise it; the user raises it with `aido intent set --budget N`");
    expect((await active(user))?.id).toBe(carried?.id);
    await ok(model, "aido_goal_set", { objective: "Ship the short notes", budget_tokens: 4_000 });
    expect(await active(user)).toMatchObject({ objective: "Ship the short notes", budget_tokens: 4_000 });
    expect((await refusals(user)).map((r) => r.action)).toEqual(["set"]);

    await ok(model, "aido_goal_clear", {});
    expect(await active(user)).toBeNull();
  }, 180_000);

  it("is not replaced or cleared by another session; the user replaces it, and it is the user's from then on", async () => {
    const fx = await suite.start();
    const user = await fx.client();
    const a = await suite.connect();
    const b = await suite.connect();
    const [sa, sb] = [await sessionId(a), await sessionId(b)];

    await ok(a, "aido_goal_set", { objective: "A's objective", budget_tokens: 9_000 });
    const text = await refused(b, "aido_goal_set", { objective: "B's objective" });
    expect(text).toContain(`was set by another MCP session, ${sa}: MCP session ${sb} may not replace it`);
    await refused(b, "aido_goal_clear", {});
    expect(await active(user)).toMatchObject({ objective: "A's objective", set_by_session: sa });

    // The user's socket client replaces anything, budget included (here: none).
    const theirs = await user.call("intent.set", { workspace: suite.project, objective: "The user's" });
    expect(theirs).toMatchObject({ budget_tokens: null, set_by: "socket client", set_by_session: null });
    await refused(a, "aido_goal_set", { objective: "A again" });
    expect((await active(user))?.id).toBe(theirs.id);
    expect((await refusals(user)).map((r) => [r.action, r.session_id])).toEqual([
      ["set", sb],
      ["clear", sb],
      ["set", sa],
    ]);
    await user.call("intent.clear", { workspace: suite.project });
    expect(await active(user)).toBeNull();
  }, 180_000);
});
