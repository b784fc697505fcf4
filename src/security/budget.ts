// security/budget.ts — token budgets as integer accounts in SQLite. A model call reserves
// an estimate first, commits the real usage after, and is refunded if it fails. Every
// change is one BEGIN IMMEDIATE transaction, so reservers in other connections, threads
// or processes on the same database can never spend the same tokens twice.
//
// A reservation is the most a call can cost (llm/token-bound.ts), so a commit never
// exceeds it unless the provider broke the bound; then the excess is charged anyway
// (it was spent) and audited as budget.overspent, and the caller stops the goal.
//
// A call given up (its agent stopped: abandon(), or its account closed under it) is
// charged its reservation in full once its request was sent (markSent): the provider had
// it and may have spent up to the bound, and we cannot know less. Refunding it let a
// parent that had its children stopped mid-call get the room back and spend past the goal
// cap. One that never left (queued for an inference slot) is refunded. Whichever settles
// the reservation first (the close, or the call's own abandon or commit) counts; the other
// is refused, as the reservation is no longer open.
//
// Every charge (a commit, a call given up or failed after it was sent, the close of an
// account, a recovery after a restart) is passed to `onSpent` inside its own transaction:
// whoever settles a reservation, the goal's row (its usage) and its carried intent count it
// exactly once, or the charge rolls back with them (kernel/goal-intent.ts chargeGoal). A
// goal's usage read from anywhere else missed the charges its calls did not live to report.
//
// The arithmetic of a tree of accounts (limits, carve-outs, room) is in budget-accounts.ts.

import { type Db, migrate, prepared, type Statement } from "../db/database.js";
import { AidoError, ErrorCode, isAidoError } from "../errors.js";
import type { Usage } from "../llm/types.js";
import type { AuditLog } from "./audit.js";
import type { AuditPayloads } from "./audit-events.js";
import {
  BUDGET_MIGRATIONS,
  type BudgetAccount,
  needsOf,
  type OpenAccount,
  type Reservation,
  requireTokens,
  roomOf,
  undrawnOf,
} from "./budget-accounts.js";

export type { BudgetAccount, OpenAccount, Reservation } from "./budget-accounts.js";
export { roomOf } from "./budget-accounts.js";

export interface BudgetLedgerOptions {
  db: Db;
  /** When given, refusals are recorded as budget.exceeded. */
  audit?: AuditLog;
  now?: () => number;
  /**
   * Called once per charge, inside the transaction that makes it, with the goal of the
   * account and the tokens charged (> 0 in all): as output, the part of a commit the provider
   * reported as output; the rest as input. A throw rolls the charge back.
   */
  onSpent?: (goalId: string, charged: Usage) => void;
}

/** How a call failed after its request may have reached the provider (abandon). */
export interface CallFailure {
  /** What went wrong: "connection", "timeout", "other" (llm/failure.ts). */
  kind: string;
  /** The call goes on: this attempt is charged and its retry holds a reservation of its own. */
  retried?: boolean;
}

/** What a commit is told besides the tokens charged. */
export interface CommitOptions {
  /** The output tokens the provider reported: that part of the charge is told as output. */
  outputTokens?: number;
  /**
   * The usage the provider reported could not be true, so the caller charges `actualTokens`
   * (the reservation) instead; audited as budget.usage_unreported with it.
   */
  unreported?: Usage;
}

export class BudgetLedger {
  private readonly db: Db;
  private readonly audit: AuditLog | undefined;
  private readonly now: () => number;
  private readonly onSpent: ((goalId: string, charged: Usage) => void) | undefined;
  /** Runs a function in one BEGIN IMMEDIATE transaction (a savepoint when nested). */
  private readonly tx: (fn: () => unknown) => unknown;
  /** The statements of every reserve and commit, prepared once. */
  private readonly stmt: {
    find: Statement;
    charge: Statement;
    reserve: Statement;
    settle: Statement;
    markSent: Statement;
    sentAt: Statement;
    settled: Statement;
  };

