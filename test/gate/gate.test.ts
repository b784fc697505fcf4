// The gate is the one path of every tool call. These tests drive it with small real
// tools of the suite whose side effects are observable, and real SQLite-backed tokens,
// policy, approvals and audit.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { openDatabase } from "../../src/db/database.js";
import { ErrorCode } from "../../src/errors.js";
import { HoldRefused } from "../../src/gate/hold.js";
import { Gate, GateDenied, type Principal, type SnapshotHook } from "../../src/gate/invoke.js";
import type { ToolDef } from "../../src/gate/types.js";
import { lazySandbox } from "../../src/sandbox/lazy.js";
import { ApprovalQueue } from "../../src/security/approvals.js";
import { AuditLog } from "../../src/security/audit.js";
import { parseGrant } from "../../src/security/grants.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { execNeeds, PolicyEngine } from "../../src/security/policy.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { TokenAuthority } from "../../src/security/tokens.js";
import { makeTempHome, type TempHome } from "../support/home.js";

interface World {
  home: TempHome;
  gate: Gate;
  audit: AuditLog;
  tokens: TokenAuthority;
  approvals: ApprovalQueue;
  writes: string[];
  runs: string[];
  principal(grants: string[], opts?: Partial<Principal>): Principal;
}

/** A tool whose "write" lands in an array: the side effect a denial must never cause. */
function noteTool(writes: string[]): ToolDef<{ path: string; text: string }> {
  return {
    name: "note_write",
    description: "test tool: records a write",
    input: z.strictObject({ path: z.string().startsWith("/"), text: z.string().max(100) }),
    mutates: true,
    needs: async (i) => [{ kind: "file_write", path: i.path }],
    run: async (i) => {
      writes.push(`${i.path}=${i.text}`);
      return { output: "written" };
    },
  };
}

function shellTool(runs: string[]): ToolDef<{ command: string }> {
  return {
    name: "exec",
    description: "test tool: records a command it would run",
    input: z.strictObject({ command: z.string().min(1) }),
    mutates: true,
    needs: async (i) => execNeeds(analyzeCommand(i.command)),
    run: async (i) => {
      runs.push(i.command);
      return { output: "ran" };
    },
  };
}

function makeWorld(
  approvalTimeoutMs = 2_000,
  snapshots?: SnapshotHook,
  hold?: (goalId: string, signal?: AbortSignal) => Promise<void>,
): World {
  const home = makeTempHome();
  const db = openDatabase(home.config.dbPath);
  const key = RuntimeKey.load(home.config.keysDir);
  const audit = new AuditLog({ db, signer: key });
  const tokens = new TokenAuthority({ db, key });
  const approvals = new ApprovalQueue({
    db,
    audit,
    signer: key,
    timeoutMs: approvalTimeoutMs,
    allowAlwaysTtlSeconds: 3600,
    pollMs: 20,
  });
  const writes: string[] = [];
  const runs: string[] = [];
  const tools = new Map<string, ToolDef<unknown>>([
    ["note_write", noteTool(writes) as ToolDef<unknown>],
    ["exec", shellTool(runs) as ToolDef<unknown>],
  ]);
  const gate = new Gate({
    tools,
    tokens,
    policy: new PolicyEngine({
      policy: { deny: ["git push *"], confirm: ["tool: exec"], snapshotBeforeMutation: false },
    }),
    audit,
    approvals,
    sandbox: (goalId) =>
      lazySandbox(goalId, async () => {
        throw new Error("these test tools never touch a sandbox");
      }),
    snapshotBeforeMutation: snapshots !== undefined,
    ...(snapshots ? { snapshots } : {}),
    ...(hold ? { beforeRun: hold } : {}),
    outputMaxBytes: 4096,
    approvalTimeoutMs,
  });
  let n = 0;
  return {
    home,
    gate,
    audit,
    tokens,
    approvals,
    writes,
    runs,
    principal(grants, opts = {}) {
      const agentId = `agent-${++n}`;
      const token = tokens.issue({ agentId, goalId: "g1", grants: grants.map(parseGrant), ttlSeconds: 600 });
      return {
        agentId,
        goalId: "g1",
        identity: "tester",
        token,
        approvalRequired: new Set<string>(),
        ...opts,
      };
    },
  };
}

async function denial(p: Promise<unknown>): Promise<GateDenied> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GateDenied) return e;
    throw e;
  }
  throw new Error("expected the gate to deny the call");
}

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

