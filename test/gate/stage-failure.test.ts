// A stage of the gate that throws rather than decides ends the call before tool.invoked; it
// is audited as tool.errored with the stage it was at, once, and the caller gets the error it
// got before (gate/stage-failure.ts). Real SQLite-backed tokens, policy, approvals and audit;
// the tools are small ones of the suite that throw what a real one could (the sandbox's
// failures on a real engine are test/gate/stage-failure-docker.test.ts).

import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { openDatabase } from "../../src/db/database.js";
import { AidoError, ErrorCode } from "../../src/errors.js";
import { HoldRefused } from "../../src/gate/hold.js";
import { Gate, GateDenied, type GateDeps, type Principal } from "../../src/gate/invoke.js";
import { stageFailureOf } from "../../src/gate/stage-failure.js";
import type { ToolDef } from "../../src/gate/types.js";
import { lazySandbox } from "../../src/sandbox/lazy.js";
import { ApprovalQueue } from "../../src/security/approvals.js";
import { AuditLog } from "../../src/security/audit.js";
import type { AuditEntry } from "../../src/security/audit-events.js";
import { AUDIT_TEXT_MAX } from "../../src/security/audit-text.js";
import { parseGrant } from "../../src/security/grants.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { PolicyEngine } from "../../src/security/policy.js";
import { TokenAuthority } from "../../src/security/tokens.js";
import { makeTempHome, type TempHome } from "../support/home.js";

/** What the hostile tool throws from its needs: terminal escapes, then megabytes. */
const HOSTILE = `\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\r\x1b[2Kall fine\u202e${"x".repeat(4 * 1024 * 1024)}`;

/**
 * One error object thrown for two calls, as a shared rejected promise throws it to each waiter
 * (a goal's container acquisition, an MCP server's connection): from one call's needs, from
 * another's run.
 */
const SHARED = new AidoError(ErrorCode.sandboxFailed, "the goal's container could not be started");

/** A tool whose needs and approval scope throw on an input they did not expect, as a careless tool's might. */
const oddTool: ToolDef<{ mode: string }> = {
  name: "odd",
  description: "test tool: its needs and approval scope throw on some inputs",
  input: z.strictObject({ mode: z.string() }),
  mutates: false,
  needs: async (i) => {
    if (i.mode === "type-error") return (undefined as unknown as { x: Need[] }).x;
    if (i.mode === "hostile") throw new Error(HOSTILE);
    if (i.mode === "not-an-error") throw Object.create(null);
    if (i.mode === "needs-shared") throw SHARED;
    return [{ kind: "file_read", path: "/workspace/a.txt" }];
  },
  approvalScope: (i) => {
    if (i.mode === "scope-throws") throw new AidoError(ErrorCode.sandboxFailed, "the container went away");
    return { key: `odd:${i.mode}`, target: `odd ${i.mode}` };
  },
  run: async () => ({ output: "ran" }),
};
type Need = { kind: "file_read"; path: string };

interface World {
  home: TempHome;
  audit: AuditLog;
  gate(approvals?: ApprovalQueue, confirm?: string[], beforeRun?: GateDeps["beforeRun"]): Gate;
  approvals: ApprovalQueue;
  principal(): Principal;
  /** A token for the suite's grants, issued to `agentId`. */
  token(agentId: string): Principal["token"];
}

let w: World;
let runs = 0;
beforeEach(() => {
  const home = makeTempHome();
  const db = openDatabase(home.config.dbPath);
  const key = RuntimeKey.load(home.config.keysDir);
  const audit = new AuditLog({ db, signer: key });
  const tokens = new TokenAuthority({ db, key });
  const queue = (onDb = db) =>
    new ApprovalQueue({
      db: onDb,
      audit,
      signer: key,
      timeoutMs: 2_000,
      allowAlwaysTtlSeconds: 3600,
      pollMs: 20,
    });
  const approvals = queue();
  runs = 0;
  const tools = new Map<string, ToolDef<unknown>>([
    [
      "odd",
      {
        ...oddTool,
        run: async (i: { mode: string }) => {
          ++runs;
          if (i.mode === "run-hostile") throw new Error(HOSTILE);
          if (i.mode === "run-not-an-error") throw Object.create(null);
          if (i.mode === "run-shared") throw SHARED;
          return { output: `ran ${runs}` };
        },
      } as ToolDef<unknown>,
    ],
  ]);
  w = {
    home,
    audit,
    approvals,
    gate: (a = approvals, confirm = [], beforeRun = undefined) =>
      new Gate({
        ...(beforeRun ? { beforeRun } : {}),
        tools,
        tokens,
        policy: new PolicyEngine({ policy: { deny: [], confirm, snapshotBeforeMutation: false } }),
        audit,
        approvals: a,
        sandbox: (goalId) =>
          lazySandbox(goalId, async () => {
            throw new Error("these test tools never touch a sandbox");
          }),
        snapshotBeforeMutation: false,
        outputMaxBytes: 4096,
        approvalTimeoutMs: 2_000,
      }),
    principal: () => ({
      agentId: "agent-1",
      goalId: "g1",
      identity: "tester",
      token: w.token("agent-1"),
      approvalRequired: new Set<string>(),
    }),
    token: (agentId) =>
      tokens.issue({
        agentId,
        goalId: "g1",
        grants: ["tool: odd", "file_read: /workspace/**"].map(parseGrant),
        ttlSeconds: 600,
      }),
  };
  // A second database whose approvals store fails (closed under the queue), for the approval stage.
  const broken = openDatabase(join(home.dir, "broken.db"));
  brokenApprovals = queue(broken);
  broken.close();
});
let brokenApprovals: ApprovalQueue;
afterEach(() => w.home.cleanup());

