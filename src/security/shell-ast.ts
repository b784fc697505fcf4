// security/shell-ast.ts — the one place that touches mvdan-sh (mvdan.cc/sh/v3/syntax,
// the parser behind shfmt, compiled to JavaScript by GopherJS). It parses a shell string
// in the POSIX dialect — the language of dash, which runs every exec (/bin/sh in the
// sandbox image is dash) — and copies the Go syntax tree into plain objects:
// `{type: "CallExpr", Args: [...]}`. The POSIX variant refuses bash-only syntax at parse
// time and reads what dash reads: `((x))` as two nested subshells, `$'x'` as a `$` and a
// quoted string, `a &> f` as `a &` and `> f`, `{a,b}` as one literal word.
//
// Reading fields through GopherJS's wrappers re-wraps every struct on every read and costs
// milliseconds per command, so the copy reads the Go values directly (fields as
// properties, slices as {$array, $offset, $length}, strings as UTF-8 byte strings). If a
// new mvdan-sh changes this layout or its token numbers, parseShell refuses every command
// (fails closed) and test/security/shell-ast.test.ts fails; it never reads a tree half-way.

import sh, { type GoValue } from "mvdan-sh";
import { AidoError, ErrorCode } from "../errors.js";

/** A syntax node: `type` is the Go struct name ("CallExpr", "Word", "Lit", ...), other keys its fields. */
export interface ShNode {
  readonly type: string;
  /**
   * Byte offsets of the node in its source (set on Word, SglQuoted and CmdSubst nodes; `start`
   * on a Redirect with a descriptor number).
   */
  readonly start?: number;
  readonly end?: number;
  // biome-ignore lint/suspicious/noExplicitAny: fields differ per node type, as in the Go package.
  readonly [field: string]: any;
}

/**
 * Token numbers of this mvdan-sh build (syntax/tokens.go plus one token this build adds
 * before `&`). Checked against real parses by test/security/shell-ast.test.ts.
 */
export const TOKEN = {
  andStmt: 10,
  orStmt: 11,
  pipe: 12,
  pipeAll: 13,
  dblSemicolon: 30,
  // arithmetic
  not: 34,
  bitNegation: 35,
  inc: 36,
  dec: 37,
  mul: 38,
  pow: 39,
  eql: 40,
  neq: 41,
  leq: 42,
  geq: 43,
  addAssgn: 44,
  subAssgn: 45,
  mulAssgn: 46,
  quoAssgn: 47,
  remAssgn: 48,
  andAssgn: 49,
  orAssgn: 50,
  xorAssgn: 51,
  shlAssgn: 52,
  shrAssgn: 53,
  // redirections (also > < >> << in arithmetic)
  rdrOut: 54,
  appOut: 55,
  rdrIn: 56,
  rdrInOut: 57,
  dplIn: 58,
  dplOut: 59,
  clbOut: 60,
  hdoc: 61,
  dashHdoc: 62,
  wordHdoc: 63,
  rdrAll: 64,
  appAll: 65,
  // parameter expansion operators (also + - ? = % # ^ , : in arithmetic)
  plus: 68,
  colPlus: 69,
  minus: 70,
  colMinus: 71,
  quest: 72,
  colQuest: 73,
  assgn: 74,
  colAssgn: 75,
  perc: 76,
  dblPerc: 77,
  hash: 78,
  dblHash: 79,
  caret: 80,
  comma: 82,
  slash: 85,
  colon: 87,
  and: 9,
} as const;

// Comments are kept only so that copy() can check them (see there); the copy drops them.
const parser = sh.syntax.NewParser(sh.syntax.KeepComments(true), sh.syntax.Variant(sh.syntax.LangPOSIX));

export function cannotParse(why: string): AidoError {
  return new AidoError(ErrorCode.policyDenied, `cannot parse command: ${why}`, { rule: "unparseable" });
}

