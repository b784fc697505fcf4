// security/audit-head.ts — the head of the audit log, kept outside the database
// ($AIDO_HOME/audit.head), and the anchors `aido audit anchor` prints.
//
// Why: checkpoints are signed only every `checkpointEvery` entries, so the entries after
// the last one were protected by the hash chain alone, and a chain simply cut short is
// still a valid chain. The head (seq + hash of the newest committed entry, authenticated
// with the runtime key) is rewritten after every commit; a log that ends before the head's
// seq, or holds a different entry there, was truncated or rewritten.
//
// The file holds two fixed 512-byte slots, each one JSON line (padded with spaces):
//   {"format":"aido.audit.head.v2","seq":N,"hash":"…","key_id":"…","time":"…","mac":"…"}
// Heads go to the two slots in turn, one pwrite on an fd kept open: a crash or power loss
// in the middle of a write can tear only that slot, and a reader takes the newest slot
// that verifies, which is then the head of the commit before. That is atomic replacement
// at the cost of one pwrite; a temp file and a rename per commit cost ~150 µs on ext4
// here, more than the append itself. The slots alternate by write, not by seq parity: with
// `seq % 2`, commits of two entries (a spawn, an append with its checkpoint) kept hitting
// one slot while the other aged, so blanking the newest slot (a "torn" write anyone with
// write access can fake) fell back to a head many commits old and let all of them be cut.
//
// The file's heads carry an HMAC-SHA256, not a signature: only the runtime key's holder
// reads or writes this file's checks (the runtime, `aido audit`), and an ed25519
// signature after every commit cost ~40 µs, the MAC ~5. The MAC key is SHA-256 of the
// runtime key's (deterministic, never shown) ed25519 signature of a fixed label, so only
// whoever holds the private key can derive it — exactly who could sign. The MAC is over
// UTF-8(JSON.stringify(["aido.audit.head.v2", seq, hash, key_id, time])), base64. A head
// shown to others — published to the cluster, `aido audit anchor --json` — is signed
// (signHead: "aido.audit.head.v1", the checkpoint scheme with its own format tag, `sig`),
// so anyone with the public key can check it; files written as v1 still verify.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { closeSync, constants, fchmodSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { AidoError, ErrorCode } from "../errors.js";
import type { AuditEvent } from "./audit-events.js";
import type { Signer } from "./audit-format.js";
import { verifyWithPublicKey } from "./keys.js";

const HEAD_FORMAT = "aido.audit.head.v1";
const MAC_FORMAT = "aido.audit.head.v2";
const MAC_KEY_LABEL = "aido.audit.head.v2 mac key";
const SLOT = 512;
const HASH = /^[0-9a-f]{64}$/;

/**
 * A statement "the log held entry `seq` with hash `hash`", authenticated by the runtime
 * key: signed (`sig`, ed25519, checkable with the public key) or, in the head file, MACed
 * (`mac`, HMAC-SHA256 with a key only the private key's holder can derive).
 */
export interface AuditHead {
  seq: number;
  hash: string;
  key_id: string;
  time: string;
  sig?: string;
  mac?: string;
}

/** What a reader found in the head file. */
export type HeadFileState =
  | { state: "missing" }
  | { state: "damaged"; reason: string }
  | { state: "ok"; head: AuditHead /** The slot it was read from. */; slot: number };

/** seq + hash a log must hold: from the head file, or from an anchor kept elsewhere. */
export interface AuditAnchor {
  seq: number;
  hash: string;
}

function headMessage(seq: number, hash: string, keyId: string, time: string): Buffer {
  return Buffer.from(JSON.stringify([HEAD_FORMAT, seq, hash, keyId, time]), "utf8");
}

/** A head signed with the runtime key (what others check with its public key). */
export function signHead(signer: Signer, seq: number, hash: string, time: string): AuditHead {
  const sig = signer.sign(headMessage(seq, hash, signer.keyId, time)).toString("base64");
  return { seq, hash, key_id: signer.keyId, time, sig };
}

