// llm/retry.ts — the one retry policy for provider calls. The SDKs' own retries are off
// (maxRetries: 0) so a call is never retried by two layers at once. Retried: 429, 408,
// 409, 5xx, connection errors and timeouts; waits are exponential with full jitter, and a
// server's `retry-after-ms` / `retry-after` is honoured (capped so one header cannot park
// an agent for an hour). Every attempt has its own timeout that covers the whole answer,
// streamed body included, because a stream can stall after its headers arrived.
//
// An attempt the provider may have billed (the connection lost after the request left, no
// answer in time) is not retried on the caller's word that it was paid for: before the
// retry leaves, `resending` is told (the budget charges the attempt and reserves the
// retry's own bound, agent/inference.ts); if it throws, nothing more is sent. Retried on
// one reservation, a provider cutting every first attempt got twice the requests a budget
// cap allowed. An attempt that timed out before its socket connected reached no server
// (http-fetch.ts reachOf): retried without `resending`, and unsent like a refused
// connection; counted as billed, a host dropping connections was charged every attempt.

import { AidoError, ErrorCode } from "../errors.js";
import { type CallSite, type Failure, failureError, isRetryable } from "./failure.js";
import { reachOf } from "./http-fetch.js";

export interface RetryPolicy {
  /** Retries after the first attempt (config.inference.maxRetries). */
  maxRetries: number;
  /** Per-attempt timeout (config.inference.requestTimeoutMs). */
  timeoutMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest retry-after we honour; longer ones are cut to this. */
  maxRetryAfterMs: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF = { baseDelayMs: 500, maxDelayMs: 30_000, maxRetryAfterMs: 60_000 } as const;

/** How an attempt failed that the provider may have worked on, and billed. */
export type BilledFailure = "connection" | "timeout";

export interface RetryEvent {
  attempt: number;
  delayMs: number;
  failure: Failure;
}

/** Full jitter: a uniform wait in [0, min(max, base * 2^attempt)). attempt counts from 0. */
export function backoffDelay(
  attempt: number,
  p: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs">,
  random = Math.random,
) {
  const cap = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * cap);
}

export function retryDelay(attempt: number, f: Failure, p: RetryPolicy): number {
  if (f.kind === "status" && f.retryAfterMs !== undefined) return Math.min(f.retryAfterMs, p.maxRetryAfterMs);
  return backoffDelay(attempt, p, p.random);
}

/**
 * Run `attempt` until it succeeds, fails with something a retry cannot fix, or the
 * retries run out; the final error is an AidoError naming the provider (failureError).
 */
export async function callWithRetries<T>(
  site: CallSite,
  policy: RetryPolicy,
  classify: (e: unknown) => Failure,
  attempt: (signal: AbortSignal) => Promise<T>,
  opts: {
    signal?: AbortSignal | undefined;
    onRetry?: ((e: RetryEvent) => void) | undefined;
    resending?: ((billed: BilledFailure) => void) | undefined;
  } = {},
): Promise<T> {
  const { signal } = opts;
  /**
   * An attempt may have reached the server (since the last `resending`, which settled the
   * ones before): the call's failure cannot say nothing was sent.
   */
  let sent = false;
  /** How the last attempt failed, when the provider may have billed it. */
  let billed: BilledFailure | undefined;
  for (let n = 0; ; n++) {
    if (signal?.aborted) throw failureError(site, { kind: "aborted" }, n);
    if (billed !== undefined && opts.resending) {
      opts.resending(billed);
      sent = false;
    }
    billed = undefined;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error("request timeout"));
    }, policy.timeoutMs);
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let failure: Failure;
    const tried = reachOf(() => attempt(controller.signal));
    try {
      return await tried.result;
    } catch (e) {
      if (signal?.aborted) failure = { kind: "aborted" };
      else if (timedOut) failure = { kind: "timeout", timeoutMs: policy.timeoutMs };
      else failure = classify(e);
      if (failure.kind === "timeout" && failure.timeoutMs === 0)
        failure = { kind: "timeout", timeoutMs: policy.timeoutMs };
      // Timed out still connecting: the SDK's timeout error cannot say so, the fetch can.
      if (failure.kind === "timeout" && tried.unsent()) failure = { ...failure, unsent: true };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
    const reached = !("unsent" in failure && failure.unsent);
    if (!reached) {
      // The call's failure says nothing was sent only if no attempt since the last
      // `resending` reached a server either.
      if (sent && "unsent" in failure) {
        const { unsent: _, ...sentFailure } = failure;
        failure = sentFailure;
      }
    } else sent = true;
    if (!isRetryable(failure) || n >= policy.maxRetries) throw failureError(site, failure, n + 1);
    if (reached && (failure.kind === "connection" || failure.kind === "timeout")) billed = failure.kind;
    const delayMs = retryDelay(n, failure, policy);
    opts.onRetry?.({ attempt: n + 1, delayMs, failure });
    await sleep(delayMs, signal, site);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined, site: CallSite): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled(site));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled(site));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function cancelled(site: CallSite): AidoError {
  return new AidoError(
    ErrorCode.cancelled,
    `${site.provider}/${site.model}: request cancelled while waiting to retry`,
    {
      provider: site.provider,
      model: site.model,
    },
  );
}
