// security/tokens.ts — capability tokens: the runtime's signed statement "agent A may do G
// until T, under parent token P". Issued at spawn, checked by the gate on every call, revoked
// as a tree. Only the runtime key signs; SQLite remembers what was issued and revoked, so a
// token that verifies cryptographically is still refused if this runtime never issued it,
// or if it or ANY ancestor was revoked.
//
// Signing format, version 1. The signature is ed25519 over the UTF-8 bytes of
//   JSON.stringify(["aido.capability.v1", v, id, agentId, goalId, parentId, grants,
//                   issuedAt, expiresAt, keyId])
// in exactly that order: a JSON array of strings, integers, nulls and one array of
// strings, so the bytes are fixed by the values. The leading tag separates these signatures
// from anything else the key signs (audit checkpoints). `grants` are formatGrant strings,
// canonical and de-duplicated, in issue order. A new field means a new version.
//
// Speed: a verified (id, signature, payload) is cached, and revocations live in an in-memory
// set: updated at once by revoke(), and re-read when another connection has written to the
// database (PRAGMA data_version, looked at most every revocationPollMs). A repeat verify is
// a string compare and a few set lookups instead of an ed25519 check and SQL.
//
// Memory: revoked ids are held a day past their token's expiry, not for the database's
// whole history; see src/security/token-revocations.ts (and why a clock set back past that
// day does not bring a revoked token back).

import { randomBytes } from "node:crypto";
import type { Statement } from "better-sqlite3";
import { z } from "zod";
import type { Db } from "../db/database.js";
import { migrate } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import { formatGrant, type Grant, parseGrant } from "./grants.js";
import type { RuntimeKey } from "./keys.js";
import { narrowGrants } from "./narrowing.js";
import { PRUNE_EVERY_MS, RevocationView } from "./token-revocations.js";

export { FORGET_REVOKED_AFTER_MS } from "./token-revocations.js";

export const TOKEN_VERSION = 1;
const SIGNING_TAG = "aido.capability.v1";
/** A token issued further in the future than this is refused (clocks disagree too much). */
export const CLOCK_SKEW_MS = 60_000;
const CACHE_LIMIT = 10_000;

export interface CapabilityToken {
  v: 1;
  id: string;
  agentId: string;
  goalId: string | null;
  parentId: string | null;
  grants: string[];
  issuedAt: number;
  expiresAt: number;
  keyId: string;
  /** base64 ed25519 signature over canonicalTokenPayload(token). */
  sig: string;
}

export interface VerifiedToken {
  /** The runtime's own copy of the token (frozen), never the object that was presented. */
  token: Readonly<CapabilityToken>;
  grants: readonly Grant[];
  /** Token ids from this token up to the root: [id, parentId, grandparentId, ...]. */
  chain: readonly string[];
}

export interface IssueRequest {
  agentId: string;
  goalId?: string;
  grants: readonly Grant[];
  parent?: CapabilityToken;
  ttlSeconds: number;
}

export interface TokenAuthorityOptions {
  db: Db;
  key: RuntimeKey;
  /** Milliseconds since the epoch; tests move time with it. */
  now?: () => number;
  /**
   * How stale the view of revocations made through OTHER database connections may get, in
   * ms (default 25; 0 = look on every verify, which costs a SQLite call each time).
   * Revocations through this authority are seen at once, always.
   */
  revocationPollMs?: number;
  /** How often the revocation set is swept of ids no token needs any more, in ms (default 10 min). */
  revocationPruneMs?: number;
}

const TokenSchema = z.strictObject({
  v: z.literal(1),
  id: z.string().regex(/^[0-9a-f]{32}$/),
  agentId: z.string().min(1),
  goalId: z.string().min(1).nullable(),
  parentId: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .nullable(),
  grants: z.array(z.string()),
  issuedAt: z.number().int().nonnegative(),
  expiresAt: z.number().int().positive(),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/),
});

const MIGRATIONS = [
  `CREATE TABLE capability_tokens (
     id TEXT PRIMARY KEY,
     parent_id TEXT REFERENCES capability_tokens(id),
     agent_id TEXT NOT NULL,
     goal_id TEXT,
     grants TEXT NOT NULL,
     key_id TEXT NOT NULL,
     issued_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     sig TEXT NOT NULL
   );
   CREATE INDEX capability_tokens_parent ON capability_tokens(parent_id);
   CREATE TABLE capability_revocations (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     token_id TEXT NOT NULL UNIQUE REFERENCES capability_tokens(id),
     revoked_at INTEGER NOT NULL
   );`,
];