const macKeys = new WeakMap<Signer, Buffer>();

/** The head file's MAC key: derived from the runtime key, by its holder only. */
function macKey(signer: Signer): Buffer {
  let key = macKeys.get(signer);
  if (key) return key;
  const label = Buffer.from(MAC_KEY_LABEL, "utf8");
  const sig = signer.sign(label);
  // ed25519 signs deterministically; a signer that does not could not find its heads again.
  if (!signer.sign(label).equals(sig)) throw new Error("the runtime key's signatures are not deterministic");
  key = createHash("sha256").update(sig).digest();
  macKeys.set(signer, key);
  return key;
}

function headMac(signer: Signer, seq: number, hash: string, keyId: string, time: string): Buffer {
  return createHmac("sha256", macKey(signer))
    .update(JSON.stringify([MAC_FORMAT, seq, hash, keyId, time]), "utf8")
    .digest();
}

/** A head for the head file: MACed with the key derived from the runtime key. */
export function macHead(signer: Signer, seq: number, hash: string, time: string): AuditHead {
  const mac = headMac(signer, seq, hash, signer.keyId, time).toString("base64");
  return { seq, hash, key_id: signer.keyId, time, mac };
}

/** Why a head is not one the runtime key signed or MACed, or undefined when it is. */
export function headProblem(head: AuditHead, signer: Signer): string | undefined {
  if (head.key_id !== signer.keyId) return `it names key ${head.key_id}, not the runtime key ${signer.keyId}`;
  let valid = false;
  try {
    if (head.mac !== undefined) {
      const expected = headMac(signer, head.seq, head.hash, head.key_id, head.time);
      const given = Buffer.from(head.mac, "base64");
      valid = given.length === expected.length && timingSafeEqual(given, expected);
    } else if (head.sig !== undefined) {
      valid = signer.verify(
        headMessage(head.seq, head.hash, head.key_id, head.time),
        Buffer.from(head.sig, "base64"),
      );
    }
  } catch {
    valid = false;
  }
  if (valid) return undefined;
  return head.mac !== undefined
    ? "its MAC is not the runtime key's"
    : "its signature is not the runtime key's";
}

/** Whether `head` is signed by the ed25519 key `publicKeyPem` (another node's, in a cluster). */
export function headSignedWith(head: AuditHead, publicKeyPem: string): boolean {
  if (head.sig === undefined) return false;
  return verifyWithPublicKey(
    publicKeyPem,
    headMessage(head.seq, head.hash, head.key_id, head.time),
    Buffer.from(head.sig, "base64"),
  );
}

function parseSlot(text: string): AuditHead | undefined {
  const line = text.replace(/[\s\0]+$/, "");
  if (line === "") return undefined;
  try {
    const h = JSON.parse(line) as Partial<AuditHead> & { format?: unknown };
    const fields =
      Number.isSafeInteger(h.seq) &&
      (h.seq as number) >= 0 &&
      typeof h.hash === "string" &&
      HASH.test(h.hash) &&
      typeof h.key_id === "string" &&
      typeof h.time === "string";
    if (!fields) return undefined;
    const head = { seq: h.seq!, hash: h.hash!, key_id: h.key_id!, time: h.time! };
    if (h.format === MAC_FORMAT && typeof h.mac === "string") return { ...head, mac: h.mac };
    if (h.format === HEAD_FORMAT && typeof h.sig === "string") return { ...head, sig: h.sig };
    return undefined;
  } catch {
    return undefined;
  }
}

