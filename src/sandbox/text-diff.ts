// sandbox/text-diff.ts — a unified diff of two small texts (the file diffs of a shadow
// simulation, kernel/shadow.ts). Lines are compared by a longest-common-subsequence table
// after the common head and tail are cut off, so an edit in a large file costs only the
// part that changed; when that part is still too large the diff is left out (undefined)
// rather than computed slowly. A caller diffing many files passes a shared cell budget, so
// that many files together cannot hold the daemon up either.

/** Lines of context around each change, as `diff -u` shows. */
const CONTEXT = 3;
/** Past this many cells (changed lines before x after) no diff is computed. */
const MAX_CELLS = 4_000_000;

type Op = { kind: " " | "-" | "+"; line: string; a: number; b: number };

/** Comparison cells a caller still allows; each diff takes its cells from it, and one that does not fit spends it. */
export interface CellBudget {
  cells: number;
}

/**
 * `diff -u` text between `before` and `after` (labelled `path`), or undefined when too large
 * (past MAX_CELLS, or past what `budget` has left, which is then spent: cells 0).
 */
export function unifiedDiff(
  path: string,
  before: string | undefined,
  after: string | undefined,
  budget?: CellBudget,
): string | undefined {
  const a = splitLines(before ?? "");
  const b = splitLines(after ?? "");
  const ops = diffLines(a, b, budget);
  if (!ops) return undefined;
  const hunks: string[] = [];
  let i = 0;
  while (i < ops.length) {
    if (ops[i]!.kind === " ") {
      i++;
      continue;
    }
    // A hunk: from CONTEXT lines before this change to CONTEXT lines after the last change
    // that is within 2*CONTEXT lines of the previous one.
    const start = Math.max(0, i - CONTEXT);
    let end = i;
    let j = i;
    while (j < ops.length) {
      if (ops[j]!.kind !== " ") end = j;
      else if (j - end > 2 * CONTEXT) break;
      j++;
    }
    const stop = Math.min(ops.length, end + CONTEXT + 1);
    const body = ops.slice(start, stop);
    const aLines = body.filter((o) => o.kind !== "+").length;
    const bLines = body.filter((o) => o.kind !== "-").length;
    const aStart = aLines === 0 ? body[0]!.a : body[0]!.a + 1;
    const bStart = bLines === 0 ? body[0]!.b : body[0]!.b + 1;
    hunks.push(`@@ -${range(aStart, aLines)} +${range(bStart, bLines)} @@`);
    for (const o of body) hunks.push(`${o.kind}${o.line}`);
    i = stop;
  }
  const from = before === undefined ? "/dev/null" : `a${path}`;
  const to = after === undefined ? "/dev/null" : `b${path}`;
  return [`--- ${from}`, `+++ ${to}`, ...hunks].join("\n");
}

/** A hunk range as diff -u writes it: the count is left out when it is 1. */
const range = (start: number, count: number) => (count === 1 ? `${start}` : `${start},${count}`);

function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** The edit script from a to b, each op with its position in a and b; undefined when too large. */
function diffLines(a: string[], b: string[], budget?: CellBudget): Op[] | undefined {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  const cells = (am.length + 1) * (bm.length + 1);
  if (cells > MAX_CELLS) return undefined;
  if (budget) {
    // Past the budget, it is spent: the caller's later diffs are left out too.
    budget.cells = cells > budget.cells ? 0 : budget.cells - cells;
    if (budget.cells === 0) return undefined;
  }
  // lcs[i][j]: length of the LCS of am[i..] and bm[j..], in one flat table.
  const w = bm.length + 1;
  const lcs = new Uint32Array((am.length + 1) * w);
  for (let i = am.length - 1; i >= 0; i--)
    for (let j = bm.length - 1; j >= 0; j--)
      lcs[i * w + j] =
        am[i] === bm[j]
          ? lcs[(i + 1) * w + j + 1]! + 1
          : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
  const ops: Op[] = [];
  for (let k = 0; k < head; k++) ops.push({ kind: " ", line: a[k]!, a: k, b: k });
  let i = 0;
  let j = 0;
  while (i < am.length || j < bm.length) {
    const pa = head + i;
    const pb = head + j;
    if (i < am.length && j < bm.length && am[i] === bm[j]) {
      ops.push({ kind: " ", line: am[i]!, a: pa, b: pb });
      i++;
      j++;
    } else if (i < am.length && (j === bm.length || lcs[(i + 1) * w + j]! >= lcs[i * w + j + 1]!)) {
      // Deletions before insertions, as diff -u writes them.
      ops.push({ kind: "-", line: am[i]!, a: pa, b: pb });
      i++;
    } else {
      ops.push({ kind: "+", line: bm[j]!, a: pa, b: pb });
      j++;
    }
  }
  for (let k = 0; k < tail; k++) {
    const pa = a.length - tail + k;
    const pb = b.length - tail + k;
    ops.push({ kind: " ", line: a[pa]!, a: pa, b: pb });
  }
  return ops;
}
