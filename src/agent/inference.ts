// agent/inference.ts — one model call, paid for. Every call an agent makes (its turns and
// the summaries of its context) reserves the most it can cost on its budget account first
// (llm/token-bound.ts: the UTF-8 bytes of everything sent, framing, max_tokens), goes
// through the shared scheduler, commits the real usage after, and is refunded when the
// provider refuses it (an HTTP error status) or no attempt reached a server. A call given
// up because its agent stopped, or failed once the provider may have worked on it
// (connection or stream lost, a timeout), is charged its reservation if its request was sent
// (the provider may have spent up to it; security/budget.ts), refunded if it never left its
// queue. Such an attempt retried is charged the same before its retry leaves, and the retry
// reserves its own bound (CompletionRequest.resending): no attempt is sent on room another
// was charged. The agent's loop and the `usage` event are told every charge (tellCharged);
// the goal's usage and its intent are counted by the ledger. A refused reservation is
// budget_exceeded before anything is sent: no call is made on credit. Since a call following
// the bound can never cost more than it reserved, the goal cap holds however many children
// spend at once. A provider that reports more anyway
// broke the bound: the usage is charged (it was spent), audited as budget.overspent by the
// ledger, and the call fails with budget_exceeded, which stops the agent; the kernel stops
// the goal (onBudgetOverspent). A provider that reports no input tokens (no usage at all
// reads as zeros) is charged the call's bound, audited as budget.usage_unreported. With
// tracing on, each call is a chat span (telemetry/) with its queue wait, its reservation
// and what was committed.

import { AidoError, ErrorCode } from "../errors.js";
import type { AgentRecord } from "../kernel/registry.js";
import type { BilledFailure } from "../llm/retry.js";
import { callTokenBound } from "../llm/token-bound.js";
import type { CompletionRequest, LlmClient, LlmResponse, Usage } from "../llm/types.js";
import type { Reservation } from "../security/budget.js";
import { Attr, serverOf, tracedFinish, tracedId, tracedModel } from "../telemetry/attributes.js";
import type { TraceSpan } from "../telemetry/tracer.js";
import type { AgentEnv } from "./env.js";

