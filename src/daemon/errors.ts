// daemon/errors.ts — the ONE table from AidoError codes (stable strings) to JSON-RPC
// error numbers, and the conversion of anything thrown by a method into the error
// object a client receives. An error that is not an AidoError is a bug or an
// environment failure whose message may carry host paths or internals: the client gets
// -32603 with a fixed safe message, and the daemon's log (stderr) gets the rest.

import { AidoError, ErrorCode } from "../errors.js";

/** JSON-RPC numbers. The first five are the spec's; the -3200x are Aido's (DESIGN.md). */
export const RpcCode = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  capabilityDenied: -32001,
  budgetExceeded: -32002,
  notFound: -32003,
  policyDenied: -32004,
} as const;
export type RpcCode = (typeof RpcCode)[keyof typeof RpcCode];

/**
 * Every ErrorCode has a row: a new code added to errors.ts fails typechecking here until
 * someone decides what a client sees for it.
 *   - refusals by the capability system (token, grant, ceiling)       -> -32001
 *   - quotas: token budgets, admission limits (agents, depth), a goal's
 *     files on the host (sandbox.workspace_max_mb), inputs caps        -> -32002
 *   - policy rules and a human's "deny" (or no answer in time)        -> -32004
 *   - bad input a client sent (params, manifests, tool input)         -> -32602
 *   - failures while doing the work (tool, sandbox, provider, audit)  -> -32603
 */
const TABLE: Record<ErrorCode, RpcCode> = {
  usage: RpcCode.invalidParams,
  config_invalid: RpcCode.internalError,
  manifest_invalid: RpcCode.invalidParams,
  grant_invalid: RpcCode.invalidParams,
  invalid_input: RpcCode.invalidParams,
  unknown_tool: RpcCode.invalidParams,
  capability_denied: RpcCode.capabilityDenied,
  token_invalid: RpcCode.capabilityDenied,
  budget_exceeded: RpcCode.budgetExceeded,
  limit_exceeded: RpcCode.budgetExceeded,
  quota_exceeded: RpcCode.budgetExceeded,
  not_found: RpcCode.notFound,
  policy_denied: RpcCode.policyDenied,
  approval_denied: RpcCode.policyDenied,
  approval_timeout: RpcCode.policyDenied,
  approval_expired: RpcCode.policyDenied,
  audit_failed: RpcCode.internalError,
  tool_failed: RpcCode.internalError,
  sandbox_unavailable: RpcCode.internalError,
  sandbox_failed: RpcCode.internalError,
  provider_failed: RpcCode.internalError,
  provider_config: RpcCode.internalError,
  memory_not_indexed: RpcCode.internalError,
  cancelled: RpcCode.internalError,
  cluster_unavailable: RpcCode.internalError,
  internal: RpcCode.internalError,
};

export function rpcCodeOf(code: ErrorCode): RpcCode {
  return TABLE[code] ?? RpcCode.internalError;
}

/** The `error` member of a JSON-RPC response. `data.code` is the AidoError code. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: { code: string; details?: Record<string, unknown> };
}

/** An error raised by the protocol layer itself (parse, invalid request, unknown method, params). */
export class RpcError extends Error {
  constructor(
    readonly rpcCode: RpcCode,
    message: string,
    readonly data?: RpcErrorObject["data"],
  ) {
    super(message);
    this.name = "RpcError";
  }
}

export const SAFE_INTERNAL_MESSAGE = "internal error in the Aido daemon (details are in its log)";

/** What the client sees for a thrown value; `log` receives what it must not see. */
export function toRpcError(e: unknown, log: (message: string) => void = () => {}): RpcErrorObject {
  if (e instanceof RpcError) {
    return e.data
      ? { code: e.rpcCode, message: e.message, data: e.data }
      : { code: e.rpcCode, message: e.message };
  }
  if (e instanceof AidoError) {
    const data: RpcErrorObject["data"] = { code: e.code };
    if (Object.keys(e.details).length > 0) data.details = safeDetails(e.details);
    return { code: rpcCodeOf(e.code), message: e.message, data };
  }
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  return { code: RpcCode.internalError, message: SAFE_INTERNAL_MESSAGE, data: { code: ErrorCode.internal } };
}

/** Details as plain JSON (drops what JSON cannot carry: functions, cycles, bigints). */
function safeDetails(details: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(JSON.stringify(details)) as Record<string, unknown>;
  } catch {
    return {};
  }
}
