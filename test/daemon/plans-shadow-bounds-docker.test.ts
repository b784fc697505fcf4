// A shadow simulation's result stays bounded whatever its steps do (kernel/shadow.ts,
// sandbox/tree-diff.ts): one command that writes a thousand small text files, or rewrites
// every line of many files, must not turn plan.simulate into a response of tens of MB or
// keep the daemon comparing lines for many seconds; and shadow runs fired side by side
// must not each take a full copy of the workspace. Real daemon, real Docker, over the socket.

import { existsSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AidoRpcError } from "../../src/client/client.js";
import { docker, kinds, planner, usePlansDaemon } from "./plans-fixture.js";

const { suite, spawn } = usePlansDaemon();

/** The planner, with python3 to write many files in one step. */
const writer = () =>
  planner({
    capabilities: ["tool: exec", "file_write: /workspace/**", "file_read: /workspace/**", "exec: python3 *"],
  });

/** `python3 -c` writing files f0..f(n-1) in /workspace, each `lines` lines of `line(i, j)`. */
const pyWrite = (n: number, lines: number, line: string) =>
  `python3 -c "
for i in range(${n}):
    open('/workspace/f%d.txt' % i, 'w').write(''.join(${line} for j in range(${lines})))
"`;

describe("a shadow simulation's diff is bounded", () => {
  it("lists a thousand new text files with exact counts, but their diffs together stay under 256 KiB", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c, writer());
    // ~52 KB of text per file: each under the 64 KiB a file's diff is made for.
    const sim = await c.call(
      "plan.simulate",
      {
        agent_id: a.agent_id,
        shadow: true,
        steps: [{ tool: "exec", input: { command: pyWrite(1000, 4500, "'line %d %d\\\\n' % (i, j)") } }],
      },
      { timeoutMs: 120_000 },
    );
    const diff = sim.shadow!.diff;
    expect(sim.shadow!.steps[0]).toMatchObject({ ran: true, ok: true });
    expect(diff.counts).toEqual({ added: 1000, changed: 0, deleted: 0 });
    expect(diff.added).toHaveLength(1000);
    const texts = diff.added.flatMap((p) => (p.diff ? [p.diff] : []));
    expect(texts.length).toBeGreaterThan(0);
    expect(texts.reduce((n, t) => n + Buffer.byteLength(t), 0)).toBeLessThanOrEqual(256 * 1024);
    expect(diff.diffs_omitted).toBe(1000 - texts.length);
    // The whole answer: the paths and sizes, not 70 MB of diffs.
    expect(JSON.stringify(sim).length).toBeLessThan(1024 * 1024);
  }, 180_000);

  it("compares the lines of only as many rewritten files as its cell budget allows", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c, writer());
    // 300 files of 1,999 one-letter lines, for real; the shadow rewrites every line of each:
    // 4 million comparison cells per file.
    const made = await c.call(
      "tool.invoke",
      { agent_id: a.agent_id, tool: "exec", input: { command: pyWrite(300, 1999, "'a\\\\n'") } },
      { timeoutMs: 60_000 },
    );
    expect(made.is_error).toBe(false);
    const sim = await c.call(
      "plan.simulate",
      {
        agent_id: a.agent_id,
        shadow: true,
        steps: [{ tool: "exec", input: { command: pyWrite(300, 1999, "'b\\\\n'") } }],
      },
      { timeoutMs: 120_000 },
    );
    const diff = sim.shadow!.diff;
    expect(diff.counts).toEqual({ added: 0, changed: 300, deleted: 0 });
    expect(diff.changed).toHaveLength(300);
    const withDiff = diff.changed.filter((p) => p.diff !== undefined).length;
    expect(withDiff).toBeGreaterThan(0);
    expect(withDiff).toBeLessThan(300);
    expect(diff.diffs_omitted).toBe(300 - withDiff);
    // 300 x 4M cells were compared before (seconds of the daemon's time), for a 4.8 MB answer.
    expect(JSON.stringify(sim).length).toBeLessThan(1024 * 1024);
  }, 180_000);
});

describe("shadow runs side by side", () => {
  it("one runs at a time per goal: the others are refused (-32002, audited), and the next one after runs", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(c, writer());
    const slow = { tool: "exec", input: { command: `python3 -c "import time; time.sleep(3)"` } };
    const shadowDirs = () =>
      existsSync(fx.home.config.goalsDir)
        ? readdirSync(fx.home.config.goalsDir).filter((n) => n.startsWith("w_"))
        : [];
    let mostCopies = 0;
    const watch = setInterval(() => {
      mostCopies = Math.max(mostCopies, shadowDirs().length);
    }, 50);
    const settled = await Promise.allSettled(
      [0, 1, 2, 3].map(() =>
        c.call("plan.simulate", { agent_id: a.agent_id, shadow: true, steps: [slow] }, { timeoutMs: 60_000 }),
      ),
    ).finally(() => clearInterval(watch));
    const ran = settled.filter((r) => r.status === "fulfilled");
    const refused = settled.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    expect(ran).toHaveLength(1);
    expect(refused).toHaveLength(3);
    for (const e of refused) {
      expect(e).toBeInstanceOf(AidoRpcError);
      expect((e as AidoRpcError).rpcCode).toBe(-32002);
      expect((e as Error).message).toMatch(/a shadow simulation of goal \S+ is already running/);
    }
    expect(mostCopies).toBe(1);
    const refusals = await kinds(c, a.agent_id, "plan.refused");
    expect(refusals).toHaveLength(3);
    expect(refusals[0]!.payload).toMatchObject({ reason: expect.stringMatching(/already running/) });
    // The claim ends with the run: the next shadow simulation of the goal runs.
    const next = await c.call("plan.simulate", { agent_id: a.agent_id, shadow: true, steps: [slow] });
    expect(next.shadow!.steps[0]).toMatchObject({ ran: true, ok: true });
    expect(shadowDirs()).toEqual([]);
  }, 120_000);
});
