// security/terminal-text.ts — text a model wrote, made safe to print on a terminal. A goal's
// result, an agent's stop reason, an approval's target: all come from a model (or from a
// file name it chose, which may hold any byte but "/" and NUL). Printed raw, a `\r` and
// ESC[2K wipe the real line and show another in its place, ESC ]8 makes links, and the
// bidi overrides reorder what a human reads. Every such character is written as an escape
// (`\x1b`, `\u202e`) instead; `inertLines` keeps newlines and tabs for multi-line text.
// One implementation for every place that prints model text (the CLI, the watch view, the
// approval prompts); `--json` output is JSON's business and stays exact.

/**
 * C0/C1 controls, DEL, the bidi marks, overrides and isolates (reordering or acting on a
 * terminal), and the invisible ones (zero-width space/joiners, word joiner, BOM, soft
 * hyphen, the Hangul fillers, the deprecated format characters, interlinear annotation)
 * that make two different texts read alike: at least what the dashboard's page writes out
 * (src/ui/web/components.tsx visible), since a download's saved name is this one's.
 */
const NOT_INERT =
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb]/g;
/** The same, but newline and tab (which only move the cursor forward or down) pass. */
const NOT_INERT_LINES =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb]/g;

function escaped(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** `text` on one line with every character a terminal would act on written as an escape. */
export function inert(text: string): string {
  return text.replace(NOT_INERT, escaped);
}

/** `text` with its lines and tabs kept, and every other character a terminal acts on escaped. */
export function inertLines(text: string): string {
  return text.replace(NOT_INERT_LINES, escaped);
}
