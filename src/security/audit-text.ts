// security/audit-text.ts — text from outside written into an audit entry: an error's message
// (an engine's, an MCP server's, a tool's), a refusal's reason quoting what a model chose (a
// tool name, a path, argument keys). Such text can be megabytes (an MCP server's error is cut
// only at the transport's 4 MiB) and can hold terminal controls. The log keeps it inert and
// bounded: each entry stays small whoever wrote the text, and a reader printing a field
// without escaping it cannot be driven by it. The caller's own error is not changed.

import { errorMessage } from "../errors.js";
import { inert } from "./terminal-text.js";

/** The longest text field an entry keeps (an escape counts as its characters). */
export const AUDIT_TEXT_MAX = 2000;

/** `text` as the log keeps it: terminal controls written as escapes, at most AUDIT_TEXT_MAX chars. */
export function auditText(text: string): string {
  // Cut before escaping too, so a megabyte message costs no megabyte of work.
  const shown = inert(text.length > AUDIT_TEXT_MAX ? text.slice(0, AUDIT_TEXT_MAX) : text);
  return shown.length > AUDIT_TEXT_MAX ? `${shown.slice(0, AUDIT_TEXT_MAX - 1)}…` : shown;
}

/** The longest call id an entry keeps: a provider's tool_use id is some 30 characters. */
export const AUDIT_CALL_ID_MAX = 200;

/**
 * A call's id (the provider's tool_use id, a client's) as the log keeps it: the model's server or
 * a client chose it, so it is text from outside like any other. Inert, at most AUDIT_CALL_ID_MAX.
 */
export function auditCallId(id: string): string {
  const shown = inert(id.length > AUDIT_CALL_ID_MAX ? id.slice(0, AUDIT_CALL_ID_MAX) : id);
  return shown.length > AUDIT_CALL_ID_MAX ? `${shown.slice(0, AUDIT_CALL_ID_MAX - 1)}…` : shown;
}

/**
 * What was thrown, as the log keeps it: its message whatever it is (a message that is not a
 * string, a value with no prototype, one whose toString throws), inert and bounded. Never throws,
 * so the entry that records a failure is always written (or fails for the log's own reasons).
 */
export function auditErrorText(error: unknown): string {
  try {
    return auditText(String(errorMessage(error)));
  } catch {
    return "an error that cannot be shown as text";
  }
}
