// security/shell-lexical.ts — where mvdan-sh and dash read the characters of a command
// differently, before any syntax is involved. The parser's lexer and dash's are two
// programs; each check here names a place where they were seen to disagree (in the image,
// by scripts/shell-differential.ts or by reading both lexers) and refuses the text, so that
// the tree the analyzer walks is the one dash runs:
//
// - text that is not well-formed UTF-16: mvdan-sh runs as JavaScript built by GopherJS, whose
//   UTF-8 encoder takes a lone high surrogate and the next code unit as one pair, so
//   `echo \uD800;touch x` reached the parser as `echo` and one word while dash, handed the
//   text as UTF-8 (the surrogate as U+FFFD), ran touch;
// - control characters other than tab and newline;
// - line continuations (`\` newline) where dash joins the two lines and the parser does not.
//   dash removes every continuation as it reads a character (`pgetc_eatbnl`), except inside
//   single quotes, in a quoted here-document and in a comment; mvdan-sh removes them inside a
//   word but ends an operator or a token at one: `$\<nl>#` (dash: `$#`), `<<\<nl>-`
//   (dash: `<<-`), `$(\<nl>(` (dash: `$((`), `'x'\<nl>#y` (dash: one word `x#y`, the parser:
//   a comment), and a here-document line `\<nl>EOF` (dash: the end of the document, the
//   parser: more of it).

import { cannotJudge, cannotParse, type ShNode, TOKEN } from "./shell-ast.js";

/** Control characters other than tab and newline (C0, DEL, C1). */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]/;
/** A `$` directly followed by a backslash-newline, anywhere (quotes included: fail closed). */
const DOLLAR_CONTINUED = /\$\\\n/;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/**
 * What may stand right before a line continuation outside quotes: a blank (the usual ` \`),
 * or a letter, digit, `_` or `.` inside a word, which both read as one word joined across the
 * lines. After any other character dash may read the two lines as one operator or token.
 */
const JOINS_SAFELY = /[ \tA-Za-z0-9_.]/;

/** Checks on the raw text, before it is parsed. */
export function checkText(code: string): void {
  const lone = LONE_SURROGATE.exec(code);
  if (lone) {
    const hex = lone[0].charCodeAt(0).toString(16).toUpperCase();
    throw cannotParse(`it is not well-formed Unicode (a lone surrogate U+${hex})`);
  }
  // dash takes a carriage return, a vertical tab or a DEL as part of a word; mvdan-sh reads
  // some as blanks (a here-document ending in "EOF\r" hid the next line from it). None has
  // a use in a command, so none is read.
  const control = CONTROL.exec(code);
  if (control) {
    const hex = control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    throw cannotJudge(`a control character (U+${hex}), which shells and parsers read differently`);
  }
  // dash removes a `\<newline>` before it reads what a `$` expands; mvdan-sh ends the `$`
  // there and reads on as if a new token began: `echo $\<newline>#"$(id)"` was judged as
  // `echo $` and a comment while dash ran id (`$#"$(id)"`); `"$\<newline>(id)"` and the same
  // in a here-document hid a command substitution. Found by scripts/shell-differential.ts.
  if (DOLLAR_CONTINUED.test(code)) {
    throw cannotJudge(
      "a $ followed by a line continuation (dash joins the lines before it reads what the $ expands; the parser does not)",
    );
  }
}

/**
 * Checks on the text once it is parsed: every line continuation outside single quotes and
 * quoted here-documents (where both read it as two characters) must follow a blank or a word
 * character. Continuations in a row count as one.
 */