const toolEntries = (): AuditEntry[] =>
  w.audit.query({ agent_id: "agent-1" }).filter((e) => e.kind.startsWith("tool."));
const call = (gate: Gate, mode: string, callId = "c1") =>
  gate.invoke(w.principal(), { name: "odd", input: { mode }, callId }).then(
    () => undefined,
    (e: unknown) => e,
  );

describe("a stage of the gate that throws", () => {
  it("is audited once as tool.errored at stage needs when a tool's needs throw on odd input", async () => {
    const e = await call(w.gate(), "type-error");
    expect(e).toBeInstanceOf(TypeError);
    expect(e).not.toBeInstanceOf(GateDenied);
    const entries = toolEntries();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ kind: "tool.errored", goal_id: "g1" });
    expect(entries[0]?.payload).toEqual({
      tool: "odd",
      stage: "needs",
      error: (e as Error).message,
      call_id: "c1",
    });
    expect(runs).toBe(0);
    expect(w.audit.verify().ok).toBe(true);
  });

  it("keeps the caller's error as it was and the log's copy inert and bounded when the message is hostile", async () => {
    const e = await call(w.gate(), "hostile");
    expect((e as Error).message).toBe(HOSTILE);
    const [entry] = toolEntries();
    const error = String((entry?.payload as { error?: string } | undefined)?.error);
    expect(error.length).toBeLessThanOrEqual(AUDIT_TEXT_MAX);
    expect(error).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
    expect(error.startsWith("\\x1b]8;;https://evil.example\\x07click")).toBe(true);
    expect(error.endsWith("…")).toBe(true);
  });

  it("is audited when what was thrown is not an Error and cannot even be made text", async () => {
    const e = await call(w.gate(), "not-an-error");
    expect(Object.getPrototypeOf(e)).toBeNull();
    expect(toolEntries().map((x) => [x.kind, (x.payload as { stage: string }).stage])).toEqual([
      ["tool.errored", "needs"],
    ]);
  });

  it("is audited at stage approval, with the error's code, when the approval scope throws", async () => {
    const e = await call(w.gate(w.approvals, ["tool: odd"]), "scope-throws");
    expect((e as AidoError).code).toBe(ErrorCode.sandboxFailed);
    expect(toolEntries().map((x) => x.payload)).toEqual([
      {
        tool: "odd",
        stage: "approval",
        error: "the container went away",
        code: "sandbox_failed",
        call_id: "c1",
      },
    ]);
  });

  it("is audited at stage approval when the approval store fails", async () => {
    const e = await call(w.gate(brokenApprovals, ["tool: odd"]), "fine");
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(GateDenied);
    const entries = toolEntries();
    expect(entries.map((x) => [x.kind, (x.payload as { stage: string }).stage])).toEqual([
      ["tool.errored", "approval"],
    ]);
    expect(entries[0]?.payload).toMatchObject({ error: (e as Error).message });
    expect(runs).toBe(0);
  });

  it("tells the caller of a call that ran and failed with an error another call's stage failed with that its call ran", async () => {
    // The caller publishes tool.errored ("did not run") or tool.completed by stageFailureOf: it
    // must answer for the caller's own call. Before, the mark was on the error alone, so a call
    // that ran (tool.invoked, tool.failed) was shown to watchers as failed at needs, not run.
    const gate = w.gate();
    const a = { name: "odd", input: { mode: "needs-shared" }, callId: "a" };
    const b = { name: "odd", input: { mode: "run-shared" }, callId: "b" };
    expect(await gate.invoke(w.principal(), a).catch((e: unknown) => e)).toBe(SHARED);
    expect(await gate.invoke(w.principal(), b).catch((e: unknown) => e)).toBe(SHARED);
    const inOrder = toolEntries().sort((x, y) => x.seq - y.seq);
    expect(inOrder.map((x) => [x.kind, (x.payload as { call_id?: string }).call_id])).toEqual([
      ["tool.errored", "a"],
      ["tool.invoked", "b"],
      ["tool.failed", undefined],
    ]);
    expect(stageFailureOf(SHARED, a)).toBe("needs");
    expect(stageFailureOf(SHARED, b)).toBeUndefined();
  });

  it("writes one entry for a refusal: a denial is tool.denied only", async () => {
    const gate = w.gate();
    const e = await gate
      .invoke(w.principal(), { name: "odd", input: { mode: 7 }, callId: "c2" })
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GateDenied);
    expect(toolEntries().map((x) => x.kind)).toEqual(["tool.denied"]);
  });

  it("writes nothing when simulated (a simulation's failure is its caller's to report)", async () => {
    const before = w.audit.query({}).length;
    await expect(
      w.gate().simulate(w.principal(), { name: "odd", input: { mode: "type-error" } }),
    ).rejects.toThrow(TypeError);
    expect(w.audit.query({}).length).toBe(before);
  });
});

