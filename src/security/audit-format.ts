// security/audit-format.ts — the signed and hashed formats of the audit log, shared by
// the log (audit.ts), its verifier (audit-verify.ts) and its head file (audit-head.ts):
// how an entry is hashed, what a checkpoint signs, and the signer they both use.
// docs/audit.md specifies the same encodings for auditors who check without this code.

import { createHash } from "node:crypto";

/** What the log needs from the runtime key (security/keys.ts RuntimeKey satisfies it). */
export interface Signer {
  keyId: string;
  sign(data: Buffer): Buffer;
  verify(data: Buffer, sig: Buffer): boolean;
}

export const GENESIS_HASH = "0".repeat(64);
const ENTRY_FORMAT = "aido.audit.v1";
const CHECKPOINT_FORMAT = "aido.audit.checkpoint.v1";

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
  /** The seq the signed head file vouched for, when one was checked and held. */
  head_seq?: number;
}

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

export function checkpointMessage(seq: number, headHash: string, keyId: string, time: string): Buffer {
  return Buffer.from(JSON.stringify([CHECKPOINT_FORMAT, seq, headHash, keyId, time]), "utf8");
}
