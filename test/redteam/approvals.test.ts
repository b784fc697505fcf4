// Red team: standing approvals under attack, through the integrated gate (tool.invoke's
// path, real container). The attacker controls the model's tool calls and wants an earlier
// "allow" to cover something the human never saw: another path behind a symlink, a script
// rewritten after it was approved, a command that prints the same but does something else,
// an operator manifest's identity borrowed by naming a child after it, a grant row edited
// in SQLite, a call approved after its agent was stopped. Each test first shows the
// standing decision working, so it fails if the feature is removed, not only if it leaks.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { AidoError, ErrorCode } from "../../src/errors.js";
import type { ToolResult } from "../../src/gate/types.js";
import type { ApprovalRecord } from "../../src/security/approvals.js";
import { turn } from "../support/provider-server.js";
import { answerNext, type Decision, expectOk, useBench } from "./fixture.js";

const b = useBench((c) => {
  c.approvals.timeoutMs = 8_000;
});

/** The human: answers the next request, which must appear, and returns it. */
async function answer(decision: Decision): Promise<ApprovalRecord> {
  const rec = await answerNext(b.rt, decision);
  if (!rec) throw new Error("no approval request appeared");
  return rec;
}

/** A call that a standing decision must cover: it completes and nobody is ever asked. */
async function unasked(agentId: string, tool: string, input: unknown): Promise<ToolResult> {
  const before = b.rt.approvals.list().length;
  const r = expectOk(await b.call(agentId, tool, input));
  expect(b.rt.approvals.list()).toHaveLength(before);
  return r;
}

/** A call that must ask: the human denies it, and it is refused at the approval stage. */
async function askedAndDenied(agentId: string, tool: string, input: unknown): Promise<ApprovalRecord> {
  const call = b.call(agentId, tool, input);
  const rec = await answer("deny");
  const r = await call;
  expect(r).toBeInstanceOf(AidoError);
  expect((r as AidoError).code).toBe(ErrorCode.approvalDenied);
  return rec;
}

async function allowed(agentId: string, tool: string, input: unknown, decision: Decision) {
  const call = b.call(agentId, tool, input);
  const rec = await answer(decision);
  return { rec, result: expectOk(await call) };
}

const ws = (goalId: string, file: string) => join(b.home.dir, "goals", goalId, "workspace", file);
const files = ["tool: file_write", "file_read: /workspace/**", "file_write: /workspace/**"];