/** A construct the analyzer does not fully understand: refused, naming it (fail closed). */
export function cannotJudge(what: string): AidoError {
  return new AidoError(ErrorCode.policyDenied, `cannot judge command: ${what}`, { rule: "unjudgeable" });
}

/** Parse a POSIX sh program into plain nodes. Throws policy_denied "cannot parse command: ..." on any syntax error. */
export function parseShell(code: string): ShNode {
  let file: GoValue;
  try {
    file = parser.Parse(code, "command").__internal_object__;
  } catch (e) {
    if (e instanceof RangeError) throw cannotParse("it nests too deeply to read");
    const err = e as { Error?: () => string };
    throw cannotParse(typeof err?.Error === "function" ? err.Error() : String(e));
  }
  const node = copy(file);
  if (!node || typeof node !== "object" || (node as ShNode).type !== "File") {
    throw cannotParse("the shell parser returned an unexpected tree");
  }
  return node as ShNode;
}

type Plain = ShNode | Plain[] | string | number | boolean | null;

function copy(v: unknown): Plain {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return /[^\x00-\x7f]/.test(v) ? Buffer.from(v, "latin1").toString("utf8") : v;
  if (typeof v === "number" || typeof v === "boolean") return v;
  if (typeof v !== "object") return null;
  const g = v as GoValue & { $array?: unknown[]; $offset?: number; $length?: number };
  if (Array.isArray(g.$array) && typeof g.$length === "number") {
    const out: Plain[] = new Array(g.$length);
    for (let i = 0; i < g.$length; i++) out[i] = copy(g.$array[(g.$offset ?? 0) + i]);
    return out;
  }
  const goType = g.constructor?.string;
  if (typeof goType !== "string" || g === g.constructor.nil || !goType.startsWith("*syntax.")) return null;
  const type = goType.slice("*syntax.".length);
  if (type === "Pos") return null;
  if (type === "Comment") {
    // dash ends a comment at the first newline, a backslash before it included; mvdan-sh takes
    // `\<newline>` inside a comment as a line continuation and reads the next line as the rest
    // of the statement: `echo a # x\<newline>touch f` was judged as one echo while dash ran touch.
    if (/(^|[^\\])(\\\\)*\\\n/.test(String((g as unknown as { Text: string }).Text))) {
      throw cannotJudge(
        "a comment ending in a backslash (dash ends the comment at the newline; the parser reads the next line into it)",
      );
    }
    return null;
  }
  const out: Record<string, unknown> = { type };
  for (const key of Object.keys(g)) {
    if (key !== "$val") out[key] = copy(g[key]);
  }
  if (type === "Word" || type === "SglQuoted" || type === "CmdSubst") {
    // Words are pinned to their text; single quotes mark where a backslash-newline is two
    // characters (shell-lexical.ts); a substitution's end is where dash reads the
    // here-documents begun inside it (shell-visitor.ts).
    const w = g as unknown as { Pos(): { offs: number }; End(): { offs: number } };
    out.start = w.Pos().offs;
    out.end = w.End().offs;
  }
  if (type === "Redirect" && out.N) {
    // Where the descriptor number starts: dash takes digits glued to a word as part of it.
    const n = g.N as unknown as { Pos(): { offs: number } };
    out.start = n.Pos().offs;
  }
  return out as ShNode;
}

/** A field holds something: not null, false, 0, "" or an empty list. */
function isSet(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(isSet);
  return v !== null && v !== undefined && v !== false && v !== 0 && v !== "";
}

/**
 * Fail closed on fields: every set field of `node` must be one the caller reads (or a
 * position, which the copy drops). A set field nobody reads is a feature nobody judged.
 */
export function onlyFields(node: ShNode, known: readonly string[], what: string): void {
  for (const key of Object.keys(node)) {
    if (key === "type" || key === "start" || key === "end" || known.includes(key)) continue;
    if (isSet(node[key])) throw cannotJudge(`${what} with ${key} (not POSIX sh)`);
  }
}
