import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/db/database.js";
import { AidoError } from "../../src/errors.js";
import { type Grant, parseGrant } from "../../src/security/grants.js";
import { RuntimeKey } from "../../src/security/keys.js";
import {
  type CapabilityToken,
  canonicalTokenPayload,
  TokenAuthority,
  type VerifiedToken,
} from "../../src/security/tokens.js";
import { makeTempHome, type TempHome } from "../support/home.js";

const gs = (...s: string[]): Grant[] => s.map((x) => parseGrant(x));

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

/** Token ids the authority recorded as revoked. */
function revokedIds(): string[] {
  return db.prepare("SELECT token_id FROM capability_revocations").pluck().all() as string[];
}

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

const rootGrants = gs(
  "tool: *",
  "file_read: /workspace/**",
  "file_write: /output/**",
  "exec: python3 *",
  "network: *.example.com",
  "spawn_child: [researcher, writer]",
);

function root(ttlSeconds = 3600): CapabilityToken {
  return tokens.issue({ agentId: "agent-root", goalId: "goal-1", grants: rootGrants, ttlSeconds });
}

/** Re-sign an edited token with the runtime key (an attacker who could sign still fails SQLite checks). */
function resign(t: CapabilityToken, k = key): CapabilityToken {
  const { sig: _sig, ...unsigned } = t;
  return { ...unsigned, sig: k.sign(Buffer.from(canonicalTokenPayload(unsigned))).toString("base64") };
}

describe("issue and verify", () => {
  it("issues a signed v1 token that verifies, with parsed grants and its chain", () => {
    const t = root();
    expect(t).toMatchObject({
      v: 1,
      agentId: "agent-root",
      goalId: "goal-1",
      parentId: null,
      keyId: key.keyId,
    });
    expect(t.id).toMatch(/^[0-9a-f]{32}$/);
    expect(t.grants).toEqual([
      "tool: *",
      "file_read: /workspace/**",
      "file_write: /output/**",
      "exec: python3 *",
      "network: *.example.com",
      "spawn_child: [researcher, writer]",
    ]);
    expect(t.expiresAt - t.issuedAt).toBe(3_600_000);
    const v = tokens.verify(t);
    expect(v.grants).toEqual(rootGrants);
    expect(v.chain).toEqual([t.id]);
  });

  it("verifies a token after a JSON round trip (what crosses a socket)", () => {
    const t = root();
    expect(tokens.verify(JSON.parse(JSON.stringify(t))).token.id).toBe(t.id);
  });

  it("returns its own frozen copy, not the presented object", () => {
    const t = root();
    const v = tokens.verify(t);
    t.grants.push("tool: *");
    expect(Object.isFrozen(v.token)).toBe(true);
    expect(v.token.grants).toHaveLength(6);
  });

  it("issues a child whose grants are covered, inheriting the goal, with the chain up to the root", () => {
    const r = root();
    const c = tokens.issue({
      agentId: "agent-c",
      grants: gs("tool: file_read", "file_read: /workspace/src/**"),
      parent: r,
      ttlSeconds: 60,
    });
    expect(c.parentId).toBe(r.id);
    expect(c.goalId).toBe("goal-1");
    const gc = tokens.issue({
      agentId: "agent-gc",
      grants: gs("file_read: /workspace/src/a.ts"),
      parent: c,
      ttlSeconds: 30,
    });
    expect(tokens.verify(gc).chain).toEqual([gc.id, c.id, r.id]);
  });

  it.each([
    [{ agentId: "" }, "agentId"],
    [{ goalId: "" }, "goalId"],
    [{ ttlSeconds: 0 }, "ttlSeconds"],
    [{ ttlSeconds: Number.NaN }, "ttlSeconds"],
  ])("refuses to issue with a bad %j", (bad, field) => {
    expect(() => tokens.issue({ agentId: "a", grants: [], ttlSeconds: 60, ...bad })).toThrow(
      expect.objectContaining({ code: "invalid_input", details: { field } }),
    );
  });

  it("issues tokens that verify even when the clock reads fractional milliseconds", () => {
    clock += 0.5;
    expect(tokens.verify(root()).token.issuedAt).toBe(Math.floor(clock));
  });

  it("survives a restart: a new authority on the same database verifies earlier tokens", () => {
    const t = root();
    const again = new TokenAuthority({
      db: openDatabase(home.config.dbPath),
      key: RuntimeKey.load(home.config.keysDir),
      now: () => clock,
    });
    expect(again.verify(t).token.id).toBe(t.id);
  });
});

