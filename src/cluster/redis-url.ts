// cluster/redis-url.ts — the cluster's Redis address as the operator gives it
// (`cluster.redis_url` or AIDO_REDIS_URL): checked once at config load, and shown only
// with its password replaced, so that no log line, audit entry or error ever carries it;
// and what a node says of how that Redis keeps its data (cluster.status, the join log).

import { AidoError, ErrorCode } from "../errors.js";
import { blankSecrets } from "../security/blank-secrets.js";
import { urlPassword } from "../security/url-password.js";

/**
 * The URL with any password replaced by "***"; a user name without a password (where a
 * hosted Redis may take its token) is replaced too, an ACL user name beside one is kept.
 */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    else if (u.username !== "") u.username = "***";
    return u.toString();
  } catch {
    // Not a URL at all: nothing of it is shown.
    return "(not a URL)";
  }
}

/**
 * `text` (an error Redis or its client gave) with the password of `url` replaced by "***"
 * wherever it appears, as given or URL-encoded (security/blank-secrets.ts: a password of
 * fewer than 4 characters only where it stands as a word, so "ab" leaves "about" whole);
 * a URL with a user name and no password has the user name (a hosted Redis's token) so
 * replaced: a Redis 7.2 NOPERM names the user.
 */
export function withoutRedisSecret(text: string, url: string): string {
  return blankSecrets(text, redisSecrets(url), "***");
}

/** The secret of `url` (withoutRedisSecret): its password, or without one its user name. */
export function redisSecrets(url: string): string[] {
  const { secrets, user } = urlPassword(url);
  return secrets.length > 0 ? secrets : user;
}

/**
 * `e` with its text scrubbed by `scrub` (a node's withoutRedisSecret), the same error thrown
 * on: for what leaves the cluster layer whole, an error whatever step or node it came from.
 */
export function withoutSecretIn(e: unknown, scrub: (text: string) => string): unknown {
  if (e instanceof Error) {
    e.message = scrub(e.message);
    return e;
  }
  return scrub(String(e));
}

/** Why `url` cannot be the cluster's Redis address, or undefined when it can. */
export function redisUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "is not a URL (redis://[user:password@]host:port[/db] or rediss://...)";
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    return `${redactRedisUrl(url)}: the scheme must be redis:// or rediss://, not ${u.protocol}//`;
  }
  if (u.hostname === "") return `${redactRedisUrl(url)}: names no host`;
  const db = u.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d{1,2}$/.test(db)) return `${redactRedisUrl(url)}: the path must be a database number`;
  return undefined;
}

/** The URL, or a config_invalid error naming where it came from (never its password). */
export function checkedRedisUrl(url: string, from: string): string {
  const problem = redisUrlProblem(url);
  if (problem) throw new AidoError(ErrorCode.configInvalid, `${from} ${problem}`, { key: from });
  return url;
}

/** How the cluster's Redis keeps its data (node-status.ts redisPersistence). */
export type RedisPersistence = "aof" | "rdb" | "aof+rdb" | "none" | "unknown";

/** What a node says when Redis keeps nothing on disk. */
export const UNPERSISTED_REDIS =
  "Redis keeps nothing on disk (appendonly no, no save points): a restart of Redis loses the queued goals and the cluster's view of every goal; turn on appendonly (docs/scale-out.md)";
