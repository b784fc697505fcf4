// Approvals over the socket, as a client and a human see them: tool.invoke waits, a second
// client answers with approval.respond, and what was decided is remembered precisely —
// Allow Session for that agent and scope until it stops, Allow Always for that identity,
// tool and scope across a restart until it expires or approval.revoke ends it. Requests
// whose call can no longer run expire at once. memory_store needs no container, and its
// scope is its exact input.

import { describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import type { ApprovalRecord } from "../../src/security/approvals.js";
import { type DaemonFixture, manifest, rpcError, useDaemonPerTest } from "./fixture.js";

const suite = useDaemonPerTest();

const careful = (name: string) =>
  manifest(name, {
    lifecycle: "persistent",
    capabilities: ["tool: memory_store"],
    approval_required: ["memory_store"],
  });
const fact = (content: string) => ({ content, category: "fact" });

/** The next request that appears in approval.list, as the human's client sees it. */
async function nextPending(human: AidoClient, seen: Set<string> = new Set()): Promise<ApprovalRecord> {
  for (let i = 0; i < 200; i++) {
    const { approvals } = await human.call("approval.list", {});
    const fresh = approvals.find((a) => !seen.has(a.id));
    if (fresh) {
      seen.add(fresh.id);
      return fresh;
    }
    await new Promise((r) => setTimeout(r, 15));
  }
  throw new Error("no approval request appeared");
}

/** A call that must pass without a human: no request is ever listed for it. */
async function passesUnasked(
  caller: AidoClient,
  human: AidoClient,
  agentId: string,
  input: Record<string, unknown>,
) {
  const r = await caller.call("tool.invoke", { agent_id: agentId, tool: "memory_store", input });
  expect(r.is_error).toBe(false);
  expect((await human.call("approval.list", {})).approvals).toEqual([]);
}

/** A call that must ask: the human denies it and the caller gets -32004. */
async function asksAndIsDenied(
  caller: AidoClient,
  human: AidoClient,
  agentId: string,
  input: Record<string, unknown>,
) {
  const call = rpcError(caller.call("tool.invoke", { agent_id: agentId, tool: "memory_store", input }));
  const rec = await nextPending(human);
  expect(rec.agent_id).toBe(agentId);
  await human.call("approval.respond", { id: rec.id, decision: "deny" });
  expect((await call).code).toBe("approval_denied");
  return rec;
}

async function reuses(fx: DaemonFixture, agentId: string) {
  const c = await fx.client();
  return (await c.call("audit.query", { agent_id: agentId, kind: "approval.reused" })).entries;
}

describe("Allow Session over the socket", () => {
  it("lets the same call through without asking again, for that agent and scope only, until it stops", async () => {
    const fx = await suite.start();
    const caller = await fx.client();
    const human = await fx.client();
    const a = await caller.call("agent.spawn", { manifest: careful("memo") });
    const b = await caller.call("agent.spawn", { manifest: careful("memo") });

    const first = caller.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "memory_store",
      input: fact("x"),
    });
    const rec = await nextPending(human);
    expect(rec.covers.allow_session).toBe(
      `memory_store with exactly the input {"category":"fact","content":"x"} by agent ${a.agent_id} until it stops`,
    );
    await human.call("approval.respond", { id: rec.id, decision: "allow_session" });
    expect((await first).is_error).toBe(false);

    await passesUnasked(caller, human, a.agent_id, fact("x"));
    expect(await reuses(fx, a.agent_id)).toEqual([
      expect.objectContaining({
        payload: expect.objectContaining({ via: "allow_session", approval_id: rec.id }),
      }),
    ]);
    await asksAndIsDenied(caller, human, a.agent_id, fact("y")); // another scope
    await asksAndIsDenied(caller, human, b.agent_id, fact("x")); // another agent, same identity
    await caller.call("agent.stop", { agent_id: a.agent_id });
    expect(
      (
        await rpcError(
          caller.call("tool.invoke", { agent_id: a.agent_id, tool: "memory_store", input: fact("x") }),
        )
      ).rpcCode,
    ).toBe(-32003);
  });
});