/** The exact bytes a token's signature covers (see the module header). */
export function canonicalTokenPayload(t: Omit<CapabilityToken, "sig">): string {
  return JSON.stringify([
    SIGNING_TAG,
    t.v,
    t.id,
    t.agentId,
    t.goalId,
    t.parentId,
    t.grants,
    t.issuedAt,
    t.expiresAt,
    t.keyId,
  ]);
}

function payloadOrNull(t: Partial<CapabilityToken>): string | null {
  try {
    return canonicalTokenPayload(t as CapabilityToken);
  } catch {
    return null;
  }
}

/** The runtime's own frozen copy of a token that verified, its parsed grants and its chain. */
function frozenVerified(token: CapabilityToken, grants: Grant[], chain: string[]): VerifiedToken {
  return Object.freeze({
    token: Object.freeze({ ...token, grants: Object.freeze([...token.grants]) as string[] }),
    grants: Object.freeze(grants),
    chain: Object.freeze(chain),
  });
}

function invalid(reason: string, tokenId?: unknown): AidoError {
  const id = typeof tokenId === "string" ? tokenId : undefined;
  return new AidoError(ErrorCode.tokenInvalid, `capability token${id ? ` ${id}` : ""} rejected: ${reason}`, {
    reason,
    ...(id ? { tokenId: id } : {}),
  });
}

interface Row {
  id: string;
  parent_id: string | null;
  agent_id: string;
  sig: string;
}

interface Statements {
  insert: Statement;
  row: Statement;
  subtree: Statement;
  revokeOne: Statement;
}

interface CacheEntry {
  payload: string;
  sig: string;
  verified: VerifiedToken;
}

export class TokenAuthority {
  readonly #db: Db;
  readonly #key: RuntimeKey;
  readonly #now: () => number;
  readonly #verified = new Map<string, CacheEntry>();
  /** Tokens issued here, not yet presented (#issuedHit). */
  readonly #issued = new Map<string, CacheEntry>();
  readonly #rev: RevocationView;
  readonly #pollMs: number;
  readonly #pruneMs: number;
  readonly #stmts: Statements;