/** The newest slot of the head file that the runtime key signed. */
export function readHeadFile(path: string, signer: Signer): HeadFileState {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { state: "missing" };
    return { state: "damaged", reason: `cannot open it (${code})` };
  }
  const buf = Buffer.alloc(SLOT * 2);
  let n = 0;
  try {
    if (!fstatSync(fd).isFile()) return { state: "damaged", reason: "it is not a regular file" };
    for (let r = 1; r > 0 && n < buf.length; n += r) r = readSync(fd, buf, n, buf.length - n, n);
  } finally {
    closeSync(fd);
  }
  const problems: string[] = [];
  let best: AuditHead | undefined;
  let bestSlot = 0;
  for (let i = 0; i * SLOT < n; i++) {
    const head = parseSlot(buf.toString("utf8", i * SLOT, Math.min(n, (i + 1) * SLOT)));
    if (!head) continue;
    const problem = headProblem(head, signer);
    if (problem) problems.push(`slot ${i} (seq ${head.seq}): ${problem}`);
    else if (!best || head.seq > best.seq) {
      best = head;
      bestSlot = i;
    }
  }
  if (best) return { state: "ok", head: best, slot: bestSlot };
  return { state: "damaged", reason: problems.join("; ") || "it holds no signed head" };
}

/**
 * Writes heads into the file, one pwrite per head, on an fd opened once (created 0600,
 * never through a symlink), the two slots in turn starting with `firstSlot` (the one not
 * holding the newest head), so the other slot always holds the previous write's head. Not
 * thread-safe across processes by design: a late write of an older head only makes the
 * head lag, and a lagging head is never a false alarm.
 */
export class HeadWriter {
  private fd: number | null;
  private readonly slot = Buffer.alloc(SLOT);
  private next: number;

  constructor(
    readonly path: string,
    firstSlot = 0,
  ) {
    this.next = firstSlot % 2;
    try {
      this.fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw new AidoError(
        ErrorCode.auditFailed,
        `cannot open the audit head file ${path}: ${(e as Error).message}`,
        { path },
        { cause: e },
      );
    }
    if (!fstatSync(this.fd).isFile()) {
      closeSync(this.fd);
      throw new AidoError(ErrorCode.auditFailed, `the audit head file ${path} is not a regular file`, {
        path,
      });
    }
    fchmodSync(this.fd, 0o600);
  }

  write(head: AuditHead): void {
    if (this.fd === null) throw new Error("the audit head file is closed");
    const text = JSON.stringify({ format: head.mac !== undefined ? MAC_FORMAT : HEAD_FORMAT, ...head });
    this.slot.fill(0x20);
    const len = this.slot.write(text, 0, SLOT - 1, "utf8");
    if (len !== Buffer.byteLength(text)) throw new Error("audit head does not fit its slot");
    this.slot[SLOT - 1] = 0x0a;
    const at = this.next * SLOT;
    let done = 0;
    while (done < SLOT) done += writeSync(this.fd, this.slot, done, SLOT - done, at + done);
    this.next = 1 - this.next;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** "SEQ:HASH" (what `aido audit anchor` prints) or the JSON of `aido audit anchor --json`. */
export function parseAnchor(text: string): AuditAnchor {
  const t = text.trim();
  let seq: unknown;
  let hash: unknown;
  const compact = /^(\d+):([0-9a-f]{64})$/.exec(t);
  if (compact) {
    seq = Number(compact[1]);
    hash = compact[2];
  } else if (t.startsWith("{")) {
    try {
      ({ seq, hash } = JSON.parse(t) as { seq?: unknown; hash?: unknown });
    } catch {
      // reported below
    }
  }
  if (!Number.isSafeInteger(seq) || (seq as number) < 1 || typeof hash !== "string" || !HASH.test(hash)) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `anchor "${t.slice(0, 120)}" is not SEQ:HASH (a seq and a 64-digit hex hash, as \`aido audit anchor\` prints)`,
      { anchor: t.slice(0, 120) },
    );
  }
  return { seq: seq as number, hash };
}

/** The compact form of a head, for keeping elsewhere. */
export function formatAnchor(a: AuditAnchor): string {
  return `${a.seq}:${a.hash}`;
}

/** An entry the log holds: its seq and hash. */
export interface Committed {
  seq: number;
  hash: string;
}