describe("forged tokens", () => {
  it.each<[string, (t: CapabilityToken) => CapabilityToken]>([
    [
      "a flipped signature byte",
      (t) => {
        const sig = Buffer.from(t.sig, "base64");
        sig[5] = (sig[5] as number) ^ 0x01;
        return { ...t, sig: sig.toString("base64") };
      },
    ],
    ["an added grant", (t) => ({ ...t, grants: [...t.grants, "file_write: /**"] })],
    [
      "a widened grant",
      (t) => ({ ...t, grants: t.grants.map((g) => g.replace("/workspace/src/**", "/**")) }),
    ],
    ["a later expiry", (t) => ({ ...t, expiresAt: t.expiresAt + 86_400_000 })],
    ["another parent", (t) => ({ ...t, parentId: null })],
    ["another agent", (t) => ({ ...t, agentId: "agent-evil" })],
    ["another goal", (t) => ({ ...t, goalId: "goal-2" })],
    ["a signature from another token", (t) => ({ ...t, sig: root().sig })],
  ])("refuses a token with %s", (_what, edit) => {
    const r = root();
    const child = tokens.issue({
      agentId: "agent-c",
      grants: gs("file_read: /workspace/src/**"),
      parent: r,
      ttlSeconds: 60,
    });
    tokens.verify(child); // cached as verified: the forgery must not ride on the cache
    expect(rejection(() => tokens.verify(edit(child)))).toMatch(/signature does not verify/);
    expect(tokens.verify(child).token.id).toBe(child.id);
  });

  it.each([false, true])(
    "never returns widened grants from an object whose getters change between reads (cached before: %s)",
    (warm) => {
      const t = root();
      if (warm) tokens.verify(t);
      const widened = [...t.grants, "file_write: /**"];
      for (let evil = 0; evil < 4; evil++) {
        let reads = 0;
        const shifty = { ...t };
        Object.defineProperty(shifty, "grants", {
          enumerable: true,
          get: () => (reads++ === evil ? widened : t.grants),
        });
        try {
          const v = tokens.verify(shifty);
          expect(v.token.grants).toEqual(t.grants);
          expect(v.grants).toHaveLength(t.grants.length);
        } catch (e) {
          expect((e as AidoError).code).toBe("token_invalid");
        }
      }
    },
  );

  it("refuses an unknown version, even with a matching signature", () => {
    const t = root();
    expect(rejection(() => tokens.verify({ ...t, v: 2 }))).toMatch(/unknown token version 2/);
  });

  it.each([null, 42, "token", {}, { v: 1 }])("refuses a non-token %j", (bad) => {
    rejection(() => tokens.verify(bad));
  });

  it("refuses a malformed token with extra fields", () => {
    const t = root();
    expect(rejection(() => tokens.verify({ ...t, admin: true }))).toMatch(/malformed/);
  });

  it("refuses a token from another AIDO_HOME's key, also when it claims our keyId", () => {
    const other = makeTempHome();
    try {
      const otherDb = openDatabase(other.config.dbPath);
      const otherKey = RuntimeKey.load(other.config.keysDir);
      const foreign = new TokenAuthority({ db: otherDb, key: otherKey, now: () => clock }).issue({
        agentId: "agent-x",
        grants: gs("tool: *"),
        ttlSeconds: 60,
      });
      expect(rejection(() => tokens.verify(foreign))).toMatch(/signed by another key/);
      const disguised = resign({ ...foreign, keyId: key.keyId }, otherKey);
      expect(rejection(() => tokens.verify(disguised))).toMatch(/signature does not verify/);
      otherDb.close();
    } finally {
      other.cleanup();
    }
  });

  it("refuses a correctly signed token this runtime never issued (unknown id)", () => {
    const t = root();
    const minted = resign({ ...t, id: "f".repeat(32), grants: ["tool: *", "file_write: /**"] });
    expect(rejection(() => tokens.verify(minted))).toMatch(/unknown token id/);
  });

  it("refuses a correctly signed token that differs from the one issued under its id", () => {
    const t = root();
    const swapped = resign({ ...t, grants: [...t.grants, "file_write: /**"] });
    expect(rejection(() => tokens.verify(swapped))).toMatch(/does not match the token this runtime issued/);
  });

  it("refuses a token whose parent chain is broken", () => {
    const r = root();
    const c = tokens.issue({ agentId: "agent-c", grants: gs("tool: exec"), parent: r, ttlSeconds: 60 });
    db.pragma("foreign_keys = OFF");
    db.prepare("DELETE FROM capability_tokens WHERE id = ?").run(r.id);
    const fresh = new TokenAuthority({ db, key, now: () => clock });
    expect(rejection(() => fresh.verify(c))).toMatch(/parent chain broken/);
  });
});

