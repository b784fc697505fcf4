// A shadow simulation's result stays bounded whatever its steps do (kernel/shadow.ts,
// sandbox/tree-diff.ts): one command that writes a thousand small text files, or rewrites
// every line of many files, must not turn plan.simulate into a response of tens of MB or
// keep the daemon comparing lines for many seconds. Real daemon, real Docker, over the socket.

import { describe, expect, it } from "vitest";
import { docker, planner, usePlansDaemon } from "./plans-fixture.js";

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
