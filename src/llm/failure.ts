// llm/failure.ts — what went wrong with one attempt at a provider, in terms the retry
// policy and the user can act on. Both SDKs throw the same family of errors (APIError with
// status and headers, connection errors, timeouts, user aborts); each adapter hands its
// SDK's classes to classifySdkError and gets one neutral Failure back. The final error a
// caller sees is an AidoError that names the provider and the variable to fix.

import type { ProviderName } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { blankSecrets } from "../security/blank-secrets.js";
import { urlPassword } from "../security/url-password.js";
import { neverSent, responseTooLarge } from "./http-fetch.js";

export type Failure =
  | { kind: "status"; status: number; message: string; retryAfterMs?: number }
  /** `unsent`: no attempt of the call reached a server (http-fetch neverSent): nothing to bill. */
  | { kind: "connection"; message: string; unsent?: true }
  /** `unsent`: timed out before any attempt connected (llm/http-fetch.ts reachOf): nothing to bill. */
  | { kind: "timeout"; timeoutMs: number; unsent?: true }
  | { kind: "aborted" }
  | { kind: "other"; message: string; error: unknown };

/** The constructors of one SDK's error family (Anthropic and OpenAI have the same shape). */
export interface SdkErrorClasses {
  APIError: abstract new (
    ...args: never[]
  ) => Error & { status: number | undefined; headers: Headers | undefined };
  APIConnectionError: abstract new (...args: never[]) => Error;
  APIConnectionTimeoutError: abstract new (...args: never[]) => Error;
  APIUserAbortError: abstract new (...args: never[]) => Error;
}

export function classifySdkError(e: unknown, sdk: SdkErrorClasses): Failure {
  if (e instanceof sdk.APIUserAbortError) return { kind: "aborted" };
  if (e instanceof sdk.APIConnectionTimeoutError) return { kind: "timeout", timeoutMs: 0 };
  // An answer over http-fetch's cap reaches us wrapped (a connection error, the stream
  // helper's own error): not retried, since the server would send the same again, and
  // reported with the cap rather than as a lost connection.
  const tooLarge = responseTooLarge(e);
  if (tooLarge) return { kind: "other", message: tooLarge.message, error: tooLarge };
  if (e instanceof sdk.APIConnectionError) return connectionLost(e);
  if (e instanceof sdk.APIError) {
    if (typeof e.status === "number") {
      const f: Failure = { kind: "status", status: e.status, message: apiMessage(e) };
      const after = retryAfterMs(e.headers);
      if (after !== undefined) f.retryAfterMs = after;
      return f;
    }
    // An error event inside a stream (e.g. "overloaded_error" mid-answer) has no status:
    // the connection was fine but the answer was cut off, which a retry can fix.
    return { kind: "connection", message: e.message };
  }
  if (e instanceof AidoError) return { kind: "other", message: e.message, error: e };
  if (e instanceof Error && /terminated|ECONNRESET|socket hang up|fetch failed/i.test(e.message)) {
    return connectionLost(e);
  }
  return { kind: "other", message: e instanceof Error ? e.message : String(e), error: e };
}

function connectionLost(e: Error): Failure {
  return neverSent(e)
    ? { kind: "connection", message: e.message, unsent: true }
    : { kind: "connection", message: e.message };
}

/** The provider's own words from the error body, without the SDK's status prefix. */
function apiMessage(e: Error & { error?: unknown }): string {
  const body = e.error as { message?: unknown; error?: { message?: unknown } } | undefined;
  const m = body?.error?.message ?? body?.message;
  return typeof m === "string" && m !== "" ? m : e.message;
}

/** `retry-after-ms` (milliseconds) wins over `retry-after` (seconds or an HTTP date). */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "" && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const after = headers.get("retry-after");
  if (after === null || after.trim() === "") return undefined;
  if (/^\s*[-+]?\d+(\.\d+)?\s*$/.test(after)) return Number(after) >= 0 ? Number(after) * 1000 : undefined;
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function isRetryable(f: Failure): boolean {
  switch (f.kind) {
    case "status":
      return f.status === 408 || f.status === 409 || f.status === 429 || f.status >= 500;
    case "connection":
    case "timeout":
      return true;
    default:
      return false;
  }
}

/** Where a call went: enough to tell the user which variable to fix. */
export interface CallSite {
  provider: ProviderName;
  model: string;
  baseURL: string;
  /** The variable holding the key (absent for providers that take none). */
  keyVariable?: string;
  endpointVariable: string;
  /**
   * The call's API key: blanked in every failure text, which passes on the provider's own
   * words (an OpenAI-compatible server may echo the key it refused whole). The base URL's
   * password is blanked too (failureError), without being listed here.
   */
  secrets?: readonly string[];
}

/**
 * The error a caller sees for failure `f` at `site`: no secret of the site in its text, the
 * API key nor the password of its base URL (`https://user:pw@host`, a provider behind a proxy
 * with Basic auth): the URL is shown with `***` for it, and the password is blanked wherever
 * else it appears (a library's message may quote the URL it could not reach).
 */
export function failureError(site: CallSite, f: Failure, attempts: number): AidoError {
  const url = urlPassword(site.baseURL);
  const e = describeFailure({ ...site, baseURL: url.shown }, f, attempts);
  e.message = blankSecrets(e.message, [...(site.secrets ?? []), ...url.secrets], "***");
  return e;
}

function describeFailure(site: CallSite, f: Failure, attempts: number): AidoError {
  const who = `${site.provider}/${site.model}`;
  const tries = attempts > 1 ? ` after ${attempts} attempts` : "";
  const details = { provider: site.provider, model: site.model, attempts, failure: f.kind } as Record<
    string,
    unknown
  >;
  switch (f.kind) {
    case "aborted":
      return new AidoError(ErrorCode.cancelled, `${who}: request cancelled`, details);
    case "timeout":
      if (!f.unsent)
        return new AidoError(
          ErrorCode.providerFailed,
          `${who}: no answer within ${f.timeoutMs} ms${tries}`,
          details,
        );
      // Read by the budget (agent/inference.ts): a call no server ever had is refunded.
      details.sent = false;
      return new AidoError(
        ErrorCode.providerFailed,
        `${who}: no connection to ${site.baseURL} within ${f.timeoutMs} ms${tries}; check ${site.endpointVariable}`,
        details,
      );
    case "connection":
      // Read by the budget (agent/inference.ts): a call no server ever had is refunded.
      if (f.unsent) details.sent = false;
      return new AidoError(
        ErrorCode.providerFailed,
        `${who}: cannot reach ${site.baseURL}${tries} (${f.message}); check ${site.endpointVariable}`,
        details,
      );
    case "other":
      if (f.error instanceof AidoError) return f.error;
      return new AidoError(ErrorCode.providerFailed, `${who}: ${f.message}`, details, { cause: f.error });
    case "status": {
      details.status = f.status;
      if (f.status === 401 || f.status === 403) {
        const fix = site.keyVariable
          ? `check ${site.keyVariable}`
          : `this provider takes no key; check ${site.endpointVariable}`;
        return new AidoError(
          ErrorCode.providerConfig,
          `${who}: the API key was refused (${f.status}): ${fix} (${f.message})`,
          details,
        );
      }
      if (f.status === 404) {
        return new AidoError(
          ErrorCode.providerConfig,
          `${who}: model or endpoint not found (404) at ${site.baseURL}: check the model name and ${site.endpointVariable} (${f.message})`,
          details,
        );
      }
      return new AidoError(
        ErrorCode.providerFailed,
        `${who}: HTTP ${f.status}${tries}: ${f.message}`,
        details,
      );
    }
  }
}
