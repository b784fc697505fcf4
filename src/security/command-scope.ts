// security/command-scope.ts — the normalized form of an exec command, which is what a
// human's Allow Session / Allow Always on an exec call covers. Two spellings of one command
// must share a scope (`rm  'a'` and `rm a`), two different commands must not (`rm a` and
// `rm b`, `X=a; rm $X` and `X=b; rm $X`).
//
// A command is normalized only when every part of it is fully known before it runs:
// simple commands whose words are literal (plain, single- or double-quoted text without
// expansions, escapes, globs, braces or tildes), joined by `;`, `&`, `&&`, `||` or `|`,
// with file redirections to literal targets. Such a command is re-printed canonically
// (one space between words, each word quoted only when it must be, `;` between
// statements): the words a program receives, in order, and the shape of the list.
// Anything else — a variable or command substitution, an assignment, a here-document, a
// loop, a function, a subshell — has meaning the printed words do not capture (a
// here-document fed to python3 is a program), so such a command is scoped to its exact
// text and nothing else. Normalizing never makes a scope wider than the text it came from.

import { createHash } from "node:crypto";
import { isAidoError } from "../errors.js";
import { parseShell, type ShNode } from "./shell-ast.js";

export interface NormalizedCommand {
  /** The canonical printing, or the exact text when the command is not plain. */
  text: string;
  /** True when `text` is a canonical printing shared by every spelling of the command. */
  normalized: boolean;
}

// mvdan.cc/sh/v3 token values (syntax/tokens.go): list and pipe operators, file redirections.
const LIST_OPS: Record<number, string> = { 10: "&&", 11: "||", 12: "|" };
const REDIRECT_OPS: Record<number, string> = {
  54: ">",
  55: ">>",
  56: "<",
  57: "<>",
  58: "<&",
  59: ">&",
  60: ">|",
};
/** Unquoted text that means only itself to a POSIX shell. */
const SAFE_LITERAL = /^[A-Za-z0-9_@%+=:,./-]+$/;

class NotPlain extends Error {}

export function normalizeCommand(command: string): NormalizedCommand {
  try {
    const file = parseShell(command);
    const stmts = file.Stmts as ShNode[];
    if (stmts.length === 0) return { text: command, normalized: false };
    return { text: printList(stmts), normalized: true };
  } catch (e) {
    // Not plain, or not parseable here: the exact text is the scope.
    if (e instanceof NotPlain || isAidoError(e)) {
      return { text: command, normalized: false };
    }
    throw e;
  }
}

/** A short stable digest of a scope's parts, for scope keys that would otherwise be long. */
export function scopeDigest(parts: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 40);
}

function printList(stmts: ShNode[]): string {
  let out = "";
  for (const s of stmts) {
    const text = printStmt(s);
    out += out === "" ? text : out.endsWith("&") ? ` ${text}` : `; ${text}`;
  }
  return out;
}

function printStmt(s: ShNode): string {
  if (s.Negated || s.Coprocess) throw new NotPlain();
  const cmd = s.Cmd as ShNode | null;
  if (!cmd) throw new NotPlain();
  const redirs = (s.Redirs as ShNode[]).map(printRedirect);
  let body: string;
  if (cmd.type === "CallExpr") {
    if ((cmd.Assigns as ShNode[]).length > 0) throw new NotPlain();
    const words = (cmd.Args as ShNode[]).map((w, i) => quoteWord(literalWord(w), i === 0));
    if (words.length === 0) throw new NotPlain();
    body = [...words, ...redirs].join(" ");
  } else if (cmd.type === "BinaryCmd") {
    const op = LIST_OPS[cmd.Op as number];
    if (op === undefined || redirs.length > 0) throw new NotPlain();
    body = `${printStmt(cmd.X as ShNode)} ${op} ${printStmt(cmd.Y as ShNode)}`;
  } else throw new NotPlain();
  return s.Background ? `${body} &` : body;
}

function printRedirect(r: ShNode): string {
  const op = REDIRECT_OPS[r.Op as number];
  if (op === undefined || r.Hdoc) throw new NotPlain();
  const fd = r.N ? String((r.N as ShNode).Value) : "";
  if (!/^\d*$/.test(fd)) throw new NotPlain();
  return `${fd}${op}${quoteWord(literalWord(r.Word as ShNode), false)}`;
}

/** The value of a word that holds only literal text, or NotPlain. */
function literalWord(word: ShNode): string {
  let value = "";
  for (const part of word.Parts as ShNode[]) {
    if (part.type === "Lit") {
      const v = String(part.Value);
      if (!SAFE_LITERAL.test(v)) throw new NotPlain();
      value += v;
    } else if (part.type === "SglQuoted" && !part.Dollar) {
      value += String(part.Value);
    } else if (part.type === "DblQuoted" && !part.Dollar) {
      for (const inner of part.Parts as ShNode[]) {
        const v = inner.type === "Lit" ? String(inner.Value) : undefined;
        if (v === undefined || /[\\$`]/.test(v)) throw new NotPlain();
        value += v;
      }
    } else throw new NotPlain();
  }
  return value;
}

/** Bare when that means the same word; a command name holding "=" is quoted (bare, it would be an assignment). */
function quoteWord(value: string, commandName: boolean): string {
  if (SAFE_LITERAL.test(value) && !(commandName && value.includes("="))) return value;
  return `'${value.replaceAll("'", "'\\''")}'`;
}
