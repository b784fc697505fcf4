// security/audit.ts — the append-only, hash-chained audit log (SQLite) and its signed
// checkpoints. Each entry hashes its own fields together with the previous entry's hash;
// every `checkpointEvery` entries (and on demand, and on clean close) the runtime key signs
// (seq, head hash). Verification walks the chain from seq 1 and checks every checkpoint,
// so an edited, deleted, inserted or reordered row, a truncated tail below a checkpoint,
// and a chain recomputed or re-signed without the runtime key are all found.
//
// Durability: `append` returns only after its transaction has committed (WAL). With
// synchronous=NORMAL (the database default) a committed entry survives a kill -9 of the
// process; a power loss may lose the last commits. synchronous=FULL (option) fsyncs the
// WAL on every commit and survives power loss too. An append that fails throws
// AidoError("audit_failed"), so the action it describes never starts (fail closed).

import { createHash } from "node:crypto";
import { type Db, migrate, prepared } from "../db/database.js";
import { AidoError, ErrorCode, errorMessage, isAidoError } from "../errors.js";
import type { AuditEntry, AuditEvent, AuditKind, AuditPayloads } from "./audit-events.js";
import { canonicalJson } from "./canonical-json.js";

/** What the log needs from the runtime key (security/keys.ts RuntimeKey satisfies it). */
export interface Signer {
  keyId: string;
  sign(data: Buffer): Buffer;
  verify(data: Buffer, sig: Buffer): boolean;
}

export const GENESIS_HASH = "0".repeat(64);
const ENTRY_FORMAT = "aido.audit.v1";
const CHECKPOINT_FORMAT = "aido.audit.checkpoint.v1";

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
}

export interface AuditCheckpoint {
  seq: number;
  head_hash: string;
  key_id: string;
  sig: string;
  time: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  entries: number;
  first_bad_seq?: number;
  reason?: string;
}

export interface AuditQuery {
  goal_id?: string;
  agent_id?: string;
  kind?: string;
  limit?: number;
}

type Row = [number, string, string | null, string | null, string, string, string, string];

/** SHA-256 (hex) of one entry's fields as stored; payload is the canonical JSON text. */
export function entryHash(
  seq: number,
  time: string,
  goalId: string | null,
  agentId: string | null,
  kind: string,
  payload: string,
  prevHash: string,
): string {
  const encoded = JSON.stringify([ENTRY_FORMAT, seq, time, goalId, agentId, kind, payload, prevHash]);
  return createHash("sha256").update(encoded).digest("hex");
}

