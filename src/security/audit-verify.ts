// security/audit-verify.ts — what `aido audit verify` and the socket's audit.verify
// check, over one consistent read of the log: the hash chain from seq 1, every signed
// checkpoint, the entries the runtime wrote when it found its signed head broken, then
// the tail against the signed head file and, when one is given, an anchor kept elsewhere.
// Stops at the first problem and names the first seq nothing vouches for.

import {
  type AuditCheckpoint,
  type AuditVerifyResult,
  checkpointMessage,
  entryHash,
  GENESIS_HASH,
  type Signer,
} from "./audit-format.js";
import type { AuditAnchor, AuditHead, HeadFileState } from "./audit-head.js";
import { headProblem } from "./audit-head.js";

export type AuditRow = [number, string, string | null, string | null, string, string, string, string];

export interface VerifyInput {
  rows: Iterable<AuditRow>;
  checkpoints: readonly AuditCheckpoint[];
  count(): number;
  signer: Signer;
  checkpointEvery: number;
  /** The head file as read before the rows (so it can only be older than them); undefined: not kept. */
  head?: HeadFileState;
  headPath?: string;
  anchor?: AuditAnchor;
}

export function verifyLog(input: VerifyInput): AuditVerifyResult {
  const { signer } = input;
  const checkpoints = new Map<number, AuditCheckpoint>();
  for (const cp of input.checkpoints) checkpoints.set(cp.seq, cp);
  const signedHead = input.head?.state === "ok" ? input.head.head : undefined;
  // Hashes of the entries the head and the anchor name, picked up on the walk.
  const wanted = new Map<number, string | undefined>();
  if (signedHead) wanted.set(signedHead.seq, undefined);
  if (input.anchor) wanted.set(input.anchor.seq, undefined);
  let expected = 1;
  let prev = GENESIS_HASH;
  let lastGoodCheckpoint = 0;
  let headStarted = false;
  const bad = (seq: number, reason: string): AuditVerifyResult => ({
    ok: false,
    entries: input.count(),
    first_bad_seq: seq,
    reason,
  });
  for (const row of input.rows) {
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
      const problem = checkpointProblem(cp, hash, signer);
      if (problem) return bad(lastGoodCheckpoint + 1, problem);
      lastGoodCheckpoint = seq;
    }
    if (kind === "audit.checkpoint") {
      const ref = parseRef(payload);
      const target = ref ? checkpoints.get(ref.seq) : undefined;
      if (!ref || !target || target.head_hash !== ref.head_hash || ref.seq > lastGoodCheckpoint) {
        return bad(
          seq,
          `entry ${seq} records a checkpoint at seq ${ref?.seq ?? "?"} that is missing or altered`,
        );
      }
    }
    if (kind === "audit.head_started") headStarted = true;
    if (kind === "audit.head_broken") {
      return bad(
        seq,
        `entry ${seq}: the runtime found the log did not match its signed head: ${reasonOf(payload)}`,
      );
    }
    if (wanted.has(seq)) wanted.set(seq, hash);
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
  if (last - lastGoodCheckpoint >= input.checkpointEvery) {
    return bad(
      lastGoodCheckpoint + 1,
      `entries after seq ${lastGoodCheckpoint} are not covered by a signed checkpoint`,
    );
  }
  if (input.anchor) {
    const problem = tailProblem("the anchor", input.anchor, last, wanted);
    if (problem) return bad(problem.seq, problem.reason);
  }
  if (input.head) {
    const where = input.headPath ?? "the head file";
    const head: AuditHead | undefined = signedHead;
    if (head) {
      const problem = headProblem(head, signer) ?? undefined;
      if (problem) return bad(lastGoodCheckpoint + 1, `the signed head in ${where} is not valid: ${problem}`);
      const tail = tailProblem(`the signed head in ${where}`, head, last, wanted);
      if (tail) return bad(tail.seq, tail.reason);
      return { ok: true, entries: last, head_seq: head.seq };
    }
    if (input.head.state === "damaged") {
      return bad(lastGoodCheckpoint + 1, `the audit head file ${where} is damaged: ${input.head.reason}`);
    }
    // Missing. Fine for a log no head-keeping runtime has written to yet (a fresh home, or
    // one made before heads existed); once the chain says a head was started, not.
    if (headStarted) {
      return bad(
        lastGoodCheckpoint + 1,
        `the audit head file ${where} is missing, so a truncated tail cannot be ruled out after seq ${lastGoodCheckpoint}`,
      );
    }
  }
  return { ok: true, entries: last };
}

function tailProblem(
  what: string,
  a: AuditAnchor,
  last: number,
  hashes: Map<number, string | undefined>,
): { seq: number; reason: string } | undefined {
  if (a.seq > last) {
    return {
      seq: last + 1,
      reason: `the log ends at seq ${last} but ${what} names seq ${a.seq}: entries ${last + 1}..${a.seq} were removed`,
    };
  }
  if (hashes.get(a.seq) !== a.hash) {
    return {
      seq: a.seq,
      reason: `entry ${a.seq} is not the one ${what} names (hash ${hashes.get(a.seq)}, expected ${a.hash}): the log was rewritten`,
    };
  }
  return undefined;
}

function checkpointProblem(cp: AuditCheckpoint, chainHash: string, signer: Signer): string | undefined {
  if (cp.key_id !== signer.keyId) {
    return `checkpoint at seq ${cp.seq} names key ${cp.key_id}, not the runtime key ${signer.keyId}`;
  }
  const msg = checkpointMessage(cp.seq, cp.head_hash, cp.key_id, cp.time);
  let valid = false;
  try {
    valid = signer.verify(msg, Buffer.from(cp.sig, "base64"));
  } catch {
    valid = false;
  }
  if (!valid) return `checkpoint at seq ${cp.seq} has a signature the runtime key did not make`;
  if (cp.head_hash !== chainHash)
    return `checkpoint at seq ${cp.seq} does not match the chain (recomputed log?)`;
  return undefined;
}

function parseRef(payload: string): { seq: number; head_hash: string } | undefined {
  try {
    const p = JSON.parse(payload) as { seq?: unknown; head_hash?: unknown };
    return typeof p.seq === "number" && typeof p.head_hash === "string"
      ? { seq: p.seq, head_hash: p.head_hash }
      : undefined;
  } catch {
    return undefined;
  }
}

function reasonOf(payload: string): string {
  try {
    const r = (JSON.parse(payload) as { reason?: unknown }).reason;
    return typeof r === "string" ? r : "(no reason recorded)";
  } catch {
    return "(unreadable payload)";
  }
}