describe("Allow Always over the socket", () => {
  it("is listed with what it covers, reused in its goal by the same identity, not by another goal's or identity's agent", async () => {
    const fx = await suite.start();
    const caller = await fx.client();
    const human = await fx.client();
    const a = await caller.call("agent.spawn", { manifest: careful("keeper") });
    const first = caller.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "memory_store",
      input: fact("k"),
    });
    const rec = await nextPending(human);
    expect(rec.identity).toBe("keeper");
    // agent.spawn gives each agent a pseudo-goal of its own and no project folder: the grant covers that goal.
    const goal = (await caller.call("agent.status", { agent_id: a.agent_id })).goal_id;
    expect(rec.covers.allow_always).toBe(
      `memory_store with exactly the input {"category":"fact","content":"k"} by agents of identity \`keeper\` in goal ${goal} only (it has no project folder) for 1 h`,
    );
    const decided = await human.call("approval.respond", { id: rec.id, decision: "allow_always" });
    expect((await first).is_error).toBe(false);
    const { grants } = await human.call("approval.grants", {});
    expect(grants).toEqual([
      expect.objectContaining({
        id: decided.grant_id,
        identity: "keeper",
        tool: "memory_store",
        approval_id: rec.id,
        decided_by: "socket client",
        project_key: `goal:${goal}`,
        status: "active",
      }),
    ]);
    await passesUnasked(caller, human, a.agent_id, fact("k"));
    expect(await reuses(fx, a.agent_id)).toEqual([
      expect.objectContaining({
        payload: expect.objectContaining({ via: "allow_always", grant_id: decided.grant_id }),
      }),
    ]);
    const b = await caller.call("agent.spawn", { manifest: careful("keeper") });
    await asksAndIsDenied(caller, human, b.agent_id, fact("k"));
    const other = await caller.call("agent.spawn", { manifest: careful("other") });
    await asksAndIsDenied(caller, human, other.agent_id, fact("k"));
  });

  it("survives a daemon restart for the same identity, and approval.revoke makes it ask again", async () => {
    const fx = await suite.start();
    let caller = await fx.client();
    let human = await fx.client();
    const a = await caller.call("agent.spawn", { manifest: careful("keeper") });
    const first = caller.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "memory_store",
      input: fact("k"),
    });
    const decided = await human.call("approval.respond", {
      id: (await nextPending(human)).id,
      decision: "allow_always",
    });
    await first;

    await fx.restart();
    caller = await fx.client();
    human = await fx.client();
    // The persistent agent comes back in its own pseudo-goal: the grant still covers it.
    await passesUnasked(caller, human, a.agent_id, fact("k"));
    const stranger = await caller.call("agent.spawn", { manifest: careful("stranger") });
    await asksAndIsDenied(caller, human, stranger.agent_id, fact("k"));

    const revoked = await human.call("approval.revoke", { grant_id: decided.grant_id! });
    expect(revoked).toMatchObject({ id: decided.grant_id, status: "revoked", revoked_by: "socket client" });
    expect((await human.call("approval.grants", {})).grants).toEqual([]);
    expect((await human.call("approval.grants", { all: true })).grants.map((g) => g.status)).toEqual([
      "revoked",
    ]);
    await asksAndIsDenied(caller, human, a.agent_id, fact("k"));
    const audit = await human.call("audit.query", { kind: "approval.grant_revoked" });
    expect(audit.entries[0]?.payload).toMatchObject({ grant_id: decided.grant_id, identity: "keeper" });

    expect((await rpcError(human.call("approval.revoke", { grant_id: decided.grant_id! }))).rpcCode).toBe(
      -32602,
    );
    expect((await rpcError(human.call("approval.revoke", { grant_id: "grt_nope" }))).rpcCode).toBe(-32003);
    expect((await rpcError(human.call("approval.revoke", {} as never))).message).toContain("grant_id");
  });
});

