// The goals an MCP session submits (aido_submit) spend the session's budget. Each one used
// to get a root account of its own (limits.goal_max_tokens), however many the client's model
// submitted: a session allowed 100000 tokens had eight goals of 40000 each accepted, 3.2
// times its budget. Now each goal's share is carved from the session's account at submit;
// a goal the session cannot cover is refused (budget_exceeded, -32002), audited as
// goal.refused naming the session; a goal's unspent share returns when it ends; and the
// session's end fails the goals it left queued or running.
// Driven through the real path: `aido mcp serve` with the SDK's Client, a real daemon,
// Docker and the scripted provider.

import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { beforeAll, describe, expect, it } from "vitest";
import { manifest, rpcError } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { latch, turn } from "../support/provider-server.js";
import { textOf, until, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

/** The session's principal, allowed 100000 tokens in all. */
const SMALL_SESSION = `name: small-session
system_prompt: You are the principal of an MCP session.
capabilities:
  - "tool: file_read"
  - "file_read: /workspace/**"
budget: { max_tokens: 100000 }
`;

/** A goal's manifest asking for 40000 tokens: the session covers two at once, not three. */
const asking = (name: string) => manifest(name, { budget: { max_tokens: 40_000 } });

async function submit(client: Client, name: string) {
  const r = await client.callTool({
    name: "aido_submit",
    arguments: { goal: `do ${name}`, manifest: asking(name) },
  });
  return { isError: r.isError === true, text: textOf(r) };
}

const goalIdOf = (text: string) => (JSON.parse(text) as { goal_id: string }).goal_id;

describe("the goals an MCP session submits spend the session's budget", () => {
  it("accepts only what the budget covers, gives a goal's unspent share back, and fails its goals when it ends", async () => {
    const fx = await suite.start({ config: (c) => (c.limits.maxConcurrentGoals = 1) });
    const human = await fx.client();
    const file = join(dirname(suite.project), "small-session.yaml");
    writeFileSync(file, SMALL_SESSION);
    const client = await suite.connect({ args: ["--manifest", file] });
    const info = JSON.parse(
      textOf(await client.callTool({ name: "aido_orchestrator_info", arguments: {} })),
    ) as {
      session: { session_id: string };
    };
    const sessionId = info.session.session_id;

    const oneAnswers = latch();
    suite.server.script('manifest "one"', [turn.text("one done", { until: oneAnswers.promise })]);
    suite.server.script('manifest "two"', [turn.hang()]);
    suite.server.script('manifest "three"', [turn.hang()]);

    // Two goals of 40000 fit in 100000: one runs, two waits in the queue.
    const one = await submit(client, "one");
    expect(one.isError, one.text).toBe(false);
    const two = await submit(client, "two");
    expect(two.isError, two.text).toBe(false);
    const [oneId, twoId] = [goalIdOf(one.text), goalIdOf(two.text)];
    const shares = (await human.call("audit.query", { kind: "goal.submitted", limit: 100 })).entries.map(
      (e) => [e.goal_id, (e.payload as { session_share?: number }).session_share],
    );
    expect(shares.sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual([
      [oneId, 40_000],
      [twoId, 40_000],
    ]);

    // A third is more than is left (20000): refused, naming the session, its limit, what is left and what was asked.
    const three = await submit(client, "three");
    expect(three.isError, `the session's third goal of 40000 was accepted: ${three.text}`).toBe(true);
    const said = `MCP session ${sessionId} cannot cover this goal: its budget is 100000 tokens, 20000 left; the goal asks for 40000`;
    expect(three.text).toContain("(budget_exceeded)");
    expect(three.text).toContain(said);
    // The same refusal on the socket, as JSON-RPC -32002.
    const onSocket = await rpcError(
      human.call("goal.submit", { goal: "do three", manifest: asking("three"), session_id: sessionId }),
    );
    expect(onSocket.rpcCode).toBe(-32002);
    expect(onSocket.message).toContain(said);
    const refused = (await human.call("audit.query", { kind: "goal.refused", limit: 100 })).entries.map(
      (e) => e.payload as { field: string; reason: string; session_id?: string },
    );
    expect(refused).toHaveLength(2);
    for (const r of refused) {
      expect(r.field).toBe("budget");
      expect(r.session_id).toBe(sessionId);
      expect(r.reason).toContain(said);
    }
    expect((await human.call("goal.list", {})).goals).toHaveLength(2);

    // One ends: what it did not spend comes back, and a third goal fits again.
    oneAnswers.open();
    expect((await human.call("goal.wait", { goal_id: oneId, timeout_ms: 60_000 })).state).toBe("succeeded");
    await until(
      async () => (await human.call("goal.status", { goal_id: twoId })).state === "running",
      30_000,
    );
    const again = await submit(client, "three");
    expect(again.isError, again.text).toBe(false);
    const threeId = goalIdOf(again.text);
    expect((await human.call("goal.status", { goal_id: threeId })).state).toBe("queued");

    // The session ends (its client leaves): its running goal and its queued one fail, saying so.
    await client.close();
    const ended = `the MCP session ${sessionId} that submitted it ended`;
    for (const id of [twoId, threeId]) {
      const end = await human.call("goal.wait", { goal_id: id, timeout_ms: 60_000 });
      expect(end.state, `goal ${id}: ${end.error}`).toBe("failed");
      expect(end.error).toContain(ended);
    }
    // The queued one never started.
    expect(suite.server.requestsMatching('manifest "three"')).toHaveLength(0);
  }, 240_000);
});
