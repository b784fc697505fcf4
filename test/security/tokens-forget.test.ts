// The revocation set a connection holds in memory forgets an id a day after its token
// expired (src/security/tokens.ts, "Memory"). Attacked here: a wall clock that steps back
// more than that day, at a sweep or at a start, must not bring a revoked token back.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/db/database.js";
import { AidoError } from "../../src/errors.js";
import { type Grant, parseGrant } from "../../src/security/grants.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { FORGET_REVOKED_AFTER_MS, TokenAuthority } from "../../src/security/tokens.js";
import { makeTempHome, type TempHome } from "../support/home.js";

const gs = (...s: string[]): Grant[] => s.map((x) => parseGrant(x));
const DAY = FORGET_REVOKED_AFTER_MS;
const rootGrants = gs("tool: *", "file_read: /workspace/**");

let home: TempHome;
let db: Db;
let key: RuntimeKey;
let clock: number;
let tokens: TokenAuthority;

beforeEach(() => {
  home = makeTempHome();
  db = openDatabase(home.config.dbPath);
  key = RuntimeKey.load(home.config.keysDir);
  clock = Date.UTC(2030, 0, 1);
  tokens = new TokenAuthority({ db, key, now: () => clock });
});
afterEach(() => {
  db.close();
  home.cleanup();
});

/** The reason a verify call was refused with token_invalid. */
function rejection(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AidoError);
    expect((e as AidoError).code).toBe("token_invalid");
    return String((e as AidoError).details.reason);
  }
  throw new Error("expected token_invalid, but the token was accepted");
}

const sweeping = (now: () => number = () => clock) =>
  new TokenAuthority({ db, key, now, revocationPollMs: 0, revocationPruneMs: 0 });

describe("revocations held in memory", () => {
  it("forgets a revoked id a day after its token expired, and refuses the token all along", () => {
    const t = sweeping();
    const gone = t.issue({ agentId: "a1", goalId: "g1", grants: rootGrants, ttlSeconds: 3600 });
    const live = t.issue({ agentId: "a2", goalId: "g1", grants: rootGrants, ttlSeconds: 3 * 86_400 });
    t.revoke(gone.id);
    expect(t.revocationsHeld).toBe(1);
    clock += 3_600_000 + DAY - 1_000; // expired, not yet for a day
    expect(rejection(() => t.verify(gone))).toMatch(/expired/);
    t.verify(live);
    expect(t.revocationsHeld).toBe(1);
    clock += 2_000;
    t.verify(live); // a verify looks at the set
    expect(t.revocationsHeld).toBe(0);
    expect(rejection(() => t.verify(gone))).toMatch(/expired/);
    // A revocation of a token still valid is kept whatever the time.
    t.revoke(live.id);
    expect(rejection(() => t.verify(live))).toBe("revoked");
    expect(t.revocationsHeld).toBe(1);
  });

  it("keeps refusing a revoked token when the clock steps back inside the margin", () => {
    const t = sweeping();
    const tok = t.issue({ agentId: "a1", goalId: "g1", grants: rootGrants, ttlSeconds: 60 });
    t.revoke(tok.id);
    const issued = clock;
    clock += 60_000 + DAY / 2; // expired half a day ago
    expect(rejection(() => t.verify(tok))).toMatch(/expired/);
    clock = issued + 1_000; // stepped back to when it was valid
    expect(rejection(() => t.verify(tok))).toBe("revoked");
  });

  it("does not read in, at start, the revocations of tokens expired for more than a day", () => {
    const old = tokens.issue({ agentId: "a1", goalId: "g1", grants: rootGrants, ttlSeconds: 60 });
    const oldChild = tokens.issue({ agentId: "a2", grants: gs("tool: *"), ttlSeconds: 60, parent: old });
    const fresh = tokens.issue({ agentId: "a3", goalId: "g2", grants: rootGrants, ttlSeconds: 3 * 86_400 });
    tokens.revoke(old.id);
    tokens.revoke(fresh.id);
    clock += 60_000 + DAY + 1_000;
    const db2 = openDatabase(home.config.dbPath);
    try {
      const restarted = new TokenAuthority({ db: db2, key, now: () => clock });
      expect(restarted.revocationsHeld).toBe(1);
      expect(rejection(() => restarted.verify(fresh))).toBe("revoked");
      expect(rejection(() => restarted.verify(oldChild))).toMatch(/expired/);
    } finally {
      db2.close();
    }
  });
});

describe("a wall clock stepped back more than the margin", () => {
  it("still refuses a revoked token and one issued under it after a sweep ran while the clock was days ahead", () => {
    const t = sweeping();
    const parent = t.issue({ agentId: "a1", goalId: "g1", grants: rootGrants, ttlSeconds: 2 * 86_400 });
    const other = t.issue({ agentId: "a3", goalId: "g2", grants: rootGrants, ttlSeconds: 30 * 86_400 });
    // Another process that has not seen the revocation yet issues a child under it: only
    // the parent's id refuses the child.
    const db2 = openDatabase(home.config.dbPath);
    try {
      const late = new TokenAuthority({ db: db2, key, now: () => clock, revocationPollMs: 3_600_000 });
      t.revoke(parent.id);
      const child = late.issue({ agentId: "a2", grants: gs("tool: *"), ttlSeconds: 3600, parent });
      expect(rejection(() => t.verify(child))).toBe(`revoked: ancestor ${parent.id} was revoked`);
      const real = clock;
      clock = real + 5 * DAY; // the clock is wrong, days ahead: a verify sweeps the set
      t.verify(other);
      expect(t.revocationsHeld).toBe(0);
      clock = real + 1_000; // put right: both tokens are within their lives again
      expect(rejection(() => t.verify(parent))).toBe("revoked");
      expect(rejection(() => t.verify(child))).toBe(`revoked: ancestor ${parent.id} was revoked`);
    } finally {
      db2.close();
    }
  });

  it("still refuses a revoked token after a start read revocations in with the clock days ahead", () => {
    const parent = tokens.issue({ agentId: "a1", goalId: "g1", grants: rootGrants, ttlSeconds: 2 * 86_400 });
    const child = tokens.issue({ agentId: "a2", grants: gs("tool: *"), ttlSeconds: 3600, parent });
    tokens.revoke(parent.id);
    const real = clock;
    let clock2 = real + 5 * DAY; // the restarted daemon's clock is days ahead
    const db2 = openDatabase(home.config.dbPath);
    try {
      const restarted = new TokenAuthority({ db: db2, key, now: () => clock2 });
      expect(restarted.revocationsHeld).toBe(0);
      clock2 = real + 1_000;
      expect(rejection(() => restarted.verify(parent))).toBe("revoked");
      expect(rejection(() => restarted.verify(child))).toBe("revoked"); // the cascade revoked it too
    } finally {
      db2.close();
    }
  });

  it("still refuses a revoked token when another authority on the connection swept with its own clock", () => {
    const tok = tokens.issue({ agentId: "a1", goalId: "g1", grants: rootGrants, ttlSeconds: 3600 });
    const other = tokens.issue({ agentId: "a3", goalId: "g2", grants: rootGrants, ttlSeconds: 30 * 86_400 });
    tokens.revoke(tok.id);
    const ahead = sweeping(() => clock + 5 * DAY); // one view per connection, shared
    ahead.verify(other);
    expect(rejection(() => tokens.verify(tok))).toBe("revoked");
  });
});
