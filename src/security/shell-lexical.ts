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
// - control characters other than tab and newline; and a `$` followed by a line
//   continuation, which dash joins before it reads what the `$` expands.

import { cannotJudge, cannotParse } from "./shell-ast.js";

/** Control characters other than tab and newline (C0, DEL, C1). */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]/;
/** A `$` directly followed by a backslash-newline, anywhere (quotes included: fail closed). */
const DOLLAR_CONTINUED = /\$\\\n/;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

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
