// An agent's tool call waiting for a human, through the agent loop (the real SDK against
// the scripted provider), when the goal ends underneath it: cancelled, the daemon shutting
// down, or the daemon dying (a new process opens the same home). The request is closed as
// expired, audited, and the waiting call fails at once; nothing stays pending. memory_store
// needs no container.

import { describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { Runtime } from "../../src/kernel/runtime.js";
import type { ApprovalRecord } from "../../src/security/approvals.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { type Harness, noContainers, openHarness } from "./harness.js";

let h: Harness | undefined;
let extra: Runtime | undefined;

const suite = useDaemonPerTest({
  beforeClose: async () => {
    await extra?.close();
    extra = undefined;
  },
  afterEach: async () => {
    await h?.close();
    h = undefined;
  },
});

const waiter = manifest("waiter", {
  capabilities: ["tool: memory_store"],
  approval_required: ["memory_store"],
});

function scriptWaiter() {
  return suite.server.script('manifest "waiter"', [
    turn.toolUse("memory_store", { content: "needs a human", category: "fact" }),
    turn.text("gave up"),
  ]);
}

async function pendingOf(c: AidoClient): Promise<ApprovalRecord> {
  for (let i = 0; i < 300; i++) {
    const [a] = (await c.call("approval.list", {})).approvals;
    if (a) return a;
    await new Promise((r) => setTimeout(r, 15));
  }
  throw new Error("no approval request appeared");
}

describe("a call waiting for a human when its goal ends", () => {
  it("expires when the goal is cancelled: the call fails at once, the model is told, the goal ends cancelled", async () => {
    const script = scriptWaiter();
    const fx = await suite.start();
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "wait for a human", manifest: waiter });
    const rec = await pendingOf(c);
    expect(rec.goal_id).toBe(goal_id);
    const started = Date.now();
    await c.call("goal.cancel", { goal_id });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 10_000 });
    expect(end.state).toBe("cancelled");
    expect(Date.now() - started).toBeLessThan(5_000);
    const closed = (await c.call("approval.list", { status: "expired" })).approvals;
    expect(closed.map((a) => a.id)).toEqual([rec.id]);
    expect(closed[0]?.close_reason).toBe(`agent ${rec.agent_id} stopped: goal cancelled`);
    const audit = await c.call("audit.query", { goal_id, kind: "approval.expired" });
    expect(audit.entries.map((e) => e.payload)).toEqual([expect.objectContaining({ approval_id: rec.id })]);
    const denied = await c.call("audit.query", { goal_id, kind: "tool.denied" });
    expect(denied.entries[0]?.payload).toMatchObject({ stage: "approval", code: "approval_expired" });
    expect((await c.call("approval.list", {})).approvals).toEqual([]);
    // The model never got a second turn that could act on it.
    expect(script.requests).toHaveLength(1);
  });

  it("expires when the daemon shuts down, and stays closed after it starts again", async () => {
    scriptWaiter();
    const fx = await suite.start();
    let c = await fx.client();
    await c.call("goal.submit", { goal: "wait for a human", manifest: waiter });
    const rec = await pendingOf(c);
    await fx.restart();
    c = await fx.client();
    const [closed] = (await c.call("approval.list", { status: "expired" })).approvals;
    expect(closed).toMatchObject({
      id: rec.id,
      close_reason: `agent ${rec.agent_id} stopped: runtime closing`,
    });
    expect((await c.call("approval.list", {})).approvals).toEqual([]);
  });

  it("expires when a new process opens the home of one that died while the call waited", async () => {
    scriptWaiter();
    h = await openHarness(suite.server);
    const { goal_id } = h.rt.goals.submit({ goal: "wait for a human", manifest: waiter });
    let rec: ApprovalRecord | undefined;
    for (let i = 0; i < 300 && !rec; i++) {
      await new Promise((r) => setTimeout(r, 15));
      [rec] = h.rt.approvals.list({ status: "pending" });
    }
    // The first runtime is never closed (as if its process were killed); a second one starts.
    extra = await Runtime.open(h.home.config, { backend: noContainers });
    const closed = extra.approvals.get(rec!.id);
    expect(closed.status).toBe("expired");
    expect(closed.close_reason).toMatch(/daemon restarted/);
    expect(extra.goals.status(goal_id).state).toBe("failed");
    expect(extra.audit.query({ kind: "approval.expired" }).map((e) => e.payload)).toEqual([
      expect.objectContaining({ approval_id: rec!.id }),
    ]);
  });
});
