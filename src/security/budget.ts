// security/budget.ts — token budgets as integer accounts in SQLite. A model call reserves
// an estimate first, commits the real usage after, and is refunded if it fails. Every
// change is one BEGIN IMMEDIATE transaction, so reservers in other connections, threads
// or processes on the same database can never spend the same tokens twice.
//
// Accounts form a tree per goal. The root is the goal's account: its limit is the
// goal-level cap. A child's limit is carved out of its parent's room when it opens
// (carved), and given back when it closes, when the parent is charged what the child
// spent. Usage beyond a child's limit (a commit larger than its estimate) spills up into
// the parent's spent at once, so no ancestor's numbers ever hide it.
//
//   room(a) = limit - spent - reserved - carved

import { type Db, migrate, prepared } from "../db/database.js";
import { AidoError, ErrorCode, isAidoError } from "../errors.js";
import type { AuditLog } from "./audit.js";
import type { AuditPayloads } from "./audit-events.js";

const MIGRATIONS = [
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
];

export interface BudgetAccount {
  id: string;
  parent_id: string | null;
  goal_id: string;
  limit_tokens: number;
  spent: number;
  reserved: number;
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
  /** Spent resets to 0 at the first reserve after each period. */
  periodSeconds?: number;
}

export interface BudgetLedgerOptions {
  db: Db;
  /** When given, refusals are recorded as budget.exceeded. */
  audit?: AuditLog;
  now?: () => number;
}

export function roomOf(a: BudgetAccount): number {
  return a.limit_tokens - a.spent - a.reserved - a.carved;
}

function overOf(a: BudgetAccount): number {
  return Math.max(0, -roomOf(a));
}

