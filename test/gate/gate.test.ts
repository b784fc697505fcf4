// The gate is the one path of every tool call. These tests drive it with small real
// tools of the suite whose side effects are observable, and real SQLite-backed tokens,
// policy, approvals and audit.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { Gate, GateDenied } from "../../src/gate/invoke.js";
import { denial, makeWorld, type World, waitFor } from "./gate-world.js";

describe("the gate", () => {
  let w: World;
  beforeEach(() => {
    w = makeWorld();
  });
  afterEach(() => w.home.cleanup());

  it("runs a call that every check allows and audits it before and after", async () => {
    const p = w.principal(["tool: note_write", "file_write: /workspace/**"]);
    const r = await w.gate.invoke(p, { name: "note_write", input: { path: "/workspace/a.txt", text: "hi" } });
    expect(r.output).toBe("written");
    expect(w.writes).toEqual(["/workspace/a.txt=hi"]);
    const kinds = w.audit.tail(10).map((e) => e.kind);
    expect(kinds).toContain("tool.invoked");
    expect(kinds).toContain("tool.completed");
  });

  it("refuses a call with no tool grant (default deny), audits it, and has no side effect", async () => {
    const p = w.principal(["file_write: /workspace/**"]);
    const e = await denial(
      w.gate.invoke(p, { name: "note_write", input: { path: "/workspace/a", text: "x" } }),
    );
    expect(e.code).toBe(ErrorCode.capabilityDenied);
    expect(e.stage).toBe("capability");
    expect(w.writes).toEqual([]);
    const last = w.audit.tail(1)[0];
    expect(last?.kind).toBe("tool.denied");
    expect(last?.payload).toMatchObject({ tool: "note_write", stage: "capability" });
  });

  it("refuses a write outside the granted glob, including a sibling that shares a prefix", async () => {
    const p = w.principal(["tool: note_write", "file_write: /data/*"]);
    for (const path of ["/data-x/a", "/etc/passwd", "/data/sub/a"]) {
      const e = await denial(w.gate.invoke(p, { name: "note_write", input: { path, text: "x" } }));
      expect(e.stage).toBe("capability");
      expect(e.message).toContain(path);
    }
    expect(w.writes).toEqual([]);
  });

  it("refuses an unknown tool and bad input at the schema stage, naming the field", async () => {
    const p = w.principal(["tool: *", "file_write: /**"]);
    const unknown = await denial(w.gate.invoke(p, { name: "rm_everything", input: {} }));
    expect(unknown.code).toBe(ErrorCode.unknownTool);
    const bad = await denial(w.gate.invoke(p, { name: "note_write", input: { path: "/x", text: 42 } }));
    expect(bad.code).toBe(ErrorCode.invalidInput);
    expect(bad.message).toContain("text");
    const extra = await denial(
      w.gate.invoke(p, { name: "note_write", input: { path: "/x", text: "a", sneaky: true } }),
    );
    expect(extra.message).toContain("sneaky");
    expect(w.writes).toEqual([]);
  });

  it("refuses a forged token: grants edited after signing", async () => {
    const p = w.principal(["tool: note_write", "file_write: /workspace/*"]);
    const forged = { ...p, token: { ...p.token, grants: ["tool: note_write", "file_write: /**"] } };
    const e = await denial(
      w.gate.invoke(forged, { name: "note_write", input: { path: "/etc/x", text: "x" } }),
    );
    expect(e.code).toBe(ErrorCode.tokenInvalid);
    expect(w.writes).toEqual([]);
  });

  it("refuses a token presented by another agent", async () => {
    const p = w.principal(["tool: note_write", "file_write: /**"]);
    const stolen = { ...p, agentId: "agent-other" };
    const e = await denial(w.gate.invoke(stolen, { name: "note_write", input: { path: "/w/x", text: "x" } }));
    expect(e.code).toBe(ErrorCode.tokenInvalid);
  });

  it("refuses every call once the token is revoked", async () => {
    const p = w.principal(["tool: note_write", "file_write: /**"]);
    await w.gate.invoke(p, { name: "note_write", input: { path: "/w/x", text: "x" } });
    w.tokens.revoke(p.token.id);
    const e = await denial(w.gate.invoke(p, { name: "note_write", input: { path: "/w/y", text: "x" } }));
    expect(e.code).toBe(ErrorCode.tokenInvalid);
    expect(w.writes).toEqual(["/w/x=x"]);
  });

  it("checks every command hidden in a compound shell string against exec grants", async () => {
    const p = w.principal(["tool: exec", "exec: ls *", "exec: echo *"]);
    p.approvalRequired = new Set();
    const e = await denial(
      w.gate.invoke(p, { name: "exec", input: { command: "ls && echo $(python3 -c 1)" } }),
    );
    expect(e.stage).toBe("capability");
    expect(e.message).toContain("python3");
    expect(w.runs).toEqual([]);
  });

  it("denies by policy even when a grant covers the command", async () => {
    const p = w.principal(["tool: exec", "exec: *"]);
    const e = await denial(w.gate.invoke(p, { name: "exec", input: { command: "echo ok; sudo id" } }));
    expect(e.code).toBe(ErrorCode.policyDenied);
    expect(e.stage).toBe("policy");
    const cfg = await denial(w.gate.invoke(p, { name: "exec", input: { command: "git push origin main" } }));
    expect(cfg.code).toBe(ErrorCode.policyDenied);
    expect(w.runs).toEqual([]);
  });

  it("waits for a human on a confirm rule, runs on allow_once, and asks again next time", async () => {
    const p = w.principal(["tool: exec", "exec: ls *"]);
    const call = w.gate.invoke(p, { name: "exec", input: { command: "ls /workspace" } });
    const pending = await waitFor(() => w.approvals.list({ status: "pending" })[0]);
    expect(w.runs).toEqual([]);
    w.approvals.respond(pending.id, "allow_once", "test");
    await call;
    expect(w.runs).toEqual(["ls /workspace"]);
    const again = w.gate.invoke(p, { name: "exec", input: { command: "ls /workspace" } });
    const second = await waitFor(() => w.approvals.list({ status: "pending" })[0]);
    w.approvals.respond(second.id, "deny", "test");
    const e = await denial(again);
    expect(e.code).toBe(ErrorCode.approvalDenied);
    expect(w.runs).toEqual(["ls /workspace"]);
  });

  it("denies and audits a call whose approval is never answered", async () => {
    w.home.cleanup();
    w = makeWorld(150);
    const p = w.principal(["tool: note_write", "file_write: /**"], {});
    p.approvalRequired = new Set(["note_write"]);
    const e = await denial(w.gate.invoke(p, { name: "note_write", input: { path: "/w/x", text: "x" } }));
    expect(e.code).toBe(ErrorCode.approvalTimeout);
    expect(w.writes).toEqual([]);
    const kinds = w.audit.tail(5).map((x) => x.kind);
    expect(kinds).toContain("approval.timed_out");
    expect(kinds).toContain("tool.denied");
  });

  it("refuses when the budget has nothing left", async () => {
    w.home.cleanup();
    w = makeWorld();
    const gate = new Gate({
      ...(w.gate as unknown as { deps: ConstructorParameters<typeof Gate>[0] }).deps,
      budget: { remaining: () => 0 },
    });
    const p = { ...w.principal(["tool: note_write", "file_write: /**"]), budgetAccount: "acct" };
    const e = await denial(gate.invoke(p, { name: "note_write", input: { path: "/w/x", text: "x" } }));
    expect(e.code).toBe(ErrorCode.budgetExceeded);
    expect(w.writes).toEqual([]);
  });

  it("stops the action when the audit entry cannot be written (fail closed)", async () => {
    const p = w.principal(["tool: note_write", "file_write: /**"]);
    w.audit.close();
    await expect(
      w.gate.invoke(p, { name: "note_write", input: { path: "/w/x", text: "x" } }),
    ).rejects.toThrow();
    expect(w.writes).toEqual([]);
  });
});