  constructor(opts: BudgetLedgerOptions) {
    this.db = opts.db;
    this.audit = opts.audit;
    this.now = opts.now ?? Date.now;
    this.onSpent = opts.onSpent;
    migrate(this.db, "budget", BUDGET_MIGRATIONS);
    this.tx = this.db.transaction((fn: () => unknown) => fn()).immediate;
    this.stmt = {
      find: this.db.prepare("SELECT * FROM budget_accounts WHERE id = ?"),
      charge: this.db.prepare(
        "UPDATE budget_accounts SET reserved = reserved + ?, spent = spent + ?, total_spent = total_spent + ?, carved = carved - ? WHERE id = ?",
      ),
      reserve: this.db.prepare(
        "INSERT INTO budget_reservations (account_id, amount, state, created_at) VALUES (?, ?, 'open', ?)",
      ),
      settle: this.db.prepare(
        "UPDATE budget_reservations SET state = ?, actual = ? WHERE id = ? AND account_id = ? AND amount = ? AND state = 'open'",
      ),
      markSent: this.db.prepare(
        "UPDATE budget_reservations SET sent_at = ? WHERE id = ? AND account_id = ? AND state = 'open'",
      ),
      sentAt: this.db.prepare("SELECT sent_at FROM budget_reservations WHERE id = ?").pluck(),
      settled: this.db.prepare(
        "SELECT state, actual FROM budget_reservations WHERE id = ? AND account_id = ? AND amount = ?",
      ),
    };
  }

