// The audit tail after the last checkpoint, attacked with write access to aido.db and to
// $AIDO_HOME (but not to the runtime key): rows truncated with sqlite, a rewritten last
// entry, the head file deleted, edited or re-signed, db and head rolled back together,
// and a truncation under a running runtime. verify must fail naming the seq, except for
// the rollback of both, which only an anchor kept elsewhere can reveal.

import { copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/db/database.js";
import { AuditLog } from "../../src/security/audit.js";
import { entryHash } from "../../src/security/audit-format.js";
import { macHead, parseAnchor, signHead } from "../../src/security/audit-head.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { makeSigner } from "./signer-fixture.js";

const EVERY = 10;
let home: TempHome;
let file: string;
let headPath: string;
let key: ReturnType<typeof makeSigner>;
let db: Db;
let writer: AuditLog;

/** The runtime's log: keeps the head. */
function openWriter(): AuditLog {
  db = openDatabase(file);
  writer = new AuditLog({ db, signer: key, checkpointEvery: EVERY, headFile: headPath, writeHead: true });
  return writer;
}

/** `aido audit verify`: its own connection, reads the head, never writes it. */
function verify(anchor?: string) {
  const rdb = openDatabase(file);
  try {
    const reader = new AuditLog({ db: rdb, signer: key, checkpointEvery: EVERY, headFile: headPath });
    return reader.verify(anchor ? { anchor: parseAnchor(anchor) } : {});
  } finally {
    rdb.close();
  }
}

function fill(n: number): void {
  for (let i = 0; i < n; i++) {
    writer.record(
      "tool.invoked",
      { tool: "exec", input: { command: `echo ${i}` } },
      { goalId: "g", agentId: "a" },
    );
  }
}

/** The attacker: plain sqlite on the same file. */
function sql<T>(fn: (a: Database.Database) => T): T {
  const a = new Database(file);
  try {
    return fn(a);
  } finally {
    a.close();
  }
}
const lastSeq = () => sql((a) => a.prepare("SELECT max(seq) FROM audit").pluck().get() as number);
const lastCheckpoint = () =>
  sql((a) => a.prepare("SELECT max(seq) FROM audit_checkpoints").pluck().get() as number);

beforeEach(() => {
  home = makeTempHome();
  file = home.config.dbPath;
  headPath = home.config.auditHeadPath;
  key = makeSigner();
  openWriter();
  fill(25); // head_started at 1, checkpoints at 10 and 20 (+ their entries), a tail after
});

afterEach(() => {
  writer.close();
  db.close();
  home.cleanup();
});

describe("the signed audit head", () => {
  it("vouches for the whole tail of an untouched log, and is private to its owner", () => {
    const last = lastSeq();
    expect(last).toBeGreaterThan(lastCheckpoint() + 2);
    expect(verify()).toEqual({ ok: true, entries: last, head_seq: last });
    expect(statSync(headPath).mode & 0o777).toBe(0o600);
    const first = sql((a) => a.prepare("SELECT kind FROM audit WHERE seq = 1").pluck().get());
    expect(first).toBe("audit.head_started");
  });

  it("finds tail rows deleted with sqlite after the last checkpoint, naming the first missing seq", () => {
    const last = lastSeq();
    sql((a) => a.prepare("DELETE FROM audit WHERE seq > ?").run(last - 3));
    expect(verify()).toMatchObject({
      ok: false,
      first_bad_seq: last - 2,
      reason: expect.stringMatching(
        new RegExp(`ends at seq ${last - 3} but the signed head .* names seq ${last}`),
      ),
    });
  });

  it("finds every row after the last checkpoint deleted, its audit.checkpoint entry included", () => {
    const cp = lastCheckpoint();
    sql((a) => a.prepare("DELETE FROM audit WHERE seq > ?").run(cp));
    expect(verify()).toMatchObject({ ok: false, first_bad_seq: cp + 1 });
  });

  it("finds the last entry rewritten with its hash recomputed", () => {
    const last = lastSeq();
    sql((a) => {
      const r = a.prepare("SELECT * FROM audit WHERE seq = ?").get(last) as Record<
        string,
        string | number | null
      >;
      const payload = '{"input":{"command":"nothing to see"},"tool":"exec"}';
      const hash = entryHash(
        last,
        r.time as string,
        "g",
        "a",
        r.kind as string,
        payload,
        r.prev_hash as string,
      );
      a.prepare("UPDATE audit SET payload = ?, hash = ? WHERE seq = ?").run(payload, hash, last);
    });
    expect(verify()).toMatchObject({
      ok: false,
      first_bad_seq: last,
      reason: expect.stringContaining(`entry ${last} is not the one the signed head`),
    });
  });

  it("fails when the head file is deleted, damaged, or signed with another key", () => {
    const good = readFileSync(headPath);
    rmSync(headPath);
    expect(verify()).toMatchObject({ ok: false, reason: expect.stringMatching(/head file .* is missing/) });
    writeFileSync(headPath, Buffer.from(good.toString("latin1").replaceAll('"seq":', '"seq":9'), "latin1"));
    expect(verify()).toMatchObject({ ok: false, reason: expect.stringMatching(/damaged|not valid/) });
    const other = makeSigner();
    const forged = signHead(
      other,
      3,
      sql((a) => a.prepare("SELECT hash FROM audit WHERE seq = 3").pluck().get() as string),
      "t",
    );
    writeFileSync(headPath, `${JSON.stringify({ format: "aido.audit.head.v1", ...forged })}\n`);
    expect(verify()).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/names key .* not the runtime key/),
    });
  });

  it("keeps MACed heads a forger without the key cannot make, and still reads heads signed in the v1 format", () => {
    const slot = readFileSync(headPath, "utf8").split("\n")[0] ?? "";
    expect(JSON.parse(slot)).toMatchObject({ format: "aido.audit.head.v2", mac: expect.any(String) });
    expect(JSON.parse(slot).sig).toBeUndefined();
    const hashAt = (seq: number) =>
      sql((a) => a.prepare("SELECT hash FROM audit WHERE seq = ?").pluck().get(seq) as string);
    const seq = lastSeq();
    const write = (line: object) => writeFileSync(headPath, `${JSON.stringify(line)}\n`);
    // The runtime key's id with a MAC made under another key (what a forger can compute).
    const other = makeSigner();
    const stranger = macHead(other, seq, hashAt(seq), "t");
    write({ format: "aido.audit.head.v2", ...stranger, key_id: key.keyId });
    expect(verify()).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/MAC is not the runtime key's/),
    });
    // A genuine MAC moved to another seq, or a MAC with the time changed.
    const genuine = macHead(key, seq - 1, hashAt(seq - 1), "t");
    write({ format: "aido.audit.head.v2", ...genuine, seq });
    expect(verify().ok).toBe(false);
    write({ format: "aido.audit.head.v2", ...genuine, time: "t2" });
    expect(verify().ok).toBe(false);
    // Neither a signature in a v2 line nor a MAC in a v1 line is taken.
    const signed = signHead(key, seq, hashAt(seq), "t");
    write({ format: "aido.audit.head.v2", ...signed });
    expect(verify().ok).toBe(false);
    write({ format: "aido.audit.head.v1", ...macHead(key, seq, hashAt(seq), "t") });
    expect(verify().ok).toBe(false);
    // A home from before v2: its signed head still vouches for the log.
    write({ format: "aido.audit.head.v1", ...signed });
    expect(verify()).toMatchObject({ ok: true, head_seq: seq });
    write({ format: "aido.audit.head.v2", ...macHead(key, seq, hashAt(seq), "t") });
    expect(verify()).toMatchObject({ ok: true, head_seq: seq });
  });

  it("cannot tell db and head rolled back together, but an anchor kept elsewhere can, naming the seq", async () => {
    const backup = `${file}.bak`;
    await db.backup(backup);
    const oldHead = readFileSync(headPath);
    const rolledTo = lastSeq();
    fill(7);
    const anchoredAt = lastSeq();
    const anchor = `${anchoredAt}:${sql((a) => a.prepare("SELECT hash FROM audit WHERE seq = ?").pluck().get(anchoredAt))}`;
    expect(verify(anchor)).toMatchObject({ ok: true });
    writer.close();
    db.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    copyFileSync(backup, file);
    writeFileSync(headPath, oldHead);
    expect(verify()).toEqual({ ok: true, entries: rolledTo, head_seq: rolledTo });
    expect(verify(anchor)).toMatchObject({
      ok: false,
      first_bad_seq: rolledTo + 1,
      reason: expect.stringMatching(
        new RegExp(`ends at seq ${rolledTo} but the anchor names seq ${anchoredAt}`),
      ),
    });
    openWriter();
  });

  it("fails against a wrong anchor: another hash at its seq, or a seq past the end", () => {
    const hash5 = sql((a) => a.prepare("SELECT hash FROM audit WHERE seq = 5").pluck().get() as string);
    expect(verify(`5:${hash5}`)).toMatchObject({ ok: true });
    expect(verify(`5:${"ab".repeat(32)}`)).toMatchObject({
      ok: false,
      first_bad_seq: 5,
      reason: expect.stringContaining("entry 5 is not the one the anchor names"),
    });
    expect(verify(`999:${hash5}`)).toMatchObject({ ok: false, first_bad_seq: lastSeq() + 1 });
    expect(() => parseAnchor("5:nothex")).toThrow(/SEQ:HASH/);
  });

  it("a running runtime records a truncation made under it, and verify stops there", () => {
    const last = lastSeq();
    sql((a) => a.prepare("DELETE FROM audit WHERE seq > ?").run(last - 2));
    fill(1);
    const broken = sql(
      (a) =>
        a.prepare("SELECT seq, payload FROM audit WHERE kind = 'audit.head_broken'").get() as {
          seq: number;
          payload: string;
        },
    );
    expect(broken.seq).toBe(last - 1);
    expect(JSON.parse(broken.payload)).toMatchObject({ head_seq: last, log_seq: last - 2 });
    // The head now matches the log again, but the chain keeps the evidence.
    expect(verify()).toMatchObject({
      ok: false,
      first_bad_seq: last - 1,
      reason: expect.stringMatching(
        new RegExp(`ends at seq ${last - 2}, before seq ${last} that this runtime committed`),
      ),
    });
  });

  it("a restarted runtime records a truncation, or a lost head file, found when it opens the log", () => {
    writer.close();
    db.close();
    const last = lastSeq();
    sql((a) => a.prepare("DELETE FROM audit WHERE seq > ?").run(last - 1));
    openWriter();
    expect(verify()).toMatchObject({
      ok: false,
      first_bad_seq: last,
      reason: expect.stringContaining("signed head names seq"),
    });

    writer.close();
    db.close();
    rmSync(headPath);
    openWriter();
    const kinds = sql(
      (a) =>
        a.prepare("SELECT payload FROM audit WHERE kind = 'audit.head_broken'").pluck().all() as string[],
    );
    expect(kinds.at(-1)).toMatch(/was missing/);
  });

  it("starts a head for a log written before heads existed, and verify accepts it", () => {
    writer.close();
    db.close();
    rmSync(file);
    rmSync(headPath);
    db = openDatabase(file);
    const old = new AuditLog({ db, signer: key, checkpointEvery: EVERY });
    old.record("goal.started", {});
    old.record("goal.started", {});
    db.close();
    expect(verify()).toEqual({ ok: true, entries: 2 });
    openWriter();
    expect(sql((a) => a.prepare("SELECT kind FROM audit WHERE seq = 3").pluck().get())).toBe(
      "audit.head_started",
    );
    expect(verify()).toEqual({ ok: true, entries: 3, head_seq: 3 });
  });

  it("never runs the head ahead of an append its caller's transaction rolled back", async () => {
    const before = lastSeq();
    expect(() =>
      db.transaction(() => {
        writer.record("goal.started", {});
        throw new Error("caller fails");
      })(),
    ).toThrow("caller fails");
    await new Promise((r) => setImmediate(r));
    expect(verify()).toEqual({ ok: true, entries: before, head_seq: before });
    db.transaction(() => writer.record("goal.started", {}))();
    await new Promise((r) => setImmediate(r));
    expect(verify()).toEqual({ ok: true, entries: before + 1, head_seq: before + 1 });
    fill(1);
    expect(
      sql((a) => a.prepare("SELECT count(*) FROM audit WHERE kind = 'audit.head_broken'").pluck().get()),
    ).toBe(0);
  });

  it("falls back to the other slot, the previous commit's head, when a write of the head was torn", () => {
    const last = lastSeq();
    const bytes = readFileSync(headPath);
    const seqOf = (i: number) => JSON.parse(bytes.toString("utf8", i * 512, (i + 1) * 512).trim()).seq;
    const slot = seqOf(0) === last ? 0 : 1;
    expect(seqOf(slot)).toBe(last);
    expect(seqOf(1 - slot)).toBe(last - 1); // fill() commits one entry at a time
    bytes.fill(0x41, slot * 512 + 40, slot * 512 + 200);
    writeFileSync(headPath, bytes);
    const r = verify();
    expect(r.ok).toBe(true);
    expect(r.head_seq).toBe(last - 1);
  });
});
