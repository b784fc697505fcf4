// security/shell-words.ts — what one parsed shell word becomes before a command runs.
// Quote removal, backslash escapes, $'...' escapes and brace expansion are done here so
// that `"s"udo`, `\sudo`, `$'\x73udo'` and `{sudo,id}` are judged as the sudo they are.
// What cannot be known before run time (parameter, command, arithmetic and process
// expansions; globs) is reported as such, never guessed.

import { AidoError, ErrorCode } from "../errors.js";
import type { ShNode } from "./shell-ast.js";

/** Brace expansion beyond this many words is refused: `{a,b}{c,d}...` grows exponentially. */
const MAX_BRACE_WORDS = 256;

export interface WordValue {
  /** The argv entries this word becomes (several when it holds a brace expansion). */
  values: string[];
  /** Holds a parameter, command, arithmetic or process expansion: its value is only known at run time. */
  dynamic: boolean;
  /** Holds an unquoted glob (`*`, `?`, `[`, extglob): it names files only known at run time. */
  glob: boolean;
}

/** A source text with the byte offsets mvdan-sh reports (Go strings are UTF-8 bytes). */
export class ShellSource {
  private bytes: Buffer | undefined;
  constructor(readonly text: string) {}

  slice(node: ShNode): string {
    this.bytes ??= Buffer.from(this.text, "utf8");
    return this.bytes.subarray(node.start ?? 0, node.end ?? this.bytes.length).toString("utf8");
  }
}

interface Chars {
  c: string[];
  /** true where the character was quoted or escaped: not subject to brace or glob expansion. */
  q: boolean[];
}

/** Evaluate a Word node as far as it can be known before run time. */
export function wordValue(word: ShNode, src: ShellSource): WordValue {
  const chars: Chars = { c: [], q: [] };
  let dynamic = false;
  let glob = false;
  for (const part of word.Parts as ShNode[]) {
    switch (part.type) {
      case "Lit":
        pushUnquotedLit(chars, part.Value as string);
        break;
      case "SglQuoted":
        pushQuoted(chars, part.Dollar ? decodeAnsiC(part.Value as string) : (part.Value as string));
        break;
      case "DblQuoted":
        for (const inner of part.Parts as ShNode[]) {
          if (inner.type === "Lit") pushQuoted(chars, unescapeDoubleQuoted(inner.Value as string));
          else dynamic = true;
        }
        break;
      case "ExtGlob":
        glob = true;
        dynamic = true;
        break;
      default:
        // ParamExp, CmdSubst, ArithmExp, ProcSubst, BraceExp: decided at run time.
        dynamic = true;
    }
  }
  if (dynamic) return { values: [src.slice(word)], dynamic, glob };
  const expanded = expandBraces(chars, 0);
  for (const w of expanded) {
    for (let i = 0; i < w.c.length; i++) {
      if (!w.q[i] && (w.c[i] === "*" || w.c[i] === "?" || w.c[i] === "[")) glob = true;
    }
  }
  return { values: expanded.map((w) => w.c.join("")), dynamic: false, glob };
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

const ANSI_SIMPLE: Record<string, string> = {
  a: "\x07",
  b: "\b",
  e: "\x1b",
  E: "\x1b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  "'": "'",
  '"': '"',
  "?": "?",
};

/** Bash's $'...' escapes, so `$'\x73udo'` is seen as sudo. */
export function decodeAnsiC(text: string): string {
  return text.replace(
    /\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)/gs,
    (whole, esc: string) => {
      const head = esc[0]!;
      if (head === "x" || head === "u" || head === "U") {
        const cp = Number.parseInt(esc.slice(1), 16);
        return cp <= 0x10ffff ? String.fromCodePoint(cp) : whole;
      }
      if (/[0-7]/.test(head)) return String.fromCharCode(Number.parseInt(esc, 8) & 0xff);
      if (head === "c" && esc.length === 2) return String.fromCharCode(esc.charCodeAt(1) & 0x1f);
      return ANSI_SIMPLE[esc] ?? whole;
    },
  );
}

/** Bash brace expansion over unquoted `{`, `,`, `}`: `{a,b}` and `{1..3}` / `{a..c}`. */
function expandBraces(w: Chars, depth: number): Chars[] {
  for (let open = 0; open < w.c.length; open++) {
    if (w.q[open] || w.c[open] !== "{") continue;
    let level = 0;
    const commas: number[] = [];
    let close = -1;
    for (let j = open + 1; j < w.c.length; j++) {
      if (w.q[j]) continue;
      const ch = w.c[j];
      if (ch === "{") level++;
      else if (ch === "}") {
        if (level === 0) {
          close = j;
          break;
        }
        level--;
      } else if (ch === "," && level === 0) commas.push(j);
    }
    if (close < 0) continue;
    const alternatives: Chars[] = [];
    if (commas.length > 0) {
      const bounds = [open, ...commas, close];
      for (let k = 0; k + 1 < bounds.length; k++)
        alternatives.push(sliceChars(w, bounds[k]! + 1, bounds[k + 1]!));
    } else {
      const seq = sequence(w.c.slice(open + 1, close).join(""));
      if (seq === undefined) continue;
      for (const s of seq) alternatives.push({ c: [...s], q: [...s].map(() => true) });
    }
    const out: Chars[] = [];
    for (const alt of alternatives) {
      const joined: Chars = {
        c: [...w.c.slice(0, open), ...alt.c, ...w.c.slice(close + 1)],
        q: [...w.q.slice(0, open), ...alt.q, ...w.q.slice(close + 1)],
      };
      out.push(...expandBraces(joined, depth + 1));
      if (out.length > MAX_BRACE_WORDS) {
        throw new AidoError(
          ErrorCode.policyDenied,
          `cannot parse command: brace expansion yields more than ${MAX_BRACE_WORDS} words`,
        );
      }
    }
    return out;
  }
  return [w];
}

function sliceChars(w: Chars, from: number, to: number): Chars {
  return { c: w.c.slice(from, to), q: w.q.slice(from, to) };
}

/** `{1..5}`, `{10..0..2}`, `{a..e}`; anything else is a literal brace. */
function sequence(inner: string): string[] | undefined {
  const num = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/.exec(inner);
  const chr = /^([a-zA-Z])\.\.([a-zA-Z])(?:\.\.(-?\d+))?$/.exec(inner);
  const m = num ?? chr;
  if (!m) return undefined;
  const from = num ? Number(m[1]) : m[1]!.charCodeAt(0);
  const to = num ? Number(m[2]) : m[2]!.charCodeAt(0);
  const step = Math.abs(Number(m[3] ?? 1)) || 1;
  if (Math.abs(to - from) / step > MAX_BRACE_WORDS) {
    throw new AidoError(
      ErrorCode.policyDenied,
      `cannot parse command: brace sequence {${inner}} is too long`,
    );
  }
  const out: string[] = [];
  const dir = to >= from ? 1 : -1;
  for (let v = from; dir > 0 ? v <= to : v >= to; v += dir * step) {
    out.push(num ? String(v) : String.fromCharCode(v));
  }
  return out;
}