  constructor(opts: TokenAuthorityOptions) {
    this.#db = opts.db;
    this.#key = opts.key;
    this.#now = opts.now ?? Date.now;
    this.#pollMs = opts.revocationPollMs ?? 25;
    this.#pruneMs = opts.revocationPruneMs ?? PRUNE_EVERY_MS;
    migrate(this.#db, "tokens", MIGRATIONS);
    this.#rev = RevocationView.of(this.#db);
    this.#stmts = {
      insert: this.#db.prepare(
        `INSERT INTO capability_tokens (id, parent_id, agent_id, goal_id, grants, key_id, issued_at, expires_at, sig)
         VALUES (@id, @parentId, @agentId, @goalId, @grants, @keyId, @issuedAt, @expiresAt, @sig)`,
      ),
      row: this.#db.prepare("SELECT id, parent_id, agent_id, sig FROM capability_tokens WHERE id = ?"),
      subtree: this.#db.prepare(
        `WITH RECURSIVE sub(id, expires_at, depth) AS (
           SELECT id, expires_at, 0 FROM capability_tokens WHERE id = ?
           UNION ALL
           SELECT t.id, t.expires_at, sub.depth + 1 FROM capability_tokens t JOIN sub ON t.parent_id = sub.id
         ) SELECT id, expires_at FROM sub ORDER BY depth, id`,
      ),
      revokeOne: this.#db.prepare(
        "INSERT OR IGNORE INTO capability_revocations (token_id, revoked_at) VALUES (?, ?)",
      ),
    };
    this.#refreshRevocations();
  }

  /**
   * Sign a new token. With a parent, the parent must itself verify, every grant must be
   * covered by the parent's (capability_denied names each one that is not), and the token's
   * expiry is capped at its parent's: a child never outlives the token it was issued under.
   */
  issue(req: IssueRequest): CapabilityToken {
    for (const field of ["agentId", "goalId"] as const) {
      const value = req[field];
      if ((value !== undefined || field === "agentId") && (typeof value !== "string" || value === "")) {
        throw new AidoError(ErrorCode.invalidInput, `issue: ${field} must be a non-empty string`, { field });
      }
    }
    if (!Number.isFinite(req.ttlSeconds) || req.ttlSeconds <= 0) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `issue: ttlSeconds must be a positive number, got ${req.ttlSeconds}`,
        {
          field: "ttlSeconds",
        },
      );
    }
    const now = Math.floor(this.#now());
    let expiresAt = now + Math.ceil(req.ttlSeconds * 1000);
    let parent: VerifiedToken | undefined;
    if (req.parent) {
      parent = this.verify(req.parent);
      narrowGrants(parent.grants, req.grants);
      // Capped, not refused: a child's life is bounded by its parent's whatever ttl it asks.
      expiresAt = Math.min(expiresAt, parent.token.expiresAt);
    }
    const grants = [...new Set(req.grants.map((g) => formatGrant(parseGrant(formatGrant(g)))))];
    const unsigned: Omit<CapabilityToken, "sig"> = {
      v: TOKEN_VERSION,
      id: randomBytes(16).toString("hex"),
      agentId: req.agentId,
      goalId: req.goalId ?? parent?.token.goalId ?? null,
      parentId: parent?.token.id ?? null,
      grants,
      issuedAt: now,
      expiresAt,
      keyId: this.#key.keyId,
    };
    const payload = canonicalTokenPayload(unsigned);
    const sig = this.#key.sign(Buffer.from(payload, "utf8")).toString("base64");
    const token: CapabilityToken = { ...unsigned, sig };
    this.#stmts.insert.run({ ...unsigned, grants: JSON.stringify(grants), sig });
    // Signed here, its parent verified above: its first verify (the agent's first call) need
    // not check the signature again, only that its row is still there (the transaction that
    // issued it may have rolled back). What changes with time or revocation is checked at
    // every verify as ever.
    if (expiresAt > now) {
      if (this.#issued.size >= CACHE_LIMIT) this.#issued.delete(this.#issued.keys().next().value as string);
      this.#issued.set(token.id, {
        payload,
        sig,
        verified: frozenVerified(
          token,
          grants.map((g) => parseGrant(g)),
          [token.id, ...(parent?.chain ?? [])],
        ),
      });
    }
    return token;
  }

  #remember(payload: string, sig: string, verified: VerifiedToken): void {
    if (this.#verified.size >= CACHE_LIMIT)
      this.#verified.delete(this.#verified.keys().next().value as string);
    this.#verified.set(verified.token.id, { payload, sig, verified });
  }

  /** A token this authority issued, presented as issued, whose row is stored: verified without a signature check. */
  #issuedHit(t: Partial<CapabilityToken>): VerifiedToken | undefined {
    const issued = typeof t.id === "string" ? this.#issued.get(t.id) : undefined;
    if (!issued || issued.sig !== t.sig || issued.payload !== payloadOrNull(t)) return undefined;
    // Fields beyond the signed ones make a malformed token, as the full check says.
    if (Object.keys(t).length !== Object.keys(issued.verified.token).length) return undefined;
    this.#issued.delete(issued.verified.token.id);
    const row = this.#stmts.row.get(issued.verified.token.id) as Row | undefined;
    const v = issued.verified.token;
    if (row === undefined || row.sig !== v.sig || row.agent_id !== v.agentId || row.parent_id !== v.parentId)
      return undefined;
    this.#remember(issued.payload, issued.sig, issued.verified);
    return issued.verified;
  }

  /** Check a presented token; throws token_invalid with the reason, else its parsed grants. */
  verify(presented: unknown): VerifiedToken {
    if (typeof presented !== "object" || presented === null) throw invalid("not a token object");
    const t = presented as Partial<CapabilityToken>;
    if (t.v !== TOKEN_VERSION) throw invalid(`unknown token version ${JSON.stringify(t.v)}`, t.id);
    if (t.keyId !== this.#key.keyId) {
      throw invalid(
        `signed by another key (${String(t.keyId)}), not this runtime's (${this.#key.keyId})`,
        t.id,
      );
    }
    // Cache hit: same id, same signature, and the same signed bytes as the token verified
    // before; the runtime's own copy is returned, so nothing else of `presented` matters.
    const cached = typeof t.id === "string" ? this.#verified.get(t.id) : undefined;
    const hit = cached !== undefined && cached.sig === t.sig && cached.payload === payloadOrNull(t);
    const verified = hit ? cached.verified : (this.#issuedHit(t) ?? this.#verifyUncached(presented));
    this.#checkLive(verified);
    return verified;
  }

  /**
   * Revoke a token and every token issued under it, durably. Returns the ids in the
   * subtree (root first), all revoked now. Unknown ids are not_found. When the database
   * does not take the revocation (full, locked past the busy timeout), it throws, yet the
   * subtree is refused in this process all the same: a revocation never fails open here.
   */
  revoke(tokenId: string): string[] {
    type Revoked = { id: string; expires_at: number };
    let subtree: Revoked[] = [];
    try {
      this.#db.transaction(() => {
        subtree = this.#stmts.subtree.all(tokenId) as Revoked[];
        const at = this.#now();
        for (const r of subtree) this.#stmts.revokeOne.run(r.id, at);
      })();
    } catch (e) {
      try {
        if (subtree.length === 0) subtree = this.#stmts.subtree.all(tokenId) as Revoked[];
      } catch {
        // Not even readable: the token itself at least, kept for good.
        subtree = [{ id: tokenId, expires_at: Number.POSITIVE_INFINITY }];
      }
      for (const r of subtree) this.#rev.add(r.id, r.expires_at);
      throw e;
    }
    if (subtree.length === 0)
      throw new AidoError(ErrorCode.notFound, `no capability token ${tokenId} was issued here`, { tokenId });
    for (const r of subtree) this.#rev.add(r.id, r.expires_at);
    return subtree.map((r) => r.id);
  }

  #verifyUncached(presented: unknown): VerifiedToken {
    const parsed = TokenSchema.safeParse(presented);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid";
      throw invalid(`malformed token (${where})`, (presented as { id?: unknown }).id);
    }
    const token = parsed.data;
    // Signed bytes come from the parsed copy, never from a second read of `presented`: an
    // object whose getters answer differently on each read must not split what is checked
    // from what is returned.
    const payload = canonicalTokenPayload(token);
    if (!this.#key.verify(Buffer.from(payload, "utf8"), Buffer.from(token.sig, "base64"))) {
      throw invalid("signature does not verify (forged or altered)", token.id);
    }
    if (token.expiresAt <= token.issuedAt) throw invalid("expires before it was issued", token.id);
    let grants: Grant[];
    try {
      grants = token.grants.map((g) => parseGrant(g));
    } catch (e) {
      throw invalid(`carries an invalid grant: ${(e as Error).message}`, token.id);
    }
    const row = this.#stmts.row.get(token.id) as Row | undefined;
    if (row === undefined) throw invalid("unknown token id: not issued by this runtime", token.id);
    if (row.sig !== token.sig || row.agent_id !== token.agentId || row.parent_id !== token.parentId) {
      throw invalid("does not match the token this runtime issued under that id", token.id);
    }
    const chain = [token.id];
    for (let up = row.parent_id; up !== null; ) {
      if (chain.includes(up)) throw invalid(`parent chain broken: cycle at ${up}`, token.id);
      const ancestor = this.#stmts.row.get(up) as Row | undefined;
      if (ancestor === undefined) throw invalid(`parent chain broken: ancestor ${up} is unknown`, token.id);
      chain.push(up);
      up = ancestor.parent_id;
    }
    const verified = frozenVerified(token, grants, chain);
    this.#remember(payload, token.sig, verified);
    return verified;
  }

  /** Checks that change with time or revocation: never cached. */
  #checkLive(v: VerifiedToken): void {
    const now = this.#now();
    if (now >= v.token.expiresAt) {
      throw invalid(`expired at ${new Date(v.token.expiresAt).toISOString()}`, v.token.id);
    }
    if (v.token.issuedAt > now + CLOCK_SKEW_MS) {
      throw invalid(
        `not valid yet: issued at ${new Date(v.token.issuedAt).toISOString()}, beyond allowed clock skew`,
        v.token.id,
      );
    }
    this.#refreshRevocations();
    const id = this.#rev.revokedIn(v.chain, v.token.expiresAt);
    if (id !== undefined) {
      throw invalid(id === v.token.id ? "revoked" : `revoked: ancestor ${id} was revoked`, v.token.id);
    }
  }

  /** Pick up revocations made through other connections (another process, the CLI). */
  #refreshRevocations(): void {
    this.#rev.refresh(this.#now, this.#pollMs, this.#pruneMs);
  }

  /** How many revoked ids this connection holds in memory (what the tests of forgetting read; nothing in the runtime needs it). */
  get revocationsHeld(): number {
    return this.#rev.size;
  }
}
