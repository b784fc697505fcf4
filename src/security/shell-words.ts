// security/shell-words.ts — what one parsed shell word becomes before dash runs it.
// Quote removal and backslash escapes are done here, so that `"s"udo` and `\sudo` are
// judged as the sudo they are. dash has no brace expansion (`{a,b}` stays one literal
// word) and no ANSI-C quoting (`$'x'` is a literal `$` and a quoted string), so neither is
// applied; `$'...'` and `$"..."` are refused outright, because every other shell reads
// them differently and a reader of the command would too.
//
// Every part of a word is visited explicitly (fail closed): a part type or a field this
// file does not know is refused with a reason naming it. What cannot be known before run
// time (parameter, command and arithmetic expansions, `~`, globs) is reported as such,
// never guessed; the commands inside substitutions and the variables a word assigns
// (`${x=v}`, `$((x=1))`) are handed to the analyzer through WordHooks.

import { cannotJudge, cannotParse, onlyFields, type ShNode, TOKEN } from "./shell-ast.js";
import { isContinuation } from "./shell-lexical.js";

/** Parameter expansions nested in each other deeper than this are refused (stack safety). */
export const MAX_WORD_DEPTH = 64;

export interface WordValue {
  /** The argv entry this word becomes; for a run-time word, its text as written. */
  value: string;
  /** Holds a parameter, command or arithmetic expansion, or a `~`: only known at run time. */
  dynamic: boolean;
  /** Holds an unquoted glob (`*`, `?`, `[...]`): it names files only known at run time. */
  glob: boolean;
  /**
   * Whatever it expands to, it is one argument that does not start with `-` or `+`: it starts
   * with a fixed character other than those (`./*`, `"/w/$f"`) and holds no unquoted
   * expansion (which field splitting could cut into more arguments) and no `~`. A run-time
   * word that is not can be an option (`$X`, `*` in a folder holding a file named
   * `--checkpoint-action=exec=sh x`).
   */
  optionSafe: boolean;
  /**
   * How many arguments it becomes: "one" (no unquoted expansion, no unquoted glob), "glob"
   * (an unquoted glob and no unquoted expansion: the names that match, or the pattern itself),
   * "split" (an unquoted expansion or `~`: field splitting can make anything of it).
   */
  fields: "one" | "glob" | "split";
}

/** What the analyzer learns from inside a word. */
export interface WordHooks {
  /**
   * The statements of a `$(...)` in the word: commands that run when the word is expanded.
   * `end`: the byte offset of its closing parenthesis.
   */
  substitution(stmts: readonly ShNode[], end: number): void;
  /** A variable the word assigns when expanded (`${x=v}`, `${x:=v}`, `$((x=1))`). */
  assigns(name: string): void;
}

/** A source text with the byte offsets mvdan-sh reports (Go strings are UTF-8 bytes). */
export class ShellSource {
  private bytes: Buffer | undefined;
  constructor(readonly text: string) {}

  private utf8(): Buffer {
    this.bytes ??= Buffer.from(this.text, "utf8");
    return this.bytes;
  }

  slice(node: ShNode): string {
    this.bytes ??= Buffer.from(this.text, "utf8");
    return this.bytes.subarray(node.start ?? 0, node.end ?? this.bytes.length).toString("utf8");
  }

  /**
   * The character right before a node, past line continuations ("" at the start): dash joins
   * the lines, so `'x'\<newline>2>f` glues the 2 to the quote as `'x'2>f` does.
   */
  before(node: ShNode): string {
    const bytes = this.utf8();
    let at = node.start ?? 0;
    while (at >= 2 && bytes[at - 1] === 10 && isContinuation(bytes, at - 1)) at -= 2;
    return at > 0 ? String.fromCharCode(bytes[at - 1]!) : "";
  }

  /**
   * The character right after a node, past line continuations ("" at the end). mvdan-sh ends
   * `$1` before a continuation but counts its backslash in: `$1\<newline>#x` is `$1#x` to dash.
   */
  after(node: ShNode): string {
    const bytes = this.utf8();
    let at = node.end ?? bytes.length;
    if (at > 0 && bytes[at] === 10 && isContinuation(bytes, at)) at++;
    while (bytes[at] === 0x5c && bytes[at + 1] === 10) at += 2;
    return at < bytes.length ? String.fromCharCode(bytes[at]!) : "";
  }
}

