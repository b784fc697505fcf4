// errors.ts — the one error base. Every error a user or a model can see is an
// AidoError with a stable string code and the context needed to act on it. The
// daemon maps codes to JSON-RPC numbers in one table (daemon/), nowhere else.

export const ErrorCode = {
  usage: "usage",
  configInvalid: "config_invalid",
  manifestInvalid: "manifest_invalid",
  grantInvalid: "grant_invalid",
  invalidInput: "invalid_input",
  capabilityDenied: "capability_denied",
  tokenInvalid: "token_invalid",
  policyDenied: "policy_denied",
  budgetExceeded: "budget_exceeded",
  approvalDenied: "approval_denied",
  approvalTimeout: "approval_timeout",
  /** The approval was closed unanswered: its agent stopped, its goal ended, the daemon restarted. */
  approvalExpired: "approval_expired",
  auditFailed: "audit_failed",
  notFound: "not_found",
  unknownTool: "unknown_tool",
  toolFailed: "tool_failed",
  sandboxUnavailable: "sandbox_unavailable",
  sandboxFailed: "sandbox_failed",
  providerFailed: "provider_failed",
  providerConfig: "provider_config",
  limitExceeded: "limit_exceeded",
  /** A goal's writes to the host would pass sandbox.workspace_max_mb. */
  quotaExceeded: "quota_exceeded",
  /** memory/: the embedder in use has no vectors for live memories; run reembed. */
  memoryNotIndexed: "memory_not_indexed",
  cancelled: "cancelled",
  /** Cluster mode: Redis (or the node that owns a goal) cannot be reached; nothing was done. */
  clusterUnavailable: "cluster_unavailable",
  internal: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class AidoError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "AidoError";
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** A value that failed validation at an edge: names where (file, key path, line). */
export interface Issue {
  path: string;
  message: string;
  line?: number;
}

export function formatIssues(where: string, issues: readonly Issue[]): string {
  const lines = issues.map((i) => {
    const at = i.path === "" ? "(root)" : i.path;
    return `  ${where}${i.line !== undefined ? `:${i.line}` : ""}: ${at}: ${i.message}`;
  });
  return lines.join("\n");
}

export function isAidoError(e: unknown, code?: ErrorCode): e is AidoError {
  return e instanceof AidoError && (code === undefined || e.code === code);
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