function tokens(what: string, n: number, allowZero = true): number {
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

export class BudgetLedger {
  private readonly db: Db;
  private readonly audit: AuditLog | undefined;
  private readonly now: () => number;

  constructor(opts: BudgetLedgerOptions) {
    this.db = opts.db;
    this.audit = opts.audit;
    this.now = opts.now ?? Date.now;
    migrate(this.db, "budget", MIGRATIONS);
  }

  /** Open an account; a child's limit is carved from its parent's room or refused. */
  open(id: string, o: OpenAccount): BudgetAccount {
    tokens("limit", o.limit);
    if (o.periodSeconds !== undefined) tokens("periodSeconds", o.periodSeconds, false);
    return this.immediate(() => {
      if (this.find(id))
        throw new AidoError(ErrorCode.invalidInput, `budget account ${id} already exists`, { account: id });
      if (o.parentId !== undefined) {
        const chain = this.chain(o.parentId);
        const parent = chain[0]!;
        if (parent.goal_id !== o.goalId) {
          throw new AidoError(
            ErrorCode.invalidInput,
            `budget account ${id} is for goal ${o.goalId} but its parent ${parent.id} is for goal ${parent.goal_id}`,
            {
              account: id,
            },
          );
        }
        this.requireRoom(chain, o.limit);
        prepared(this.db, "UPDATE budget_accounts SET carved = carved + ? WHERE id = ?").run(
          o.limit,
          parent.id,
        );
      } else if (
        prepared(
          this.db,
          "SELECT 1 FROM budget_accounts WHERE goal_id = ? AND parent_id IS NULL AND closed = 0",
        ).get(o.goalId)
      ) {
        throw new AidoError(ErrorCode.invalidInput, `goal ${o.goalId} already has a root budget account`, {
          goal: o.goalId,
        });
      }
      prepared(
        this.db,
        "INSERT INTO budget_accounts (id, parent_id, goal_id, limit_tokens, period_seconds, period_start) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(id, o.parentId ?? null, o.goalId, o.limit, o.periodSeconds ?? null, this.now());
      return this.get(id);
    });
  }

  /** Hold `estimate` tokens on the account; refused with budget_exceeded when any level lacks room. */
  reserve(accountId: string, estimate: number): Reservation {
    tokens("estimate", estimate);
    return this.immediate(() => {
      const chain = this.chain(accountId);
      this.requireRoom(chain, estimate);
      prepared(this.db, "UPDATE budget_accounts SET reserved = reserved + ? WHERE id = ?").run(
        estimate,
        accountId,
      );
      const id = prepared(
        this.db,
        "INSERT INTO budget_reservations (account_id, amount, state, created_at) VALUES (?, ?, 'open', ?)",
      ).run(accountId, estimate, this.now()).lastInsertRowid;
      return { id: Number(id), accountId, amount: estimate };
    });
  }

  /** Record real usage for a reservation. Usage above the estimate is recorded too, and spills up. */
  commit(r: Reservation, actualTokens: number): BudgetAccount {
    tokens("actualTokens", actualTokens);
    return this.immediate(() => {
      this.settle(r, "committed", actualTokens);
      this.charge(r.accountId, -r.amount, actualTokens);
      return this.get(r.accountId);
    });
  }

  /** Release a reservation whose call failed: nothing is spent. */
  refund(r: Reservation): BudgetAccount {
    return this.immediate(() => {
      this.settle(r, "refunded", null);
      prepared(this.db, "UPDATE budget_accounts SET reserved = reserved - ? WHERE id = ?").run(
        r.amount,
        r.accountId,
      );
      return this.get(r.accountId);
    });
  }

  /**
   * Close an account and, first, its open descendants: open reservations are refunded,
   * the carve-out returns to the parent, and the parent is charged what was spent in it.
   */
  close(accountId: string): void {
    this.immediate(() => this.closeOne(accountId));
  }

  get(accountId: string): BudgetAccount {
    const a = this.find(accountId);
    if (!a) throw new AidoError(ErrorCode.notFound, `no budget account ${accountId}`, { account: accountId });
    return a;
  }

  private closeOne(accountId: string): void {
    const a = this.get(accountId);
    if (a.closed) return;
    const children = prepared(this.db, "SELECT id FROM budget_accounts WHERE parent_id = ? AND closed = 0")
      .pluck()
      .all(accountId) as string[];
    for (const c of children) this.closeOne(c);
    prepared(
      this.db,
      "UPDATE budget_reservations SET state = 'refunded' WHERE account_id = ? AND state = 'open'",
    ).run(accountId);
    const after = this.get(accountId);
    prepared(this.db, "UPDATE budget_accounts SET reserved = 0, closed = 1 WHERE id = ?").run(accountId);
    if (after.parent_id !== null) {
      // What spilled over the limit was charged already; charge the rest now.
      prepared(this.db, "UPDATE budget_accounts SET carved = carved - ?, spent = spent + ? WHERE id = ?").run(
        after.limit_tokens,
        Math.min(after.spent, after.limit_tokens),
        after.parent_id,
      );
    }
  }

  /** Move a reservation out of 'open', or refuse (unknown, already settled, wrong account). */
  private settle(r: Reservation, state: "committed" | "refunded", actual: number | null): void {
    const changed = prepared(
      this.db,
      "UPDATE budget_reservations SET state = ?, actual = ? WHERE id = ? AND account_id = ? AND amount = ? AND state = 'open'",
    ).run(state, actual, r.id, r.accountId, r.amount).changes;
    if (changed !== 1) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `reservation ${r.id} on ${r.accountId} is not open (already settled or unknown)`,
        {
          reservation: r.id,
        },
      );
    }
  }

  /** Adjust reserved/spent on one account and push any new overrun into its ancestors' spent. */
  private charge(accountId: string, reservedDelta: number, spentDelta: number): void {
    let id: string | null = accountId;
    let dReserved = reservedDelta;
    let dSpent = spentDelta;
    while (id !== null && (dReserved !== 0 || dSpent !== 0)) {
      const before = this.get(id);
      prepared(
        this.db,
        "UPDATE budget_accounts SET reserved = reserved + ?, spent = spent + ? WHERE id = ?",
      ).run(dReserved, dSpent, id);
      const spill = overOf(this.get(id)) - overOf(before);
      id = before.parent_id;
      dReserved = 0;
      dSpent = Math.max(0, spill);
    }
  }

  /** The account and its ancestors up to the goal root, each reset if its period ended. */
  private chain(accountId: string): BudgetAccount[] {
    const chain: BudgetAccount[] = [];
    let id: string | null = accountId;
    while (id !== null) {
      const a = this.resetIfDue(this.get(id));
      if (a.closed)
        throw new AidoError(ErrorCode.invalidInput, `budget account ${a.id} is closed`, { account: a.id });
      chain.push(a);
      id = a.parent_id;
    }
    return chain;
  }

  private resetIfDue(a: BudgetAccount): BudgetAccount {
    if (a.period_seconds === null) return a;
    const len = a.period_seconds * 1000;
    const elapsed = this.now() - a.period_start;
    if (elapsed < len) return a;
    const start = a.period_start + Math.floor(elapsed / len) * len;
    prepared(this.db, "UPDATE budget_accounts SET spent = 0, period_start = ? WHERE id = ?").run(start, a.id);
    return this.get(a.id);
  }

  /** `requested` must fit in the first account; every ancestor must not be overrun already. */
  private requireRoom(chain: BudgetAccount[], requested: number): void {
    chain.forEach((a, i) => {
      const need = i === 0 ? requested : 0;
      if (roomOf(a) >= need) return;
      const details = {
        account: a.id,
        limit: a.limit_tokens,
        spent: a.spent,
        reserved: a.reserved,
        requested,
      };
      throw new AidoError(
        ErrorCode.budgetExceeded,
        `token budget of ${a.id} exceeded: ${requested} requested, limit ${a.limit_tokens}, spent ${a.spent}, reserved ${a.reserved}, carved for children ${a.carved}`,
        { ...details, goal: a.goal_id },
      );
    });
  }

  private find(id: string): BudgetAccount | undefined {
    return prepared(this.db, "SELECT * FROM budget_accounts WHERE id = ?").get(id) as
      | BudgetAccount
      | undefined;
  }

  /**
   * One write transaction. A refusal is audited after the rollback, so the entry is not
   * rolled back with it; if that audit write fails, audit_failed is thrown instead.
   */
  private immediate<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (e) {
      if (this.audit && isAidoError(e, ErrorCode.budgetExceeded)) {
        const { goal, ...refusal } = e.details as { goal: string } & AuditPayloads["budget.exceeded"];
        this.audit.record("budget.exceeded", refusal, { goalId: goal });
      }
      throw e;
    }
  }
}