interface Chars {
  c: string[];
  /** true where the character was quoted or escaped: not subject to glob expansion. */
  q: boolean[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SPECIAL_PARAMS = new Set(["@", "*", "#", "?", "-", "$", "!"]);
/** Special parameters that always hold a number: safe as arithmetic operands. */
const NUMERIC_PARAMS = new Set(["#", "?", "$", "!"]);
/** Operators whose word dash reads with quotes as plain characters inside double quotes. */
const VALUE_OPS = new Set<number>([
  TOKEN.plus,
  TOKEN.colPlus,
  TOKEN.minus,
  TOKEN.colMinus,
  TOKEN.quest,
  TOKEN.colQuest,
  TOKEN.assgn,
  TOKEN.colAssgn,
]);
/** The parameter expansion operators the analysis reads: the value ones, then removal of a pattern. */
const EXPANSION_OPS = new Set<number>([...VALUE_OPS, TOKEN.perc, TOKEN.dblPerc, TOKEN.hash, TOKEN.dblHash]);
const ARITH_ASSIGN = new Set<number>([
  TOKEN.assgn,
  TOKEN.addAssgn,
  TOKEN.subAssgn,
  TOKEN.mulAssgn,
  TOKEN.quoAssgn,
  TOKEN.remAssgn,
  TOKEN.andAssgn,
  TOKEN.orAssgn,
  TOKEN.xorAssgn,
  TOKEN.shlAssgn,
  TOKEN.shrAssgn,
]);
const ARITH_BINARY = new Set<number>([
  TOKEN.plus,
  TOKEN.minus,
  TOKEN.mul,
  TOKEN.slash,
  TOKEN.perc,
  TOKEN.pow,
  TOKEN.eql,
  TOKEN.neq,
  TOKEN.leq,
  TOKEN.geq,
  TOKEN.rdrOut,
  TOKEN.rdrIn,
  TOKEN.and,
  TOKEN.pipe,
  TOKEN.caret,
  TOKEN.appOut,
  TOKEN.hdoc,
  TOKEN.andStmt,
  TOKEN.orStmt,
  TOKEN.comma,
  TOKEN.quest,
  TOKEN.colon,
]);
const ARITH_UNARY = new Set<number>([
  TOKEN.not,
  TOKEN.bitNegation,
  TOKEN.inc,
  TOKEN.dec,
  TOKEN.plus,
  TOKEN.minus,
]);

/** Where a word stands, as far as quoting goes. */
interface Quoting {
  /** Inside double quotes or an unquoted here-document body. */
  dq?: boolean;
  /**
   * Inside the word of `${x-w}`, `${x:+w}`, `${x=w}`, `${x?w}`... within double quotes: dash
   * takes a `'` there as a plain character, the parser as a quote. `"${x:-'$(id)'}"` runs id
   * in dash while the parser saw a quoted string, so a single-quoted part there is refused.
   * (In `${x#'p'}` and `${x%'p'}` dash does take the quotes as quotes, as the parser does.)
   */
  literalSingle?: boolean;
}

/**
 * Evaluate a Word node as far as it can be known before run time. `assignment`: the word
 * is the value of `NAME=value`, where dash also expands a `~` after each `:`. `dq`: the
 * word is a here-document body, which dash reads like a double-quoted string.
 */
export function wordValue(
  word: ShNode,
  src: ShellSource,
  hooks: WordHooks,
  opts: { assignment?: boolean; depth?: number } & Quoting = {},
): WordValue {
  onlyFields(word, ["Parts"], "a word");
  refuseGluedHash(word, src);
  const depth = opts.depth ?? 0;
  if (depth > MAX_WORD_DEPTH) throw cannotParse(`expansions nest deeper than ${MAX_WORD_DEPTH} levels`);
  const chars: Chars = { c: [], q: [] };
  let dynamic = false;
  let splits = false;
  const parts = word.Parts as ShNode[];
  // Whether the word's first character is fixed text (true) or comes from an expansion (false).
  let leadFixed: boolean | undefined;
  const fixed = (): void => {
    if (leadFixed === undefined && chars.c.length > 0) leadFixed = true;
  };
  const expanded = (): void => {
    leadFixed ??= false;
  };
  parts.forEach((part, i) => {
    switch (part.type) {
      case "Lit": {
        const text = part.Value as string;
        const next = parts[i + 1];
        if (next && (next.type === "SglQuoted" || next.type === "DblQuoted") && endsWithBareDollar(text)) {
          throw cannotJudge(
            `$'...' or $"..." quoting (sh reads a literal $ followed by a quoted string, bash decodes escapes); write the text with plain quotes or printf`,
          );
        }
        if (hasTilde(text, i === 0, opts.assignment === true)) {
          dynamic = true;
          splits = true;
        }
        pushUnquotedLit(chars, text);
        if (dynamic) expanded();
        fixed();
        break;
      }
      case "SglQuoted":
        onlyFields(part, ["Value"], "a single-quoted string");
        if (opts.literalSingle) {
          throw cannotJudge(
            // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a template
            "single quotes inside ${x:-...}, ${x+...}, ${x=...} or ${x?...} within double quotes or a here-document (dash reads them as plain characters, so what they seem to quote is expanded)",
          );
        }
        pushQuoted(chars, part.Value as string);
        fixed();
        break;
      case "DblQuoted":
        onlyFields(part, ["Parts"], "a double-quoted string");
        for (const inner of part.Parts as ShNode[]) {
          if (inner.type === "Lit") {
            pushQuoted(chars, unescapeDoubleQuoted(inner.Value as string));
            fixed();
          } else {
            expanded();
            expansion(inner, src, hooks, depth, { dq: true, literalSingle: opts.literalSingle });
            dynamic = true;
          }
        }
        break;
      default:
        expanded();
        expansion(part, src, hooks, depth, { dq: opts.dq, literalSingle: opts.literalSingle });
        dynamic = true;
        splits = true;
    }
  });
  let glob = false;
  for (let i = 0; i < chars.c.length; i++) {
    if (chars.q[i]) continue;
    const ch = chars.c[i];
    if (ch === "*" || ch === "?" || (ch === "[" && chars.c.indexOf("]", i + 1) > i)) glob = true;
  }
  const lead = chars.c[0];
  // An unquoted glob character first (`*`, `?*`, `[-]x`) is no fixed character: `*` may expand to `--x`.
  const leadGlob = !chars.q[0] && (lead === "*" || lead === "?" || lead === "[");
  const optionSafe = leadFixed === true && !splits && !leadGlob && lead !== "-" && lead !== "+";
  const fields = splits ? "split" : glob ? "glob" : "one";
  return { value: dynamic ? src.slice(word) : chars.c.join(""), dynamic, glob, optionSafe, fields };
}

/**
 * mvdan-sh starts a comment at a `#` right after a quote or an expansion ('x'#y, ${x}#y,
 * $(x)#y); dash reads the `#` and what follows as part of the word: `echo 'x'#$(id)` runs id.
 * A here-document's delimiter too: `cat <<'E'#x; id` hid `; id` in a comment.
 */
export function refuseGluedHash(word: ShNode, src: ShellSource): void {
  if (src.after(word) === "#") {
    throw cannotJudge(
      "a # right after a quote or an expansion (dash reads it as part of the word, not as a comment)",
    );
  }
}

/** Visit a parameter expansion, command substitution or arithmetic expansion. */
function expansion(part: ShNode, src: ShellSource, hooks: WordHooks, depth: number, q: Quoting): void {
  switch (part.type) {
    case "ParamExp":
      paramExp(part, src, hooks, depth, q);
      return;
    case "CmdSubst":
      if (part.Backquotes) {
        throw cannotJudge(
          "backquoted command substitution (its backslash rules differ between shells); use $(...)",
        );
      }
      onlyFields(part, ["Stmts"], "a command substitution");
      hooks.substitution(part.Stmts as ShNode[], (part.end as number) - 1);
      return;
    case "ArithmExp":
      onlyFields(part, ["X"], "an arithmetic expansion");
      arith(part.X as ShNode, src, hooks);
      return;
    default:
      throw cannotJudge(`${describePart(part.type)} (not POSIX sh)`);
  }
}

function describePart(type: string): string {
  const names: Record<string, string> = {
    ExtGlob: "an extended glob",
    ProcSubst: "a process substitution <(...)",
    BraceExp: "a brace expansion",
    ArrayExpr: "an array",
  };
  return names[type] ?? `a word part of type ${type}`;
}

/** POSIX parameter expansions only: $x ${x} ${#x} ${x-w} ${x:-w} ${x=w} ${x?w} ${x+w} ${x#p} ${x%p}... */
function paramExp(p: ShNode, src: ShellSource, hooks: WordHooks, depth: number, q: Quoting): void {
  onlyFields(p, ["Short", "Length", "Param", "Exp"], "a parameter expansion");
  const name = String((p.Param as ShNode | null)?.Value ?? "");
  if (!(NAME.test(name) || /^\d+$/.test(name) || SPECIAL_PARAMS.has(name))) {
    throw cannotJudge(`the parameter expansion \${${name}}`);
  }
  const exp = p.Exp as ShNode | null;
  if (!exp) return;
  onlyFields(exp, ["Op", "Word"], "a parameter expansion operator");
  if (!EXPANSION_OPS.has(exp.Op as number))
    throw cannotJudge(`a parameter expansion operator of \${${name}}`);
  if (exp.Op === TOKEN.assgn || exp.Op === TOKEN.colAssgn) hooks.assigns(name);
  // The default, alternative or pattern is a word like any other: a $(...) in it runs.
  if (exp.Word) {
    const literalSingle = q.literalSingle === true || (q.dq === true && VALUE_OPS.has(exp.Op as number));
    wordValue(exp.Word as ShNode, src, hooks, { depth: depth + 1, dq: q.dq, literalSingle });
  }
}

/**
 * `$((...))`. dash evaluates a bare name's value as a number and never re-reads it as an
 * expression (`y='a[$(id)]'; $((y))` is an "Illegal number"), but the text of `$y` or of a
 * `$(...)` inside the expression is pasted in before evaluation and can hold `PATH=5`:
 * those are refused, except the special parameters that are always numbers.
 */
function arith(node: ShNode, src: ShellSource, hooks: WordHooks): void {
  switch (node.type) {
    case "BinaryArithm": {
      onlyFields(node, ["Op", "X", "Y"], "an arithmetic operator");
      const op = node.Op as number;
      if (ARITH_ASSIGN.has(op)) hooks.assigns(arithName(node.X as ShNode));
      else if (!ARITH_BINARY.has(op)) throw cannotJudge("an arithmetic operator sh does not have");
      arith(node.X as ShNode, src, hooks);
      arith(node.Y as ShNode, src, hooks);
      return;
    }
    case "UnaryArithm": {
      onlyFields(node, ["Op", "Post", "X"], "an arithmetic operator");
      const op = node.Op as number;
      if (!ARITH_UNARY.has(op)) throw cannotJudge("an arithmetic operator sh does not have");
      if (op === TOKEN.inc || op === TOKEN.dec) hooks.assigns(arithName(node.X as ShNode));
      arith(node.X as ShNode, src, hooks);
      return;
    }
    case "ParenArithm":
      onlyFields(node, ["X"], "parentheses in arithmetic");
      arith(node.X as ShNode, src, hooks);
      return;
    case "Word":
      onlyFields(node, ["Parts"], "an arithmetic operand");
      for (const part of node.Parts as ShNode[]) {
        if (part.type === "Lit") continue;
        if (part.type === "ParamExp" && isNumericParam(part)) continue;
        throw cannotJudge(
          "an expansion inside $((...)): its text is evaluated as arithmetic and can assign any variable; write the variable's name without $ (x, not $x)",
        );
      }
      return;
    default:
      throw cannotJudge(`arithmetic of type ${node.type}`);
  }
}

function isNumericParam(p: ShNode): boolean {
  const name = String((p.Param as ShNode | null)?.Value ?? "");
  if (p.Exp || p.Excl || p.Slice || p.Repl || p.Index || p.Names || p.Width) return false;
  return NUMERIC_PARAMS.has(name) || (p.Length === true && (NAME.test(name) || /^\d+$/.test(name)));
}

function arithName(node: ShNode): string {
  const parts = node.type === "Word" ? (node.Parts as ShNode[]) : [];
  const name = parts.length === 1 && parts[0]!.type === "Lit" ? String(parts[0]!.Value) : "";
  if (!NAME.test(name)) throw cannotJudge("an arithmetic assignment to something other than a variable name");
  return name;
}

/** `$` as the last character of unquoted text, not escaped: `$'...'` / `$"..."` follows. */
function endsWithBareDollar(text: string): boolean {
  if (!text.endsWith("$")) return false;
  let backslashes = 0;
  for (let i = text.length - 2; i >= 0 && text[i] === "\\"; i--) backslashes++;
  return backslashes % 2 === 0;
}

/** An unquoted `~` that dash expands from $HOME: at the start of a word, or after `:` in an assignment. */
function hasTilde(text: string, atStart: boolean, assignment: boolean): boolean {
  if (atStart && text.startsWith("~")) return true;
  return assignment && /(^|:)~/.test(text) && (atStart || text.includes(":~"));
}

function pushQuoted(chars: Chars, text: string): void {
  for (const ch of text) {
    chars.c.push(ch);
    chars.q.push(true);
  }
}

/** Unquoted text: a backslash quotes the next character; backslash-newline disappears. */
function pushUnquotedLit(chars: Chars, text: string): void {
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\\" && i + 1 < text.length) {
      i++;
      if (text[i] === "\n") continue;
      chars.c.push(text[i]!);
      chars.q.push(true);
    } else {
      chars.c.push(ch);
      chars.q.push(false);
    }
  }
}

/** Inside "...", a backslash only escapes $ ` " \ and newline. */
function unescapeDoubleQuoted(text: string): string {
  return text.replace(/\\([$`"\\\n])/g, (_, ch: string) => (ch === "\n" ? "" : ch));
}