describe("one entry per call, inert and bounded whatever the text", () => {
  it("refuses a token issued to another agent with one tool.denied, not two", async () => {
    const e = await w
      .gate()
      .invoke(
        { ...w.principal(), token: w.token("agent-2") },
        { name: "odd", input: { mode: "fine" }, callId: "c3" },
      )
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GateDenied);
    expect((e as GateDenied).code).toBe(ErrorCode.tokenInvalid);
    expect(toolEntries().map((x) => [x.kind, x.payload])).toEqual([
      [
        "tool.denied",
        {
          tool: "odd",
          stage: "capability",
          reason: "capability token was issued to another agent",
          code: "token_invalid",
          call_id: "c3",
        },
      ],
    ]);
    expect(runs).toBe(0);
  });

  it("keeps a run's error inert and bounded in tool.failed, and the caller's as it was", async () => {
    const e = await call(w.gate(), "run-hostile");
    expect((e as Error).message).toBe(HOSTILE);
    const entries = toolEntries();
    expect(entries.map((x) => x.kind)).toEqual(["tool.failed", "tool.invoked"]);
    const error = String((entries[0]?.payload as { error?: string } | undefined)?.error);
    expect(error.length).toBeLessThanOrEqual(AUDIT_TEXT_MAX);
    expect(error).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
    expect(error.startsWith("\\x1b]8;;https://evil.example\\x07click")).toBe(true);
  });

  it("ends a run that threw what cannot be made text with tool.failed", async () => {
    const e = await call(w.gate(), "run-not-an-error");
    expect(Object.getPrototypeOf(e)).toBeNull();
    expect(toolEntries().map((x) => [x.kind, (x.payload as { error?: string }).error])).toEqual([
      ["tool.failed", "an error that cannot be shown as text"],
      ["tool.invoked", undefined],
    ]);
  });

  it("audits a tool name holding a lone surrogate, and the chain still verifies", async () => {
    const name = "odd\ud800x";
    const e = await w
      .gate()
      .invoke(w.principal(), { name, input: {}, callId: "c5" })
      .catch((x: unknown) => x);
    expect((e as GateDenied).code).toBe(ErrorCode.unknownTool);
    expect(toolEntries().map((x) => [x.kind, (x.payload as { tool: string }).tool])).toEqual([
      ["tool.denied", name],
    ]);
    expect(w.audit.verify().ok).toBe(true);
  });

  it("keeps a refusal's tool name and reason inert and bounded in tool.denied", async () => {
    const e = await w
      .gate()
      .invoke(w.principal(), { name: HOSTILE, input: {}, callId: "c4" })
      .catch((x: unknown) => x);
    expect((e as GateDenied).code).toBe(ErrorCode.unknownTool);
    expect((e as Error).message).toBe(`unknown tool "${HOSTILE}"`);
    const entries = toolEntries();
    expect(entries.map((x) => x.kind)).toEqual(["tool.denied"]);
    const { tool, reason } = (entries[0]?.payload ?? {}) as { tool: string; reason: string };
    for (const text of [tool, reason]) {
      expect(text.length).toBeLessThanOrEqual(AUDIT_TEXT_MAX);
      expect(text).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
    }
    expect(reason.startsWith('unknown tool "\\x1b]8;;https://evil.example')).toBe(true);
  });

  // The cluster hold (GateDeps.beforeRun, cluster/node.ts) looks at Redis and the engine. Its own
  // failure is the runtime's, not a refusal: before, every throw there was tool.denied stage hold.
  it("is audited as tool.errored at stage hold when the hold cannot reach Redis, the error as thrown", async () => {
    const unreachable = async () => {
      // A real client to a port nothing listens on (closed at once after it was bound).
      const { createServer } = await import("node:net");
      const srv = createServer();
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      const port = (srv.address() as { port: number }).port;
      await new Promise((r) => srv.close(r));
      const redis = new Redis({ host: "127.0.0.1", port, lazyConnect: true, retryStrategy: () => null });
      redis.on("error", () => {});
      try {
        await redis.connect();
      } finally {
        redis.disconnect();
      }
    };
    const e = await call(w.gate(undefined, [], unreachable), "plain");
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(GateDenied);
    const entries = toolEntries();
    expect(entries.map((x) => [x.kind, x.payload])).toEqual([
      ["tool.errored", expect.objectContaining({ tool: "odd", stage: "hold", call_id: "c1" })],
    ]);
    expect(String((entries[0]?.payload as { error?: string } | undefined)?.error)).toMatch(
      /ECONNREFUSED|Connection is closed/,
    );
    expect(runs).toBe(0);
  });

  it("keeps the hold failure's code in tool.errored (an engine error), and the caller's error unchanged", async () => {
    const engineDown = new AidoError(ErrorCode.sandboxFailed, "the engine refused to pause the goal");
    const e = await call(
      w.gate(undefined, [], async () => {
        throw engineDown;
      }),
      "plain",
    );
    expect(e).toBe(engineDown);
    expect(toolEntries().map((x) => [x.kind, x.payload])).toEqual([
      [
        "tool.errored",
        {
          tool: "odd",
          stage: "hold",
          error: "the engine refused to pause the goal",
          code: "sandbox_failed",
          call_id: "c1",
        },
      ],
    ]);
    expect(runs).toBe(0);
  });

  it("still audits a refusal of the hold (its agent stopped while it waited) as tool.denied at stage hold", async () => {
    const e = await call(
      w.gate(undefined, [], async () => {
        throw new HoldRefused(ErrorCode.cancelled, "its agent stopped while it waited; it did not run");
      }),
      "plain",
    );
    expect(e).toBeInstanceOf(GateDenied);
    expect(toolEntries().map((x) => [x.kind, x.payload])).toEqual([
      ["tool.denied", expect.objectContaining({ tool: "odd", stage: "hold", code: "cancelled" })],
    ]);
    expect(runs).toBe(0);
  });

  // gate/cancel.ts: the gate looks at the signal after each await and last in the step that
  // writes tool.invoked. An abort landing at any microtask after the hold must never let a call
  // run that had not been audited as invoked when its caller left.
  it("never runs a call whose caller left before tool.invoked, wherever the abort lands after the hold", async () => {
    for (let depth = 0; depth < 12; depth++) {
      const ac = new AbortController();
      const callId = `race-${depth}`;
      let invokedAtAbort: boolean | undefined;
      const abortLater = (n: number): void => {
        if (n > 0) {
          queueMicrotask(() => abortLater(n - 1));
          return;
        }
        invokedAtAbort = w.audit
          .query({ agent_id: "agent-1", kind: "tool.invoked" })
          .some((e) => (e.payload as { call_id?: string }).call_id === callId);
        ac.abort(new Error("the agent stopped"));
      };
      const before = runs;
      const gate = w.gate(undefined, [], async () => abortLater(depth));
      await gate
        .invoke(w.principal(), { name: "odd", input: { mode: "plain" }, callId, signal: ac.signal })
        .catch(() => undefined);
      const kinds = toolEntries()
        .filter((e) => (e.payload as { call_id?: string }).call_id === callId)
        .map((e) => e.kind);
      if (invokedAtAbort === false) {
        expect(kinds, `abort after ${depth} microtasks`).toEqual(["tool.denied"]);
        expect(runs, `abort after ${depth} microtasks`).toBe(before);
      } else {
        expect(kinds, `abort after ${depth} microtasks`).toEqual(["tool.invoked"]);
      }
    }
  });
});