describe("the gate's snapshots before mutation", () => {
  it("takes one per agent turn, and forgets an agent's turn when the agent stops", async () => {
    const taken: string[] = [];
    const w = makeWorld(2_000, {
      beforeMutation: async (p) => {
        taken.push(`${p.agentId}@${p.turn}`);
        return `snap-${taken.length}`;
      },
    });
    try {
      const p = w.principal(["tool: note_write", "file_write: /workspace/**"], { turn: 1 });
      const write = (text: string) =>
        w.gate.invoke(p, { name: "note_write", input: { path: "/workspace/a.txt", text } });
      await write("one");
      await write("two");
      expect(taken).toEqual([`${p.agentId}@1`]);
      // What the registry's removal path calls: the agent's turn record is dropped, so a
      // daemon that has seen many agents keeps none of the stopped ones.
      w.gate.agentStopped(p.agentId);
      await write("three");
      expect(taken).toEqual([`${p.agentId}@1`, `${p.agentId}@1`]);
    } finally {
      w.home.cleanup();
    }
  });
});

describe("a simulation is the gate's own judgement", () => {
  let w: World;
  beforeEach(() => {
    w = makeWorld();
  });
  afterEach(() => w.home.cleanup());

  const writer = ["tool: note_write", "file_write: /workspace/**"];
  const cases: [string, string[], { name: string; input: unknown }][] = [
    ["allowed", writer, { name: "note_write", input: { path: "/workspace/a.txt", text: "hi" } }],
    [
      "no tool grant",
      ["file_write: /workspace/**"],
      { name: "note_write", input: { path: "/workspace/a", text: "x" } },
    ],
    ["outside the glob", writer, { name: "note_write", input: { path: "/workspace-x/a", text: "x" } }],
    ["unknown tool", writer, { name: "rm_rf", input: {} }],
    ["bad input", writer, { name: "note_write", input: { path: "relative", text: "x" } }],
    [
      "policy deny",
      ["tool: exec", "exec: git *"],
      { name: "exec", input: { command: "git push origin main" } },
    ],
    ["hidden command", ["tool: exec", "exec: ls *"], { name: "exec", input: { command: "ls; curl x" } }],
  ];

  for (const [name, grants, call] of cases) {
    it(`gives the verdict a real call gets: ${name}`, async () => {
      const p = w.principal(grants);
      const before = w.audit.tail(1)[0]?.seq ?? 0;
      const sim = await w.gate.simulate(p, call);
      // The simulation wrote nothing: no audit entry, no side effect.
      expect(w.audit.tail(1)[0]?.seq ?? 0).toBe(before);
      expect(w.writes).toEqual([]);
      let real: GateDenied | undefined;
      try {
        await w.gate.invoke(p, call);
      } catch (e) {
        if (!(e instanceof GateDenied)) throw e;
        real = e;
      }
      if (real === undefined) expect(sim.verdict).toBe("allow");
      else
        expect(sim).toMatchObject({
          verdict: "deny",
          stage: real.stage,
          reason: real.message,
          code: real.code,
        });
    });
  }

  it("says a confirm rule would ask a human, without asking", async () => {
    const p = w.principal(["tool: exec", "exec: ls *"]);
    const sim = await w.gate.simulate(p, { name: "exec", input: { command: "ls /workspace" } });
    expect(sim).toMatchObject({ verdict: "confirm", stage: "approval" });
    expect(sim.inventory.approval).toMatchObject({ would_ask: true });
    expect(sim.inventory.commands[0]!.programs).toEqual(["ls /workspace"]);
    expect(w.approvals.list({ status: "pending" })).toEqual([]);
    expect(w.runs).toEqual([]);
  });

  it("a call on a throwaway copy (scratch) that needs a human is refused, never put to one", async () => {
    // A shadow step is judged allowed and then invoked; should it need a human by the time
    // it runs (a link swapped by a process an earlier step left behind), nobody is asked.
    const p = { ...w.principal(["tool: exec", "exec: ls *"]), scratch: true as const };
    const e = await denial(w.gate.invoke(p, { name: "exec", input: { command: "ls /workspace" } }));
    expect(e).toMatchObject({ code: ErrorCode.approvalDenied, stage: "approval" });
    expect(e.message).toMatch(/a shadow simulation asks no human/);
    expect(w.approvals.list({ status: "pending" })).toEqual([]);
    expect(w.approvals.list({ status: "expired" })).toEqual([]);
    expect(w.runs).toEqual([]);
    expect(w.audit.tail(1)[0]).toMatchObject({ kind: "tool.denied", payload: { stage: "approval" } });
  });
});
