// daemon/ui/signin.ts — the one-time codes the dashboard's sign-in links carry. A browser
// keeps every address it is sent to in its history database, a redirect's first address
// included, and nothing a page does removes it: a link carrying the token itself would
// leave a credential there that works until `aido ui --rotate`. `ui.open` therefore hands
// out a link with a fresh code instead. The first visit spends it (traded for the session
// cookie); what the history keeps after that opens nothing. A code left unused expires.
// Codes live in the daemon's memory only: a restart or a rotation voids every open one.

import { createHash, randomBytes } from "node:crypto";

/** How long a sign-in link works if nobody opens it. */
export const SIGN_IN_CODE_TTL_MS = 5 * 60_000;
/** Links not yet opened at once; minting one more voids the oldest. */
const MAX_OPEN_CODES = 32;

export class SignInCodes {
  /** sha256(code) -> expiry. Looked up by hash, so a lookup's timing says nothing of a code. */
  private readonly open = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A new code (32 random bytes, base64url) valid for one visit within the TTL. */
  mint(): string {
    const code = randomBytes(32).toString("base64url");
    this.drop();
    if (this.open.size >= MAX_OPEN_CODES) {
      const oldest = this.open.keys().next().value;
      if (oldest !== undefined) this.open.delete(oldest);
    }
    this.open.set(digest(code), this.now() + SIGN_IN_CODE_TTL_MS);
    return code;
  }

  /** Whether `code` was minted here, is not spent and has not expired (it stays open). */
  valid(code: string): boolean {
    const expires = this.open.get(digest(code));
    return expires !== undefined && this.now() < expires;
  }

  /** True once for a code minted here and not expired; it is spent either way. */
  spend(code: string): boolean {
    const key = digest(code);
    const expires = this.open.get(key);
    this.open.delete(key);
    return expires !== undefined && this.now() < expires;
  }

  /** Every open link stops working (the token was rotated). */
  clear(): void {
    this.open.clear();
  }

  private drop(): void {
    const t = this.now();
    for (const [key, expires] of this.open) if (t >= expires) this.open.delete(key);
  }
}

function digest(code: string): string {
  return createHash("sha256").update(code).digest("base64url");
}
