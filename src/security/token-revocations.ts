// security/token-revocations.ts — what one database connection knows of capability-token
// revocations, for the verify path (src/security/tokens.ts). One view per connection,
// shared by every authority on it: PRAGMA data_version only reports OTHER connections'
// writes, so two authorities on one connection must not keep separate views.
//
// The set is updated at once by a revoke through this connection and re-read when another
// connection has written (looked at most every revocationPollMs).
//
// Memory: a revoked id is needed only while a token whose chain holds it could verify, and
// a child's expiry is capped at its parent's, so no token under a token expired at T verifies
// after T. An id is forgotten once its token has been expired for FORGET_REVOKED_AFTER_MS,
// and such ids are not read in at start. That judgement is made on the wall clock of the
// moment, which can be wrong: a clock days ahead (at a sweep or at a start), later put right,
// or another authority's clock on the same connection. So the view keeps the latest expiry
// of any id it forgot, and a token expiring no later than that (it may be under a forgotten
// id) has its chain looked up in the database, the durable record. A token that expired more
// than a day ago is refused for its expiry first, so with a sane clock the lookup never runs.

import type { Statement } from "better-sqlite3";
import type { Db } from "../db/database.js";

/** A revoked token's id is forgotten once the token has been expired this long. */
export const FORGET_REVOKED_AFTER_MS = 24 * 3_600_000;
/** How often the revocation set is swept of ids forgotten that way. */
export const PRUNE_EVERY_MS = 10 * 60_000;

const views = new WeakMap<Db, RevocationView>();

export class RevocationView {
  /** Revoked token ids, each with its token's expiry. */
  readonly #revoked = new Map<string, number>();
  /** The latest expiry of an id forgotten (not held, or swept); -Infinity while none was. */
  #forgottenUpTo = Number.NEGATIVE_INFINITY;
  #seq = 0;
  #dataVersion = -1;
  #lastPoll = Number.NEGATIVE_INFINITY;
  /** performance.now() of the last sweep of the set. */
  #lastPrune = performance.now();
  readonly #revokedSince: Statement;
  readonly #dataVersionStmt: Statement;
  readonly #revokedAmong: Statement;

  /** The view of this connection (the tokens tables must exist). */
  static of(db: Db): RevocationView {
    let view = views.get(db);
    if (view === undefined) {
      view = new RevocationView(db);
      views.set(db, view);
    }
    return view;
  }

  private constructor(db: Db) {
    this.#revokedSince = db.prepare(
      `SELECT r.seq, r.token_id, t.expires_at FROM capability_revocations r
       LEFT JOIN capability_tokens t ON t.id = r.token_id WHERE r.seq > ? ORDER BY r.seq`,
    );
    // Prepared once: db.pragma() would compile a statement on every verify.
    this.#dataVersionStmt = db.prepare("PRAGMA data_version").pluck();
    this.#revokedAmong = db
      .prepare(
        "SELECT token_id FROM capability_revocations WHERE token_id IN (SELECT value FROM json_each(?))",
      )
      .pluck();
  }

  /** A revocation made through this connection, seen at once. */
  add(tokenId: string, expiresAt: number): void {
    this.#revoked.set(tokenId, expiresAt);
  }

  /** How many revoked ids are held in memory. */
  get size(): number {
    return this.#revoked.size;
  }

  /**
   * The first id of `chain` (a token's id, then its ancestors') that is revoked, if any.
   * `expiresAt` is the token's own expiry, which bounds its ancestors' from below.
   */
  revokedIn(chain: readonly string[], expiresAt: number): string | undefined {
    for (const id of chain) if (this.#revoked.has(id)) return id;
    // Every id forgotten expired by #forgottenUpTo, and no ancestor expires before its
    // descendant: a later-expiring token's chain holds no forgotten id.
    if (expiresAt > this.#forgottenUpTo) return undefined;
    const revoked = new Set(this.#revokedAmong.all(JSON.stringify(chain)) as string[]);
    return chain.find((id) => revoked.has(id));
  }

  /**
   * Pick up revocations made through other connections (another process, the CLI), and
   * sweep the set every pruneMs. `now` is the caller's wall clock, read only on a poll.
   */
  refresh(now: () => number, pollMs: number, pruneMs: number): void {
    if (pollMs > 0) {
      const t = performance.now();
      if (t - this.#lastPoll < pollMs) return;
      this.#lastPoll = t;
    }
    const forgetBefore = now() - FORGET_REVOKED_AFTER_MS;
    if (performance.now() - this.#lastPrune >= pruneMs) {
      this.#lastPrune = performance.now();
      for (const [id, expiresAt] of this.#revoked) if (expiresAt < forgetBefore) this.#forget(id, expiresAt);
    }
    const version = this.#dataVersionStmt.get() as number;
    if (version === this.#dataVersion) return;
    this.#dataVersion = version;
    // Row by row: a start reads the database's whole history of revocations, most of it
    // forgotten as it is read, and never held as one array.
    for (const r of this.#revokedSince.iterate(this.#seq) as IterableIterator<{
      seq: number;
      token_id: string;
      expires_at: number | null;
    }>) {
      // A revocation of a token this database does not hold (it cannot happen: the table's
      // foreign key) is kept for good rather than guessed about.
      const expiresAt = r.expires_at ?? Number.POSITIVE_INFINITY;
      if (expiresAt >= forgetBefore) this.#revoked.set(r.token_id, expiresAt);
      else this.#forget(r.token_id, expiresAt);
      this.#seq = r.seq;
    }
  }

  #forget(tokenId: string, expiresAt: number): void {
    this.#revoked.delete(tokenId);
    if (expiresAt > this.#forgottenUpTo) this.#forgottenUpTo = expiresAt;
  }
}
