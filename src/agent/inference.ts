// agent/inference.ts — one model call, paid for. Every call an agent makes (its turns and
// the summaries of its context) reserves an estimate on its budget account first (input
// estimate + max_tokens), goes through the shared scheduler, commits the real usage after,
// and is refunded when it fails. A refused reservation is budget_exceeded before anything
// is sent: no call is made on credit.

import { AidoError, ErrorCode } from "../errors.js";
import type { AgentRecord } from "../kernel/registry.js";
import type { CompletionRequest, LlmResponse } from "../llm/types.js";
import type { Reservation } from "../security/budget.js";
import { estimateRequestTokens } from "./context.js";
import type { AgentEnv } from "./env.js";

export async function budgetedComplete(
  env: AgentEnv,
  agent: AgentRecord,
  req: CompletionRequest,
): Promise<LlmResponse> {
  const estimate = estimateRequestTokens(req) + req.max_tokens;
  let reservation: Reservation;
  try {
    reservation = env.budget.reserve(agent.budgetAccount, estimate);
  } catch (e) {
    if (e instanceof AidoError && e.code === ErrorCode.budgetExceeded) env.onBudgetExceeded?.(agent, e);
    throw e;
  }
  let response: LlmResponse;
  try {
    ({ response } = await env.scheduler.complete(agent.id, env.client(agent), req));
  } catch (e) {
    settleQuietly(() => env.budget.refund(reservation));
    throw e;
  }
  const used = response.usage.input_tokens + response.usage.output_tokens;
  settleQuietly(() => env.budget.commit(reservation, used));
  env.onUsage?.(agent, response.usage);
  env.events.emit("usage", agent.goalId, { agentId: agent.id, ...response.usage });
  return response;
}

/**
 * The agent may have been stopped while its call was in flight, which closed its account
 * and refunded the reservation already; settling it again is refused by the ledger and
 * there is nothing left to do. Anything else (audit failure) still surfaces.
 */
function settleQuietly(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof AidoError && (e.code === ErrorCode.invalidInput || e.code === ErrorCode.notFound))
      return;
    throw e;
  }
}
