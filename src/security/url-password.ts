// security/url-password.ts — the one reader of the credentials a URL carries
// (`scheme://user:password@host`): a provider's base URL behind a proxy with Basic auth
// (llm/failure.ts), the cluster's Redis URL (cluster/redis-url.ts). Each credential is given
// as written in the URL and percent-decoded, the two spellings a library's text may quote.

/** What a URL carries: its password and its user name, each as written and decoded. */
export interface UrlCredentials {
  /** `url` with its password shown as "***" (as given when it has none). */
  shown: string;
  /** The password as written and decoded; empty when there is none. */
  secrets: string[];
  /** The user name as written and decoded; empty when there is none. */
  user: string[];
}

/**
 * The credentials of `url`; a text that is no URL has what stands between "//user:" and "@"
 * shown as "***" (providers.ts names a base URL it refuses) and no credentials read.
 */
export function urlPassword(url: string): UrlCredentials {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { shown: url.replace(/(\/\/[^/:@]*:)[^/@]*@/, "$1***@"), secrets: [], user: [] };
  }
  const user = spellings(u.username);
  if (u.password === "") return { shown: url, secrets: [], user };
  const secrets = spellings(u.password);
  u.password = "***";
  return { shown: u.toString(), secrets, user };
}

/** `written` (a URL part) and its percent-decoded form; none for an empty part. */
function spellings(written: string): string[] {
  if (written === "") return [];
  try {
    return [...new Set([written, decodeURIComponent(written)])];
  } catch {
    return [written];
  }
}