function checkpointMessage(seq: number, headHash: string, keyId: string, time: string): Buffer {
  return Buffer.from(JSON.stringify([CHECKPOINT_FORMAT, seq, headHash, keyId, time]), "utf8");
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
      const entry = this.insert(event);
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
  }

  private prepare() {
    const db = this.db;
    return {
      head: db.prepare("SELECT seq, hash, kind FROM audit ORDER BY seq DESC LIMIT 1"),
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
      bySeq: db.prepare(
        "SELECT seq, time, goal_id, agent_id, kind, payload, prev_hash, hash FROM audit WHERE seq = ?",
      ),
    };
  }

  /** Append one entry; durable (committed) when this returns. Throws audit_failed otherwise. */
  append(event: AuditEvent): AuditEntry {
    try {
      if (this.closed) throw new Error("the audit log is closed");
      return this.appendTx(event);
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
      return this.appendManyTx(events);
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
   * audit_failed instead of the result. A failing action is recorded as `tool.failed` and
   * its error rethrown.
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
      this.record("tool.failed", { tool, invoked_seq: invoked.seq, error: errorMessage(e), code }, ids);
      throw e;
    }
    this.record("tool.completed", { tool, invoked_seq: invoked.seq, ...summarize(result) }, ids);
    return result;
  }

  /** Sign a checkpoint over the current head now. Null when there is nothing new to cover. */
  checkpoint(): AuditCheckpoint | null {
    try {
      if (this.closed) throw new Error("the audit log is closed");
      return this.checkpointTx();
    } catch (e) {
      throw auditFailed("audit.checkpoint", e);
    }
  }

  /** Checkpoint the head and refuse further appends. The database stays open (the caller owns it). */
  close(): void {
    if (this.closed) return;
    this.checkpoint();
    this.closed = true;
  }

  private insert(event: AuditEvent): AuditEntry {
    const head = this.stmt.head.get() as { seq: number; hash: string } | undefined;
    const seq = (head?.seq ?? 0) + 1;
    const prev = head?.hash ?? GENESIS_HASH;
    const time = new Date(this.now()).toISOString();
    const goalId = event.goalId ?? null;
    const agentId = event.agentId ?? null;
    const payload = canonicalJson(event.payload);
    const hash = entryHash(seq, time, goalId, agentId, event.kind, payload, prev);
    this.stmt.insert.run(seq, time, goalId, agentId, event.kind, payload, prev, hash);
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
   * Walk the chain from seq 1. Stops at the first problem. When the chain is consistent but
   * a signed checkpoint disagrees with it (the chain was recomputed without the key, or a
   * checkpoint was forged), the first bad seq is the first one no valid checkpoint vouches
   * for: one past the last checkpoint that still verifies.
   */
  verify(): AuditVerifyResult {
    return this.db.transaction(() => this.verifySnapshot())();
  }

  private verifySnapshot(): AuditVerifyResult {
    const checkpoints = new Map<number, AuditCheckpoint>();
    for (const cp of this.stmt.checkpoints.all() as AuditCheckpoint[]) checkpoints.set(cp.seq, cp);
    let expected = 1;
    let prev = GENESIS_HASH;
    let lastGoodCheckpoint = 0;
    const bad = (seq: number, reason: string): AuditVerifyResult => ({
      ok: false,
      entries: this.stmt.count.get() as number,
      first_bad_seq: seq,
      reason,
    });
    for (const row of this.stmt.rows.raw().iterate() as IterableIterator<Row>) {
      const [seq, time, goalId, agentId, kind, payload, prevHash, hash] = row;
      if (seq !== expected) {
        return bad(expected, seq > expected ? `entry ${expected} is missing` : `unexpected seq ${seq}`);
      }
      if (prevHash !== prev) return bad(seq, `entry ${seq} does not link to entry ${seq - 1}`);
      if (entryHash(seq, time, goalId, agentId, kind, payload, prevHash) !== hash) {
        return bad(seq, `entry ${seq} does not match its hash`);
      }
      const cp = checkpoints.get(seq);
      if (cp) {
        const problem = this.checkpointProblem(cp, hash);
        if (problem) return bad(lastGoodCheckpoint + 1, problem);
        lastGoodCheckpoint = seq;
      }
      if (kind === "audit.checkpoint") {
        const ref = parseCheckpointRef(payload);
        const target = ref ? checkpoints.get(ref.seq) : undefined;
        if (!ref || !target || target.head_hash !== ref.head_hash || ref.seq > lastGoodCheckpoint) {
          return bad(
            seq,
            `entry ${seq} records a checkpoint at seq ${ref?.seq ?? "?"} that is missing or altered`,
          );
        }
      }
      prev = hash;
      expected = seq + 1;
    }
    const last = expected - 1;
    const beyond = [...checkpoints.keys()].filter((s) => s > last);
    if (beyond.length > 0) {
      return bad(
        last + 1,
        `a signed checkpoint covers seq ${Math.max(...beyond)} but the log ends at seq ${last}`,
      );
    }
    // Appends checkpoint in the same transaction once `checkpointEvery` entries are uncovered,
    // so a longer uncovered tail means checkpoints were deleted (e.g. to hide a recomputed chain).
    if (last - lastGoodCheckpoint >= this.checkpointEvery) {
      return bad(
        lastGoodCheckpoint + 1,
        `entries after seq ${lastGoodCheckpoint} are not covered by a signed checkpoint`,
      );
    }
    return { ok: true, entries: last };
  }

  private checkpointProblem(cp: AuditCheckpoint, chainHash: string): string | undefined {
    if (cp.key_id !== this.signer.keyId) {
      return `checkpoint at seq ${cp.seq} names key ${cp.key_id}, not the runtime key ${this.signer.keyId}`;
    }
    const msg = checkpointMessage(cp.seq, cp.head_hash, cp.key_id, cp.time);
    let valid = false;
    try {
      valid = this.signer.verify(msg, Buffer.from(cp.sig, "base64"));
    } catch {
      valid = false;
    }
    if (!valid) return `checkpoint at seq ${cp.seq} has a signature the runtime key did not make`;
    if (cp.head_hash !== chainHash)
      return `checkpoint at seq ${cp.seq} does not match the chain (recomputed log?)`;
    return undefined;
  }

  /** Entries matching every given filter, newest first (default limit 100). */
  query(q: AuditQuery = {}): AuditEntry[] {
    const filters = [
      ["goal_id", q.goal_id],
      ["agent_id", q.agent_id],
      ["kind", q.kind],
    ].filter((f): f is [string, string] => f[1] !== undefined);
    const where = filters.map(([column]) => `${column} = ?`);
    const args = filters.map(([, value]) => value);
    const limit = q.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `audit query limit must be a positive integer, got ${q.limit}`,
      );
    }
    const sql = `SELECT seq, time, goal_id, agent_id, kind, payload, prev_hash, hash FROM audit${
      where.length ? ` WHERE ${where.join(" AND ")}` : ""
    } ORDER BY seq DESC LIMIT ?`;
    return (
      this.db
        .prepare(sql)
        .raw()
        .all(...args, limit) as Row[]
    ).map(toEntry);
  }

  /** One entry by seq, or undefined. */
  entry(seq: number): AuditEntry | undefined {
    const row = this.stmt.bySeq.raw().get(seq) as Row | undefined;
    return row ? toEntry(row) : undefined;
  }

  /** Entries of `kind` after `seq`, oldest first: what happened to a record since the entry that made it. */
  since<K extends AuditKind>(seq: number, kind: K): AuditEntry<K>[] {
    const rows = prepared(
      this.db,
      "SELECT seq, time, goal_id, agent_id, kind, payload, prev_hash, hash FROM audit WHERE seq > ? AND kind = ? ORDER BY seq",
    )
      .raw()
      .all(seq, kind) as Row[];
    return rows.map(toEntry) as AuditEntry<K>[];
  }

  /** The last `n` entries, oldest first. */
  tail(n = 20): AuditEntry[] {
    return this.query({ limit: n }).reverse();
  }

  latestCheckpoint(): AuditCheckpoint | undefined {
    const all = this.stmt.checkpoints.all() as AuditCheckpoint[];
    return all[all.length - 1];
  }
}

function toEntry(row: Row): AuditEntry {
  const [seq, time, goal_id, agent_id, kind, payload, prev_hash, hash] = row;
  return {
    seq,
    time,
    goal_id,
    agent_id,
    kind: kind as AuditKind,
    payload: JSON.parse(payload),
    prev_hash,
    hash,
  };
}

function parseCheckpointRef(payload: string): { seq: number; head_hash: string } | undefined {
  try {
    const p = JSON.parse(payload) as { seq?: unknown; head_hash?: unknown };
    return typeof p.seq === "number" && typeof p.head_hash === "string"
      ? { seq: p.seq, head_hash: p.head_hash }
      : undefined;
  } catch {
    return undefined;
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