describe("a token's first verify after it was issued here", () => {
  it("checks no signature, and still refuses every forgery of it made before that first verify", () => {
    const r = root();
    const counted = { calls: 0 };
    const spied = Object.assign(Object.create(Object.getPrototypeOf(key)), key, {
      keyId: key.keyId,
      sign: (d: Buffer) => key.sign(d),
      verify: (d: Buffer, sig: Buffer) => {
        counted.calls++;
        return key.verify(d, sig);
      },
    });
    const authority = new TokenAuthority({ db, key: spied, now: () => clock });
    const child = authority.issue({
      agentId: "agent-c",
      grants: gs("tool: exec"),
      parent: authority.issue({ agentId: "agent-p", grants: rootGrants, ttlSeconds: 60 }),
      ttlSeconds: 60,
    });
    const forgeries = [
      { ...child, grants: [...child.grants, "file_write: /**"] },
      { ...child, expiresAt: child.expiresAt + 1 },
      { ...child, agentId: "agent-evil" },
      { ...child, sig: r.sig },
      resign({ ...child, grants: ["tool: *"] }),
    ];
    for (const f of forgeries) rejection(() => authority.verify(f));
    counted.calls = 0;
    expect(authority.verify(child).chain).toHaveLength(2);
    expect(counted.calls).toBe(0);
  });

  it("refuses it when the transaction that issued it rolled back, or its row is gone", () => {
    let issued: CapabilityToken | undefined;
    expect(() =>
      db.transaction(() => {
        issued = tokens.issue({ agentId: "agent-x", grants: gs("tool: exec"), ttlSeconds: 60 });
        throw new Error("spawn failed after the token was issued");
      })(),
    ).toThrow(/spawn failed/);
    expect(rejection(() => tokens.verify(issued))).toMatch(/unknown token id/);
    const deleted = root();
    db.prepare("DELETE FROM capability_tokens WHERE id = ?").run(deleted.id);
    expect(rejection(() => tokens.verify(deleted))).toMatch(/unknown token id/);
  });
});

describe("time", () => {
  it("refuses an expired token, also one verified before", () => {
    const t = root(60);
    tokens.verify(t);
    clock += 60_000;
    expect(rejection(() => tokens.verify(t))).toMatch(/expired/);
  });

  it("accepts a token issued slightly in the future, refuses one beyond 60 s of clock skew", () => {
    const t = root();
    clock -= 59_000;
    expect(tokens.verify(t).token.id).toBe(t.id);
    clock -= 2_000;
    expect(rejection(() => tokens.verify(t))).toMatch(/not valid yet/);
  });

  it("caps a child's expiry at its parent's, so no descendant outlives its root", () => {
    const r = root(60);
    clock += 10_000;
    const c = tokens.issue({ agentId: "c", grants: gs("tool: exec"), parent: r, ttlSeconds: 3600 });
    expect(c.expiresAt).toBe(r.expiresAt);
    const shorter = tokens.issue({ agentId: "d", grants: gs("tool: exec"), parent: r, ttlSeconds: 5 });
    expect(shorter.expiresAt).toBe(clock + 5_000);
    clock = r.expiresAt;
    expect(rejection(() => tokens.verify(c))).toMatch(/expired/);
  });

  it("refuses to issue under an expired parent", () => {
    const r = root(60);
    clock += 61_000;
    expect(
      rejection(() => tokens.issue({ agentId: "c", grants: gs("tool: exec"), parent: r, ttlSeconds: 1 })),
    ).toMatch(/expired/);
  });
});

