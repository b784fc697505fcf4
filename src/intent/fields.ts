// intent/fields.ts — what a persistent intent's fields may hold, as zod schemas the socket
// (daemon/schemas.ts) parses params with, so every refusal names its field. The objective,
// the step notes and the check command come from any client of the socket — an MCP
// client's model among them — and the objective reaches the bootstrap agent's prompt:
// they are bounded, and characters that could act on a terminal or hide text from a
// human reading it are refused, not cleaned: C0/C1 controls, DEL, bidi overrides and
// isolates, and the invisible ones a model still reads — zero-width space, word joiner and
// invisible operators, the byte-order mark, and Unicode tag characters (U+E0000-E007F,
// which spell out ASCII no terminal shows). Newlines and tabs are allowed in the objective
// and notes, never in the check command (one line, as `aido intent status` prints it),
// nor are the line and paragraph separators U+2028/2029.

import { isAbsolute } from "node:path";
import { z } from "zod";

const MAX_OBJECTIVE_CHARS = 2000;
const MAX_NOTE_CHARS = 1000;
const MAX_CHECK_CHARS = 2000;
const MAX_BY_CHARS = 200;
const MAX_WORKSPACE_CHARS = 4096;

/**
 * C0/C1 controls, DEL, bidi marks, overrides and isolates, the line and paragraph separators,
 * and the invisible characters a model reads: zero-width space, word joiner and invisible
 * operators, the byte-order mark, tag characters.
 */
const CONTROL =
  /[\u0000-\u001f\u007f-\u009f\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u{e0000}-\u{e007f}]/u;
/** The same, but newline and tab pass, and the line separators with them (multi-line text). */
const CONTROL_BUT_LINES =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u{e0000}-\u{e007f}]/u;

function firstControl(text: string, lines: boolean): string | undefined {
  const m = (lines ? CONTROL_BUT_LINES : CONTROL).exec(text);
  return m ? `U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}` : undefined;
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
          message: `must not contain control characters, bidi or invisible ones (found ${c}${lines ? "; newlines and tabs are allowed" : ""})`,
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