describe("requests whose call ended", () => {
  it("expire when the agent is stopped: the waiting call fails at once (-32004 approval_expired)", async () => {
    const fx = await suite.start();
    const caller = await fx.client();
    const human = await fx.client();
    const a = await caller.call("agent.spawn", { manifest: careful("memo") });
    const call = rpcError(
      caller.call("tool.invoke", { agent_id: a.agent_id, tool: "memory_store", input: fact("x") }),
    );
    const rec = await nextPending(human);
    await human.call("agent.stop", { agent_id: a.agent_id });
    const e = await call;
    expect(e.rpcCode).toBe(-32004);
    expect(e.code).toBe("approval_expired");
    expect(e.message).toContain(`agent ${a.agent_id} stopped`);
    const { approvals } = await human.call("approval.list", { status: "expired" });
    expect(approvals.map((x) => [x.id, x.close_reason])).toEqual([
      [rec.id, expect.stringContaining("stopped over the socket")],
    ]);
    expect(
      (await rpcError(human.call("approval.respond", { id: rec.id, decision: "allow_once" }))).message,
    ).toContain("already expired");
  });

  it("expire when the client that made the call leaves", async () => {
    const fx = await suite.start();
    const caller = await fx.client();
    const human = await fx.client();
    const a = await caller.call("agent.spawn", { manifest: careful("memo") });
    void caller
      .call("tool.invoke", { agent_id: a.agent_id, tool: "memory_store", input: fact("x") })
      .catch(() => {});
    const rec = await nextPending(human);
    caller.close();
    let closed: ApprovalRecord | undefined;
    for (let i = 0; i < 200 && closed?.status !== "expired"; i++) {
      await new Promise((r) => setTimeout(r, 15));
      [closed] = (await human.call("approval.list", { status: "expired" })).approvals;
    }
    expect(closed).toMatchObject({ id: rec.id, status: "expired" });
    expect(closed?.close_reason).toContain("the client that made the call disconnected");
    const audit = await human.call("audit.query", { kind: "approval.expired" });
    expect(audit.entries.map((x) => x.payload)).toEqual([expect.objectContaining({ approval_id: rec.id })]);
    // The call never ran.
    const memories = await human.call("audit.query", { agent_id: a.agent_id, kind: "tool.invoked" });
    expect(memories.entries).toEqual([]);
  });
});

describe("an approval request names the call that asked", () => {
  it("carries the id the daemon gave that tool.invoke, told to its caller first, so calls with the same input are never swapped", async () => {
    const fx = await suite.start();
    const owner = await fx.client();
    const human = await fx.client();
    const a = await owner.call("agent.spawn", { manifest: careful("twins") });
    const events: Record<string, unknown>[] = [];
    const sub = await AidoClient.subscribe(fx.home.config.socketPath, undefined, (ev) => {
      if (ev.type === "approval.requested") events.push(ev);
    });
    try {
      // Six calls with the same input, each on a connection of its own, all waiting at once.
      const calls = await Promise.all(
        Array.from({ length: 6 }, async () => {
          const conn = await fx.client();
          let requestId: string | undefined;
          const result = conn
            .call(
              "tool.invoke",
              { agent_id: a.agent_id, tool: "memory_store", input: fact("same") },
              { onStarted: (id) => (requestId = id) },
            )
            .then(
              (r) => ({ ok: true as const, r }),
              (e: Error) => ({ ok: false as const, e }),
            );
          return { result, requestId: () => requestId };
        }),
      );
      for (let i = 0; i < 400 && events.length < 6; i++) await new Promise((r) => setTimeout(r, 15));
      expect(events).toHaveLength(6);
      const ids = calls.map((c) => c.requestId());
      expect(ids.every((id) => typeof id === "string" && /^req_[0-9a-f]{24}$/.test(id))).toBe(true);
      expect(new Set(ids).size).toBe(6);
      expect(new Set(events.map((e) => e.request_id))).toEqual(new Set(ids));
      // The audit record names it too.
      const audited = (await owner.call("audit.query", { kind: "approval.requested" })).entries;
      const byApproval = new Map(
        audited.map((e) => [
          (e.payload as { approval_id: string }).approval_id,
          (e.payload as { request_id?: string }).request_id,
        ]),
      );
      for (const ev of events) expect(byApproval.get(String(ev.approval_id))).toBe(ev.request_id);
      // So does the request as approval.list gives it (aido approvals, a client that reconnects).
      const listed = (await human.call("approval.list", {})).approvals;
      expect(new Map(listed.map((r) => [r.id, r.request_id]))).toEqual(
        new Map(events.map((e) => [String(e.approval_id), e.request_id])),
      );
      // Deny the even calls' requests by the id they were told, allow the odd ones': each call gets its own answer.
      for (const [i, c] of calls.entries()) {
        const ev = events.find((e) => e.request_id === c.requestId());
        await human.call("approval.respond", {
          id: String(ev?.approval_id),
          decision: i % 2 === 0 ? "deny" : "allow_once",
        });
      }
      const outcomes = await Promise.all(calls.map((c) => c.result));
      expect(outcomes.map((o) => o.ok)).toEqual([false, true, false, true, false, true]);
    } finally {
      sub.close();
    }
  });
});