describe("narrowing at issue", () => {
  it.each([
    "file_read: /**",
    "file_read: /workspace-x/**",
    "file_write: /workspace/**",
    "exec: *",
    "exec: bash *",
    "network: example.com",
    "network: *",
    "spawn_child: [*]",
    "spawn_child: [admin]",
  ])("refuses a child asking for %s, naming it", (grant) => {
    const r = root();
    const narrow = tokens.issue({
      agentId: "mid",
      grants: gs(
        "tool: exec",
        "file_read: /workspace/**",
        "exec: python3 *",
        "network: *.example.com",
        "spawn_child: [writer]",
      ),
      parent: r,
      ttlSeconds: 60,
    });
    expect(() =>
      tokens.issue({ agentId: "c", grants: gs("tool: exec", grant), parent: narrow, ttlSeconds: 10 }),
    ).toThrow(expect.objectContaining({ code: "capability_denied", details: { offending: [grant] } }));
  });

  it("refuses a tool the parent lacks", () => {
    const r = root();
    const mid = tokens.issue({ agentId: "mid", grants: gs("tool: file_read"), parent: r, ttlSeconds: 60 });
    expect(() =>
      tokens.issue({
        agentId: "c",
        grants: gs("tool: file_write", "tool: exec"),
        parent: mid,
        ttlSeconds: 10,
      }),
    ).toThrow(expect.objectContaining({ details: { offending: ["tool: file_write", "tool: exec"] } }));
  });

  it("refuses to issue under a forged parent", () => {
    const r = root();
    const forged = { ...r, grants: [...r.grants, "file_write: /**"] };
    expect(
      rejection(() =>
        tokens.issue({ agentId: "c", grants: gs("file_write: /etc/passwd"), parent: forged, ttlSeconds: 10 }),
      ),
    ).toMatch(/signature/);
  });
});

