// security/approval-shown.ts — how much of a call a human is shown before answering it. The
// request's summary shows the call's input cut at SUMMARY_INPUT_MAX characters; a model can
// pad the front of an input so that what runs lies past the cut (`echo <384 characters>;
// mkdir /workspace/x`). Wherever a human answers from the summary (`aido approvals`, the MCP
// client's approval form), a cut input is shown whole next to it, up to WHOLE_INPUT_MAX
// characters, inert; past that the surface says so, and the MCP form is not offered at all.
// A call that carries secrets (its summary shows them blanked) says which, by kind, on every
// surface (`aido approvals`, `aido watch`, the dashboard, the MCP form): the fact that decides
// the answer.
//
// The input of `python3 fix.py` is nine characters; what runs is fix.py, which the model may
// have written a moment before asking. So a request also carries the text of each file the
// exec runs as code (tools/exec-scope.ts), as read for its digest, with the goal's secrets
// blanked like the input (gate/judge.ts), up to CODE_SHOWN_MAX characters for all the files
// together; every surface shows it. Code longer than that is not shown whole, and then no
// standing answer covers the call (approval-scope.ts commandScope: not reusable): a human
// never approves for later code they could not read. The MCP form is not offered for it, as
// for an input too long to show whole; `aido approvals` shows what fits and says how much not.

import { inert } from "./terminal-text.js";

/** Most of the code an exec runs (its files together) an approval shows; past it no standing answer covers it. */
export const CODE_SHOWN_MAX = 20_000;

/**
 * A file an exec runs as code, as the approval shows it: `content` is its text as read for the
 * digest (secrets blanked), at most what is left of CODE_SHOWN_MAX after the files before it;
 * `chars` is its whole length, so `content.length < chars` says part of it is not shown.
 */
export interface ShownCode {
  path: string;
  sha256: string;
  content: string;
  chars: number;
}

/** The files with their text cut so that all of them together are at most CODE_SHOWN_MAX characters. */
export function cutCode(code: readonly ShownCode[]): ShownCode[] {
  let left = CODE_SHOWN_MAX;
  return code.map((c) => {
    const content = c.content.slice(0, left);
    left -= content.length;
    return { ...c, content, chars: c.content.length };
  });
}

/** Characters of the files' text an approval does not show (0: all of it is shown). */
export function codeNotShown(code: readonly ShownCode[]): number {
  return code.reduce((n, c) => n + Math.max(0, c.chars - c.content.length), 0);
}

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
