// llm/scheduler.ts — the shared inference queue. Every agent's model call goes through
// one InferenceScheduler, which keeps at most `maxConcurrent` calls in flight per provider
// (AIDO_MAX_CONCURRENT_INFERENCE) and starts waiting calls first come, first served, across
// all agents. It measures how long each call waited for its slot and reports it, so a slow
// swarm can tell "the model is slow" from "we queued behind our own siblings".
// Retries happen inside the client and keep the slot: backing off from a 429 must not let
// another call take its place and hit the same limit.

import pLimit, { type LimitFunction } from "p-limit";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { CompletionRequest, LlmClient, LlmResponse, Usage } from "./types.js";

export type InferenceEvent =
  | { type: "inference.queued"; agentId: string; provider: string; model: string; queued: number }
  | {
      type: "inference.started";
      agentId: string;
      provider: string;
      model: string;
      waitMs: number;
      inFlight: number;
    }
  | {
      type: "inference.finished";
      agentId: string;
      provider: string;
      model: string;
      waitMs: number;
      runMs: number;
      ok: boolean;
      usage?: Usage;
      error?: string;
    };

export interface ScheduledCompletion {
  response: LlmResponse;
  provider: string;
  /** Time spent waiting for a slot, before the request was sent. */
  waitMs: number;
  /** Time from sending to the final answer (retries included). */
  runMs: number;
}

/**
 * A slot shared beyond this process (cluster mode: cluster/inference-slots.ts), taken after
 * the local one and held for the call; resolves to its release.
 */
export type SharedSlot = (provider: string, signal?: AbortSignal) => Promise<() => void>;

/** What the caller does around the send, once the call holds its slot(s). */
export interface SendHooks {
  /** Awaited before anything is sent (cluster mode marks the goal's first model call). */
  beforeSend?: () => Promise<void>;
  /**
   * Called just before the request leaves, with nothing awaited in between (the budget
   * marks the reservation sent); false: the call is given up and nothing is sent.
   */
  sending?: () => boolean;
}

export interface InferenceSchedulerOptions {
  maxConcurrent: number;
  onEvent?: (e: InferenceEvent) => void;
  sharedSlot?: SharedSlot;
}

export class InferenceScheduler {
  readonly maxConcurrent: number;
  readonly #limits = new Map<string, LimitFunction>();
  readonly #onEvent: ((e: InferenceEvent) => void) | undefined;
  readonly #sharedSlot: SharedSlot | undefined;

  constructor(opts: InferenceSchedulerOptions) {
    if (!Number.isInteger(opts.maxConcurrent) || opts.maxConcurrent < 1) {
      throw new AidoError(
        ErrorCode.configInvalid,
        `maxConcurrent must be a positive integer, got ${opts.maxConcurrent}`,
      );
    }
    this.maxConcurrent = opts.maxConcurrent;
    this.#onEvent = opts.onEvent;
    this.#sharedSlot = opts.sharedSlot;
  }

  static fromConfig(
    config: Config,
    onEvent?: (e: InferenceEvent) => void,
    sharedSlot?: SharedSlot,
  ): InferenceScheduler {
    const opts: InferenceSchedulerOptions = { maxConcurrent: config.inference.maxConcurrent };
    if (onEvent) opts.onEvent = onEvent;
    if (sharedSlot) opts.sharedSlot = sharedSlot;
    return new InferenceScheduler(opts);
  }

  async complete(
    agentId: string,
    client: LlmClient,
    req: CompletionRequest,
    hooks: SendHooks = {},
  ): Promise<ScheduledCompletion> {
    const provider = client.provider;
    const model = req.model ?? client.model;
    const limit = this.#limitFor(provider);
    const queuedAt = performance.now();
    const { signal } = req;
    const task = limit(async (): Promise<ScheduledCompletion> => {
      // Cancelled while waiting: give the slot straight back.
      if (signal?.aborted) throw cancelledWhileQueued(agentId, provider);
      const release = await this.#sharedSlot?.(provider, signal);
      try {
        return await this.#send(agentId, client, req, provider, model, limit, queuedAt, hooks);
      } finally {
        release?.();
      }
    });
    this.#emit({ type: "inference.queued", agentId, provider, model, queued: limit.pendingCount });
    if (!signal) return task;
    // A caller that gives up while queued should not wait for a slot to learn it.
    return new Promise<ScheduledCompletion>((resolve, reject) => {
      const onAbort = () => reject(cancelledWhileQueued(agentId, provider));
      if (signal.aborted) onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      task.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /** One call in its slot(s): the started/finished events around it. */
  async #send(
    agentId: string,
    client: LlmClient,
    req: CompletionRequest,
    provider: string,
    model: string,
    limit: LimitFunction,
    queuedAt: number,
    hooks: SendHooks,
  ): Promise<ScheduledCompletion> {
    const waitMs = Math.round(performance.now() - queuedAt);
    await hooks.beforeSend?.();
    // Cancelled while the hook ran: nothing is sent. From here to the send nothing is
    // awaited, so a call is either given up unsent or marked sent before it leaves.
    if (req.signal?.aborted || hooks.sending?.() === false) throw cancelledWhileQueued(agentId, provider);
    this.#emit({
      type: "inference.started",
      agentId,
      provider,
      model,
      waitMs,
      inFlight: limit.activeCount,
    });
    const started = performance.now();
    try {
      const response = await client.complete(req);
      const runMs = Math.round(performance.now() - started);
      this.#emit({
        type: "inference.finished",
        agentId,
        provider,
        model,
        waitMs,
        runMs,
        ok: true,
        usage: response.usage,
      });
      return { response, provider, waitMs, runMs };
    } catch (e) {
      const runMs = Math.round(performance.now() - started);
      this.#emit({
        type: "inference.finished",
        agentId,
        provider,
        model,
        waitMs,
        runMs,
        ok: false,
        error: errorMessage(e),
      });
      throw e;
    }
  }

  #limitFor(provider: string): LimitFunction {
    let limit = this.#limits.get(provider);
    if (!limit) {
      limit = pLimit(this.maxConcurrent);
      this.#limits.set(provider, limit);
    }
    return limit;
  }

  #emit(e: InferenceEvent): void {
    if (!this.#onEvent) return;
    try {
      this.#onEvent(e);
    } catch {
      // An observer's bug must not fail a model call.
    }
  }
}

function cancelledWhileQueued(agentId: string, provider: string): AidoError {
  return new AidoError(ErrorCode.cancelled, `agent ${agentId}: inference on ${provider} cancelled`, {
    agentId,
    provider,
  });
}