describe("revocation", () => {
  function tree(): {
    r: CapabilityToken;
    a: CapabilityToken;
    b: CapabilityToken;
    c: CapabilityToken;
    sibling: CapabilityToken;
  } {
    const r = root();
    const a = tokens.issue({
      agentId: "a",
      grants: gs("tool: *", "file_read: /workspace/**"),
      parent: r,
      ttlSeconds: 600,
    });
    const b = tokens.issue({
      agentId: "b",
      grants: gs("file_read: /workspace/src/**"),
      parent: a,
      ttlSeconds: 300,
    });
    const c = tokens.issue({
      agentId: "c",
      grants: gs("file_read: /workspace/src/a.ts"),
      parent: b,
      ttlSeconds: 100,
    });
    const sibling = tokens.issue({ agentId: "s", grants: gs("tool: exec"), parent: r, ttlSeconds: 600 });
    return { r, a, b, c, sibling };
  }

  it("refuses a replayed token after revoke, even though it was verified (and cached) before", () => {
    const t = root();
    tokens.verify(t);
    expect(tokens.revoke(t.id)).toEqual([t.id]);
    expect(rejection(() => tokens.verify(t))).toBe("revoked");
    expect(revokedIds()).toContain(t.id);
  });

  it("cascades three levels deep and leaves siblings alone", () => {
    const { r, a, b, c, sibling } = tree();
    for (const t of [a, b, c]) tokens.verify(t);
    expect(tokens.revoke(a.id)).toEqual([a.id, b.id, c.id]);
    for (const t of [a, b, c]) expect(rejection(() => tokens.verify(t))).toBe("revoked");
    expect(tokens.verify(r).token.id).toBe(r.id);
    expect(tokens.verify(sibling).token.id).toBe(sibling.id);
  });

  it("refuses the revoked tree in this process even when the database cannot record it", () => {
    const { r, a, b, c, sibling } = tree();
    for (const t of [a, b, c]) tokens.verify(t);
    db.exec(`CREATE TRIGGER refuse_revocation BEFORE INSERT ON capability_revocations
             BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    // The caller learns the revocation is not durable, but it never fails open here.
    expect(() => tokens.revoke(a.id)).toThrow(/disk full/);
    expect(revokedIds()).toEqual([]);
    for (const t of [a, b, c]) expect(rejection(() => tokens.verify(t))).toBe("revoked");
    expect(tokens.verify(r).token.id).toBe(r.id);
    expect(tokens.verify(sibling).token.id).toBe(sibling.id);
    // Recorded once the database takes it.
    db.exec("DROP TRIGGER refuse_revocation");
    expect(tokens.revoke(a.id)).toEqual([a.id, b.id, c.id]);
    expect(revokedIds().sort()).toEqual([a.id, b.id, c.id].sort());
  });

  it("refuses a token whose ancestor was revoked even if it escaped the cascade", () => {
    const { a, b, c } = tree();
    // Revoke only the middle row by hand (another connection), as a racing issue could leave
    // a child out of the cascade.
    const otherDb = openDatabase(home.config.dbPath);
    otherDb
      .prepare("INSERT INTO capability_revocations (token_id, revoked_at) VALUES (?, ?)")
      .run(a.id, clock);
    otherDb.close();
    const fresh = new TokenAuthority({ db, key, now: () => clock, revocationPollMs: 0 });
    expect(rejection(() => fresh.verify(c))).toBe(`revoked: ancestor ${a.id} was revoked`);
    expect(rejection(() => fresh.verify(b))).toMatch(/ancestor/);
  });

  it("refuses to issue under a revoked parent", () => {
    const { a } = tree();
    tokens.revoke(a.id);
    expect(rejection(() => tokens.issue({ agentId: "x", grants: [], parent: a, ttlSeconds: 1 }))).toBe(
      "revoked",
    );
  });

  it("is durable: a restarted authority still refuses revoked tokens", () => {
    const { a, c } = tree();
    tokens.revoke(a.id);
    db.close();
    db = openDatabase(home.config.dbPath);
    const restarted = new TokenAuthority({ db, key: RuntimeKey.load(home.config.keysDir), now: () => clock });
    expect(rejection(() => restarted.verify(c))).toMatch(/revoked/);
  });

  it("sees a revocation made through another connection at once when polling every call", () => {
    tokens = new TokenAuthority({ db, key, now: () => clock, revocationPollMs: 0 });
    const { r, b } = tree();
    tokens.verify(b);
    const otherDb = openDatabase(home.config.dbPath);
    try {
      new TokenAuthority({ db: otherDb, key, now: () => clock }).revoke(r.id);
    } finally {
      otherDb.close();
    }
    expect(rejection(() => tokens.verify(b))).toMatch(/revoked/);
  });

  it("sees a revocation made through another connection within the poll window", async () => {
    const { r, b } = tree();
    tokens.verify(b);
    const otherDb = openDatabase(home.config.dbPath);
    try {
      new TokenAuthority({ db: otherDb, key, now: () => clock }).revoke(r.id);
    } finally {
      otherDb.close();
    }
    await new Promise((done) => setTimeout(done, 40));
    expect(rejection(() => tokens.verify(b))).toMatch(/revoked/);
  });

  it("shares what it knows about revocations with every authority on the same connection", () => {
    const { a, c } = tree();
    const second = new TokenAuthority({ db, key, now: () => clock });
    second.verify(c);
    tokens.revoke(a.id);
    expect(rejection(() => second.verify(c))).toBe("revoked");
  });

  it("reports not_found for a token id it never issued", () => {
    expect(() => tokens.revoke("0".repeat(32))).toThrow(expect.objectContaining({ code: "not_found" }));
  });
});

describe("speed", () => {
  it("answers a repeat verify from its cache, returning the same verified object", () => {
    const t = root();
    const first: VerifiedToken = tokens.verify(t);
    const again = tokens.verify(JSON.parse(JSON.stringify(t)));
    expect(again).toBe(first);
  });
});
