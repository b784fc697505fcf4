// The unified diffs of a shadow simulation (src/sandbox/text-diff.ts) read like GNU diff's:
// each case is compared with `diff -u` run on the same two texts.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { unifiedDiff } from "../../src/sandbox/text-diff.js";

/** The hunks `diff -u` prints for two texts (its header lines dropped: they carry times). */
function gnuHunks(before: string, after: string): string {
  const dir = mkdtempSync(join(tmpdir(), "aido-diff-"));
  try {
    writeFileSync(join(dir, "a"), before);
    writeFileSync(join(dir, "b"), after);
    let out = "";
    try {
      execFileSync("diff", ["-u", join(dir, "a"), join(dir, "b")], { encoding: "utf8" });
    } catch (e) {
      out = (e as { stdout: string }).stdout;
    }
    return out.split("\n").slice(2).join("\n").trimEnd();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ours = (before: string, after: string) =>
  unifiedDiff("/w/f", before, after)!.split("\n").slice(2).join("\n");

const lines = (n: number, f: (i: number) => string) =>
  `${Array.from({ length: n }, (_, i) => f(i)).join("\n")}\n`;

describe("unifiedDiff", () => {
  const cases: [string, string, string][] = [
    ["one changed line", "a\nb\nc\n", "a\nB\nc\n"],
    ["lines added at the end", "a\nb\n", "a\nb\nc\nd\n"],
    ["lines removed at the start", "x\ny\na\nb\n", "a\nb\n"],
    [
      "two changes far apart make two hunks",
      lines(30, (i) => `l${i}`),
      lines(30, (i) => (i === 2 || i === 25 ? `L${i}` : `l${i}`)),
    ],
    [
      "two changes close together make one hunk",
      lines(20, (i) => `l${i}`),
      lines(20, (i) => (i === 5 || i === 9 ? `L${i}` : `l${i}`)),
    ],
    ["a file emptied", "a\nb\n", ""],
    ["a one-line file changed", "a\n", "b\n"],
  ];
  for (const [name, before, after] of cases) {
    it(`matches diff -u: ${name}`, () => {
      expect(ours(before, after)).toBe(gnuHunks(before, after));
    });
  }

  it("labels a new file from /dev/null", () => {
    expect(unifiedDiff("/workspace/n.txt", undefined, "hi\n")).toBe(
      "--- /dev/null\n+++ b/workspace/n.txt\n@@ -0,0 +1 @@\n+hi",
    );
  });

  it("takes its comparison cells from a shared budget, and spends the budget when it does not fit", () => {
    const budget = { cells: 30 };
    // 2 changed lines against 2: (2+1) x (2+1) = 9 cells.
    expect(unifiedDiff("/w/a", "x\na\nb\n", "x\nc\nd\n", budget)).toBeDefined();
    expect(budget.cells).toBe(21);
    // 5 against 5: 36 cells, more than is left: no diff, and nothing left for the next one.
    expect(
      unifiedDiff(
        "/w/b",
        lines(5, (i) => `a${i}`),
        lines(5, (i) => `b${i}`),
        budget,
      ),
    ).toBeUndefined();
    expect(budget.cells).toBe(0);
    expect(unifiedDiff("/w/c", "a\n", "b\n", budget)).toBeUndefined();
  });
});
