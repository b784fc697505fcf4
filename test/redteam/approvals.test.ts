// Red team: approvals through the integrated gate. No tool lets an agent answer its own
// approval, and a human's "allow for this session" on one path is not a pass for another.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError, ErrorCode } from "../../src/errors.js";
import { type Bench, expectOk, openBench } from "./fixture.js";

let b: Bench;

beforeAll(async () => {
  b = await openBench({}, (c) => {
    c.approvals.timeoutMs = 20_000;
  });
}, 180_000);
afterAll(async () => {
  await b?.close();
});

async function answerNext(decision: "allow_session" | "deny"): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const p = b.rt.approvals.list({ status: "pending" });
    if (p.length > 0) {
      b.rt.approvals.respond(p[0]!.id, decision);
      return p[0]!.summary;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("no approval request appeared");
}

describe("approvals under attack", () => {
  it("no tool the agent can call answers an approval", () => {
    const names = b.rt.listTools().map((t) => t.name);
    expect(names.filter((n) => /approv/.test(n))).toEqual([]);
  });

  it("an allow_session for one path is not reused for another path", async () => {
    const w = b.agent("asker", ["tool: file_write", "file_write: /workspace/**"], {
      approval_required: ["file_write"],
    });
    const first = b.call(w.id, "file_write", { path: "/workspace/a.txt", content: "a" });
    expect(await answerNext("allow_session")).toContain("/workspace/a.txt");
    expectOk(await first);
    const second = b.call(w.id, "file_write", { path: "/workspace/secret/b.txt", content: "b" });
    expect(await answerNext("deny")).toContain("/workspace/secret/b.txt");
    const r = await second;
    expect(r).toBeInstanceOf(AidoError);
    expect((r as AidoError).code).toBe(ErrorCode.approvalDenied);
    expect(existsSync(join(b.home.dir, "goals", w.goalId, "workspace", "secret"))).toBe(false);
    const denied = b.rt.audit.query({ agent_id: w.id, kind: "tool.denied" });
    expect(denied.some((e) => (e.payload as { stage: string }).stage === "approval")).toBe(true);
    expect(b.rt.audit.verify().ok).toBe(true);
  });
});
