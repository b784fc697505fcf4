// security/audit.ts — the append-only, hash-chained audit log (SQLite) and its signed
// checkpoints. Each entry hashes its own fields together with the previous entry's hash;
// every `checkpointEvery` entries (and on demand, and on clean close) the runtime key signs
// (seq, head hash). Verification walks the chain from seq 1 and checks every checkpoint,
// so an edited, deleted, inserted or reordered row, a truncated tail below a checkpoint,
// and a chain recomputed or re-signed without the runtime key are all found. The tail
// after the last checkpoint is vouched for by the head file (audit-head.ts: MACed with a
// key only the runtime key's holder derives), which the runtime's log (`writeHead`)
// rewrites after every commit, one pwrite, outside the transaction: a log cut short of the
// head, or holding another entry at its seq, fails.
// Reading entries back (query, entry, since) is audit-query.ts's.
//
// Durability: `append` returns only after its transaction has committed (WAL). With
// synchronous=NORMAL (the database default) a committed entry survives a kill -9 of the
// process; a power loss may lose the last commits. synchronous=FULL (option) fsyncs the
// WAL on every commit and survives power loss too. An append that fails throws
// AidoError("audit_failed"), so the action it describes never starts (fail closed).

import { type Db, migrate } from "../db/database.js";
import { AidoError, ErrorCode, errorMessage, isAidoError } from "../errors.js";
import type { AuditEntry, AuditEvent, AuditKind, AuditPayloads } from "./audit-events.js";
import {
  type AuditCheckpoint,
  type AuditVerifyResult,
  checkpointMessage,
  entryHash,
  GENESIS_HASH,
  type Signer,
} from "./audit-format.js";
import {
  type AuditAnchor,
  type AuditHead,
  type Committed,
  HeadKeeper,
  type HeadLogAccess,
  readHeadFile,
} from "./audit-head.js";
import { type AuditQuery, entriesSince, entryAt, queryEntries } from "./audit-query.js";
import { auditErrorText } from "./audit-text.js";
import { type AuditRow, verifyLog } from "./audit-verify.js";
import { canonicalJson } from "./canonical-json.js";

export type { AuditVerifyResult, Signer } from "./audit-format.js";
export type { AuditQuery } from "./audit-query.js";

const MIGRATIONS = [
  `CREATE TABLE audit (
     seq INTEGER PRIMARY KEY,
     time TEXT NOT NULL,
     goal_id TEXT,
     agent_id TEXT,
     kind TEXT NOT NULL,
     payload TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   );
   CREATE INDEX audit_goal ON audit (goal_id) WHERE goal_id IS NOT NULL;
   CREATE INDEX audit_agent ON audit (agent_id) WHERE agent_id IS NOT NULL;
   CREATE TABLE audit_checkpoints (
     seq INTEGER PRIMARY KEY,
     head_hash TEXT NOT NULL,
     key_id TEXT NOT NULL,
     sig TEXT NOT NULL,
     time TEXT NOT NULL
   );`,
  // Finds the entry that started the signed head without a scan; costs nothing on other appends.
  `CREATE INDEX audit_head_started ON audit (seq) WHERE kind = 'audit.head_started';`,
];

export interface AuditLogOptions {
  db: Db;
  signer: Signer;
  /** Sign a checkpoint after this many entries (default 1000). */
  checkpointEvery?: number;
  /** "full" fsyncs every commit (power-loss safe); sets the pragma on `db`'s connection. */
  synchronous?: "normal" | "full";
  /** Clock in epoch milliseconds (tests inject one). */
  now?: () => number;
  /** The signed head file ($AIDO_HOME/audit.head): verify checks the tail against it. */
  headFile?: string;
  /**
   * This log is the one that writes the head (the runtime; readers such as the CLI leave
   * it false): checks the head file against the log now, then rewrites it after every commit.
   */
  writeHead?: boolean;
}

export class AuditLog {
  readonly checkpointEvery: number;
  private readonly db: Db;
  private readonly signer: Signer;
  private readonly now: () => number;
  private closed = false;
  private readonly stmt: ReturnType<AuditLog["prepare"]>;
  private readonly appendTx: (event: AuditEvent) => AuditEntry;
  private readonly appendManyTx: (events: readonly AuditEvent[]) => AuditEntry[];
  private readonly checkpointTx: () => AuditCheckpoint | null;
  private readonly headFile: string | undefined;
  /** Set when this log writes the signed head (the runtime's log; readers have none). */
  private readonly keeper: HeadKeeper | undefined;
  private readonly access: HeadLogAccess;
  /** The last entry this instance inserted (committed only once its transaction is). */
  private lastInserted: Committed | undefined;
  private headSyncQueued = false;
  private readonly headSyncTx: () => Committed | undefined;

