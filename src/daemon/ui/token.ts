// daemon/ui/token.ts — the dashboard's secret: 32 random bytes (base64url) in
// $AIDO_HOME/ui-token, readable by the daemon's user alone, and the session value a
// browser's cookie holds (an HMAC of the token, so the cookie never carries the token
// and a new token invalidates every cookie), and the page key the dashboard's page sends
// with it on every API request (another HMAC of the token: a rotation voids it too). A file at that path that is a link, not a
// regular file, someone else's, open to group/others, or not a token is not trusted:
// another local user could have planted it to know the token. It is replaced. The new
// file is written under a fresh name with O_EXCL and mode 0600, then renamed into place,
// so the token is never readable by others, not even for a moment.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

export const TOKEN_FILE = "ui-token";
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function tokenPath(home: string): string {
  return join(home, TOKEN_FILE);
}

/** The token in the file when it can be trusted; otherwise a new one (and why the old was not kept). */
export function loadOrCreateToken(home: string, log: (m: string) => void): string {
  const path = tokenPath(home);
  const read = readTrusted(path);
  if (read.token !== undefined) return read.token;
  if (read.why !== "missing") log(`ui: ${path} ${read.why}; it was replaced by a new token`);
  return writeNewToken(home);
}

/** A new token replaces the file (`aido ui --rotate`). */
export function writeNewToken(home: string): string {
  const token = randomBytes(32).toString("base64url");
  const path = tokenPath(home);
  const tmp = `${path}.${randomBytes(6).toString("hex")}`;
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, `${token}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path); // replaces a link itself, never its target
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
  return token;
}

/**
 * The token in the file at `path`, read through the one descriptor its checks were made
 * on (never re-opened by name: the file could be swapped in between), or why it is not
 * trusted.
 */
function readTrusted(path: string): { token: string; why?: undefined } | { token?: undefined; why: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { why: "missing" };
    if (code === "ELOOP") return { why: "is a symbolic link" };
    return { why: `cannot be opened (${code})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { why: "is not a regular file" };
    if (typeof process.getuid === "function" && st.uid !== process.getuid())
      return { why: "belongs to another user" };
    if ((st.mode & 0o077) !== 0)
      return { why: `has mode ${(st.mode & 0o777).toString(8)} (others could read it)` };
    if (st.size > 200) return { why: "is not a token" };
    const text = readFileSync(fd, "utf8").trim();
    if (!TOKEN_SHAPE.test(text)) return { why: "is not a token" };
    return { token: text };
  } finally {
    closeSync(fd);
  }
}

/** What the session cookie holds for this token. */
export function sessionValue(token: string): string {
  return createHmac("sha256", token).update("aido-ui-session-v1").digest("base64url");
}

/**
 * The page key: what the dashboard's page keeps in its origin's storage and sends as a
 * header with the cookie (guard.ts). Browsers send the cookie to every port of 127.0.0.1;
 * this key only the dashboard's own origin (scheme, host and port) can read.
 */
export function pageKey(token: string): string {
  return createHmac("sha256", token).update("aido-ui-page-key-v1").digest("base64url");
}

/** Constant-time equality of two secrets of any length (both are hashed first). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHmac("sha256", "aido-ui-compare").update(given).digest();
  const b = createHmac("sha256", "aido-ui-compare").update(expected).digest();
  return timingSafeEqual(a, b);
}