describe("standing approvals under attack", () => {
  it("no tool an agent can call answers, lists or revokes approvals", () => {
    const names = b.rt.listTools().map((t) => t.name);
    expect(names.filter((n) => /approv|grant|revoke/.test(n))).toEqual([]);
  });

  it("an Allow Session on a path follows the path as the container resolves it, not a symlink's name", async () => {
    const w = b.agent("linker", [...files, "tool: exec", "exec: ln *"], {
      approval_required: ["file_write"],
    });
    await allowed(w.id, "file_write", { path: "/workspace/a.txt", content: "1" }, "allow_session");
    await unasked(w.id, "file_write", { path: "/workspace/a.txt", content: "2" });
    // A link to the approved file is the approved file...
    expectOk(await b.call(w.id, "exec", { command: "ln -s /workspace/a.txt /workspace/alias.txt" }));
    await unasked(w.id, "file_write", { path: "/workspace/alias.txt", content: "3" });
    expect(readFileSync(ws(w.goalId, "a.txt"), "utf8")).toBe("3");
    // ...and a link with an innocent name to another file is that other file.
    expectOk(await b.call(w.id, "exec", { command: "ln -s /workspace/secret.txt /workspace/a2.txt" }));
    const rec = await askedAndDenied(w.id, "file_write", { path: "/workspace/a2.txt", content: "pwn" });
    expect(rec.target).toBe("file_write on /workspace/secret.txt");
    expect(existsSync(ws(w.goalId, "secret.txt"))).toBe(false);
  });

  it("an Allow Session on `sh script` does not cover the script once it was rewritten", async () => {
    const w = b.agent("scripter", [...files, "tool: exec", "exec: sh *", "exec: echo *", "exec: rm *"], {
      approval_required: ["exec"],
    });
    expectOk(await b.call(w.id, "file_write", { path: "/workspace/keep.txt", content: "precious" }));
    expectOk(await b.call(w.id, "file_write", { path: "/workspace/s.sh", content: "echo hello\n" }));
    const run = { command: "sh /workspace/s.sh" };
    expect((await allowed(w.id, "exec", run, "allow_session")).result.output).toContain("hello");
    expect((await unasked(w.id, "exec", run)).output).toContain("hello");
    expectOk(
      await b.call(w.id, "file_write", { path: "/workspace/s.sh", content: "rm -f /workspace/keep.txt\n" }),
    );
    await askedAndDenied(w.id, "exec", run);
    expect(readFileSync(ws(w.goalId, "keep.txt"), "utf8")).toBe("precious");
  });

  it("an Allow Session on `./fix.py` (a python script run by path) does not cover it once it was rewritten", async () => {
    const w = b.agent("pyrunner", [...files, "tool: exec", "exec: ./fix.py", "exec: chmod *"], {
      approval_required: ["exec"],
    });
    expectOk(await b.call(w.id, "file_write", { path: "/workspace/keep.txt", content: "precious" }));
    const write = (content: string) =>
      b.call(w.id, "file_write", {
        path: "/workspace/fix.py",
        content: `#!/usr/bin/env python3\n${content}`,
      });
    expectOk(await write('print("hello")\n'));
    await allowed(w.id, "exec", { command: "chmod +x fix.py" }, "allow_once");
    const run = { command: "./fix.py" };
    const first = await allowed(w.id, "exec", run, "allow_session");
    expect(first.result.output).toContain("hello");
    expect(first.rec.target).toMatch(
      /^exec of `\.\/fix\.py` in \/workspace; running \/workspace\/fix\.py as it is now \(sha256 [0-9a-f]{16}…\)$/,
    );
    expect((await unasked(w.id, "exec", run)).output).toContain("hello");
    // file_write keeps the mode: the rewritten file is still executable, and another program.
    expectOk(await write('import os\nos.remove("/workspace/keep.txt")\n'));
    await askedAndDenied(w.id, "exec", run);
    expect(readFileSync(ws(w.goalId, "keep.txt"), "utf8")).toBe("precious");
  });

  it.each([['f=fix.py; python3 "$f"'], ["python3 ./fi[x].py"], ["python3 < fix.py"]])(
    "an Allow Session on `%s` (code named at run time or read from stdin) covers no later call",
    async (command) => {
      const w = b.agent("pyloose", [...files, "tool: exec", "exec: python3 *", "exec: cat *"], {
        approval_required: ["exec"],
      });
      expectOk(await b.call(w.id, "file_write", { path: "/workspace/keep.txt", content: "precious" }));
      const write = (content: string) => b.call(w.id, "file_write", { path: "/workspace/fix.py", content });
      expectOk(await write('print("hello")\n'));
      const first = await allowed(w.id, "exec", { command }, "allow_session");
      expect(first.result.output).toContain("hello");
      // What runs cannot be pinned to the content the human saw: the rewrite is asked about.
      expectOk(await write('import os\nos.remove("/workspace/keep.txt")\n'));
      await askedAndDenied(w.id, "exec", { command });
      expect(readFileSync(ws(w.goalId, "keep.txt"), "utf8")).toBe("precious");
    },
  );

  it("an Allow Session on a command is no pass for one that prints alike but does something else", async () => {
    const w = b.agent("remover", [...files, "tool: exec", "exec: rm *"], { approval_required: ["exec"] });
    expectOk(await b.call(w.id, "file_write", { path: "/workspace/keep", content: "k" }));
    await allowed(w.id, "exec", { command: "X=/workspace/gone; rm -f $X" }, "allow_session");
    await unasked(w.id, "exec", { command: "X=/workspace/gone; rm -f $X" });
    const sneaky = await askedAndDenied(w.id, "exec", { command: "X=/workspace/keep; rm -f $X" });
    expect(sneaky.target).toBe("exec of `X=/workspace/keep; rm -f $X` (exactly this text) in /workspace");
    await allowed(w.id, "exec", { command: "rm -f /workspace/gone" }, "allow_session");
    await unasked(w.id, "exec", { command: "rm  -f  '/workspace/gone'" });
    await askedAndDenied(w.id, "exec", { command: "rm -f /workspace/gone /workspace/keep" });
    await askedAndDenied(w.id, "exec", { command: "rm -f /workspace/gone; rm -f /workspace/keep" });
    expect(readFileSync(ws(w.goalId, "keep"), "utf8")).toBe("k");
  });

  it("a child a model names after an operator's manifest does not get that manifest's Allow Always", async () => {
    const caps = [...files, "tool: spawn_agent", "spawn_child: [writer]"];
    const writer = b.agent("writer", files, { approval_required: ["file_write"] });
    const { rec } = await allowed(
      writer.id,
      "file_write",
      { path: "/workspace/r.md", content: "ok" },
      "allow_always",
    );
    expect(rec.identity).toBe("writer");
    await unasked(writer.id, "file_write", { path: "/workspace/r.md", content: "again" });

    b.server.script("you are the boss", [
      turn.toolUse("spawn_agent", {
        manifest: { name: "writer", system_prompt: "impostor writer", capabilities: files },
        message: "write r.md",
      }),
      turn.text("done"),
    ]);
    b.server.script("impostor writer", [
      turn.toolUse("file_write", { path: "/workspace/r.md", content: "pwned" }),
      turn.text("done"),
    ]);
    const run = b.rt.spawnAndRun(
      {
        name: "boss",
        system_prompt: "you are the boss",
        capabilities: caps,
        approval_required: ["file_write"],
        budget: { max_tokens: 100_000 },
      },
      "delegate",
    );
    const impostor = await answer("deny");
    expect(impostor.identity).toBe("boss/writer");
    await run;
    const boss = b.rt.listAgents({ includeStopped: true }).find((a) => a.manifest === "boss")!;
    expect(existsSync(ws(boss.goal_id, "r.md"))).toBe(false);
  });

  it("a grant row moved to another path or identity in SQLite is no pass through the gate", async () => {
    const w = b.agent("signed", files, { approval_required: ["file_write"] });
    const { rec } = await allowed(
      w.id,
      "file_write",
      { path: "/workspace/ok.md", content: "1" },
      "allow_always",
    );
    await unasked(w.id, "file_write", { path: "/workspace/ok.md", content: "2" });
    const db = new Database(b.home.config.dbPath);
    try {
      db.prepare("UPDATE approval_grants SET scope_key = 'path:/workspace/evil.md' WHERE id = ?").run(
        rec.grant_id,
      );
      await askedAndDenied(w.id, "file_write", { path: "/workspace/evil.md", content: "x" });
      db.prepare(
        "UPDATE approval_grants SET scope_key = 'path:/workspace/ok.md', identity = 'mallory' WHERE id = ?",
      ).run(rec.grant_id);
      const m = b.agent("mallory", files, { approval_required: ["file_write"] });
      await askedAndDenied(m.id, "file_write", { path: "/workspace/ok.md", content: "x" });
    } finally {
      db.close();
    }
    expect(existsSync(ws(w.goalId, "evil.md"))).toBe(false);
  });

  it("a call whose agent was stopped while it waited never runs, however the human answers later", async () => {
    const w = b.agent("late", files, { approval_required: ["file_write"] });
    const call = b.call(w.id, "file_write", { path: "/workspace/late.txt", content: "x" });
    let pending: ApprovalRecord | undefined;
    for (let i = 0; i < 300 && !pending; i++) {
      await new Promise((r) => setTimeout(r, 20));
      [pending] = b.rt.approvals.list({ status: "pending" });
    }
    b.rt.stopAgent(w.id, "operator stopped it");
    const r = await call;
    expect(r).toBeInstanceOf(AidoError);
    expect((r as AidoError).code).toBe(ErrorCode.approvalExpired);
    expect(() => b.rt.approvals.respond(pending!.id, "allow_once")).toThrow(/already expired/);
    expect(existsSync(ws(w.goalId, "late.txt"))).toBe(false);
  });
});