  constructor(opts: AuditLogOptions) {
    this.db = opts.db;
    this.signer = opts.signer;
    this.now = opts.now ?? Date.now;
    this.checkpointEvery = opts.checkpointEvery ?? 1000;
    if (!Number.isInteger(this.checkpointEvery) || this.checkpointEvery < 1) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `checkpointEvery must be a positive integer, got ${opts.checkpointEvery}`,
      );
    }
    if (opts.synchronous) this.db.pragma(`synchronous = ${opts.synchronous === "full" ? "FULL" : "NORMAL"}`);
    migrate(this.db, "audit", MIGRATIONS);
    this.stmt = this.prepare();
    // IMMEDIATE: take the write lock before reading the head, so two connections (daemon and
    // CLI) can never both chain onto the same head. Nested in a caller's transaction this
    // becomes a savepoint, and a rollback there takes the entry with it.
    const appendOne = (event: AuditEvent): AuditEntry => {
      // One read of the newest entry serves the head check and the chaining.
      const last = this.access.last();
      const entry = this.insertAfter(event, this.keeper?.check(this.access, last) ?? last);
      const lastCp = (this.stmt.lastCheckpointSeq.get() as number | null) ?? 0;
      if (entry.seq - lastCp >= this.checkpointEvery) this.writeCheckpoint(entry.seq, entry.hash);
      return entry;
    };
    const append = this.db.transaction(appendOne);
    this.appendTx = (event) => append.immediate(event);
    // Several entries that describe one action, written at the same moment: one commit,
    // chained in order, each checkpointed exactly as single appends would be.
    const appendMany = this.db.transaction((events: readonly AuditEvent[]) => events.map(appendOne));
    this.appendManyTx = (events) => appendMany.immediate(events);
    const checkpoint = this.db.transaction(() => {
      const head = this.stmt.head.get() as { seq: number; hash: string; kind: string } | undefined;
      if (!head) return null;
      const lastCp = (this.stmt.lastCheckpointSeq.get() as number | null) ?? 0;
      // Nothing new since the last checkpoint (its own audit.checkpoint entry aside).
      if (head.seq === lastCp || (head.kind === "audit.checkpoint" && head.seq === lastCp + 1)) return null;
      return this.writeCheckpoint(head.seq, head.hash);
    });
    this.checkpointTx = () => checkpoint.immediate();
    this.access = {
      last: () => {
        const h = this.stmt.head.get() as Committed | undefined;
        return h ? { seq: h.seq, hash: h.hash } : undefined;
      },
      hashAt: (seq) => this.stmt.hashAt.get(seq) as string | undefined,
      headStarted: () => this.stmt.headStarted.get() !== undefined,
      insert: (event) => this.insert(event),
    };
    const headSync = this.db.transaction(() => {
      this.keeper?.check(this.access);
      return this.access.last();
    });
    this.headSyncTx = () => headSync.immediate();
    this.headFile = opts.headFile;
    if (opts.writeHead) {
      if (!opts.headFile) throw new AidoError(ErrorCode.invalidInput, "writeHead needs headFile");
      const keeper = new HeadKeeper(opts.headFile, this.signer, this.now);
      try {
        const open = this.db.transaction(() => keeper.open(this.access));
        keeper.committed(open.immediate());
      } catch (e) {
        keeper.close();
        throw auditFailed("audit.head_started", e);
      }
      this.keeper = keeper;
    }
  }

  private prepare() {
    const db = this.db;
    return {
      head: db.prepare("SELECT seq, hash, kind FROM audit ORDER BY seq DESC LIMIT 1"),
      hashAt: db.prepare("SELECT hash FROM audit WHERE seq = ?").pluck(),
      headStarted: db.prepare("SELECT seq FROM audit WHERE kind = 'audit.head_started' LIMIT 1").pluck(),
      insert: db.prepare(
        "INSERT INTO audit (seq, time, goal_id, agent_id, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      lastCheckpointSeq: db.prepare("SELECT max(seq) FROM audit_checkpoints").pluck(),
      insertCheckpoint: db.prepare(
        "INSERT INTO audit_checkpoints (seq, head_hash, key_id, sig, time) VALUES (?, ?, ?, ?, ?)",
      ),
      checkpoints: db.prepare("SELECT seq, head_hash, key_id, sig, time FROM audit_checkpoints ORDER BY seq"),
      rows: db.prepare(
        "SELECT seq, time, goal_id, agent_id, kind, payload, prev_hash, hash FROM audit ORDER BY seq",
      ),
      count: db.prepare("SELECT count(*) FROM audit").pluck(),
    };
  }

  /** Append one entry; durable (committed) when this returns. Throws audit_failed otherwise. */
  append(event: AuditEvent): AuditEntry {
    try {
      if (this.closed) throw new Error("the audit log is closed");
      const nested = this.db.inTransaction;
      const entry = this.appendTx(event);
      this.afterCommit(nested);
      return entry;
    } catch (e) {
      throw auditFailed(event.kind, e);
    }
  }

  /**
   * Append entries that describe one action in one transaction: all are durable when this
   * returns, or none is written and audit_failed is thrown (named after the first kind).
   */
  appendAll(events: readonly AuditEvent[]): AuditEntry[] {
    if (events.length === 0) return [];
    try {
      if (this.closed) throw new Error("the audit log is closed");
      const nested = this.db.inTransaction;
      const entries = this.appendManyTx(events);
      this.afterCommit(nested);
      return entries;
    } catch (e) {
      throw auditFailed(events.map((ev) => ev.kind).join("+"), e);
    }
  }

  /** Typed shorthand for append: `audit.record("tool.denied", {...}, {goalId, agentId})`. */
  record<K extends AuditKind>(
    kind: K,
    payload: AuditPayloads[K],
    ids: { goalId?: string | null; agentId?: string | null } = {},
  ): AuditEntry<K> {
    return this.append({
      kind,
      payload,
      goalId: ids.goalId,
      agentId: ids.agentId,
    } as AuditEvent) as AuditEntry<K>;
  }

  /**
   * Run the action a `tool.invoked` entry announced and record how it ended. The result is
   * handed back only once `tool.completed` is durable; if that write fails the caller gets
   * audit_failed instead of the result. A failing action is recorded as `tool.failed` (its
   * error inert and bounded, audit-text.ts) and its error rethrown unchanged.
   */
  async settle<T>(
    invoked: AuditEntry<"tool.invoked">,
    action: () => Promise<T>,
    summarize: (result: T) => { is_error?: boolean; output_bytes?: number } = () => ({}),
  ): Promise<T> {
    const ids = { goalId: invoked.goal_id, agentId: invoked.agent_id };
    const tool = invoked.payload.tool;
    let result: T;
    try {
      result = await action();
    } catch (e) {
      const code = e instanceof AidoError ? e.code : undefined;
      // The run's error may be a server's megabytes or anything a tool threw: kept inert and
      // bounded (audit-text.ts), and never itself the reason tool.failed is not written.
      this.record("tool.failed", { tool, invoked_seq: invoked.seq, error: auditErrorText(e), code }, ids);
      throw e;
    }
    this.record("tool.completed", { tool, invoked_seq: invoked.seq, ...summarize(result) }, ids);
    return result;
  }

  /** Sign a checkpoint over the current head now. Null when there is nothing new to cover. */
  checkpoint(): AuditCheckpoint | null {
    try {
      if (this.closed) throw new Error("the audit log is closed");
      const nested = this.db.inTransaction;
      const cp = this.checkpointTx();
      if (cp) this.afterCommit(nested);
      return cp;
    } catch (e) {
      throw auditFailed("audit.checkpoint", e);
    }
  }

  /** Checkpoint the head and refuse further appends. The database stays open (the caller owns it). */
  close(): void {
    if (this.closed) return;
    try {
      this.checkpoint();
    } finally {
      this.closed = true;
      this.keeper?.close();
    }
  }

  /**
   * After a commit: the head moves to the last entry written. Nested in a caller's
   * transaction nothing is committed yet (the caller may still roll back), so the head
   * follows once that transaction is over, read back from what the log then holds.
   */
  private afterCommit(nested: boolean): void {
    if (!this.keeper) return;
    if (!nested) {
      this.keeper.committed(this.lastInserted);
      return;
    }
    if (this.headSyncQueued) return;
    this.headSyncQueued = true;
    queueMicrotask(() => this.syncHead());
  }

  private syncHead(): void {
    this.headSyncQueued = false;
    if (this.closed || !this.keeper) return;
    if (this.db.inTransaction) {
      this.headSyncQueued = true;
      setImmediate(() => this.syncHead());
      return;
    }
    try {
      this.keeper.committed(this.headSyncTx());
    } catch {
      // The next append writes the head (or fails closed with the reason).
    }
  }

  private insert(event: AuditEvent): AuditEntry {
    return this.insertAfter(event, this.access.last());
  }

  /** Chain `event` after `head`, the newest entry this transaction read. */
  private insertAfter(event: AuditEvent, head: Committed | undefined): AuditEntry {
    const seq = (head?.seq ?? 0) + 1;
    const prev = head?.hash ?? GENESIS_HASH;
    const time = new Date(this.now()).toISOString();
    const goalId = event.goalId ?? null;
    const agentId = event.agentId ?? null;
    const payload = canonicalJson(event.payload);
    const hash = entryHash(seq, time, goalId, agentId, event.kind, payload, prev);
    this.stmt.insert.run(seq, time, goalId, agentId, event.kind, payload, prev, hash);
    this.lastInserted = { seq, hash };
    return {
      seq,
      time,
      goal_id: goalId,
      agent_id: agentId,
      kind: event.kind,
      payload: JSON.parse(payload),
      prev_hash: prev,
      hash,
    };
  }

  /** Inside a transaction: sign (seq, head), store it, and chain an audit.checkpoint entry. */
  private writeCheckpoint(seq: number, headHash: string): AuditCheckpoint {
    const time = new Date(this.now()).toISOString();
    const keyId = this.signer.keyId;
    const sig = this.signer.sign(checkpointMessage(seq, headHash, keyId, time)).toString("base64");
    this.stmt.insertCheckpoint.run(seq, headHash, keyId, sig, time);
    this.insert({ kind: "audit.checkpoint", payload: { seq, head_hash: headHash, key_id: keyId } });
    return { seq, head_hash: headHash, key_id: keyId, sig, time };
  }

  /**
   * Walk the chain from seq 1 (audit-verify.ts says what is checked). With a head file, the
   * tail is checked against the signed head; with an anchor, against that too. The head
   * file is read before the log, so a head written meanwhile can never look like a
   * truncation.
   */
  verify(opts: { anchor?: AuditAnchor } = {}): AuditVerifyResult {
    return this.verifyWithHead(opts).result;
  }

  /** verify(), and the signed head it checked (what `aido audit anchor` prints). */
  verifyWithHead(opts: { anchor?: AuditAnchor } = {}): { result: AuditVerifyResult; head?: AuditHead } {
    const head = this.headFile ? readHeadFile(this.headFile, this.signer) : undefined;
    const result = this.db.transaction(() =>
      verifyLog({
        rows: this.stmt.rows.raw().iterate() as IterableIterator<AuditRow>,
        checkpoints: this.stmt.checkpoints.all() as AuditCheckpoint[],
        count: () => this.stmt.count.get() as number,
        signer: this.signer,
        checkpointEvery: this.checkpointEvery,
        ...(head ? { head } : {}),
        ...(this.headFile ? { headPath: this.headFile } : {}),
        ...(opts.anchor ? { anchor: opts.anchor } : {}),
      }),
    )();
    return { result, ...(head?.state === "ok" && result.ok ? { head: head.head } : {}) };
  }

  /** The hash of entry `seq`, or undefined when the log holds no such entry. */
  hashAt(seq: number): string | undefined {
    return (this.stmt.hashAt.get(seq) as string | undefined) ?? undefined;
  }

  /** Entries matching every given filter, newest first (default limit 100). */
  query(q: AuditQuery = {}): AuditEntry[] {
    return queryEntries(this.db, q);
  }

  /** One entry by seq, or undefined. */
  entry(seq: number): AuditEntry | undefined {
    return entryAt(this.db, seq);
  }

  /** Entries of `kind` after `seq`, oldest first: what happened to a record since the entry that made it. */
  since<K extends AuditKind>(seq: number, kind: K): AuditEntry<K>[] {
    return entriesSince(this.db, seq, kind);
  }

  /** The last `n` entries, oldest first. */
  tail(n = 20): AuditEntry[] {
    return this.query({ limit: n }).reverse();
  }
}

function auditFailed(kind: string, cause: unknown): AidoError {
  if (isAidoError(cause, ErrorCode.auditFailed)) return cause;
  return new AidoError(
    ErrorCode.auditFailed,
    `audit write for ${kind} failed: ${errorMessage(cause)}`,
    { kind },
    { cause },
  );
}