/** What the keeper reads and writes, always inside one of the log's write transactions. */
export interface HeadLogAccess {
  /** The newest entry. */
  last(): Committed | undefined;
  hashAt(seq: number): string | undefined;
  /** Whether the chain holds an audit.head_started entry. */
  headStarted(): boolean;
  /** Chain one entry (no checkpoint of its own: the next append checkpoints on schedule). */
  insert(event: AuditEvent): Committed;
}

/**
 * The head-writing side, for the one runtime that writes the log: it checks the log
 * against the head when it opens it and before every append, and rewrites the head after
 * every commit. What it finds wrong it records in the chain as audit.head_broken, where
 * verify stops; it does not stop the runtime (the evidence is kept, the work goes on).
 */
export class HeadKeeper {
  private readonly writer: HeadWriter;
  /** The head file as it was before this keeper opened (and so created) it. */
  private readonly found: HeadFileState;
  /** The newest entry this runtime saw committed: the log must still hold it. */
  private known: Committed | undefined;

  constructor(
    readonly path: string,
    private readonly signer: Signer,
    private readonly now: () => number,
  ) {
    this.found = readHeadFile(path, signer);
    // The first write goes to the slot not holding the newest head, which stays as the fallback.
    this.writer = new HeadWriter(path, this.found.state === "ok" ? 1 - this.found.slot : 0);
  }

  /**
   * Opening the log: a log that ends before the signed head or holds another entry at its
   * seq, or a head file gone (or damaged) while the chain says a head was kept, is broken;
   * a log never kept with a head (fresh, or from before heads) starts one. Returns the
   * entry the head should name once this transaction commits.
   */
  open(log: HeadLogAccess): Committed | undefined {
    const file = this.found;
    const last = log.last();
    const logSeq = last?.seq ?? 0;
    const broken = (reason: string, head?: AuditHead) =>
      log.insert({
        kind: "audit.head_broken",
        payload: { reason, ...(head ? { head_seq: head.seq, head_hash: head.hash } : {}), log_seq: logSeq },
      });
    if (file.state === "ok") {
      const head = file.head;
      if (head.seq > logSeq)
        return broken(`the log ends at seq ${logSeq} but the signed head names seq ${head.seq}`, head);
      if (log.hashAt(head.seq) !== head.hash)
        return broken(`entry ${head.seq} is not the one the signed head names`, head);
      return last;
    }
    if (last === undefined || !log.headStarted()) {
      return log.insert({ kind: "audit.head_started", payload: { log_seq: logSeq } });
    }
    return broken(
      file.state === "missing"
        ? `the head file ${this.path} was missing`
        : `the head file ${this.path} was damaged: ${file.reason}`,
    );
  }

  /**
   * Before an append: the log must still hold the newest entry this runtime saw
   * committed. Cut short or rewritten under the running runtime, it is recorded as broken,
   * and that entry (now the newest) is returned. `last` is the newest entry as the
   * caller's transaction just read it.
   */
  check(log: HeadLogAccess, last: Committed | undefined = log.last()): Committed | undefined {
    const k = this.known;
    if (!k) return undefined;
    if (last && last.seq === k.seq && last.hash === k.hash) return undefined;
    let reason: string | undefined;
    if (!last || last.seq < k.seq) {
      reason = `the log ends at seq ${last?.seq ?? 0}, before seq ${k.seq} that this runtime committed`;
    } else if (last.seq === k.seq || log.hashAt(k.seq) !== k.hash) {
      reason = `entry ${k.seq} is no longer the one this runtime committed`;
    }
    if (!reason) return undefined; // another writer appended after it: fine
    this.known = log.insert({
      kind: "audit.head_broken",
      payload: { reason, head_seq: k.seq, head_hash: k.hash, log_seq: last?.seq ?? 0 },
    });
    return this.known;
  }

  /** `c` is committed: from now on the log must hold it, and the head file says so. */
  committed(c: Committed | undefined): void {
    if (!c) return;
    this.known = c;
    this.writer.write(macHead(this.signer, c.seq, c.hash, new Date(this.now()).toISOString()));
  }

  close(): void {
    this.writer.close();
  }
}
