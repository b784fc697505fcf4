// intent/fields.ts — what a persistent intent's fields may hold, as zod schemas the socket
// (daemon/schemas.ts) parses params with, so every refusal names its field. The objective,
// the step notes and the check command come from any client of the socket — an MCP
// client's model among them — and the objective reaches the bootstrap agent's prompt:
// they are bounded, and characters that could act on a terminal or hide text from a
// human reading it (C0/C1 controls, DEL, bidi overrides and isolates) are refused, not
// cleaned. Newlines and tabs are allowed in the objective and notes, never in the check
// command (one line, as `aido intent status` prints it).

import { isAbsolute } from "node:path";
import { z } from "zod";

const MAX_OBJECTIVE_CHARS = 2000;
const MAX_NOTE_CHARS = 1000;
const MAX_CHECK_CHARS = 2000;
const MAX_BY_CHARS = 200;
const MAX_WORKSPACE_CHARS = 4096;

/** C0/C1 controls, DEL, bidi overrides and isolates; `lines` lets newline and tab pass. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

function firstControl(text: string, lines: boolean): string | undefined {
  const m = (lines ? CONTROL_BUT_LINES : CONTROL).exec(text);
  return m ? `U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}` : undefined;
}

function text(max: number, lines: boolean) {
  return z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine((s) => s.trim() !== "", "must not be empty")
    .superRefine((s, ctx) => {
      const c = firstControl(s, lines);
      if (c !== undefined)
        ctx.addIssue({
          code: "custom",
          message: `must not contain control or bidi characters (found ${c}${lines ? "; newlines and tabs are allowed" : ""})`,
        });
    });
}

export const objectiveField = text(MAX_OBJECTIVE_CHARS, true);
export const noteField = text(MAX_NOTE_CHARS, true);
export const checkField = text(MAX_CHECK_CHARS, false);
/** Who set or changed it: free text a client chooses ("aido cli", "mcp session …"). */
export const byField = text(MAX_BY_CHARS, false);
export const budgetField = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** A project folder as the client names it: absolute; the daemon resolves it (intents.ts). */
export const workspaceField = z
  .string()
  .min(1)
  .max(MAX_WORKSPACE_CHARS)
  .refine((p) => firstControl(p, false) === undefined, "must not contain control characters")
  .refine((p) => isAbsolute(p), "must be an absolute path (the client resolves its own working folder)");
