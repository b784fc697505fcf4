// security/approval-shown.ts — how much of a call a human is shown before answering it. The
// request's summary shows the call's input cut at SUMMARY_INPUT_MAX characters; a model can
// pad the front of an input so that what runs lies past the cut (`echo <384 characters>;
// mkdir /workspace/x`). Wherever a human answers from the summary (`aido approvals`, the MCP
// client's approval form), a cut input is shown whole next to it, up to WHOLE_INPUT_MAX
// characters, inert; past that the surface says so, and the MCP form is not offered at all.
// A call that carries secrets (its summary shows them blanked) says which, by kind, on every
// surface (`aido approvals`, `aido watch`, the dashboard, the MCP form): the fact that decides
// the answer.

import { inert } from "./terminal-text.js";

/** Most of a call's input (as JSON) the request's summary shows. */
export const SUMMARY_INPUT_MAX = 300;

/** Most of a call's input a prompt shows whole; past it the prompt says how much is not shown. */
export const WHOLE_INPUT_MAX = 20_000;

export interface WholeInput {
  /** The input as JSON, inert, at most WHOLE_INPUT_MAX characters of it. */
  shown: string;
  /** The length of the input's JSON. */
  total: number;
  /** How many characters of it `shown` leaves out (0: all of it is shown). */
  rest: number;
}

/** The summary's view of an input: its JSON, cut at SUMMARY_INPUT_MAX. */
export function summaryInput(input: unknown): string {
  const text = JSON.stringify(input) ?? "null";
  return text.length > SUMMARY_INPUT_MAX ? `${text.slice(0, SUMMARY_INPUT_MAX)}…` : text;
}

/** The input shown whole when the summary cut it; undefined when the summary shows all of it. */
export function wholeInput(input: unknown): WholeInput | undefined {
  const text = JSON.stringify(input) ?? "null";
  if (text.length <= SUMMARY_INPUT_MAX) return undefined;
  return {
    shown: inert(text.slice(0, WHOLE_INPUT_MAX)),
    total: text.length,
    rest: Math.max(0, text.length - WHOLE_INPUT_MAX),
  };
}

/**
 * The secrets a call carries, by kind, as a human is told before answering (`carries_secrets`:
 * never values). A record of an older daemon or node, or a Redis writer's junk, may hold
 * anything there: only strings are kept. Undefined when it carries none.
 */
export function secretKinds(carries: unknown): string[] {
  return Array.isArray(carries) ? carries.filter((k): k is string => typeof k === "string") : [];
}

/** `CARRIES SECRETS (shown blanked): <kinds>`, inert; undefined when the call carries none. */
export function carriesSecretsText(carries: unknown): string | undefined {
  const kinds = secretKinds(carries);
  return kinds.length === 0
    ? undefined
    : `CARRIES SECRETS (shown blanked): ${kinds.map((k) => inert(k)).join("; ")}`;
}
