// test/security/signer-fixture.ts — a real ed25519 key pair shaped like the runtime key
// (keyId, sign, verify), so audit and approval tests sign with genuine signatures.

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import type { Signer } from "../../src/security/audit.js";

/** A fresh key, or the one whose PKCS#8 PEM is given (to share a key with a child process). */
export function makeSigner(privatePem?: string): Signer & { privatePem: string } {
  const privateKey: KeyObject = privatePem
    ? createPrivateKey(privatePem)
    : generateKeyPairSync("ed25519").privateKey;
  const publicKey = createPublicKey(privateKey);
  const der = publicKey.export({ type: "spki", format: "der" });
  return {
    keyId: createHash("sha256").update(der).digest("hex").slice(0, 16),
    sign: (data) => sign(null, data, privateKey),
    verify: (data, sig) => verify(null, data, publicKey, sig),
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}
