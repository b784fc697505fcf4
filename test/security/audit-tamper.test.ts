// An attacker with write access to aido.db edits the audit tables directly. Every edit
// that the design promises to detect must make verify() fail at the right seq.

import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/db/database.js";
import { AuditLog, type Signer } from "../../src/security/audit.js";
import { entryHash, GENESIS_HASH } from "../../src/security/audit-format.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { makeSigner } from "./signer-fixture.js";

let home: TempHome;
let db: Db;
let log: AuditLog;
let key: Signer;
let attacker: Database.Database;
let file: string;

/** With checkpointEvery 10 the layout is: checkpoints at 10, 20, 30; audit.checkpoint entries at 11, 21, 31. */
function fill(n: number): void {
  for (let i = 1; i <= n; i++) {
    log.record(
      "tool.invoked",
      { tool: "exec", input: { command: `echo ${i}` } },
      { goalId: "g1", agentId: `a${i % 3}` },
    );
  }
}

function lastSeq(): number {
  return attacker.prepare("SELECT max(seq) FROM audit").pluck().get() as number;
}

/** What an attacker without the key can do: recompute every hash from seq 1. */
function rechain(): void {
  const rows = attacker.prepare("SELECT * FROM audit ORDER BY seq").all() as Array<{
    seq: number;
    time: string;
    goal_id: string | null;
    agent_id: string | null;
    kind: string;
    payload: string;
  }>;
  const update = attacker.prepare("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?");
  let prev = GENESIS_HASH;
  attacker.transaction(() => {
    for (const r of rows) {
      const hash = entryHash(r.seq, r.time, r.goal_id, r.agent_id, r.kind, r.payload, prev);
      update.run(prev, hash, r.seq);
      prev = hash;
    }
  })();
}

beforeEach(() => {
  home = makeTempHome();
  file = home.config.dbPath;
  db = openDatabase(file);
  key = makeSigner();
  log = new AuditLog({ db, signer: key, checkpointEvery: 10 });
  fill(32); // regular entries interleaved with checkpoint entries; last seq 35
  attacker = new Database(file);
});

afterEach(() => {
  attacker.close();
  db.close();
  home.cleanup();
});

