// security/keys.ts — the runtime's ed25519 signing key ($AIDO_HOME/keys/). Capability tokens
// and audit checkpoints are signed with it, so whoever can read it can mint capabilities:
// the folder is created 0700, the key file 0600, and a key file that anyone but its owner
// could read (or that is a symlink, or owned by someone else) is refused rather than used.
// Creation is atomic (write a private temp file, then link it into place) so two processes
// starting at once agree on one key.

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { ensurePrivateDir } from "./private-home.js";

export const KEY_FILE = "runtime.ed25519.pem";

/** Short, stable name of a public key: first 16 hex chars of sha256(raw 32-byte key). */
export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === "string" ? createPublicKey(publicKey) : publicKey;
  const der = key.export({ type: "spki", format: "der" });
  // An ed25519 SPKI is a fixed 12-byte header followed by the raw 32-byte key.
  return createHash("sha256")
    .update(der.subarray(der.length - 32))
    .digest("hex")
    .slice(0, 16);
}

/** Check an ed25519 signature against a given public key (PEM or KeyObject). Never throws. */
export function verifyWithPublicKey(publicKey: KeyObject | string, data: Buffer, sig: Buffer): boolean {
  try {
    const key = typeof publicKey === "string" ? createPublicKey(publicKey) : publicKey;
    if (key.asymmetricKeyType !== "ed25519" || sig.length !== 64) return false;
    return verify(null, data, key, sig);
  } catch {
    return false;
  }
}

export class RuntimeKey {
  readonly keyId: string;
  readonly publicKeyPem: string;
  readonly publicKey: KeyObject;
  readonly #privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    this.publicKeyPem = this.publicKey.export({ type: "spki", format: "pem" }).toString();
    this.keyId = keyIdOf(this.publicKey);
  }

  /** The key in `keysDir`, created on first use. */
  static load(keysDir: string): RuntimeKey {
    ensurePrivateDir(keysDir);
    const file = join(keysDir, KEY_FILE);
    const pem = readPrivateFile(file) ?? createKeyFile(keysDir, file);
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (e) {
      throw new AidoError(
        ErrorCode.configInvalid,
        `runtime key ${file} is not a valid PEM private key`,
        { file },
        { cause: e },
      );
    }
    if (key.asymmetricKeyType !== "ed25519") {
      throw new AidoError(
        ErrorCode.configInvalid,
        `runtime key ${file} is ${key.asymmetricKeyType}, expected ed25519`,
        {
          file,
        },
      );
    }
    return new RuntimeKey(key);
  }

  sign(data: Buffer): Buffer {
    return sign(null, data, this.#privateKey);
  }

  verify(data: Buffer, sig: Buffer): boolean {
    return verifyWithPublicKey(this.publicKey, data, sig);
  }
}

/** The PEM text of an existing key file, after checking who may read it; undefined if absent. */
function readPrivateFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") {
      throw new AidoError(
        ErrorCode.configInvalid,
        `runtime key ${file} is a symbolic link; refusing to use it`,
        { file },
      );
    }
    throw new AidoError(
      ErrorCode.configInvalid,
      `cannot open runtime key ${file}: ${code ?? e}`,
      { file },
      { cause: e },
    );
  }
  try {
    // fstat on the open descriptor: the file checked is the file read.
    const st = fstatSync(fd);
    if (!st.isFile())
      throw new AidoError(ErrorCode.configInvalid, `runtime key ${file} is not a regular file`, { file });
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(3, "0");
      throw new AidoError(
        ErrorCode.configInvalid,
        `runtime key ${file} has mode ${mode}: group or others can access it; run \`chmod 600 ${file}\` (and consider the key leaked)`,
        { file, mode },
      );
    }
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) {
      throw new AidoError(
        ErrorCode.configInvalid,
        `runtime key ${file} is owned by uid ${st.uid}, not by this user (${uid})`,
        {
          file,
        },
      );
    }
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/** Generate a key and link it into place; if another process won the race, use its key. */
function createKeyFile(keysDir: string, file: string): string {
  const { privateKey } = generateKeyPairSync("ed25519");
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const tmp = join(keysDir, `.${KEY_FILE}.${process.pid}.${Date.now()}.tmp`);
  writeFileSync(tmp, pem, { mode: 0o600, flag: "wx" });
  try {
    linkSync(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
  const stored = readPrivateFile(file);
  if (stored === undefined)
    throw new AidoError(ErrorCode.internal, `runtime key ${file} vanished while being created`, { file });
  return stored;
}
