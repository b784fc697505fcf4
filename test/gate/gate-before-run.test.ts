// A call's beforeRun hook (ToolCall.beforeRun: a plan's frame before its step), driven through the
// real gate with the test world of gate-world.ts.

import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { HoldRefused } from "../../src/gate/hold.js";
import type { BeforeRun } from "../../src/gate/types.js";
import { denial, makeWorld, waitFor } from "./gate-world.js";

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

  it("is told the gate's snapshot just taken and the paths the call was judged to write, so a frame keeps that snapshot and records the path written", async () => {
    const w = makeWorld(2_000, { beforeMutation: async () => "snap_gate1234" });
    try {
      const p = w.principal(["tool: note_write", "file_write: /workspace/**"]);
      const told: BeforeRun[] = [];
      await w.gate.invoke(p, {
        name: "note_write",
        input: { path: "/workspace/d/a.txt", text: "x" },
        beforeRun: async (run) => void told.push(run),
      });
      expect(told).toEqual([{ snapshotId: "snap_gate1234", keep: [], writes: ["/workspace/d/a.txt"] }]);
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

  it("so does a call cancelled while the gate's snapshot before a mutation is taken; its hook is not called", async () => {
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
      // With a hook (a plan's frame): the frame, seconds on a large workspace, is not taken for it.
      const again = new AbortController();
      const hooked: string[] = [];
      const v = makeWorld(2_000, {
        beforeMutation: async () => {
          again.abort(new Error("the agent stopped"));
          return "snap-3";
        },
      });
      try {
        const q = v.principal(["tool: note_write", "file_write: /workspace/**"]);
        const c2 = v.gate.invoke(q, {
          name: "note_write",
          input: { path: "/workspace/late3.txt", text: "x" },
          signal: again.signal,
          beforeRun: async () => void hooked.push("frame"),
        });
        await expect(c2).rejects.toMatchObject({ code: ErrorCode.cancelled });
        expect(hooked).toEqual([]);
        expect(v.writes).toEqual([]);
      } finally {
        v.home.cleanup();
      }
    } finally {
      w.home.cleanup();
    }
  });
});