describe("audit verify against a tampered database", () => {
  it("accepts the untouched log", () => {
    expect(lastSeq()).toBe(35);
    expect(log.verify()).toEqual({ ok: true, entries: 35 });
  });

  it("finds an edited payload at its seq", () => {
    attacker
      .prepare("UPDATE audit SET payload = ? WHERE seq = 5")
      .run('{"input":{"command":"rm -rf /"},"tool":"exec"}');
    expect(log.verify()).toMatchObject({ ok: false, first_bad_seq: 5 });
  });

  it("finds an edited kind, agent or time at its seq", () => {
    attacker.prepare("UPDATE audit SET kind = 'tool.denied' WHERE seq = 7").run();
    expect(log.verify().first_bad_seq).toBe(7);
    attacker.prepare("UPDATE audit SET kind = 'tool.invoked', agent_id = 'root' WHERE seq = 7").run();
    expect(log.verify().first_bad_seq).toBe(7);
    attacker
      .prepare("UPDATE audit SET agent_id = 'a1', time = '2000-01-01T00:00:00.000Z' WHERE seq = 7")
      .run();
    expect(log.verify().first_bad_seq).toBe(7);
  });

  it("finds a deleted middle row at the gap", () => {
    attacker.prepare("DELETE FROM audit WHERE seq = 14").run();
    expect(log.verify()).toMatchObject({ ok: false, first_bad_seq: 14, entries: 34 });
  });

  it("finds a tail truncated below the last checkpoint", () => {
    attacker.prepare("DELETE FROM audit WHERE seq > 25").run();
    const r = log.verify();
    expect(r).toMatchObject({ ok: false, first_bad_seq: 26 });
    expect(r.reason).toMatch(/checkpoint covers seq 30/);
  });

  it("finds a row inserted in the middle (later rows shifted up)", () => {
    attacker.transaction(() => {
      attacker.prepare("UPDATE audit SET seq = -seq WHERE seq > 12").run();
      attacker.prepare("UPDATE audit SET seq = 1 - seq WHERE seq < 0").run();
      attacker
        .prepare(
          "INSERT INTO audit SELECT 13, time, goal_id, agent_id, kind, payload, prev_hash, hash FROM audit WHERE seq = 12",
        )
        .run();
    })();
    expect(log.verify().first_bad_seq).toBe(13);
  });

  it("finds an inserted row even when the attacker recomputes the chain after it", () => {
    attacker.transaction(() => {
      attacker.prepare("UPDATE audit SET seq = -seq WHERE seq > 24").run();
      attacker.prepare("UPDATE audit SET seq = 1 - seq WHERE seq < 0").run();
      attacker
        .prepare(
          "INSERT INTO audit SELECT 25, time, goal_id, 'intruder', kind, payload, prev_hash, hash FROM audit WHERE seq = 24",
        )
        .run();
    })();
    rechain();
    // The chain is consistent again; the signed checkpoint at 30 no longer matches it.
    const r = log.verify();
    expect(r).toMatchObject({ ok: false, first_bad_seq: 21 });
    expect(r.reason).toMatch(/checkpoint at seq 30 does not match/);
  });

  it("finds two rows whose contents were swapped", () => {
    attacker.transaction(() => {
      const a = attacker.prepare("SELECT * FROM audit WHERE seq = 3").get() as Record<string, unknown>;
      const b = attacker.prepare("SELECT * FROM audit WHERE seq = 6").get() as Record<string, unknown>;
      const put = attacker.prepare(
        "UPDATE audit SET time = @time, goal_id = @goal_id, agent_id = @agent_id, kind = @kind, payload = @payload, prev_hash = @prev_hash, hash = @hash WHERE seq = @at",
      );
      put.run({ ...b, at: 3 });
      put.run({ ...a, at: 6 });
    })();
    expect(log.verify().first_bad_seq).toBe(3);
  });

  it("finds an edit hidden by recomputing every hash without the key", () => {
    attacker
      .prepare('UPDATE audit SET payload = \'{"input":{"command":"true"},"tool":"exec"}\' WHERE seq = 5')
      .run();
    rechain();
    expect(log.verify()).toMatchObject({ ok: false, first_bad_seq: 1 });
    attacker.prepare("UPDATE audit SET agent_id = 'ghost' WHERE seq = 27").run();
    attacker
      .prepare('UPDATE audit SET payload = \'{"input":{"command":"echo 5"},"tool":"exec"}\' WHERE seq = 5')
      .run();
    rechain();
    expect(log.verify()).toMatchObject({ ok: false, first_bad_seq: 21 });
  });

  it("finds checkpoints re-signed with another key, whatever key id they claim", () => {
    const other = makeSigner();
    const rows = attacker.prepare("SELECT * FROM audit_checkpoints ORDER BY seq").all() as Array<
      Record<string, never>
    >;
    for (const claimed of [other.keyId, key.keyId]) {
      for (const cp of rows) {
        const msg = Buffer.from(
          JSON.stringify(["aido.audit.checkpoint.v1", cp.seq, cp.head_hash, claimed, cp.time]),
        );
        attacker
          .prepare("UPDATE audit_checkpoints SET key_id = ?, sig = ? WHERE seq = ?")
          .run(claimed, other.sign(msg).toString("base64"), cp.seq);
      }
      const r = log.verify();
      expect(r).toMatchObject({ ok: false, first_bad_seq: 1 });
      expect(r.reason).toMatch(/checkpoint at seq 10/);
    }
  });

  it("finds a forged checkpoint placed over a recomputed chain", () => {
    attacker.prepare('UPDATE audit SET payload = \'{"input":{},"tool":"exec"}\' WHERE seq = 33').run();
    rechain();
    const head = attacker.prepare("SELECT hash FROM audit WHERE seq = 35").pluck().get() as string;
    attacker
      .prepare("INSERT INTO audit_checkpoints (seq, head_hash, key_id, sig, time) VALUES (35, ?, ?, ?, ?)")
      .run(head, key.keyId, Buffer.alloc(64, 7).toString("base64"), new Date().toISOString());
    const r = log.verify();
    expect(r).toMatchObject({ ok: false, first_bad_seq: 31 });
    expect(r.reason).toMatch(/checkpoint at seq 35 has a signature the runtime key did not make/);
  });

  it("finds deleted checkpoints: the chain records each one it was given", () => {
    attacker.prepare("DELETE FROM audit_checkpoints WHERE seq = 20").run();
    const r = log.verify();
    expect(r).toMatchObject({ ok: false, first_bad_seq: 21 });
    expect(r.reason).toMatch(/records a checkpoint at seq 20/);
  });

  it("finds a log rewritten from scratch without any checkpoint", () => {
    attacker.prepare("DELETE FROM audit WHERE kind = 'audit.checkpoint'").run();
    attacker.prepare("DELETE FROM audit_checkpoints").run();
    attacker.prepare("UPDATE audit SET seq = -seq").run();
    const seqs = attacker.prepare("SELECT seq FROM audit ORDER BY seq DESC").pluck().all() as number[];
    const renumber = attacker.prepare("UPDATE audit SET seq = ? WHERE seq = ?");
    for (const [i, s] of seqs.entries()) renumber.run(i + 1, s);
    rechain();
    expect(log.verify()).toMatchObject({ ok: false, first_bad_seq: 1 });
    expect(log.verify().reason).toMatch(/not covered by a signed checkpoint/);
  });

  it("verifies with a fresh log object over the same file and the same key, not another key", () => {
    const again = new AuditLog({ db: openDatabase(file), signer: key, checkpointEvery: 10 });
    expect(again.verify().ok).toBe(true);
    const stranger = new AuditLog({ db: openDatabase(file), signer: makeSigner(), checkpointEvery: 10 });
    expect(stranger.verify()).toMatchObject({ ok: false, first_bad_seq: 1 });
  });
});

describe("audit residual risk (documented in docs/audit.md)", () => {
  it("cannot tell a tail truncated after the last checkpoint from a shorter log", () => {
    attacker.prepare("DELETE FROM audit WHERE seq > 32").run();
    expect(log.verify()).toEqual({ ok: true, entries: 32 });
  });
});