export function checkContinuations(code: string, file: ShNode): void {
  if (!code.includes("\\\n")) return;
  const bytes = Buffer.from(code, "utf8");
  const { literal, tabbed } = regions(bytes, file);
  const inside = (list: [number, number][], nl: number) => list.some(([s, e]) => nl - 1 >= s && nl < e);
  for (let nl = bytes.indexOf(10); nl >= 0; nl = bytes.indexOf(10, nl + 1)) {
    if (!isContinuation(bytes, nl) || inside(literal, nl)) continue;
    // In a <<- document dash joins the next line before it strips the tabs of a line start, so
    // the tabs stay; the parser stripped them and ended the document at `x\<nl><tab>EOF`.
    if (inside(tabbed, nl)) {
      throw cannotJudge(
        "a line continuation in a <<- here-document (dash keeps the tabs of the line it joins, the parser strips them and may end the document there)",
      );
    }
    let before = nl - 2;
    while (before >= 1 && bytes[before] === 10 && isContinuation(bytes, before)) before -= 2;
    if (before < 0 || JOINS_SAFELY.test(String.fromCharCode(bytes[before]!))) continue;
    if (endsOperator(bytes, before, nl)) continue;
    const ch = bytes[before] === 10 ? "the start of a line" : `"${String.fromCharCode(bytes[before]!)}"`;
    throw cannotJudge(
      `a line continuation right after ${ch} (dash joins the lines into one token there, the parser does not); put a blank before the backslash`,
    );
  }
}

/**
 * `cmd1 &&\<newline>`, `cmd1 ||\<newline>`: the operator is complete, nothing joins it.
 * `cmd1 |\<newline>cmd2`: a pipe joins only a `|` or `&` on the next line (`||`, `|&`).
 */
function endsOperator(bytes: Buffer, before: number, nl: number): boolean {
  const ch = bytes[before];
  if (ch !== 0x26 && ch !== 0x7c) return false;
  if (bytes[before - 1] === ch && bytes[before - 2] !== 0x5c) return true;
  if (ch !== 0x7c || bytes[before - 1] === 0x5c) return false;
  let after = nl + 1;
  while (bytes[after] === 0x5c && bytes[after + 1] === 10) after += 2;
  return bytes[after] !== 0x7c && bytes[after] !== 0x26;
}

/** The newline at `nl` ends an odd run of backslashes: dash removes the pair. */
export function isContinuation(bytes: Buffer, nl: number): boolean {
  let run = 0;
  while (nl - run - 1 >= 0 && bytes[nl - run - 1] === 0x5c) run++;
  return run % 2 === 1;
}

interface Regions {
  /** Single-quoted strings and quoted here-document bodies: both read `\` newline as is. */
  literal: [number, number][];
  /** Bodies of unquoted <<- here-documents. */
  tabbed: [number, number][];
}

/** Byte ranges of the parts of the text where continuations are read apart, from the parse. */
function regions(bytes: Buffer, node: unknown, out: Regions = { literal: [], tabbed: [] }): Regions {
  if (Array.isArray(node)) {
    for (const n of node) regions(bytes, n, out);
    return out;
  }
  if (!node || typeof node !== "object") return out;
  const n = node as ShNode;
  if (n.type === "SglQuoted" && n.start !== undefined && n.end !== undefined)
    out.literal.push([n.start, n.end]);
  if (n.type === "Redirect" && (n.Op === TOKEN.hdoc || n.Op === TOKEN.dashHdoc) && n.Hdoc) {
    const quoted = (n.Word.Parts as ShNode[]).some((p) => p.type !== "Lit" || String(p.Value).includes("\\"));
    const body = n.Hdoc as ShNode;
    // A body starts a line; mvdan-sh places one that starts with a continuation a byte late.
    // Its end is where the parser stood once it had read the closing line.
    if (body.start !== undefined && body.end !== undefined) {
      const range: [number, number] = [bytes.lastIndexOf(10, body.start - 1) + 1, body.end];
      if (quoted) out.literal.push(range);
      else if (n.Op === TOKEN.dashHdoc) out.tabbed.push(range);
    }
  }
  for (const [key, value] of Object.entries(n)) if (key !== "type") regions(bytes, value, out);
  return out;
}