describe("a call's beforeRun hook (a plan's frame before its step)", () => {
  it("runs once the call is allowed and invoked, after the gate's snapshot, right before the tool; never for a refused or cancelled call", async () => {
    const seen: string[] = [];
    const w = makeWorld(2_000, {
      beforeMutation: async () => {
        seen.push("snapshot");
        return "snap-1";
      },
    });
    try {
      const p = w.principal(["tool: note_write", "file_write: /workspace/**"], { turn: 1 });
      p.approvalRequired = new Set(["note_write"]);
      const beforeRun = async () => void seen.push(`hook after ${w.audit.tail(1)[0]?.kind}`);
      const note = (path: string, opts: { signal?: AbortSignal; beforeRun?: () => Promise<void> } = {}) =>
        w.gate.invoke(p, { name: "note_write", input: { path, text: "x" }, beforeRun, ...opts });
      const answer = async (decision: "allow_once" | "deny") =>
        w.approvals.respond(
          (await waitFor(() => w.approvals.list({ status: "pending" })[0])).id,
          decision,
          "t",
        );
      const call = note("/workspace/a.txt");
      await waitFor(() => w.approvals.list({ status: "pending" })[0]);
      expect(seen).toEqual([]);
      await answer("allow_once");
      await call;
      expect(seen).toEqual(["snapshot", "hook after tool.invoked"]);
      // Cancelled while the human is asked, denied by the human, refused by its grants: no hook.
      const cancel = new AbortController();
      const cancelled = note("/workspace/b", { signal: cancel.signal });
      await waitFor(() => w.approvals.list({ status: "pending" })[0]);
      cancel.abort(new Error("the client left"));
      expect(await denial(cancelled)).toMatchObject({ stage: "approval" });
      const denied = note("/workspace/b");
      await answer("deny");
      expect((await denial(denied)).code).toBe(ErrorCode.approvalDenied);
      const q = w.principal(["tool: note_write"]);
      await denial(
        w.gate.invoke(q, { name: "note_write", input: { path: "/workspace/b", text: "x" }, beforeRun }),
      );
      expect(seen).toEqual(["snapshot", "hook after tool.invoked"]);
      // A hook that fails: the run's failure (tool.failed), the tool not run.
      const r = note("/workspace/c", {
        beforeRun: async () => {
          throw new Error("the frame could not be taken");
        },
      });
      await answer("allow_once");
      await expect(r).rejects.toThrow(/the frame could not be taken/);
      expect(w.writes).toEqual(["/workspace/a.txt=x"]);
      expect(w.audit.tail(1)[0]).toMatchObject({ kind: "tool.failed" });
    } finally {
      w.home.cleanup();
    }
  });

  it("a call cancelled while its hook (a slow frame snapshot) runs does not run: tool.invoked, then tool.failed cancelled", async () => {
    const w = makeWorld(2_000, { beforeMutation: async () => "snap-1" });
    try {
      const p = w.principal(["tool: note_write", "file_write: /workspace/**"]);
      const cancel = new AbortController();
      const call = w.gate.invoke(p, {
        name: "note_write",
        input: { path: "/workspace/late.txt", text: "x" },
        signal: cancel.signal,
        // The client leaves while the frame is taken (seconds on a large workspace).
        beforeRun: async () => void cancel.abort(new Error("the client left")),
      });
      await expect(call).rejects.toMatchObject({ code: ErrorCode.cancelled });
      expect(w.writes).toEqual([]);
      expect(w.audit.tail(2).map((e) => e.kind)).toEqual(["tool.invoked", "tool.failed"]);
      expect(JSON.stringify(w.audit.tail(1)[0])).toMatch(/the client left/);
    } finally {
      w.home.cleanup();
    }
  });

  it("a call whose node became unsure of its goal (its fence fell) while its hook ran waits at the hold again, and does not run if the goal was lost", async () => {
    let unsure = false;
    const holds: string[] = [];
    const w = makeWorld(2_000, { beforeMutation: async () => "snap-1" }, async (goalId) => {
      holds.push(unsure ? "unsure" : "sure");
      if (unsure) throw new HoldRefused(ErrorCode.cancelled, `goal ${goalId} was lost to another node`, {});
    });
    try {
      const p = w.principal(["tool: note_write", "file_write: /workspace/**"]);
      const call = w.gate.invoke(p, {
        name: "note_write",
        input: { path: "/workspace/fenced.txt", text: "x" },
        // The fence falls while the frame is taken (seconds on a large workspace).
        beforeRun: async () => {
          unsure = true;
        },
      });
      await expect(call).rejects.toThrow(/lost to another node/);
      expect(w.writes).toEqual([]);
      expect(holds.at(-1)).toBe("unsure");
      expect(w.audit.tail(2).map((e) => e.kind)).toEqual(["tool.invoked", "tool.failed"]);
    } finally {
      w.home.cleanup();
    }
  });

  it("so does a call with no hook cancelled while the gate's snapshot before a mutation is taken", async () => {
    const during = new AbortController();
    const w = makeWorld(2_000, {
      beforeMutation: async () => {
        during.abort(new Error("the agent stopped"));
        return "snap-2";
      },
    });
    try {
      const p = w.principal(["tool: note_write", "file_write: /workspace/**"]);
      const call = w.gate.invoke(p, {
        name: "note_write",
        input: { path: "/workspace/late2.txt", text: "x" },
        signal: during.signal,
      });
      await expect(call).rejects.toMatchObject({ code: ErrorCode.cancelled });
      expect(w.writes).toEqual([]);
      expect(w.audit.tail(2).map((e) => e.kind)).toEqual(["tool.invoked", "tool.failed"]);
    } finally {
      w.home.cleanup();
    }
  });
});

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("timed out waiting");
}

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
