// tools/mcp/bounded-regexp.ts — the regular-expression engine ajv uses for the `pattern`
// and `patternProperties` of an external MCP server's pinned inputSchema. Those patterns
// are the server author's, and the strings tested against them are a model's: a pattern
// like `^(a+)+$` backtracks exponentially, and a 40-character argument would hold the
// daemon's only thread (every goal, every socket) for hours. Each test runs in a vm
// context under a watchdog; one validation of one call has a shared time budget, and a
// test that runs out of it counts as "does not match" (the call is refused, naming the
// pattern), never as a match.

import vm from "node:vm";

/** What one validation (all its pattern tests together) may spend on patterns, in ms. */
export const PATTERN_BUDGET_MS = 200;

const TEST = new vm.Script("re.test(s)");
/**
 * One context for every pattern (a context costs ~180 KB and a millisecond: a schema with
 * thousands of patterns must not cost the daemon gigabytes). Each test sets `re` and `s`.
 */
const CONTEXT = vm.createContext({ re: /(?:)/, s: "" });

/** When the validation running now must stop testing patterns (Date.now() ms). */
let deadline = Number.POSITIVE_INFINITY;

/** Run `validate` with a fresh pattern budget (validation is synchronous: one at a time). */
export function withPatternBudget<T>(validate: () => T): T {
  deadline = Date.now() + PATTERN_BUDGET_MS;
  try {
    return validate();
  } finally {
    deadline = Number.POSITIVE_INFINITY;
  }
}

/** ajv's `code.regExp`: a pattern whose tests stop at the budget's deadline. */
export const boundedRegExp = Object.assign(
  (pattern: string, flags: string) => {
    const re = new RegExp(pattern, flags);
    return {
      // ajv keys its compiled patterns by this: each pattern must have its own.
      toString: () => re.toString(),
      test(s: string): boolean {
        const left = Math.floor(deadline - Date.now());
        if (left <= 0) return false;
        CONTEXT.re = re;
        CONTEXT.s = s;
        try {
          return TEST.runInContext(CONTEXT, { timeout: Math.min(left, PATTERN_BUDGET_MS) }) === true;
        } catch {
          return false; // the watchdog stopped it
        }
      },
    };
  },
  { code: "boundedRegExp" },
);