export async function budgetedComplete(
  env: AgentEnv,
  agent: AgentRecord,
  req: CompletionRequest,
): Promise<LlmResponse> {
  const bound = callTokenBound(req);
  const first = reserve(env, agent, bound);
  /** The reservation the attempt in flight is sent on; undefined once settled and told. */
  let reservation: Reservation | undefined = first;
  const client = env.client(agent);
  const span = env.tracer ? startChatSpan(env, agent, client, req, first.amount) : undefined;
  // An attempt the provider may have billed is charged before its retry leaves, and the retry
  // holds its own bound: on one reservation, a provider cutting every first attempt got twice
  // the requests a cap allowed. A retry refused its reservation fails the call (budget_exceeded).
  const resending = (billed: BilledFailure) => {
    const spent = reservation ?? first;
    reservation = undefined;
    // Settled already when its account closed under it: told what that charged, all the same.
    settleQuietly(() => env.budget.abandon(spent, { kind: billed, retried: true }));
    tellCharged(env, agent, spent);
    const next = reserve(env, agent, bound);
    if (!env.budget.markSent(next)) {
      settleQuietly(() => env.budget.refund(next));
      throw new AidoError(
        ErrorCode.cancelled,
        `agent ${agent.id}: its budget account closed before a retry`,
        {
          account: agent.budgetAccount,
        },
      );
    }
    reservation = next;
  };
  let response: LlmResponse;
  try {
    let waitMs: number;
    ({ response, waitMs } = await env.scheduler.complete(
      agent.id,
      client,
      { ...req, resending },
      {
        ...(env.beforeModelCall
          ? { beforeSend: () => env.beforeModelCall?.(agent) ?? Promise.resolve() }
          : {}),
        sending: () => env.budget.markSent(first),
      },
    ));
    span?.set({ [Attr.queueWaitMs]: waitMs });
  } catch (e) {
    // Given up (the agent stopped), or failed once the provider may have worked on it: charged
    // if the request was sent, refunded if it never left. Refused by the provider: refunded.
    // None left open: a retry's reservation was refused after the last attempt was charged.
    const open = reservation;
    if (open) {
      const failure = req.signal?.aborted ? undefined : spendingFailure(e);
      settleQuietly(() =>
        req.signal?.aborted || failure !== undefined
          ? env.budget.abandon(open, failure === undefined ? undefined : { kind: failure })
          : env.budget.refund(open),
      );
      tellCharged(env, agent, open);
    }
    span?.end(e instanceof AidoError ? e.code : ErrorCode.internal);
    throw e;
  }
  const settled = reservation ?? first;
  // Usage no real call reports (a server that sends none reads as zeros) is not believed:
  // the call is charged its bound, else every such call would be free and no cap would hold.
  const unreported = usageUnbelievable(response);
  const used = unreported ? settled.amount : response.usage.input_tokens + response.usage.output_tokens;
  let committed = false;
  try {
    committed = settleQuietly(() =>
      env.budget.commit(settled, used, {
        outputTokens: response.usage.output_tokens,
        ...(unreported ? { unreported: response.usage } : {}),
      }),
    );
  } finally {
    // A call past its bound ends the agent: its span says so (error.type budget_exceeded).
    if (span) endChatSpan(env, agent, span, response, used, used > settled.amount);
  }
  // Committed here: charged what was committed, no need to read it back (a turn's hot path).
  tellCharged(env, agent, settled, response.usage, committed ? used : undefined);
  if (used > settled.amount) {
    const e = new AidoError(
      ErrorCode.budgetExceeded,
      `budget overspent: the provider reported ${used} tokens for a call bounded at ${settled.amount} (the UTF-8 bytes of the request, its framing and max_tokens); the tokens are charged to ${agent.budgetAccount} and its ancestors, and the agent is stopped`,
      { account: agent.budgetAccount, reserved: settled.amount, actual: used },
    );
    env.onBudgetOverspent?.(agent, e);
    throw e;
  }
  return response;
}

/** Reserve `bound` on the agent's account; a refusal is told to the kernel (the goal cap?). */
function reserve(env: AgentEnv, agent: AgentRecord, bound: number): Reservation {
  try {
    return env.budget.reserve(agent.budgetAccount, bound);
  } catch (e) {
    if (e instanceof AidoError && e.code === ErrorCode.budgetExceeded) env.onBudgetExceeded?.(agent, e);
    throw e;
  }
}

/**
 * Usage the provider cannot have meant: no input tokens, when every request sends a prompt
 * (a server that sends no usage at all reads as zeros), or a total past
 * Number.MAX_SAFE_INTEGER (2^60, 1e308: no call costs that, and the ledger counts only safe
 * integers; told as reported, it made the goal's usage 2^60). A lie in between cannot be
 * told from the truth without the provider's tokenizer; the bound still caps it.
 */
function usageUnbelievable(r: LlmResponse): boolean {
  return r.usage.input_tokens <= 0 || !Number.isSafeInteger(r.usage.input_tokens + r.usage.output_tokens);
}

/**
 * How a call failed when the provider may have spent on it though it answered nothing
 * usable: the connection or the stream lost after the request left, no answer in time, an
 * answer over the size cap. The provider's own refusal (an HTTP error status) is not
 * billed, nor is anything that failed before a provider was involved: a connection no
 * attempt of the call ever made (refused, no such host: `sent: false`, llm/failure.ts), or
 * no provider failure at all: undefined.
 */
function spendingFailure(e: unknown): string | undefined {
  if (!(e instanceof AidoError) || e.code !== ErrorCode.providerFailed) return undefined;
  if (e.details?.sent === false) return undefined;
  const kind = e.details?.failure;
  return kind === "connection" || kind === "timeout" || kind === "other" ? kind : undefined;
}

