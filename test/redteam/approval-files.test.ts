// Red team (was open-approval-scope): an exec approval's scope and the files its words name.
// A standing answer (Allow Session / Allow Always) on `cp data.csv backup.csv` was reused
// after the model turned backup.csv into a link to /output/report.md with a call nobody
// confirmed: the scope held only the paths that looked like paths, and a bare word is not
// one. Now the scope of an exec that reaches the approval stage holds the canonical path
// of every static word that could name a file (tools/exec-scope.ts), resolved in the
// container from where the command starts, so the same words leading elsewhere are another
// scope and a human is asked. Also here: a link swapped in while the request waits voids
// the answer, and a command naming more words than can be resolved is asked every time.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { MAX_SCOPE_PATHS } from "../../src/tools/exec-scope.js";
import { turn } from "../support/provider-server.js";
import { answerNext, expectOk, useBench } from "./fixture.js";

const b = useBench((c) => {
  c.approvals.timeoutMs = 8_000;
  c.policy.confirm = ["cp *", "dd *", "touch *", "cat *"];
});

/** Nobody is asked within `ms`. */
async function nobodyAsked(ms = 300): Promise<boolean> {
  await new Promise((r) => setTimeout(r, ms));
  return b.rt.approvals.list({ status: "pending" }).length === 0;
}

const files = [
  "tool: file_write",
  "file_read: /workspace/**",
  "file_write: /workspace/**",
  "file_read: /output/**",
  "file_write: /output/**",
];
const grants = [
  ...files,
  "tool: exec",
  "exec: cp *",
  "exec: dd *",
  "exec: ln *",
  "exec: rm *",
  "exec: touch *",
  "exec: cat *",
];
const out = (goalId: string, file: string) => join(b.home.dir, "goals", goalId, "output", file);

async function setUp(name: string) {
  const w = b.agent(name, grants);
  expectOk(await b.call(w.id, "file_write", { path: "/workspace/data.csv", content: "a,b\n" }));
  expectOk(await b.call(w.id, "file_write", { path: "/output/report.md", content: "the report" }));
  return w;
}

describe("an exec approval and the files its bare words name", () => {
  for (const [how, command] of [
    ["an operand", "cp data.csv backup.csv"],
    ["a NAME=VALUE word", "dd if=data.csv of=backup.csv"],
  ] as const) {
    it(`an Allow Session on \`${command}\` does not cover it once backup.csv (${how}) leads elsewhere`, async () => {
      const w = await setUp(`copier-${how.length}`);
      const first = b.call(w.id, "exec", { command });
      const rec = await answerNext(b.rt, "allow_session");
      expect(rec?.target).toBe(`exec of \`${command}\` in /workspace`);
      expectOk(await first);

      // The same words with the same files: the standing answer covers it, nobody is asked.
      expectOk(await b.call(w.id, "exec", { command }));
      // Not confirmed (only cp and dd are): the model turns the approved destination into a link.
      expectOk(await b.call(w.id, "exec", { command: "ln -sf /output/report.md /workspace/backup.csv" }));
      const again = b.call(w.id, "exec", { command });
      const asked = await answerNext(b.rt, "deny");
      const r = await again;
      expect(asked, "the same words now write /output/report.md: the human must be asked").toBeDefined();
      expect(r).toBeInstanceOf(AidoError);
      expect(readFileSync(out(w.goalId, "report.md"), "utf8")).toBe("the report");

      // Back to a plain file: the files are those the human allowed, and the answer stands.
      expectOk(await b.call(w.id, "exec", { command: "rm /workspace/backup.csv" }));
      const back = b.call(w.id, "exec", { command });
      expect(await nobodyAsked()).toBe(true);
      expectOk(await back);
      const reused = b.rt.audit.query({ agent_id: w.id, kind: "approval.reused" });
      expect(reused).toHaveLength(2);
    }, 60_000);
  }

  it("through the agent loop: the model's link makes its approved copy ask again", async () => {
    b.server.script("you copy files", [
      turn.toolUse("file_write", { path: "/output/report.md", content: "the report" }),
      turn.toolUse("file_write", { path: "/workspace/data.csv", content: "a,b\n" }),
      turn.toolUse("exec", { command: "cp data.csv backup.csv" }),
      turn.toolUse("exec", { command: "ln -sf /output/report.md backup.csv" }),
      turn.toolUse("exec", { command: "cp data.csv backup.csv" }),
      turn.text("done"),
    ]);
    const run = b.rt.spawnAndRun(
      {
        name: "loop-copier",
        system_prompt: "you copy files",
        capabilities: grants,
        budget: { max_tokens: 100_000 },
      },
      "copy the data",
    );
    expect((await answerNext(b.rt, "allow_session"))?.target).toBe(
      "exec of `cp data.csv backup.csv` in /workspace",
    );
    const second = await answerNext(b.rt, "deny");
    const result = await run;
    expect(second, "the second copy writes the report: asked again").toBeDefined();
    const agent = b.rt.listAgents({ includeStopped: true }).find((a) => a.manifest === "loop-copier")!;
    expect(readFileSync(out(agent.goal_id, "report.md"), "utf8")).toBe("the report");
    expect(result.text).toBe("done");
  }, 60_000);

  it("an answer given while a link was swapped in is about other files: the call does not run", async () => {
    const w = await setUp("swapper");
    const pending = b.call(w.id, "exec", { command: "cp data.csv backup.csv" });
    for (let i = 0; i < 300 && b.rt.approvals.list({ status: "pending" }).length === 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    // While the human reads the prompt, the model's other call (not confirmed) swaps in a link.
    expectOk(await b.call(w.id, "exec", { command: "ln -sf /output/report.md /workspace/backup.csv" }));
    await answerNext(b.rt, "allow_session");
    const r = await pending;
    expect(r).toBeInstanceOf(AidoError);
    expect((r as AidoError).message).toMatch(/changed while it waited for approval/);
    expect(readFileSync(out(w.goalId, "report.md"), "utf8")).toBe("the report");
    const denied = b.rt.audit.query({ agent_id: w.id, kind: "tool.denied" });
    expect(denied.some((d) => (d.payload as { stage: string }).stage === "approval")).toBe(true);
  }, 60_000);

  it(`asks every time for a command naming more than ${MAX_SCOPE_PATHS} words that could be files`, async () => {
    const w = await setUp("toucher");
    const names = Array.from({ length: MAX_SCOPE_PATHS + 1 }, (_, i) => `f${i}`);
    // cat, not touch: a written bare name is a path the exec tool resolves (at most 256 in a call).
    const command = `cat ${names.join(" ")}`;
    const first = b.call(w.id, "exec", { command });
    const rec = await answerNext(b.rt, "allow_session");
    expect(rec?.target).toMatch(
      /no standing answer will cover it: it names more than 256 words that could be files$/,
    );
    expectOk(await first);
    const again = b.call(w.id, "exec", { command });
    expect(
      await answerNext(b.rt, "deny"),
      "a scope that could not be pinned down is never reused",
    ).toBeDefined();
    expect(await again).toBeInstanceOf(AidoError);
  }, 60_000);
});