  /** Open an account; a child's limit is carved from its parent's room or refused. */
  open(id: string, o: OpenAccount): BudgetAccount {
    requireTokens("limit", o.limit);
    if (o.periodSeconds !== undefined) requireTokens("periodSeconds", o.periodSeconds, false);
    return this.immediate(() => {
      if (this.find(id))
        throw new AidoError(ErrorCode.invalidInput, `budget account ${id} already exists`, { account: id });
      if (o.parentId !== undefined) {
        const chain = this.chain(o.parentId);
        const parent = chain[0]!;
        if (o.underOtherGoal) this.requireNoRoot(id, o.goalId);
        else if (parent.goal_id !== o.goalId) {
          throw new AidoError(
            ErrorCode.invalidInput,
            `budget account ${id} is for goal ${o.goalId} but its parent ${parent.id} is for goal ${parent.goal_id}`,
            {
              account: id,
            },
          );
        }
        // The carve-out takes room from the parent only; above it nothing moves.
        this.requireRoom(
          chain,
          chain.map((_, i) => (i === 0 ? o.limit : 0)),
          o.limit,
        );
        prepared(this.db, "UPDATE budget_accounts SET carved = carved + ? WHERE id = ?").run(
          o.limit,
          parent.id,
        );
      } else this.requireNoRoot(id, o.goalId);
      prepared(
        this.db,
        "INSERT INTO budget_accounts (id, parent_id, goal_id, limit_tokens, period_seconds, period_start) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(id, o.parentId ?? null, o.goalId, o.limit, o.periodSeconds ?? null, this.now());
      return this.get(id);
    });
  }

  /**
   * The open accounts directly under `accountId` (closed ones too with `includeClosed`):
   * what an MCP session's account holds for the goals it submitted (kernel/session-budget.ts).
   */
  childrenOf(accountId: string, includeClosed = false): BudgetAccount[] {
    return prepared(
      this.db,
      `SELECT * FROM budget_accounts WHERE parent_id = ?${includeClosed ? "" : " AND closed = 0"} ORDER BY rowid`,
    ).all(accountId) as BudgetAccount[];
  }

  /** A goal has one open root account: one without a parent, or one under another goal's. */
  private requireNoRoot(id: string, goalId: string): void {
    const root = prepared(
      this.db,
      `SELECT a.id FROM budget_accounts a LEFT JOIN budget_accounts p ON p.id = a.parent_id
       WHERE a.goal_id = ? AND a.closed = 0 AND (a.parent_id IS NULL OR p.goal_id <> a.goal_id)`,
    ).get(goalId);
    if (root) {
      throw new AidoError(ErrorCode.invalidInput, `goal ${goalId} already has a root budget account`, {
        goal: goalId,
        account: id,
      });
    }
  }

  /** Hold `estimate` tokens on the account and every ancestor; budget_exceeded when any level lacks room. */
  reserve(accountId: string, estimate: number): Reservation {
    requireTokens("estimate", estimate);
    return this.immediate(() => {
      const chain = this.chain(accountId);
      this.requireRoom(chain, needsOf(chain, estimate), estimate);
      this.charge(chain, estimate, 0);
      const id = this.stmt.reserve.run(accountId, estimate, this.now()).lastInsertRowid;
      return { id: Number(id), accountId, amount: estimate };
    });
  }

  /**
   * Record real usage for a reservation, on the account and every ancestor. Usage above the
   * reservation (the call's bound was broken) is charged too, since it was spent, and
   * audited as budget.overspent in the same transaction; the caller stops what spent it.
   */
  commit(r: Reservation, actualTokens: number, o: CommitOptions = {}): BudgetAccount {
    requireTokens("actualTokens", actualTokens);
    const { unreported } = o;
    const output = Math.min(o.outputTokens ?? 0, actualTokens);
    return this.immediate(() => {
      this.settle(r, "committed", actualTokens);
      const after = this.charge(this.ancestry(r.accountId), -r.amount, actualTokens, output);
      if (unreported) {
        this.audit?.record(
          "budget.usage_unreported",
          {
            account: r.accountId,
            reported_input: unreported.input_tokens,
            reported_output: unreported.output_tokens,
            charged: actualTokens,
          },
          { goalId: after.goal_id },
        );
      }
      if (actualTokens > r.amount) {
        this.audit?.record(
          "budget.overspent",
          {
            account: r.accountId,
            reserved: r.amount,
            actual: actualTokens,
            overspent: actualTokens - r.amount,
          },
          { goalId: after.goal_id },
        );
      }
      return after;
    });
  }

  /** Release a reservation whose call failed: nothing is spent. */
  refund(r: Reservation): BudgetAccount {
    return this.immediate(() => {
      this.settle(r, "refunded", null);
      return this.charge(this.ancestry(r.accountId), -r.amount, 0);
    });
  }

  /**
   * The call's request is about to be sent: from now on giving it up charges its
   * reservation (see the header). False when the reservation is no longer open (its account
   * was closed meanwhile): the request must not be sent, since nothing would pay for it.
   */
  markSent(r: Reservation): boolean {
    return this.stmt.markSent.run(this.now(), r.id, r.accountId).changes === 1;
  }

  /**
   * Settle a reservation whose call was given up: charged in full (audited as
   * budget.charged_aborted) when its request was sent, refunded when it never left.
   * `failure`: the call was not given up but failed after it may have reached the provider
   * (the connection or the stream lost, a timeout); charged the same way, audited as
   * budget.charged_failed with what went wrong (and `retried` when the call goes on: its
   * retry reserves its own bound, so a retry never runs on the room of an attempt billed).
   */
  abandon(r: Reservation, failure?: CallFailure): BudgetAccount {
    return this.immediate(() => this.abandonOne(r, failure));
  }

  /**
   * What a reservation was charged once settled, by whichever settled it (its call, or
   * the close of its account): 0 when refunded; undefined while it is still open.
   */
  chargedFor(r: Reservation): number | undefined {
    const row = this.stmt.settled.get(r.id, r.accountId, r.amount) as
      | { state: string; actual: number | null }
      | undefined;
    if (!row || row.state === "open") return undefined;
    return row.actual ?? 0;
  }

  /**
   * Close an account and, first, its open descendants: open reservations are settled as
   * abandoned calls (charged if sent, refunded if not) and the undrawn part of the
   * carve-out returns to the parent. What was spent stays charged.
   */
  close(accountId: string): void {
    this.immediate(() => this.closeOne(accountId));
  }

  /**
   * Close an account after charging it `spent` tokens spent elsewhere (a cluster goal's share
   * in its session's account: the node that ran the goal charged its own ledger,
   * kernel/session-budget.ts settleClusterShare); what it then leaves undrawn returns to its
   * parent. Undefined when the account is closed already (or is none): one transaction reads
   * and closes it, so it is settled once. Not passed to onSpent: the goal's usage is where it ran.
   */
  closeSpent(accountId: string, spent: number): { limit: number; returned: number } | undefined {
    requireTokens("spent", spent);
    return this.immediate(() => {
      const a = this.find(accountId);
      if (a === undefined || a.closed) return undefined;
      if (spent > 0) this.charge(this.ancestry(accountId), 0, spent, 0, false);
      const returned = undrawnOf(this.get(accountId));
      this.closeOne(accountId);
      return { limit: a.limit_tokens, returned };
    });
  }

  /** The open accounts whose id starts with `prefix` (a node's open cluster shares, `job:`). */
  openNamed(prefix: string): BudgetAccount[] {
    return prepared(
      this.db,
      "SELECT * FROM budget_accounts WHERE closed = 0 AND substr(id, 1, length(?)) = ? ORDER BY rowid",
    ).all(prefix, prefix) as BudgetAccount[];
  }

  get(accountId: string): BudgetAccount {
    const a = this.find(accountId);
    if (!a) throw new AidoError(ErrorCode.notFound, `no budget account ${accountId}`, { account: accountId });
    return a;
  }

  /**
   * The largest reservation the account could make now (0 when none), by the same rule
   * reserve applies; a period that ended counts as reset. Read-only.
   */
  available(accountId: string): number {
    let below: BudgetAccount | undefined;
    let best = Number.POSITIVE_INFINITY;
    let id: string | null = accountId;
    while (id !== null) {
      const a = this.asOfNow(this.get(id));
      if (a.closed) return 0;
      const room = roomOf(a);
      if (room < 0) return 0;
      best = Math.min(best, below ? room + undrawnOf(below) : room);
      below = a;
      id = a.parent_id;
    }
    return best;
  }

  private closeOne(accountId: string): void {
    const a = this.get(accountId);
    if (a.closed) return;
    const children = prepared(this.db, "SELECT id FROM budget_accounts WHERE parent_id = ? AND closed = 0")
      .pluck()
      .all(accountId) as string[];
    for (const c of children) this.closeOne(c);
    const open = prepared(
      this.db,
      "SELECT id, amount FROM budget_reservations WHERE account_id = ? AND state = 'open'",
    ).all(accountId) as { id: number; amount: number }[];
    for (const r of open) this.abandonOne({ id: r.id, accountId, amount: r.amount });
    const after = this.get(accountId);
    if (after.parent_id !== null) {
      prepared(this.db, "UPDATE budget_accounts SET carved = carved - ? WHERE id = ?").run(
        undrawnOf(after),
        after.parent_id,
      );
    }
    prepared(this.db, "UPDATE budget_accounts SET closed = 1 WHERE id = ?").run(accountId);
  }

  private abandonOne(r: Reservation, failure?: CallFailure): BudgetAccount {
    if (this.stmt.sentAt.get(r.id) == null) {
      this.settle(r, "refunded", null);
      return this.charge(this.ancestry(r.accountId), -r.amount, 0);
    }
    this.settle(r, "committed", r.amount);
    const after = this.charge(this.ancestry(r.accountId), -r.amount, r.amount);
    const charged = { account: r.accountId, reservation_id: r.id, charged: r.amount };
    if (failure === undefined)
      this.audit?.record("budget.charged_aborted", charged, { goalId: after.goal_id });
    else
      this.audit?.record(
        "budget.charged_failed",
        { ...charged, failure: failure.kind, ...(failure.retried ? { retried: true } : {}) },
        { goalId: after.goal_id },
      );
    return after;
  }

  /** Move a reservation out of 'open', or refuse (unknown, already settled, wrong account). */
  private settle(r: Reservation, state: "committed" | "refunded", actual: number | null): void {
    const changed = this.stmt.settle.run(state, actual, r.id, r.accountId, r.amount).changes;
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

  /**
   * Apply a change of reserved/spent to the account and every ancestor, keeping each
   * parent's `carved` equal to the undrawn part of its children's carve-outs. `chain` is
   * the account and its ancestors up to the root as this transaction reads them; one
   * UPDATE per account. Returns the account as it is after the change.
   */
  private charge(
    chain: readonly BudgetAccount[],
    reservedDelta: number,
    spentDelta: number,
    outputTokens = 0,
    /** Tell onSpent (the goal's usage): not for a share settled with what was spent elsewhere. */
    toGoal = true,
  ): BudgetAccount {
    // What the account below drew from (or gave back to) this account's carve-out.
    let drawn = 0;
    let first: BudgetAccount | undefined;
    for (const before of chain) {
      this.stmt.charge.run(reservedDelta, spentDelta, spentDelta, drawn, before.id);
      const after: BudgetAccount = {
        ...before,
        reserved: before.reserved + reservedDelta,
        spent: before.spent + spentDelta,
        total_spent: before.total_spent + spentDelta,
        carved: before.carved - drawn,
      };
      first ??= after;
      drawn = before.parent_id !== null ? undrawnOf(before) - undrawnOf(after) : 0;
    }
    if (!first) throw new Error("charge needs the account's chain");
    if (spentDelta > 0 && toGoal)
      this.onSpent?.(first.goal_id, { input_tokens: spentDelta - outputTokens, output_tokens: outputTokens });
    return first;
  }

  /** The account and its ancestors up to the goal root, as stored (no period reset). */
  private ancestry(accountId: string): BudgetAccount[] {
    return this.walk(accountId, (a) => a);
  }

  /** The account and its ancestors up to the goal root, each reset if its period ended. */
  private chain(accountId: string): BudgetAccount[] {
    return this.walk(accountId, (stored) => {
      const a = this.resetIfDue(stored);
      if (a.closed)
        throw new AidoError(ErrorCode.invalidInput, `budget account ${a.id} is closed`, { account: a.id });
      return a;
    });
  }

  /** The parent links from `accountId` to the goal root, each account as `take` makes it. */
  private walk(accountId: string, take: (stored: BudgetAccount) => BudgetAccount): BudgetAccount[] {
    const chain: BudgetAccount[] = [];
    let id: string | null = accountId;
    while (id !== null) {
      const a = take(this.get(id));
      chain.push(a);
      id = a.parent_id;
    }
    return chain;
  }

  /** Where the account's current period starts (its own spent resets then), as of now. */
  private periodStart(a: BudgetAccount): number {
    if (a.period_seconds === null) return a.period_start;
    const len = a.period_seconds * 1000;
    const elapsed = this.now() - a.period_start;
    return elapsed < len ? a.period_start : a.period_start + Math.floor(elapsed / len) * len;
  }

  private asOfNow(a: BudgetAccount): BudgetAccount {
    const start = this.periodStart(a);
    return start === a.period_start ? a : { ...a, spent: 0, period_start: start };
  }

  private resetIfDue(a: BudgetAccount): BudgetAccount {
    const now = this.asOfNow(a);
    if (now === a) return a;
    prepared(this.db, "UPDATE budget_accounts SET spent = 0, period_start = ? WHERE id = ?").run(
      now.period_start,
      a.id,
    );
    return this.get(a.id);
  }

  /** Each account of the chain must have room for its need; the first that lacks it is named. */
  private requireRoom(chain: BudgetAccount[], needs: number[], requested: number): void {
    chain.forEach((a, i) => {
      if (roomOf(a) >= (needs[i] ?? 0)) return;
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

  /**
   * Run `fn` (reads and opens of this ledger) in one write transaction, so what it reads
   * is what it takes (kernel/session-budget.ts: a session's share carved from what is left).
   */
  atomically<T>(fn: () => T): T {
    return this.tx(fn) as T;
  }

  /** The account, or undefined when there is none. */
  find(id: string): BudgetAccount | undefined {
    return this.stmt.find.get(id) as BudgetAccount | undefined;
  }

  /**
   * One write transaction. A refusal is audited after the rollback, so the entry is not
   * rolled back with it; if that audit write fails, audit_failed is thrown instead.
   */
  private immediate<T>(fn: () => T): T {
    try {
      return this.tx(fn) as T;
    } catch (e) {
      if (this.audit && isAidoError(e, ErrorCode.budgetExceeded)) {
        const { goal, ...refusal } = e.details as { goal: string } & AuditPayloads["budget.exceeded"];
        this.audit.record("budget.exceeded", refusal, { goalId: goal });
      }
      throw e;
    }
  }
}