/**
 * Tell the agent's loop (env.onUsage) and the `usage` event (agent.list tallies, aido watch,
 * the dashboard) what a reservation was charged, whoever settled it: what the provider
 * reported when that was charged, else the charge (the bound of a call whose usage was
 * unreported, or given up, failed or retried after it was sent) with the reported output and
 * the rest as input. Nothing for a refund, nor while the reservation is open (the close of
 * its account charges it). The goal's own usage is not told here: the ledger counts it
 * (kernel/goal-intent.ts chargeGoal). Before, only answered calls reached the event, and
 * tallies showed 1,500 tokens of a goal charged 33,480. `committed`: what this call's own
 * commit charged, when it did; else the ledger is asked (the close of its account may have
 * settled it).
 */
function tellCharged(
  env: AgentEnv,
  agent: AgentRecord,
  r: Reservation,
  reported?: Usage,
  committed?: number,
): void {
  const charged = committed ?? env.budget.chargedFor(r);
  if (charged === undefined || (charged === 0 && !reported)) return;
  const told =
    reported && reported.input_tokens + reported.output_tokens === charged
      ? reported
      : chargedAsUsage(charged, reported);
  env.onUsage?.(agent, told);
  env.events.emit("usage", agent.goalId, { agentId: agent.id, ...told });
}

function chargedAsUsage(charged: number, reported: Usage | undefined): Usage {
  const output = Math.min(reported?.output_tokens ?? 0, charged);
  return { input_tokens: charged - output, output_tokens: output };
}

/**
 * The agent may have been stopped while its call was in flight, which closed its account
 * and settled the reservation already (charged if sent, refunded if not); settling it
 * again is refused by the ledger and there is nothing left to do: exactly one counts. Anything else (audit failure) still surfaces.
 * True when `fn` settled it, false when it was already settled.
 */
function settleQuietly(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof AidoError && (e.code === ErrorCode.invalidInput || e.code === ErrorCode.notFound))
      return false;
    throw e;
  }
}

function startChatSpan(
  env: AgentEnv,
  agent: AgentRecord,
  client: LlmClient,
  req: CompletionRequest,
  reserved: number,
): TraceSpan | undefined {
  const content = env.tracer?.content;
  const model = tracedModel(content, req.model ?? client.model, agent.modelNamedByOperator);
  const server = serverOf(client.baseURL);
  return env.tracer?.startChat(agent.span, model, {
    [Attr.provider]: client.provider,
    [Attr.requestModel]: model,
    [Attr.requestMaxTokens]: req.max_tokens,
    [Attr.agentId]: agent.id,
    [Attr.conversationId]: agent.goalId,
    [Attr.serverAddress]: server.address,
    [Attr.serverPort]: server.port,
    [Attr.budgetReserved]: reserved,
    [Attr.systemInstructions]: content?.system(req.system),
    [Attr.inputMessages]: content?.input(req.messages),
  });
}

function endChatSpan(
  env: AgentEnv,
  agent: AgentRecord,
  span: TraceSpan,
  response: LlmResponse,
  committed: number,
  overspent: boolean,
): void {
  const finish = response.finish_reason ?? response.stop_reason;
  span.set({
    [Attr.responseModel]: tracedModel(env.tracer?.content, response.model, agent.modelNamedByOperator),
    [Attr.responseId]: response.id === undefined ? undefined : tracedId(env.tracer?.content, response.id),
    [Attr.finishReasons]: [tracedFinish(env.tracer?.content, finish, response.stop_reason)],
    [Attr.inputTokens]: response.usage.input_tokens,
    [Attr.outputTokens]: response.usage.output_tokens,
    [Attr.budgetCommitted]: committed,
    [Attr.outputMessages]: env.tracer?.content?.output(response, finish),
  });
  span.end(overspent ? ErrorCode.budgetExceeded : undefined);
}
