// security/budget-accounts.ts — the shape of the token ledger (security/budget.ts): its
// tables, the rows it reads, and the arithmetic of room in a tree of accounts. No
// transaction here; the ledger applies these rules inside its own.
//
// Accounts form a tree per goal; the root is the goal's account and its limit the goal
// cap. A goal an MCP session submitted roots under the hold its session's account keeps
// for it (OpenAccount.underOtherGoal, kernel/session-budget.ts): the session's account is
// then an ancestor like any other, and what the goal spends is charged to it too. What any account reserves or spends is charged at that moment to the account AND
// every ancestor up to the root: an ancestor's `spent` and `reserved` are its whole
// subtree's, so no account's numbers ever hide what was spent below it, and a refusal at
// any level stops the spend.
//
// A child's limit is carved out of its parent's room when it opens. The carve-out is a
// promise: while the child spends inside it, the parent's room does not move (the spend
// moves from `carved` to `spent`); what the child spends beyond it (a call that cost more
// than it reserved, or spending again after its own reset period) must fit in the
// parent's room, and in every ancestor's, like the parent's own spending. How much of a
// carve-out a child has drawn is counted over its whole life (`total_spent`), never
// reset by a period: a reset period restores an account's own limit, never its
// ancestors', so a subtree can never spend more in total than its ancestors allow.
// Closing an account settles its open reservations as calls given up (charged when their
// request was sent, refunded when not) and returns the undrawn part of its carve-out;
// what it spent stays charged everywhere.
//
//   room(a)    = limit - spent - reserved - carved
//   undrawn(c) = max(0, limit - total_spent - reserved)      (what c's parent still holds for it)
//   carved(p)  = sum of undrawn(c) over p's open children
//
// A reservation of r at account x needs room(x) >= r and, at each ancestor a above its
// child c on the path, room(a) >= max(0, r - undrawn(c)).

import { AidoError, ErrorCode } from "../errors.js";

export const BUDGET_MIGRATIONS = [
  `CREATE TABLE budget_accounts (
     id TEXT PRIMARY KEY,
     parent_id TEXT REFERENCES budget_accounts (id),
     goal_id TEXT NOT NULL,
     limit_tokens INTEGER NOT NULL,
     spent INTEGER NOT NULL DEFAULT 0,
     reserved INTEGER NOT NULL DEFAULT 0,
     carved INTEGER NOT NULL DEFAULT 0,
     period_seconds INTEGER,
     period_start INTEGER NOT NULL,
     closed INTEGER NOT NULL DEFAULT 0
   );
   CREATE UNIQUE INDEX budget_goal_root ON budget_accounts (goal_id) WHERE parent_id IS NULL AND closed = 0;
   CREATE INDEX budget_children ON budget_accounts (parent_id);
   CREATE TABLE budget_reservations (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     account_id TEXT NOT NULL REFERENCES budget_accounts (id),
     amount INTEGER NOT NULL,
     state TEXT NOT NULL,
     actual INTEGER,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX budget_open_reservations ON budget_reservations (account_id) WHERE state = 'open';`,
  // Spending is charged to every ancestor when it happens (see the header); total_spent is
  // the lifetime figure a reset period does not clear. Rows from before it count what they
  // show as spent.
  `ALTER TABLE budget_accounts ADD COLUMN total_spent INTEGER NOT NULL DEFAULT 0;
   UPDATE budget_accounts SET total_spent = spent;`,
  // When the call's request left (ledger.markSent): from then on the provider may have spent
  // up to the reservation, so giving the call up charges it instead of refunding it.
  "ALTER TABLE budget_reservations ADD COLUMN sent_at INTEGER;",
];

export interface BudgetAccount {
  id: string;
  parent_id: string | null;
  goal_id: string;
  limit_tokens: number;
  /** Spent by this account and its subtree in the current period. */
  spent: number;
  /** Spent by this account and its subtree since it opened; no period clears it. */
  total_spent: number;
  /** Open reservations of this account and its subtree. */
  reserved: number;
  /** The undrawn part of its open children's carve-outs. */
  carved: number;
  period_seconds: number | null;
  period_start: number;
  closed: number;
}

export interface Reservation {
  id: number;
  accountId: string;
  amount: number;
}

export interface OpenAccount {
  goalId: string;
  limit: number;
  /** Omit for the goal's root account (the goal-level cap). */
  parentId?: string;
  /**
   * The goal's root account carved from an account of another goal: a goal an MCP session
   * submitted opens its root under the hold its session's account keeps for it
   * (kernel/session-budget.ts), so whatever the goal spends is the session's too. Without
   * it a parent of another goal is refused.
   */
  underOtherGoal?: true;
  /** The account's own spent resets to 0 at the first reserve after each period. */
  periodSeconds?: number;
}

export function roomOf(a: BudgetAccount): number {
  return a.limit_tokens - a.spent - a.reserved - a.carved;
}

/** What of a child's carve-out its parent still holds for it: lifetime, no period restores it. */
export function undrawnOf(a: BudgetAccount): number {
  return Math.max(0, a.limit_tokens - a.total_spent - a.reserved);
}

export function requireTokens(what: string, n: number, allowZero = true): number {
  if (!Number.isSafeInteger(n) || n < 0 || (!allowZero && n === 0)) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `${what} must be a ${allowZero ? "non-negative" : "positive"} integer of tokens, got ${n}`,
      {
        field: what,
      },
    );
  }
  return n;
}

/**
 * What a reservation of `r` at chain[0] takes from each account's room: all of it at the
 * account itself; at an ancestor, only what the child below it on the path has no
 * undrawn carve-out left for.
 */
export function needsOf(chain: readonly BudgetAccount[], r: number): number[] {
  return chain.map((_, i) => (i === 0 ? r : Math.max(0, r - undrawnOf(chain[i - 1] as BudgetAccount))));
}
