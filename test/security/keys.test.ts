import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KEY_FILE, keyIdOf, RuntimeKey, verifyWithPublicKey } from "../../src/security/keys.js";
import { makeTempHome, type TempHome } from "../support/home.js";

let home: TempHome;
beforeEach(() => {
  home = makeTempHome();
});
afterEach(() => home.cleanup());

describe("RuntimeKey", () => {
  it("creates the key on first use: folder 0700, key file 0600, nothing else left behind", () => {
    const key = RuntimeKey.load(home.config.keysDir);
    expect(statSync(home.config.keysDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(home.config.keysDir, KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(readdirSync(home.config.keysDir)).toEqual([KEY_FILE]);
    expect(key.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(key.publicKeyPem).toContain("BEGIN PUBLIC KEY");
    expect(readFileSync(join(home.config.keysDir, KEY_FILE), "utf8")).toContain("BEGIN PRIVATE KEY");
  });

  it("loads the same key again (same keyId, old signatures still verify)", () => {
    const a = RuntimeKey.load(home.config.keysDir);
    const sig = a.sign(Buffer.from("checkpoint 7"));
    const b = RuntimeKey.load(home.config.keysDir);
    expect(b.keyId).toBe(a.keyId);
    expect(b.verify(Buffer.from("checkpoint 7"), sig)).toBe(true);
  });

  it("signs and verifies, and refuses altered data or an altered signature", () => {
    const key = RuntimeKey.load(home.config.keysDir);
    const data = Buffer.from("seq=12 head=abcd");
    const sig = key.sign(data);
    expect(sig).toHaveLength(64);
    expect(key.verify(data, sig)).toBe(true);
    expect(key.verify(Buffer.from("seq=13 head=abcd"), sig)).toBe(false);
    const flipped = Buffer.from(sig);
    flipped[10] = (flipped[10] as number) ^ 1;
    expect(key.verify(data, flipped)).toBe(false);
    expect(key.verify(data, sig.subarray(0, 63))).toBe(false);
    expect(key.verify(data, Buffer.alloc(0))).toBe(false);
  });

  it("verifies against a given public key, and a key from another AIDO_HOME does not pass", () => {
    const other = makeTempHome();
    try {
      const mine = RuntimeKey.load(home.config.keysDir);
      const theirs = RuntimeKey.load(other.config.keysDir);
      expect(theirs.keyId).not.toBe(mine.keyId);
      const data = Buffer.from("payload");
      const sig = theirs.sign(data);
      expect(verifyWithPublicKey(theirs.publicKeyPem, data, sig)).toBe(true);
      expect(verifyWithPublicKey(mine.publicKeyPem, data, sig)).toBe(false);
      expect(mine.verify(data, sig)).toBe(false);
      expect(keyIdOf(theirs.publicKeyPem)).toBe(theirs.keyId);
      expect(verifyWithPublicKey("not a pem", data, sig)).toBe(false);
    } finally {
      other.cleanup();
    }
  });

  it.each([0o640, 0o604, 0o644, 0o660])("refuses a key file with mode %s, with a clear error", (mode) => {
    RuntimeKey.load(home.config.keysDir);
    const file = join(home.config.keysDir, KEY_FILE);
    chmodSync(file, mode);
    expect(() => RuntimeKey.load(home.config.keysDir)).toThrow(
      expect.objectContaining({
        code: "config_invalid",
        message: expect.stringMatching(new RegExp(`${KEY_FILE} has mode ${mode.toString(8)}.*chmod 600`)),
      }),
    );
  });

  it("refuses a key file that is a symbolic link (someone else's key planted by path)", () => {
    const elsewhere = join(home.dir, "planted.pem");
    RuntimeKey.load(join(home.dir, "other-keys"));
    writeFileSync(elsewhere, readFileSync(join(home.dir, "other-keys", KEY_FILE)), { mode: 0o600 });
    mkdirSync(home.config.keysDir, { recursive: true, mode: 0o700 });
    symlinkSync(elsewhere, join(home.config.keysDir, KEY_FILE));
    expect(() => RuntimeKey.load(home.config.keysDir)).toThrow(/symbolic link/);
  });

  it("refuses a key file that is not an ed25519 private key", () => {
    mkdirSync(home.config.keysDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(home.config.keysDir, KEY_FILE), "garbage", { mode: 0o600 });
    expect(() => RuntimeKey.load(home.config.keysDir)).toThrow(/not a valid PEM private key/);
  });
});
